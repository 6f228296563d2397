"""A simulated Datadog Agent CLI (security-agent, system-probe, agent) for wpprotect's tests.

The simulator is one POSIX ``sh`` script, :data:`SIM_SCRIPT` (``agent-sim.sh``), that acts as
``security-agent``, ``system-probe`` or ``agent`` depending on the name it runs as. It follows
the facts in ``docs/reference/agent-cli.md`` to the letter (strings, prompts, exit codes,
archive names) and runs under busybox ``sh`` (``FROM scratch`` images with
``/bin/busybox --install -s /bin``) and ``/bin/sh`` on a host. Busybox has no ``zip``, so flare
archives are built here in Python as *templates* and the script copies a template to the fresh
archive name.

Installing it
=============

**Host layout** (what :class:`wpprotect.HostPlatform` expects)::

    sim = install_host(tmp_path / "opt", version="7.59.0", selftest="ok")
    # tmp_path/opt/embedded/bin/security-agent, embedded/bin/system-probe, bin/agent/agent
    # tmp_path/opt/wpprotect-sim/{env, flare-template.zip, flare-template-local.zip, state/, tmp/}
    sim.configure(selftest="hang")       # rewrite the env file (keeps the other values)
    sim.calls()                          # ["security-agent runtime self-test", ...]

Each installed copy has the path of its env file written into it, so several installs can live
side by side (one per test) without environment variables.

**Images**: ``tests/images.py`` (``build_agent_image(version, outcome=..., sim_env={...})``)
installs the script as ``/usr/bin/security-agent``, ``/usr/bin/system-probe`` and
``/usr/bin/agent``, writes ``/etc/wpprotect-sim/env`` and takes the flare templates from
:func:`image_files`. To do it by hand instead:

**Image / directory layout** (Docker and Kubernetes tests)::

    write_image_tree(context / "rootfs", version="7.78.0", selftest="unavailable")

writes, under ``rootfs``:

- ``usr/local/bin/security-agent``, ``usr/local/bin/system-probe``, ``usr/local/bin/agent``
  (three copies of the script, mode 0755, ``#!/bin/sh``; ``/usr/local/bin`` is on Docker's
  default ``PATH``);
- ``etc/wpprotect-sim/env`` (the settings, sourced by the script; the default path the script
  reads is ``/etc/wpprotect-sim/env``, or ``$WPSIM_CONF`` when that env var is set);
- ``etc/wpprotect-sim/flare-template.zip`` and ``flare-template-local.zip``.

A matching ``Dockerfile``::

    FROM scratch
    COPY busybox /bin/busybox
    RUN ["/bin/busybox", "--install", "-s", "/bin"]
    COPY rootfs/ /
    CMD ["sleep", "infinity"]

Settings (shell variables in the env file, or environment variables of the exec'd process when
the file does not set them; the file wins because it is sourced after the environment is read):

=============================  ====================================================================
``WPSIM_VERSION``              agent version, e.g. ``7.50.3`` (default), ``7.59.0``, ``7.70.1``,
                               ``7.78.0``. Gates: ``system-probe runtime`` from 7.56;
                               ``security-agent runtime`` deprecated 7.66 (cobra's deprecation line
                               on stderr) and removed from 7.67 (cobra's unknown-command error, exit
                               255); before 7.45 system-probe starts its daemon for an unknown
                               first argument, before 7.29 for any argument (it prints a start
                               line, appends its argv to ``<state dir>/daemon-started`` and stays
                               in the foreground for ``WPSIM_DAEMON_SECONDS``, 3600).
``WPSIM_DAEMON_SECONDS``       how long a started daemon stays in the foreground (0: exit at once).
``WPSIM_DEPLOY``               ``default`` (a security-agent runs, at every version, as under
                               the Helm and Operator defaults) or ``direct-send``
                               (``directSendFromSystemProbe``: no security-agent; running it
                               answers ``not found``, exit 127).
``WPSIM_VERSION_ANSWER``       ``ok`` (default), ``unreadable`` (a ``version`` line with no number)
                               or ``hang`` (``version`` sleeps ``WPSIM_HANG_SECONDS``).
``WPSIM_SELFTEST``             ``ok`` (``Runtime self test: OK``), ``disabled``, ``busy``,
                               ``ebpfless`` (``Runtime self test: error: <msg>``, exit 0),
                               ``unavailable`` (``Error: unable to get a process self test: rpc
                               error: code = Unavailable desc = ...``, exit 255), ``noclient``
                               (``Error: unable to create a runtime security client instance:
                               ...``, exit 255), ``hang`` (sleeps ``WPSIM_HANG_SECONDS``, 3600).
``WPSIM_SELFTEST_DELAY``       seconds the self-test takes before answering (default none).
``WPSIM_SELFTEST_FAILED``      space-separated rule IDs reported under "Failed:" by
                               ``security-agent status`` (the self-test itself still prints OK,
                               as the real one does).
``WPSIM_SELFTEST_TESTS``       all rule IDs (default: the open, chmod and chown self-test rules).
``WPSIM_STATUS``               ``ok`` or ``unreachable`` (``Could not reach security agent: ...``).
``WPSIM_CWS_ENABLED``          ``true`` (default) or ``false`` (status shows ``Not enabled``).
``WPSIM_SECURITY_AGENT_RUNNING`` ``1`` (default) or ``0`` (the process is down). When 0,
                               ``security-agent flare`` prints the IPC failure and builds locally.
``WPSIM_FLARE_LOCAL``          ``ok`` (default) or ``fail``: whether that local build works.
``WPSIM_AGENT_RUNNING``        ``1``/``0`` for the core agent (``agent flare`` falls back locally).
``WPSIM_UPLOAD``               ``ok`` (prints the success line), ``forbidden`` (403),
                               ``error`` (500).
``WPSIM_NEW_CASE_ID``          case id printed when none was given (default 1234567).
``WPSIM_FLARE_NAME``           ``rfc3339`` (``datadog-agent-2025-05-29T10-32-30Z-info.zip``) or
                               ``legacy`` (``datadog-agent-2022-03-14-09-30-12.zip``); default
                               ``legacy`` before 7.45 (the real cut-over is not pinned).
``WPSIM_TMPDIR``               where archives are written (the agent's ``os.TempDir()``; ``/tmp``).
``WPSIM_STATE_DIR``            where the last self-test result is kept for ``status``.
``WPSIM_LOG``                  when set, every invocation's argv is appended there, one line each.
``WPSIM_FLARE_TEMPLATE``       template zip for flares built by a running agent.
``WPSIM_FLARE_TEMPLATE_LOCAL`` template zip for local builds (``local`` instead of the status file).
=============================  ====================================================================

Simulator assumptions the reference does not fix: the ``version`` output format (``Agent 7.50.3 -
Commit: 1a2b3c4 - Serialization version: v5.0.97 - Go version: go1.21.5``, with ``Security agent``
and ``System Probe`` for the other binaries); the layout of the status "Self Tests" block
(``Last execution: <RFC822>``, then ``Succeeded:``/``Failed:`` each followed by
``- <rule id>`` lines or ``none``); cobra's unknown-command text; the wording of the local-build
failure; the old system-probe's start line; the archive-name cut-over at 7.45 (not pinned).

The flare prompts follow the agent: EOF at the email prompt is an empty answer, EOF at the
confirmation is "no"; there is no argument-count check.
"""

