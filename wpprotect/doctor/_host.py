"""Checks of the host install: binaries and config files, version, running processes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from wpprotect.agent import (
    AgentVersion,
    agent_version,
    flare_binaries,
    self_test_binaries,
)
from wpprotect.agent._layout import BINARIES, CONFIG_FILES
from wpprotect.doctor._context import Context, restart_hint
from wpprotect.doctor._procs import agent_environ
from wpprotect.doctor._report import Check, CheckStatus
from wpprotect.errors import ExecTimeoutError, InvalidArgumentError, WPProtectError
from wpprotect.platforms.host import HostPlatform

__all__ = [
    "add_host_agent",
    "check_agents",
    "check_components",
    "check_cws_running",
    "check_install",
    "check_version",
    "exists",
    "read_agent_env",
]


def exists(path: Path) -> bool:
    """Whether ``path`` exists: False (not an exception) when a parent is not searchable."""
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


def check_install(ctx: Context) -> list[Check]:
    """``host.install``: the agent's binaries and config files on this host."""
    install_dir, config_dir = ctx.options.install_dir, ctx.options.config_dir
    found = {c: install_dir / rel for c, rel in BINARIES.items() if exists(install_dir / rel)}
    configs = [n for n in CONFIG_FILES if exists(config_dir / n)]
    unreadable = [str(d) for d in (install_dir, config_dir) if not _searchable(d)]
    if unreadable and not found and not configs:
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
    ctx.host_present = True
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
    missing = [c for c in BINARIES if c not in found]
    detail = f"{', '.join(found)} under {install_dir}; config files: " + (
        ", ".join(configs) or f"none in {config_dir}"
    )
    if missing:
        detail += f"; not installed: {', '.join(missing)}"
    return [Check("host.install", "ok", detail, data=data)]


def _parse_version(text: str) -> AgentVersion | None:
    try:
        return AgentVersion.parse(text)
    except InvalidArgumentError:
        return None


def _manifest_version(install_dir: Path) -> str | None:
    # Omnibus writes version-manifest.json ({"build_version": "7.x.y", ...}) and a text twin
    # whose first line is "agent 7.x.y" at the install root.
    try:
        doc = json.loads((install_dir / "version-manifest.json").read_text())
        version = doc.get("build_version") if isinstance(doc, dict) else None
        if isinstance(version, str) and _parse_version(version):
            return version
    except (OSError, ValueError):
        pass
    try:
        first = (install_dir / "version-manifest.txt").read_text().splitlines()[0]
        if _parse_version(first):
            return first.split()[-1]
    except (OSError, IndexError):
        pass
    return None


def check_version(ctx: Context) -> list[Check]:
    """``host.version``: from the install's version manifest, else ``agent version``."""
    if not ctx.host_present:
        return []
    install_dir = ctx.options.install_dir
    text = _manifest_version(install_dir)
    source = "version-manifest"
    agent = install_dir / BINARIES["agent"]
    if text is None and exists(agent) and os.access(agent, os.X_OK):
        source = f"{agent} version"
        host = HostPlatform(install_dir, ctx.options.config_dir, sudo=False)  # never asks sudo
        try:
            found = agent_version(host, timeout=ctx.options.timeout)
        except ExecTimeoutError:
            return [
                Check(
                    "host.version",
                    "error",
                    f"`{agent} version` did not answer within {ctx.options.timeout:g} s",
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
    ctx.host_version_text = text
    ctx.host_version = _parse_version(text)
    notes = []
    if ctx.host_version is not None:
        v = ctx.host_version
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


def check_components(ctx: Context) -> list[Check]:
    """``host.components``: the agent processes running here (host and containers)."""
    procs = ctx.processes
    if not ctx.host_present and not procs:
        return []
    host = [p for p in procs if p.container is None]
    boxed = [p for p in procs if p.container is not None]
    parts = [f"{p.component} (pid {p.pid})" for p in host]
    parts += [f"{p.component} (pid {p.pid}, container {p.container})" for p in boxed]
    data = {"processes": [p.to_dict() for p in procs]}
    if not procs:
        status: CheckStatus = "problem" if ctx.host_present else "skipped"
        return [
            Check(
                "host.components",
                status,
                f"no agent process is running (looked for agent, system-probe and "
                f"security-agent in {ctx.options.proc})",
                fix=f"{restart_hint}, then `systemctl status datadog-agent-sysprobe "
                "datadog-agent-security`"
                if ctx.host_present
                else None,
                data=data,
            )
        ]
    return [Check("host.components", "ok", "running: " + ", ".join(parts), data=data)]


def read_agent_env(ctx: Context) -> list[Check]:
    """Not a check: the host system-probe's environment, since env vars are settings too."""
    ctx.agent_env = ctx.options.env
    if ctx.agent_env is not None:
        return []
    host_probe = next(
        (p for p in ctx.processes if p.component == "system-probe" and p.container is None), None
    )
    if host_probe is None:
        return []
    ctx.agent_env = agent_environ(ctx.options.proc, host_probe.pid)
    if ctx.agent_env is None:
        ctx.env_note = (
            "system-probe's environment is not readable (needs root): DD_* env vars not considered"
        )
    return []


def check_cws_running(ctx: Context) -> list[Check]:
    """``host.cws-running``: CWS on in the config but system-probe not running on the host."""
    if not ctx.host_present or not ctx.cws_enabled:
        return []
    if any(p.component == "system-probe" and p.container is None for p in ctx.processes):
        return []
    return [
        Check(
            "host.cws-running",
            "problem",
            "runtime_security_config.enabled is true but system-probe is not running, so "
            "Workload Protection is off on this host",
            fix=f"{restart_hint}; if system-probe still does not start, read "
            "`journalctl -u datadog-agent-sysprobe` and /var/log/datadog/system-probe.log",
        )
    ]


def add_host_agent(ctx: Context) -> list[Check]:
    """Not a check: the host agent joins the agents to self-test when one of its processes
    runs."""
    if ctx.host_present and any(p.container is None for p in ctx.processes):
        ctx.agents.append(HostPlatform(ctx.options.install_dir, ctx.options.config_dir))
    return []


def check_agents(ctx: Context, checks: list[Check]) -> Check:
    """``agents``, shown first: which agents doctor found, or that it found none (and where it
    looked)."""
    install = ctx.options.install_dir
    found: list[str] = []
    if ctx.host_present:
        found.append(f"host install ({install})")
    boxed = sorted({p.container for p in ctx.processes if p.container is not None})
    found += [a.target for a in ctx.agents if not isinstance(a, HostPlatform)]
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
