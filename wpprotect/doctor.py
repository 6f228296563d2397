"""``wpprotect doctor`` as a library: find what is installed, what runs, and what is wrong.

:func:`diagnose` looks at the host install (``/opt/datadog-agent`` and ``/etc/datadog-agent``),
the agent processes running on the machine, the effective Workload Protection settings and where
each comes from, agent containers (Docker) and agent pods (Kubernetes) when those are reachable,
the traffic-control classifiers (as root), and optionally runs the runtime self-test. Every
probe of a daemon or an API runs with a short deadline, so ``diagnose()`` never hangs, and every
part that cannot run says why in its :class:`Check` (status ``skipped``).

>>> from wpprotect.doctor import diagnose
>>> report = diagnose(install_dir="/nonexistent", config_dir="/nonexistent",
...                   docker=False, kubernetes=False, tc=False)
>>> [c.status for c in report.checks if c.name == "docker"]
['skipped']
>>> report.exit_status
0
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import inspect
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import attrs

from wpprotect._jsonable import jsonable
from wpprotect.errors import ExecTimeoutError, WPProtectError

__all__ = [
    "CHECK_STATUSES",
    "Check",
    "CheckStatus",
    "DoctorReport",
    "RunningComponent",
    "diagnose",
    "running_components",
]

log = logging.getLogger(__name__)

#: A check's outcome: ``ok``; ``problem`` (needs action, see the fix); ``skipped`` (could not or
#: was asked not to run, the detail says why); ``error`` (the check itself could not complete).
CheckStatus = Literal["ok", "problem", "skipped", "error"]
#: Every status a :class:`Check` can have, from best to worst for sorting and summaries.
CHECK_STATUSES: tuple[CheckStatus, ...] = ("ok", "skipped", "problem", "error")

#: Where the Linux packages install the agent, and its config.
DEFAULT_INSTALL_DIR = Path("/opt/datadog-agent")
DEFAULT_CONFIG_DIR = Path("/etc/datadog-agent")

# Binaries of the Linux packages (datadog-agent-cli.md §3.2: the systemd units' ExecStart).
_BINARIES = {
    "agent": "bin/agent/agent",
    "system-probe": "embedded/bin/system-probe",
    "security-agent": "embedded/bin/security-agent",
}

# Version gates, from datadog-agent-cli.md §2.1 and deployments.md §5/§6.
_CORE_FLARE = (7, 77)  # security-agent runtime deprecated; the core agent's flare replaces it

_RESTART = "sudo systemctl restart datadog-agent"


def _to_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(value)


def _to_strs(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(repr=False)
class Check:
    """One thing doctor looked at, and what it found.

    :ivar name: a stable identifier (``host.install``, ``config.classifier_priority``,
        ``docker``, ``tc``, ``self-test:docker:datadog-agent``...).
    :ivar status: ``ok``, ``problem`` (something needs action: see :attr:`fix`), ``skipped``
        (could not or was asked not to run: :attr:`detail` says why) or ``error`` (the check
        itself failed: a daemon did not answer, a file could not be read).
    :ivar detail: what was found, in one or two sentences.
    :ivar fix: for a problem, the command or wpprotect call that fixes it; else ``None``.
    :ivar data: structured details (settings, findings, versions) for ``--json`` and notebooks.
    """

    name: str
    status: CheckStatus
    detail: str
    fix: str | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict, converter=_to_dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``name``, ``status``, ``detail``, ``fix``, ``data``."""
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
            "data": jsonable(self.data),
        }

    def __repr__(self) -> str:
        return f"<Check {self.name} {self.status}: {_shorten(self.detail, 60)}>"

    def _repr_html_(self) -> str:
        return _html_checks([self])


def _to_checks(value: Iterable[Check]) -> tuple[Check, ...]:
    return tuple(value)


