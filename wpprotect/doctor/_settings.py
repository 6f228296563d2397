"""Checks of the effective Workload Protection settings: on the host, in agent containers and
pods (through their API), and in containerised system-probes seen in ``/proc`` (as root).

Everything comes from the settings model as data (:class:`~wpprotect.config.EffectiveValue`:
``ignored``, ``conflicts``); nothing here reads the wording of its notes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from wpprotect._agentversions import lookup
from wpprotect.agent._layout import DEFAULT_CONFIG_DIR
from wpprotect.config import (
    CLASSIFIER_PRIORITY,
    CWS_ENABLED,
    HOST_FILES,
    NETWORK_ENABLED,
    REENABLING_SETTINGS,
    SECURITY_AGENT_YAML,
    SYSTEM_PROBE_YAML,
    EffectiveValue,
    FileSource,
    effective_settings,
)
from wpprotect.doctor._context import Context, restart_hint
from wpprotect.doctor._host import exists
from wpprotect.doctor._procs import agent_environ, config_arg, read_in_root
from wpprotect.doctor._report import Check, CheckStatus
from wpprotect.errors import ExecTimeoutError, WPProtectError
from wpprotect.platforms import BasePlatform
from wpprotect.platforms.docker import DockerPlatform
from wpprotect.platforms.kubernetes import KubernetesPlatform

__all__ = ["agent_settings", "check_container_processes", "check_settings"]


def _settings_checks(
    values: Mapping[str, EffectiveValue],
    *,
    suffix: str = "",
    ctx: Context | None = None,
) -> list[Check]:
    """One check per setting: its value, where it comes from, and what it silently overrides.

    :param ctx: for the host's own settings: the context they are recorded in (and whose
        agent version decides whether the two files may disagree); ``None`` for a container's.
    """
    checks: list[Check] = []
    for name, ev in values.items():
        where = "the agent's default" if ev.is_default else ev.source
        if ev.key and not ev.from_env:
            where += f" ({ev.key})"
        detail = f"{ev.setting.env_value(ev.value)}, from {where}"
        if ev.is_default and ctx is not None and ctx.env_note:
            detail += f"; {ctx.env_note}"
        status: CheckStatus = "ok"
        fix = None
        ignored = ev.ignored
        if ignored:
            status = "problem"
            detail += "; ignored because it loses: " + "; ".join(str(s) for s in ignored)
            fix = (
                f"set the value you want in {ev.key or where} (the agent reads it first) and "
                f"remove the ignored setting(s), then {restart_hint}"
            )
            if ev.setting is CLASSIFIER_PRIORITY and ctx is not None:
                # plan_classifier_priority writes the deprecated key and updates the new one:
                # both files' keys then agree, whichever the agent reads.
                fix = (
                    "write the priority you want (N) everywhere the agent reads it: python3 -c "
                    f"'import wpprotect as wp; wp.plan_classifier_priority("
                    f'"{ctx.options.config_dir}", N).apply()\', then {restart_hint}'
                    + ("; and unset the env var" if any(s.from_env for s in ignored) else "")
                )
        cws = values.get(CWS_ENABLED.name)
        if ev.setting in REENABLING_SETTINGS and ev.value is True and cws and cws.value is False:
            # fim_enabled / host_dump.enabled keep CWS running: "off" is not off
            # (docs/reference/agent-cli.md#cli-reenable)
            status = "problem"
            detail += (
                "; it keeps Workload Protection running although runtime_security_config.enabled "
                "is false"
            )
            fix = (
                f"turn {ev.setting.write_key} off too (`wpprotect disable --platform host --scope "
                f"workload-protection --dry-run` shows the change), then {restart_hint}"
            )
        for note in ev.notes:
            detail += f"; {note}"
        for conflict in ev.conflicts:
            detail += f"; {conflict}"
            version = None if ctx is None else ctx.host_version
            # From 7.77 the security-agent runtime is not used any more: only system-probe's
            # value matters (the version table's ``security-agent-cws-setting``,
            # docs/reference/deployments.md#deploy-host).
            if lookup("security-agent-cws-setting", version) is False:
                detail += " (from 7.77 only system-probe's value matters)"
                continue
            status = "problem"
            fix = (
                "give runtime_security_config.enabled the same value in system-probe.yaml "
                "and security-agent.yaml (to turn it off: `wpprotect disable --platform host "
                f"--scope workload-protection --dry-run`), then {restart_hint}"
            )
        if ctx is not None and ev.setting is CWS_ENABLED:
            ctx.cws_enabled = bool(ev.value)
            ctx.cws_enabled_source = f"{ev.source} {ev.key or ''}".strip()
        if ctx is not None and ev.setting is NETWORK_ENABLED:
            ctx.network_enabled = bool(ev.value)
            ctx.network_enabled_source = f"{ev.source} {ev.key or ''}".strip()
        if ctx is not None and ev.setting is CLASSIFIER_PRIORITY:
            ctx.classifier_priority = int(ev.value)
            ctx.classifier_priority_source = f"{ev.source} {ev.key or ''}".strip()
        checks.append(
            Check(
                f"config.{name}{suffix}", status, detail, fix=fix, data={"effective": ev.to_dict()}
            )
        )
    return checks


def check_settings(ctx: Context) -> list[Check]:
    """``config.<setting>``: the host's effective settings, from its files and environment."""
    config_dir = ctx.options.config_dir
    if not ctx.host_present:
        return [Check("config", "skipped", f"no host config to read in {config_dir}")]
    unreadable = [
        str(config_dir / n)
        for n in HOST_FILES
        if exists(config_dir / n) and not os.access(config_dir / n, os.R_OK)
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
        values = effective_settings(
            config_dir=config_dir, env=ctx.agent_env, version=ctx.host_version
        )
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
    return _settings_checks(values, ctx=ctx)


def _container_env(agent: BasePlatform, seen: set[str]) -> dict[str, str]:
    """The ``DD_*`` env an agent container or pod gives system-probe (never logged)."""
    env: dict[str, str] = {}
    if isinstance(agent, DockerPlatform):  # one container runs every component
        doc = agent.inspect()
        seen.add(str(doc.get("Id") or "")[:12])
        for item in (doc.get("Config") or {}).get("Env") or []:
            key, _, value = str(item).partition("=")
            if key.startswith("DD_"):
                env[key] = value
    elif isinstance(agent, KubernetesPlatform):  # system-probe's own container
        # valueFrom entries (Secrets, ConfigMaps) are not resolved: left out, as unset.
        for key, found in agent.container_env("system-probe").items():
            if key.startswith("DD_") and found is not None:
                env[key] = found
    return env


def agent_settings(ctx: Context, agent: BasePlatform) -> list[Check]:
    """``config.<setting>:<target>``: the effective settings inside one agent container or pod:
    its env, and its config files if any (records the container in ``ctx.seen_containers``)."""
    if not isinstance(agent, DockerPlatform | KubernetesPlatform):
        return []

    def read() -> Mapping[str, EffectiveValue]:
        env = _container_env(agent, ctx.seen_containers)
        with tempfile.TemporaryDirectory(prefix="wpprotect-doctor-") as tmp:
            files: dict[str, FileSource] = {}
            for name in HOST_FILES:
                try:
                    files[name] = agent.copy_out(
                        str(DEFAULT_CONFIG_DIR / name), Path(tmp) / name, component="system-probe"
                    )
                except WPProtectError:
                    files[name] = None  # not in the image: env vars and defaults decide
            return effective_settings(files=files, env=env)

    target = agent.target
    try:
        values = ctx.within(read, f"settings on {target}")
    except ExecTimeoutError as exc:
        return [Check(f"config:{target}", "error", str(exc))]
    except Exception as exc:  # reported; the other agents are still checked
        return [Check(f"config:{target}", "error", f"could not read the settings: {exc}")]
    return _settings_checks(values, suffix=f":{target}")


def check_container_processes(ctx: Context) -> list[Check]:
    """``config.<setting>:container <id>``: settings of system-probes that run in containers
    the APIs did not list (a Kubernetes node seen from the host): their env and config files,
    read through ``/proc/<pid>``. Needs root."""
    checks: list[Check] = []
    done: set[str] = set()
    proc_root = ctx.options.proc
    for p in ctx.processes:
        if p.component != "system-probe" or p.container is None:
            continue
        if p.container in done or p.container in ctx.seen_containers:
            continue
        done.add(p.container)
        label = f"container {p.container}"
        env = agent_environ(proc_root, p.pid)
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
        sp_path = config_arg(p.argv, str(DEFAULT_CONFIG_DIR / SYSTEM_PROBE_YAML))
        conf_dir = sp_path.rsplit("/", 1)[0] if sp_path.endswith(".yaml") else sp_path
        if not sp_path.endswith(".yaml"):
            sp_path = f"{conf_dir}/{SYSTEM_PROBE_YAML}"
        root = proc_root / str(p.pid) / "root"
        inner = {
            SYSTEM_PROBE_YAML: sp_path,
            SECURITY_AGENT_YAML: f"{conf_dir}/{SECURITY_AGENT_YAML}",
        }
        try:
            files: dict[str, FileSource] = {}
            with tempfile.TemporaryDirectory(prefix="wpprotect-doctor-") as tmp:
                for name, path in inner.items():
                    data = read_in_root(root, path)
                    if data is None:
                        files[name] = None
                        continue
                    local = Path(tmp) / name
                    local.write_bytes(data)
                    files[name] = local
                values = effective_settings(files=files, env=env)
        except (OSError, WPProtectError) as exc:
            checks.append(
                Check(f"config:{label}", "error", f"cannot read the settings in {label}: {exc}")
            )
            continue
        ctx.container_priorities[label] = int(values[CLASSIFIER_PRIORITY.name].value)
        checks += _settings_checks(values, suffix=f":{label}")
    return checks