from __future__ import annotations

import io
import shlex
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "DEFAULT_SELF_TESTS",
    "SIM_SCRIPT",
    "SimInstall",
    "build_flare_zip",
    "flare_zip_bytes",
    "image_files",
    "install_host",
    "render_env",
    "write_image_tree",
]

SIM_SCRIPT = Path(__file__).with_name("agent-sim.sh")

DEFAULT_SELF_TESTS = (
    "datadog_agent_cws_self_test_rule_open",
    "datadog_agent_cws_self_test_rule_chmod",
    "datadog_agent_cws_self_test_rule_chown",
)

_CONF_LINE = "WPSIM_CONF_DEFAULT=/etc/wpprotect-sim/env"


def _flare_files(*, local: bool) -> dict[str, str]:
    """The files of a security-agent flare, already scrubbed.

    What is in it: docs/reference/agent-cli.md#cli-flare-archive.
    """
    files: dict[str, str] = {}
    if local:
        files["local"] = ""
    else:
        files["security-agent-status.log"] = (
            "==============================\nSecurity Agent\n==============================\n"
            "Runtime Security\n  Connected: true\n  Events received: 42\n"
        )
    files["logs/security-agent.log"] = (
        "2025-01-01 00:00:00 UTC | SECURITY | INFO | (pkg/security/module/cws.go:120 in Start) "
        "| runtime security agent started\n"
        "2025-01-01 00:00:15 UTC | SECURITY | INFO | self test succeeded\n"
    )
    files["logs/agent.log"] = (
        "2025-01-01 00:00:00 UTC | CORE | INFO | api_key: ***************************abcde\n"
    )
    files["etc/datadog.yaml"] = (
        '## Datadog Agent configuration\napi_key: "********"\nsite: datadoghq.com\n'
        "logs_enabled: false\n"
    )
    files["etc/system-probe.yaml"] = (
        "runtime_security_config:\n  enabled: true\n  fim_enabled: true\n"
        "  socket: /opt/datadog-agent/run/runtime-security.sock\n"
    )
    files["etc/security-agent.yaml"] = (
        "runtime_security_config:\n  enabled: true\n"
        "  socket: /opt/datadog-agent/run/runtime-security.sock\n"
    )
    files["runtime-security.d/default.policy"] = (
        "version: 1.0.0\nrules:\n  - id: exec_from_tmp\n"
        '    expression: exec.file.path =~ "/tmp/*"\n'
    )
    files["expvar/runtime_security_agent"] = '{"events_received": 42}\n'
    files["expvar/trace-agent"] = "{}\n"
    files["envvars.log"] = (
        "Found the following environment variables:\n"
        "  - DD_RUNTIME_SECURITY_CONFIG_ENABLED=true\n"
        "  - DD_API_KEY=***************************abcde\n"
    )
    files["permissions.log"] = (
        "File path | mode | owner | group | ACL\n"
        "/etc/datadog-agent/datadog.yaml | -rw-r----- | dd-agent | dd-agent | \n"
    )
    files["flare_creation.log"] = "2025-01-01 00:00:00 UTC | adding security-agent files\n"
    return files