@attrs.frozen(repr=False)
class DoctorReport:
    """Everything :func:`diagnose` found, as a list of :class:`Check`.

    :ivar checks: in the order they were made (host, config, Docker, Kubernetes, TC, self-test).
    """

    checks: tuple[Check, ...] = attrs.field(converter=_to_checks)

    @property
    def problems(self) -> tuple[Check, ...]:
        """The checks that need action."""
        return tuple(c for c in self.checks if c.status == "problem")

    @property
    def errors(self) -> tuple[Check, ...]:
        """The checks that could not be completed."""
        return tuple(c for c in self.checks if c.status == "error")

    @property
    def ok(self) -> bool:
        """True when no check found a problem or failed."""
        return not self.problems and not self.errors

    @property
    def exit_status(self) -> int:
        """The CLI's exit status: 1 when a problem needs action, else 2 when a check could not
        be completed (an environment error), else 0."""
        if self.problems:
            return 1
        if self.errors:
            return 2
        return 0

    def counts(self) -> dict[str, int]:
        """How many checks have each status, e.g. ``{"ok": 5, "skipped": 2, ...}``."""
        return {s: sum(c.status == s for c in self.checks) for s in CHECK_STATUSES}

    def get(self, name: str) -> Check | None:
        """The check called ``name``, or ``None``."""
        return next((c for c in self.checks if c.name == name), None)

    def summary(self) -> str:
        """One line: the counts and the verdict."""
        n = self.counts()
        agents = self.get("agents")
        if self.problems:
            verdict = f"{len(self.problems)} problem(s) need action"
        elif self.errors:
            verdict = f"{len(self.errors)} check(s) could not be completed"
        elif agents is not None and agents.status == "skipped":
            verdict = "no Datadog Agent found, nothing wrong with what was checked"
        else:
            verdict = "nothing to do"
        return (
            f"{n['ok']} ok, {n['problem']} problem, {n['error']} error, {n['skipped']} skipped: "
            f"{verdict}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``wpprotect doctor --json`` document.

        Keys: ``schema`` (1), ``wpprotect_version``, ``exit_status``, ``summary`` (counts per
        status), ``checks`` (each ``name``/``status``/``detail``/``fix``/``data``).
        """
        from wpprotect import __version__

        return {
            "schema": 1,
            "wpprotect_version": __version__,
            "exit_status": self.exit_status,
            "summary": self.counts(),
            "checks": [c.to_dict() for c in self.checks],
        }

    def __repr__(self) -> str:
        return f"<DoctorReport {len(self.checks)} checks: {self.summary()}>"

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self.summary())}</p>" + _html_checks(self.checks)


@attrs.frozen
class RunningComponent:
    """An agent process seen in ``/proc``.

    :ivar component: ``agent``, ``system-probe`` or ``security-agent``.
    :ivar pid: its process id.
    :ivar argv: its command line.
    :ivar container: the container id (12 characters) when it runs in a container, else None.
    """

    component: str
    pid: int
    argv: tuple[str, ...] = attrs.field(converter=_to_strs)
    container: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "component": self.component,
            "pid": self.pid,
            "argv": list(self.argv),
            "container": self.container,
        }

    def _repr_html_(self) -> str:
        where = f"container {self.container}" if self.container else "host"
        return (
            f"<p><b>{html.escape(self.component)}</b> pid {self.pid} ({html.escape(where)}): "
            f"<code>{html.escape(' '.join(self.argv))}</code></p>"
        )


_CONTAINER_RE = re.compile(r"(?:docker[-/]|containerd[-/]|cri-containerd-|crio-)([0-9a-f]{12,64})")


def running_components(proc: str | Path = "/proc") -> list[RunningComponent]:
    """The agent processes running on this machine (host and containers), read from ``/proc``.

    Needs no privileges: ``cmdline`` and ``cgroup`` are world-readable.

    :param proc: the procfs mount to read.
    """
    found: list[RunningComponent] = []
    root = Path(proc)
    try:
        entries = [e for e in os.listdir(root) if e.isdigit()]
    except OSError:
        return found
    for entry in entries:
        try:
            raw = (root / entry / "cmdline").read_bytes()
        except OSError:
            continue  # the process exited, or /proc is mounted hidepid
        argv = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
        component = _component_of(argv)
        if component is None:
            continue
        container = None
        try:
            match = _CONTAINER_RE.search((root / entry / "cgroup").read_text())
            if match:
                container = match.group(1)[:12]
        except OSError:
            pass
        found.append(RunningComponent(component, int(entry), argv, container))
    return sorted(found, key=lambda c: (c.component, c.pid))


def _component_of(argv: Sequence[str]) -> str | None:
    if not argv:
        return None
    exe = os.path.basename(argv[0])
    if exe in ("system-probe", "security-agent"):
        return exe
    # The core agent runs as `agent run` (s6 and systemd units); `agent version` etc. are not it.
    if exe == "agent" and len(argv) > 1 and argv[1] in ("run", "start"):
        return "agent"
    return None


T = TypeVar("T")


class _Timeout(Exception):
    pass


def _with_deadline(fn: Callable[[], T], seconds: float, what: str) -> T:
    """Run ``fn`` in a daemon thread; give up after ``seconds`` (the thread is abandoned, and a
    daemon thread never delays the interpreter's exit)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name=f"wpprotect-doctor-{what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise _Timeout(f"{what} did not answer within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _construct(factory: Callable[..., T], **kwargs: Any) -> T:
    """Call ``factory`` with the keyword arguments it accepts (adapters differ in options)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return factory()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return factory(**kwargs)
    return factory(**{k: v for k, v in kwargs.items() if k in params and v is not None})


def _optional(module: str, name: str) -> Any | None:
    """``module.name``, or None when that part of wpprotect is not available."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        log.debug("%s.%s is not available: %s", module, name, exc)
        return None


def _version_tuple(text: str | None) -> tuple[int, int, int] | None:
    if not text:
        return None
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _html_checks(checks: Iterable[Check]) -> str:
    colours = {"ok": "#2e7d32", "problem": "#b26a00", "error": "#c62828", "skipped": "#757575"}
    rows = "".join(
        f"<tr><td><code>{html.escape(c.name)}</code></td>"
        f"<td style='color:{colours[c.status]}'><b>{c.status}</b></td>"
        f"<td>{html.escape(c.detail)}</td>"
        f"<td>{'<code>' + html.escape(c.fix) + '</code>' if c.fix else ''}</td></tr>"
        for c in checks
    )
    return (
        "<table><thead><tr><th>check</th><th>status</th><th>detail</th><th>fix</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


# -- the checks ---------------------------------------------------------------------------------


@attrs.define
class _State:
    """What earlier checks learned that later ones use."""

    host_version: tuple[int, int, int] | None = None
    host_version_text: str | None = None
    host_present: bool = False
    cws_enabled: bool | None = None
    classifier_priority: int | None = None
    classifier_priority_source: str | None = None
    platforms: list[Any] = attrs.field(factory=list)
    seen_containers: set[str] = attrs.field(factory=set)
    container_priorities: dict[str, int] = attrs.field(factory=dict)


def _exists(path: Path) -> bool:
    # os.path.exists: False (not an exception) when a parent is not searchable by this user.
    return os.path.exists(path)


def _searchable(path: Path) -> bool:
    """False when ``path`` exists (or may) but this user cannot look inside it."""
    try:
        os.stat(path)
    except PermissionError:
        return False  # a parent is not searchable
    except OSError:
        return True  # it does not exist: nothing hidden
    return os.access(path, os.R_OK | os.X_OK)


def _check_install(install_dir: Path, config_dir: Path, st: _State) -> list[Check]:
    found = {c: install_dir / rel for c, rel in _BINARIES.items() if _exists(install_dir / rel)}
    configs = [
        n
        for n in ("datadog.yaml", "system-probe.yaml", "security-agent.yaml")
        if _exists(config_dir / n)
    ]
    unreadable = [str(d) for d in (install_dir, config_dir) if not _searchable(d)]
    if unreadable and not found and not configs:
        st.host_present = False
        return [
            Check(
                "host.install",
                "skipped",
                f"cannot look into {' and '.join(unreadable)} as uid {os.geteuid()}: run "
                "`sudo wpprotect doctor`",
            )
        ]
    data = {
        "install_dir": str(install_dir),
        "config_dir": str(config_dir),
        "binaries": {c: str(p) for c, p in found.items()},
        "config_files": configs,
    }
    if not found and not configs:
        return [
            Check(
                "host.install",
                "skipped",
                f"no Datadog Agent installed on this host: nothing at {install_dir} and no "
                f"config in {config_dir} (use --install-dir/--config-dir for another location)",
                data=data,
            )
        ]
    st.host_present = True
    if not found:
        return [
            Check(
                "host.install",
                "problem",
                f"config files in {config_dir} ({', '.join(configs)}) but no agent binaries "
                f"under {install_dir}",
                fix="install the agent package, or point --install-dir at the install",
                data=data,
            )
        ]
    missing = [c for c in _BINARIES if c not in found]
    detail = f"{', '.join(found)} under {install_dir}; config files: " + (
        ", ".join(configs) or f"none in {config_dir}"
    )
    if missing:
        detail += f"; not installed: {', '.join(missing)}"
    return [Check("host.install", "ok", detail, data=data)]


def _read_manifest_version(install_dir: Path) -> str | None:
    # Omnibus writes version-manifest.json ({"build_version": "7.x.y", ...}) and a text twin
    # whose first line is "agent 7.x.y" at the install root.
    try:
        doc = json.loads((install_dir / "version-manifest.json").read_text())
        version = doc.get("build_version") if isinstance(doc, dict) else None
        if isinstance(version, str) and _version_tuple(version):
            return version
    except (OSError, ValueError):
        pass
    try:
        first = (install_dir / "version-manifest.txt").read_text().splitlines()[0]
        if _version_tuple(first):
            return first.split()[-1]
    except (OSError, IndexError):
        pass
    return None


def _check_version(install_dir: Path, st: _State, timeout: float) -> list[Check]:
    if not st.host_present:
        return []
    text = _read_manifest_version(install_dir)
    source = "version-manifest"
    agent = install_dir / _BINARIES["agent"]
    if text is None and _exists(agent) and os.access(agent, os.X_OK):
        from wpprotect.agent import agent_version
        from wpprotect.platforms.host import HostPlatform

        source = f"{agent} version"
        try:
            # The agent module reads versions for every platform; doctor never asks for sudo.
            found = agent_version(HostPlatform(install_dir, sudo=False), timeout=timeout)
        except ExecTimeoutError:
            return [
                Check(
                    "host.version",
                    "error",
                    f"`{agent} version` did not answer within {timeout:g} s",
                )
            ]
        except WPProtectError as exc:
            return [Check("host.version", "error", f"could not read the version: {exc}")]
        text = str(found)
    if text is None:
        return [
            Check(
                "host.version",
                "skipped",
                f"agent version unknown: no version-manifest.json in {install_dir} and no "
                f"runnable {agent}",
            )
        ]
    st.host_version_text = text
    st.host_version = _version_tuple(text)
    notes = []
    if st.host_version is not None:
        from wpprotect.agent import AgentVersion, flare_binaries, self_test_binaries

        v = AgentVersion(*st.host_version)
        notes.append(f"self-test runs with `{self_test_binaries(v)[0]} runtime self-test`")
        notes.append(f"flare with `{flare_binaries(v)[0]} flare`")
    return [
        Check(
            "host.version",
            "ok",
            f"Datadog Agent {text} (from {source}); " + "; ".join(notes),
            data={"version": text, "source": source},
        )
    ]


def _check_components(
    procs: list[RunningComponent], st: _State, proc_root: str | Path
) -> list[Check]:
    if not st.host_present and not procs:
        return []
    host = [p for p in procs if p.container is None]
    boxed = [p for p in procs if p.container is not None]
    parts = [f"{p.component} (pid {p.pid})" for p in host]
    parts += [f"{p.component} (pid {p.pid}, container {p.container})" for p in boxed]
    data = {"processes": [p.to_dict() for p in procs]}
    if not procs:
        status: CheckStatus = "problem" if st.host_present else "skipped"
        return [
            Check(
                "host.components",
                status,
                f"no agent process is running (looked for agent, system-probe and "
                f"security-agent in {proc_root})",
                fix=f"{_RESTART}, then `systemctl status datadog-agent-sysprobe "
                "datadog-agent-security`"
                if st.host_present
                else None,
                data=data,
            )
        ]
    return [Check("host.components", "ok", "running: " + ", ".join(parts), data=data)]


def _environ(proc_root: str | Path, pid: int) -> dict[str, str] | None:
    """A process's ``DD_*`` environment variables (root only), or None when unreadable."""
    try:
        raw = (Path(proc_root) / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    # Only the agent's own variables: nothing else from the process is needed or shown.
    return {
        k.decode(errors="replace"): v.decode(errors="replace")
        for k, v in pairs
        if k.startswith(b"DD_")
    }


def _agent_env(procs: list[RunningComponent], proc_root: str | Path) -> dict[str, str] | None:
    """The environment of the host's system-probe: env vars are settings too."""
    for p in procs:
        if p.component == "system-probe" and p.container is None:
            return _environ(proc_root, p.pid)
    return None


_TRUE = {"1", "t", "true", "yes", "on"}
_FALSE = {"0", "f", "false", "no", "off"}


def _norm(text: str) -> str:
    t = text.strip().strip("'\"").lower()
    if t in _TRUE:
        return "true"
    if t in _FALSE:
        return "false"
    try:
        return str(int(t, 0))
    except ValueError:
        return t


def _shadow_value(entry: str) -> str:
    # EffectiveValue.shadowed entries read "env NAME=raw" or "<source> <key>: <value>".
    if entry.startswith("env ") and "=" in entry:
        return _norm(entry.split("=", 1)[1])
    return _norm(entry.rsplit(": ", 1)[-1])


def _fmt_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_settings(
    config_dir: Path,
    env: Mapping[str, str] | None,
    env_note: str | None,
    st: _State,
) -> list[Check]:
    effective_settings = _optional("wpprotect.config", "effective_settings")
    if effective_settings is None:
        return [
            Check(
                "config",
                "skipped",
                "the settings model (wpprotect.config) is not available in this install",
            )
        ]
    if not st.host_present:
        return [
            Check(
                "config",
                "skipped",
                f"no host config to read in {config_dir}",
            )
        ]
    unreadable = [
        str(config_dir / n)
        for n in ("system-probe.yaml", "security-agent.yaml")
        if _exists(config_dir / n) and not os.access(config_dir / n, os.R_OK)
    ]
    if unreadable:
        # The packages install them 0640 root:dd-agent (linux_ebpf.md: chmod 640, chgrp dd-agent).
        return [
            Check(
                "config",
                "skipped",
                f"cannot read {', '.join(unreadable)} as uid {os.geteuid()}: run "
                "`sudo wpprotect doctor` (or as a member of the dd-agent group)",
            )
        ]
    try:
        values: Mapping[str, Any] = effective_settings(config_dir=config_dir, env=env)
    except WPProtectError as exc:
        return [
            Check(
                "config",
                "problem",
                f"the agent's config cannot be read: {exc}",
                fix="fix the file named above (the agent itself refuses it or reads it "
                "differently); `wpprotect doctor --debug` shows the parser's message",
            )
        ]
    return _settings_checks(values, env_note, st, suffix="", config_dir=config_dir)


def _settings_checks(
    values: Mapping[str, Any],
    env_note: str | None,
    st: _State | None,
    *,
    suffix: str,
    config_dir: Path | None = None,
) -> list[Check]:
    """One check per setting: value, where it comes from, and what it silently overrides."""
    checks: list[Check] = []
    for name, ev in values.items():
        where = "the agent's default" if ev.source == "default" else f"{ev.source}"
        if ev.key and not ev.source.startswith("env "):
            where += f" ({ev.key})"
        detail = f"{_fmt_value(ev.value)}, from {where}"
        if ev.source == "default" and env_note:
            detail += f"; {env_note}"
        status: CheckStatus = "ok"
        fix = None
        losing = [s for s in ev.shadowed if _shadow_value(s) != _fmt_value(ev.value)]
        if losing:
            status = "problem"
            detail += "; ignored because it loses: " + "; ".join(losing)
            winner = ev.key or where
            fix = (
                f"set the value you want in {winner} (the agent reads it first) and remove "
                f"the ignored setting(s), then {_RESTART}"
            )
            if name == "classifier_priority" and config_dir is not None:
                # plan_classifier_priority writes the deprecated key and updates the new one:
                # both files' keys then agree, whichever the agent reads.
                fix = (
                    "write the priority you want (N) everywhere the agent reads it: python3 -c "
                    f'\'import wpprotect as wp; wp.plan_classifier_priority("{config_dir}", N)'
                    f".apply()', then {_RESTART}"
                    + (
                        "; and unset the env var"
                        if any(x.startswith("env ") for x in losing)
                        else ""
                    )
                )
        for note in ev.notes:
            detail += f"; {note}"
            if "security-agent.yaml gives" in note:
                if st is not None and st.host_version and st.host_version[:2] >= _CORE_FLARE:
                    # From 7.77 the security-agent runtime is not used any more (deployments.md
                    # §5, advanced_configuration.md): only system-probe's value matters.
                    detail += " (from 7.77 only system-probe's value matters)"
                    continue
                status = "problem"
                fix = (
                    "give runtime_security_config.enabled the same value in system-probe.yaml "
                    "and security-agent.yaml (to turn it off: `wpprotect disable --platform host "
                    f"--scope workload-protection --dry-run`), then {_RESTART}"
                )
        if st is not None and name == "cws_enabled":
            st.cws_enabled = bool(ev.value)
        if st is not None and name == "classifier_priority":
            st.classifier_priority = int(ev.value)
            st.classifier_priority_source = f"{ev.source} {ev.key or ''}".strip()
        checks.append(
            Check(
                f"config.{name}{suffix}", status, detail, fix=fix, data={"effective": ev.to_dict()}
            )
        )
    return checks


_MAX_CONFIG_BYTES = 8 * 1024 * 1024  # as the config loader: agent files are a few kB


def _read_in_root(root: Path, path: str) -> bytes | None:
    """The file at ``path`` inside a process's root (``/proc/<pid>/root``), or None if absent.

    Every component is checked with ``lstat`` and the file opened with ``O_NOFOLLOW``: a symlink
    inside a container would otherwise be resolved against the *host's* root when read from
    outside it, and could point doctor at any host file.
    """
    import stat

    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    current = root
    for part in parts:
        current = current / part
        try:
            st_ = os.lstat(current)
        except OSError:
            return None
        if stat.S_ISLNK(st_.st_mode):
            raise PermissionError(f"{path} is a symlink inside the container: not followed")
    if not stat.S_ISREG(st_.st_mode) or st_.st_size > _MAX_CONFIG_BYTES:
        return None
    fd = os.open(current, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        return fh.read(_MAX_CONFIG_BYTES + 1)[:_MAX_CONFIG_BYTES]


def _config_arg(argv: Sequence[str]) -> str:
    """system-probe's config file from its command line (``--config=...``; s6 and systemd both
    pass it), else the packages' default."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
        if arg in ("--config", "-c") and i + 1 < len(argv):
            return argv[i + 1]
    return "/etc/datadog-agent/system-probe.yaml"


def _check_container_processes(
    procs: list[RunningComponent], proc_root: str | Path, st: _State
) -> list[Check]:
    """Settings of system-probe processes that run in containers (a Kubernetes node seen from
    the host, containers the Docker API did not list): their env and config files, read
    through ``/proc/<pid>``. Needs root."""
    import tempfile

    effective_settings = _optional("wpprotect.config", "effective_settings")
    if effective_settings is None:
        return []
    checks: list[Check] = []
    done: set[str] = set()
    for p in procs:
        if p.component != "system-probe" or p.container is None:
            continue
        if p.container in done or p.container in st.seen_containers:
            continue
        done.add(p.container)
        label = f"container {p.container}"
        env = _environ(proc_root, p.pid)
        if env is None:
            checks.append(
                Check(
                    f"config:{label}",
                    "skipped",
                    f"system-probe (pid {p.pid}) runs in {label}; reading its settings needs "
                    "root: run `sudo wpprotect doctor`",
                )
            )
            continue
        sp_path = _config_arg(p.argv)
        conf_dir = sp_path.rsplit("/", 1)[0] if sp_path.endswith(".yaml") else sp_path
        if not sp_path.endswith(".yaml"):
            sp_path = f"{conf_dir}/system-probe.yaml"
        root = Path(proc_root) / str(p.pid) / "root"
        try:
            with tempfile.TemporaryDirectory(prefix="wpprotect-doctor-") as tmp:
                files: dict[str, Any] = {}
                for name, inner in (
                    ("system-probe.yaml", sp_path),
                    ("security-agent.yaml", f"{conf_dir}/security-agent.yaml"),
                ):
                    data = _read_in_root(root, inner)
                    if data is None:
                        files[name] = None
                        continue
                    local = Path(tmp) / name
                    local.write_bytes(data)
                    files[name] = local
                values: Mapping[str, Any] = effective_settings(files=files, env=env)
        except (OSError, WPProtectError) as exc:
            checks.append(
                Check(f"config:{label}", "error", f"cannot read the settings in {label}: {exc}")
            )
            continue
        prio = values.get("classifier_priority")
        if prio is not None:
            st.container_priorities[label] = int(prio.value)
        checks += _settings_checks(values, None, None, suffix=f":{label}")
    return checks


def _check_cws_running(procs: list[RunningComponent], st: _State) -> list[Check]:
    """CWS on in the config but its process is not running on the host."""
    if not st.host_present or not st.cws_enabled:
        return []
    host = {p.component for p in procs if p.container is None}
    if "system-probe" in host:
        return []
    return [
        Check(
            "host.cws-running",
            "problem",
            "runtime_security_config.enabled is true but system-probe is not running, so "
            "Workload Protection is off on this host",
            fix=f"{_RESTART}; if system-probe still does not start, read "
            "`journalctl -u datadog-agent-sysprobe` and /var/log/datadog/system-probe.log",
        )
    ]


def _check_docker(
    enabled: bool, timeout: float, st: _State, containers: Sequence[str] = ()
) -> list[Check]:
    if not enabled:
        return [Check("docker", "skipped", "not checked (--no-docker)")]
    docker_host = os.environ.get("DOCKER_HOST", "")
    sock = Path("/var/run/docker.sock")
    if not docker_host and not _exists(sock):
        return [Check("docker", "skipped", f"no Docker daemon here: {sock} does not exist")]
    if not docker_host and not os.access(sock, os.R_OK | os.W_OK):
        return [
            Check(
                "docker",
                "skipped",
                f"no permission on {sock} (run as root or as a member of the docker group)",
            )
        ]
    if importlib.util.find_spec("docker") is None:
        return [
            Check(
                "docker",
                "skipped",
                "the Docker SDK is not installed: pip install 'wpprotect[docker]'",
            )
        ]
    cls = _optional("wpprotect.platforms.docker", "DockerPlatform")
    if cls is None:
        return [Check("docker", "skipped", "the Docker adapter is not available in this install")]

    def discover() -> list[Any]:
        if containers:
            return [cls(container=name) for name in containers]
        return list(_construct(cls, timeout=timeout).agents())

    def settings(agent: Any, seconds: float) -> list[Check]:
        return _container_settings(agent, seconds, st.seen_containers)

    return _found_agents("docker", discover, timeout, st, "agent containers", settings=settings)


# Where the agent image reads its config (s6 `run` scripts: --config=/etc/datadog-agent/...).
_CONTAINER_FILES = ("system-probe.yaml", "security-agent.yaml")


def _container_settings(agent: Any, timeout: float, seen: set[str]) -> list[Check]:
    """The effective settings inside one agent container: its env, and its config files if any.

    :param seen: receives the container's short id (so /proc is not read for it again).
    """
    import tempfile

    effective_settings = _optional("wpprotect.config", "effective_settings")
    inspect_fn = getattr(agent, "inspect", None)  # Docker: one container runs every component
    env_fn = getattr(agent, "container_env", None)  # Kubernetes: system-probe's own container
    target = str(getattr(agent, "target", agent))
    if effective_settings is None or (inspect_fn is None and env_fn is None):
        return []

    def read_env() -> dict[str, str]:
        env: dict[str, str] = {}
        if inspect_fn is not None:
            doc = inspect_fn()
            seen.add(str(doc.get("Id") or "")[:12])
            for item in (doc.get("Config") or {}).get("Env") or []:
                key, _, value = str(item).partition("=")
                if key.startswith("DD_"):  # only the agent's settings; never logged
                    env[key] = value
        elif env_fn is not None:
            # valueFrom entries (Secrets, ConfigMaps) are not resolved: left out, as unset.
            for key, value in env_fn("system-probe").items():
                if key.startswith("DD_") and value is not None:
                    env[key] = value
        return env

    def read() -> Mapping[str, Any]:
        env = read_env()
        with tempfile.TemporaryDirectory(prefix="wpprotect-doctor-") as tmp:
            files: dict[str, Any] = {}
            for name in _CONTAINER_FILES:
                try:
                    files[name] = agent.copy_out(
                        f"/etc/datadog-agent/{name}", Path(tmp) / name, component="system-probe"
                    )
                except WPProtectError:
                    files[name] = None  # not in the image: env vars and defaults decide
            values: Mapping[str, Any] = effective_settings(files=files, env=env)
            return values

    try:
        values = _with_deadline(read, timeout, f"settings on {target}")
    except _Timeout as exc:
        return [Check(f"config:{target}", "error", str(exc))]
    except Exception as exc:  # reported; the other agents are still checked
        return [Check(f"config:{target}", "error", f"could not read the settings: {exc}")]
    return _settings_checks(values, None, None, suffix=f":{target}")


def _kubeconfig(path: str | Path | None) -> Path | None:
    if path is not None:
        return Path(path)
    env = os.environ.get("KUBECONFIG", "")
    for part in env.split(os.pathsep):
        if part and _exists(Path(part)):
            return Path(part)
    default = Path.home() / ".kube" / "config"
    return default if _exists(default) else None


def _check_kubernetes(
    enabled: bool,
    timeout: float,
    kubeconfig: str | Path | None,
    namespace: str | None,
    st: _State,
) -> list[Check]:
    if not enabled:
        return [Check("kubernetes", "skipped", "not checked (--no-kubernetes)")]
    config = _kubeconfig(kubeconfig)
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    if config is None and not in_cluster:
        return [
            Check(
                "kubernetes",
                "skipped",
                "no cluster configured: no kubeconfig ($KUBECONFIG, ~/.kube/config) and not "
                "running in a pod",
            )
        ]
    if config is not None and not _exists(config):
        return [Check("kubernetes", "error", f"kubeconfig {config} does not exist")]
    if importlib.util.find_spec("kubernetes") is None:
        return [
            Check(
                "kubernetes",
                "skipped",
                "the Kubernetes client is not installed: pip install 'wpprotect[kubernetes]'",
            )
        ]
    cls = _optional("wpprotect.platforms.kubernetes", "KubernetesPlatform")
    if cls is None:
        return [
            Check(
                "kubernetes", "skipped", "the Kubernetes adapter is not available in this install"
            )
        ]

    def discover() -> list[Any]:
        platform = _construct(
            cls,
            namespace=namespace,
            kubeconfig=str(config) if config else None,
            timeout=timeout,
        )
        return list(platform.agents())

    def settings(agent: Any, seconds: float) -> list[Check]:
        return _container_settings(agent, seconds, st.seen_containers)

    return _found_agents("kubernetes", discover, timeout, st, "agent pods", settings=settings)


def _found_agents(
    name: str,
    discover: Callable[[], list[Any]],
    timeout: float,
    st: _State,
    what: str,
    *,
    settings: Callable[[Any, float], list[Check]] | None = None,
) -> list[Check]:
    try:
        agents = _with_deadline(discover, timeout, name)
    except _Timeout as exc:
        return [Check(name, "error", str(exc))]
    except WPProtectError as exc:
        if type(exc).__name__ == "AgentNotFoundError":
            return [Check(name, "ok", f"reachable; no {what} found ({exc})")]
        status: CheckStatus = (
            "skipped" if type(exc).__name__ == "BackendUnavailableError" else "error"
        )
        return [Check(name, status, str(exc))]
    except Exception as exc:  # an adapter bug must not stop the other checks
        log.debug("%s discovery failed", name, exc_info=True)
        return [Check(name, "error", f"{type(exc).__name__}: {exc}")]
    if not agents:
        return [Check(name, "ok", f"reachable; no {what} found")]
    st.platforms.extend(agents)
    targets = [str(getattr(a, "target", a)) for a in agents]
    checks = [
        Check(
            name,
            "ok",
            f"{len(agents)} {what}: {', '.join(targets)}",
            data={"targets": targets},
        )
    ]
    for agent in agents:
        checks.append(_agent_version_check(agent, timeout))
        if settings is not None:
            checks += settings(agent, timeout)
    return checks


def _agent_version_check(agent: Any, timeout: float) -> Check:
    target = str(getattr(agent, "target", agent))
    try:
        version = _with_deadline(agent.version, timeout, f"version on {target}")
    except _Timeout as exc:
        return Check(f"version:{target}", "error", str(exc))
    except Exception as exc:  # reported, other agents still checked
        return Check(f"version:{target}", "error", f"could not read the agent version: {exc}")
    return Check(
        f"version:{target}",
        "ok",
        f"Datadog Agent {version}",
        data={"version": jsonable(version)},
    )


def _check_tc(enabled: bool, st: _State, agent_version: str | None) -> list[Check]:
    if not enabled:
        return [Check("tc", "skipped", "not checked (--no-tc)")]
    if os.geteuid() != 0:
        return [
            Check(
                "tc",
                "skipped",
                "reading traffic-control filters and BPF program info needs root "
                "(CAP_NET_ADMIN, CAP_BPF): run `sudo wpprotect doctor`",
            )
        ]
    inspector_cls = _optional("wpprotect.tc", "TCInspector")
    if inspector_cls is None:
        return [Check("tc", "skipped", "the TC inspector is not available in this install")]
    try:
        report = inspector_cls(netns="all").scan()
        assessment = report.assess(
            classifier_priority=st.classifier_priority, agent_version=agent_version
        )
    except WPProtectError as exc:
        return [Check("tc", "error", f"the TC scan failed: {exc}")]
    findings = [f for f in assessment.findings if f.needs_action]
    data = {
        "programs": len(report.programs),
        "namespaces": len(report.namespaces),
        "assessment": assessment.to_dict(),
    }
    prio = f"classifier priority {assessment.classifier_priority}"
    if st.classifier_priority_source:
        prio += f" (from {st.classifier_priority_source})"
    if not findings:
        return [
            Check(
                "tc",
                "ok",
                f"{len(report.programs)} TC program(s) in {len(report.namespaces)} namespace(s); "
                f"nothing blinds network detection at {prio}",
                data=data,
            )
        ]
    codes: dict[str, int] = {}
    for f in findings:
        codes[f.code] = codes.get(f.code, 0) + 1
    detail = (
        f"{len(findings)} finding(s) at {prio}: "
        + ", ".join(f"{n} {c}" for c, n in codes.items())
        + f"; first: {findings[0].message} (all of them: `sudo wpprotect tc scan --netns all`)"
    )
    return [Check("tc", "problem", detail, fix=_tc_fix(assessment, st), data=data)]


def _tc_fix(assessment: Any, st: _State) -> str:
    rec = assessment.recommended_classifier_priority
    if rec is not None:
        target = "/etc/datadog-agent" if st.host_present else "<system-probe.yaml or values.yaml>"
        how = (
            f"set the classifier priority to {rec}: python3 -c 'import wpprotect as wp; "
            f'wp.plan_classifier_priority("{target}", {rec}).apply()\' then {_RESTART}'
        )
        if assessment.fixable_by_priority:
            return how
        return (
            how + "; the other findings need network detection off: "
            "`wpprotect disable --platform host --scope network --dry-run`"
        )
    fixes = [str(f.fix) for f in assessment.findings if f.needs_action and f.fix]
    if fixes:
        return fixes[0]
    return (
        "turn off network detection: `wpprotect disable --platform host --scope network --dry-run`"
    )


def _bind_self_test(agent: Any, timeout: float) -> Callable[[], Any]:
    def run() -> Any:
        return agent.self_test(timeout=timeout)

    return run


def _check_self_test(enabled: bool, st: _State, timeout: float) -> list[Check]:
    if not enabled:
        return [
            Check(
                "self-test",
                "skipped",
                "not run: pass --self-test (it creates temporary files and rules in the agent)",
            )
        ]
    if not st.platforms:
        return [Check("self-test", "skipped", "no running agent found to test")]
    checks = []
    for agent in st.platforms:
        target = str(getattr(agent, "target", agent))
        name = f"self-test:{target}"
        try:
            result = _with_deadline(_bind_self_test(agent, timeout), timeout + 5, name)
        except _Timeout as exc:
            checks.append(Check(name, "error", str(exc)))
            continue
        except WPProtectError as exc:
            checks.append(Check(name, "error", str(exc)))
            continue
        except Exception as exc:  # one agent's failure must not hide the others
            checks.append(Check(name, "error", f"{type(exc).__name__}: {exc}"))
            continue
        data = {"result": jsonable(result)}
        if getattr(result, "ok", False):
            checks.append(Check(name, "ok", "Runtime self test: OK", data=data))
        else:
            error = getattr(result, "error", None) or "the self-test failed"
            checks.append(
                Check(
                    name,
                    "problem",
                    f"self-test failed: {error}",
                    fix=f"check the 'Runtime Security' section of `security-agent status` on "
                    f"{target}; collect a flare for support: `wpprotect flare --platform "
                    f"{getattr(agent, 'kind', 'host')}`",
                    data=data,
                )
            )
    return checks


def _host_platform(install_dir: Path, config_dir: Path) -> Any | None:
    cls = _optional("wpprotect.platforms.host", "HostPlatform")
    if cls is None:
        return None
    try:
        return _construct(cls, install_dir=install_dir, config_dir=config_dir)
    except Exception as exc:  # the self-test check reports it
        log.debug("HostPlatform unavailable: %s", exc)
        return None


def diagnose(
    *,
    install_dir: str | os.PathLike[str] = DEFAULT_INSTALL_DIR,
    config_dir: str | os.PathLike[str] = DEFAULT_CONFIG_DIR,
    docker: bool = True,
    kubernetes: bool = True,
    tc: bool = True,
    self_test: bool = False,
    timeout: float = 5.0,
    self_test_timeout: float = 120.0,
    kubeconfig: str | Path | None = None,
    namespace: str | None = None,
    containers: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    proc: str | Path = "/proc",
) -> DoctorReport:
    """Look at everything Workload Protection depends on here and report what is wrong.

    Nothing is changed; only ``self_test=True`` makes the agent create temporary files and rules.

    :param install_dir: the agent's install directory.
    :param config_dir: the agent's config directory (``system-probe.yaml``,
        ``security-agent.yaml``).
    :param docker: look for agent containers through the Docker daemon.
    :param kubernetes: look for agent pods through the current kubeconfig.
    :param tc: scan traffic control in every network namespace (needs root).
    :param self_test: run the runtime self-test on every agent found.
    :param timeout: seconds allowed to each daemon or API probe (Docker, Kubernetes, version).
    :param self_test_timeout: seconds allowed to each self-test.
    :param kubeconfig: the kubeconfig to use instead of ``$KUBECONFIG``/``~/.kube/config``.
    :param namespace: the Kubernetes namespace of the agent pods (default: the adapter's).
    :param containers: the agent containers to look at (default: every container the Docker
        adapter recognises as an agent, by name or image).
    :param env: the agent's environment for the settings (default: read from the running
        host system-probe's ``/proc/<pid>/environ`` when readable).
    :param proc: the procfs to read processes from.
    :returns: a :class:`DoctorReport`; its :attr:`~DoctorReport.exit_status` is what the CLI
        returns.
    """
    install = Path(install_dir)
    config = Path(config_dir)
    st = _State()
    checks: list[Check] = []
    checks += _check_install(install, config, st)
    checks += _check_version(install, st, timeout)
    procs = running_components(proc)
    checks += _check_components(procs, st, proc)
    env_note = None
    agent_env = env
    if agent_env is None:
        agent_env = _agent_env(procs, proc)
        if agent_env is None and any(
            p.component == "system-probe" and p.container is None for p in procs
        ):
            env_note = (
                "system-probe's environment is not readable (needs root): DD_* env vars not "
                "considered"
            )
    checks += _check_settings(config, agent_env, env_note, st)
    checks += _check_cws_running(procs, st)
    if st.host_present and any(p.container is None for p in procs):
        host = _host_platform(install, config)
        if host is not None:
            st.platforms.append(host)
    checks += _check_docker(docker, timeout, st, tuple(containers))
    checks += _check_kubernetes(kubernetes, timeout, kubeconfig, namespace, st)
    checks += _check_container_processes(procs, proc, st)
    if not st.host_present and len(set(st.container_priorities.values())) == 1:
        # The TC scan sees this node's devices: judge them against the priority the node's
        # (containerised) system-probe really uses.
        label, value = next(iter(st.container_priorities.items()))
        st.classifier_priority = value
        st.classifier_priority_source = f"system-probe in {label}"
    checks.insert(0, _check_agents(st, procs, install, checks))
    checks += _check_tc(tc, st, st.host_version_text)
    checks += _check_self_test(self_test, st, self_test_timeout)
    return DoctorReport(checks)


def _check_agents(
    st: _State, procs: list[RunningComponent], install: Path, checks: list[Check]
) -> Check:
    """One line up front: which agents doctor found, or that it found none (and where it looked)."""
    found: list[str] = []
    if st.host_present:
        found.append(f"host install ({install})")
    boxed = sorted({p.container for p in procs if p.container is not None})
    found += [
        str(getattr(a, "target", a)) for a in st.platforms if getattr(a, "kind", "") != "host"
    ]
    if not found and boxed:
        found.append(f"agent processes in container(s) {', '.join(boxed)}")
    if found:
        return Check("agents", "ok", "found: " + ", ".join(found), data={"found": found})
    looked = [f"no install at {install}"]
    for name in ("docker", "kubernetes"):
        c = next((c for c in checks if c.name == name), None)
        if c is not None and c.status == "ok":
            looked.append(f"no agent in {name}")
        elif c is not None:
            looked.append(f"{name} skipped")
    return Check(
        "agents",
        "skipped",
        "no Datadog Agent found here (" + ", ".join(looked) + "); point doctor at one with "
        "--install-dir/--config-dir, --container or --kubeconfig",
        data={"found": []},
    )