def build_flare_zip(
    path: Path,
    *,
    hostname: str = "sim-host",
    local: bool = False,
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """Write a flare archive like the agent's: every file under a root dir named ``hostname``.

    :param path: where to write the zip.
    :param hostname: the zip's root directory (the agent uses the cleaned hostname).
    :param local: a local build (``local`` instead of ``security-agent-status.log``).
    :param extra_files: more (or replaced) files, relative to the root, e.g. a log line holding a
        secret the scrubber missed, for scan tests.
    :returns: ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flare_zip_bytes(hostname=hostname, local=local, extra_files=extra_files))
    return path


def flare_zip_bytes(
    *,
    hostname: str = "sim-host",
    local: bool = False,
    extra_files: Mapping[str, str] | None = None,
) -> bytes:
    """The bytes of a flare archive (see :func:`build_flare_zip`)."""
    files = _flare_files(local=local)
    files.update(extra_files or {})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            info = zipfile.ZipInfo(f"{hostname}/{name}", date_time=(2025, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text)
    return buf.getvalue()


def image_files(
    conf_dir: Path,
    *,
    hostname: str = "sim-host",
    flare_extra_files: Mapping[str, str] | None = None,
) -> dict[str, bytes]:
    """The flare templates for an image whose env file lives in ``conf_dir`` (absolute path in
    the image, normally ``/etc/wpprotect-sim``): ``{"<conf_dir>/flare-template.zip": bytes,
    "<conf_dir>/flare-template-local.zip": bytes}``. Used by ``tests/images.py``."""
    return {
        str(conf_dir / "flare-template.zip"): flare_zip_bytes(
            hostname=hostname, extra_files=flare_extra_files
        ),
        str(conf_dir / "flare-template-local.zip"): flare_zip_bytes(
            hostname=hostname, local=True, extra_files=flare_extra_files
        ),
    }


def render_env(**settings: object) -> str:
    """The env file's text: ``render_env(version="7.59.0", selftest="ok")`` sets
    ``WPSIM_VERSION`` and ``WPSIM_SELFTEST`` (values shell-quoted; lists joined by spaces)."""
    lines = ["# wpprotect agent simulator settings (sourced by agent-sim.sh)"]
    for key, value in settings.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            text = " ".join(str(v) for v in value)
        elif isinstance(value, bool):
            text = "1" if value else "0"
        else:
            text = str(value)
        lines.append(f"WPSIM_{key.upper()}={shlex.quote(text)}")
    return "\n".join(lines) + "\n"


def _script_text(conf_path: str) -> str:
    text = SIM_SCRIPT.read_text()
    assert _CONF_LINE in text
    return text.replace(_CONF_LINE, f"WPSIM_CONF_DEFAULT={shlex.quote(conf_path)}")


def _write_exe(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


class SimInstall:
    """A simulator installed in a host-style directory (see :func:`install_host`)."""

    def __init__(self, install_dir: Path, settings: dict[str, object]) -> None:
        self.install_dir = install_dir
        self.sim_dir = install_dir / "wpprotect-sim"
        self.env_file = self.sim_dir / "env"
        self.tmp_dir = self.sim_dir / "tmp"
        self.state_dir = self.sim_dir / "state"
        self.log_file = self.sim_dir / "calls.log"
        self.settings = settings

    @property
    def security_agent(self) -> Path:
        """``<install>/embedded/bin/security-agent``."""
        return self.install_dir / "embedded" / "bin" / "security-agent"

    @property
    def system_probe(self) -> Path:
        """``<install>/embedded/bin/system-probe``."""
        return self.install_dir / "embedded" / "bin" / "system-probe"

    @property
    def agent(self) -> Path:
        """``<install>/bin/agent/agent``."""
        return self.install_dir / "bin" / "agent" / "agent"

    def configure(self, **settings: object) -> SimInstall:
        """Update some settings (others kept) and rewrite the env file."""
        self.settings.update(settings)
        base: dict[str, object] = {
            "tmpdir": self.tmp_dir,
            "state_dir": self.state_dir,
            "log": self.log_file,
        }
        base.update(self.settings)
        self.env_file.write_text(render_env(**base))
        return self

    def calls(self) -> list[str]:
        """Every invocation so far, ``"<name> <args...>"``, oldest first."""
        if not self.log_file.exists():
            return []
        return self.log_file.read_text().splitlines()

    def daemon_starts(self) -> list[str]:
        """Every time an old system-probe was made to start its daemon (its argv), oldest
        first: wpprotect must never cause one."""
        path = self.state_dir / "daemon-started"
        return path.read_text().splitlines() if path.exists() else []

    def archives(self) -> list[Path]:
        """Flare archives the simulated agent wrote into its temp dir."""
        return sorted(self.tmp_dir.glob("datadog-agent-*.zip"))


def install_host(
    install_dir: Path,
    *,
    hostname: str = "sim-host",
    flare_extra_files: Mapping[str, str] | None = None,
    **settings: object,
) -> SimInstall:
    """Install the simulator in a host layout under ``install_dir`` (see the module docstring).

    :param settings: ``WPSIM_*`` settings without the prefix, lower case (``version="7.59.0"``).
    """
    sim = SimInstall(install_dir, dict(settings))
    sim.sim_dir.mkdir(parents=True, exist_ok=True)
    sim.tmp_dir.mkdir(exist_ok=True)
    text = _script_text(str(sim.env_file))
    for exe in (sim.security_agent, sim.system_probe, sim.agent):
        _write_exe(exe, text)
    build_flare_zip(
        sim.sim_dir / "flare-template.zip", hostname=hostname, extra_files=flare_extra_files
    )
    build_flare_zip(
        sim.sim_dir / "flare-template-local.zip",
        hostname=hostname,
        local=True,
        extra_files=flare_extra_files,
    )
    sim.configure()
    return sim


def write_image_tree(
    rootfs: Path,
    *,
    hostname: str = "sim-host",
    flare_extra_files: Mapping[str, str] | None = None,
    bin_dir: str = "usr/local/bin",
    **settings: object,
) -> Path:
    """Write the simulator's files for a ``FROM scratch`` busybox image under ``rootfs``.

    :param bin_dir: where the three commands go, relative to ``rootfs``.
    :param settings: ``WPSIM_*`` settings written to ``etc/wpprotect-sim/env``.
    :returns: ``rootfs``.
    """
    conf_dir = rootfs / "etc" / "wpprotect-sim"
    conf_dir.mkdir(parents=True, exist_ok=True)
    text = SIM_SCRIPT.read_text()
    for name in ("security-agent", "system-probe", "agent"):
        _write_exe(rootfs / bin_dir / name, text)
    build_flare_zip(
        conf_dir / "flare-template.zip", hostname=hostname, extra_files=flare_extra_files
    )
    build_flare_zip(
        conf_dir / "flare-template-local.zip",
        hostname=hostname,
        local=True,
        extra_files=flare_extra_files,
    )
    (conf_dir / "env").write_text(render_env(**settings))
    (conf_dir / "state").mkdir(exist_ok=True)
    return rootfs


def copy_script(dest: Path) -> Path:
    """Copy the bare script (for callers that install it their own way)."""
    shutil.copy2(SIM_SCRIPT, dest)
    dest.chmod(0o755)
    return dest
