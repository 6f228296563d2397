"""Recreate a container with new environment variables and everything else identical.

A container's environment is fixed at creation, and the agent reads ``DD_*`` variables only at
start (docs/reference/deployments.md#deploy-docker: ``DD_RUNTIME_SECURITY_CONFIG_ENABLED=false`` is
how a hand-run
container is reconfigured). So the change creates a twin of the container from its own
``inspect`` document (config, host config, networks), swaps it in under the same name, and keeps
the original, stopped, so :meth:`RecreateWithEnv.undo` can bring exactly that container back.
"""

from __future__ import annotations

import copy
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import attrs

from wpprotect.errors import (
    AgentNotFoundError,
    PlanApplyError,
    PlanUndoError,
    PlanVerifyError,
    PlatformError,
    WPProtectError,
)
from wpprotect.platforms._docker_api import DockerConnection, docker_errors, redact, secret_key
from wpprotect.platforms._thirdparty import DockerAPI

__all__ = ["RecreateWithEnv", "create_config", "env_dict"]

log = logging.getLogger(__name__)

MASK = "********"
_START_TIMEOUT = 30.0
_DEFAULT_MODES = ("", "default", "bridge", "host", "none")


def env_dict(env: list[str] | None) -> dict[str, str]:
    """``["A=1", "B=2"]`` -> ``{"A": "1", "B": "2"}`` (the last one wins, as in Docker)."""
    out: dict[str, str] = {}
    for item in env or []:
        key, sep, value = item.partition("=")
        out[key] = value if sep else ""
    return out


def merge_env(env: list[str] | None, changes: dict[str, str]) -> list[str]:
    """Set ``changes`` in a Docker ``Env`` list: existing variables in place, new ones appended."""
    out: list[str] = []
    done: set[str] = set()
    for item in env or []:
        key = item.partition("=")[0]
        if key in changes:
            if key in done:
                continue  # a duplicate entry would override the new value
            out.append(f"{key}={changes[key]}")
            done.add(key)
        else:
            out.append(item)
    out.extend(f"{k}={changes[k]}" for k in sorted(changes) if k not in done)
    return out


def _link(link: str) -> str:
    """Inspect's ``/db:/web/alias`` back to the create API's ``db:alias``."""
    if ":" not in link:
        return link.lstrip("/")
    source, _, alias = link.partition(":")
    return f"{source.lstrip('/')}:{alias.rsplit('/', 1)[-1]}"


def create_config(
    api: DockerAPI, old: dict[str, Any], changes: dict[str, str]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The ``POST /containers/create`` body for a twin of ``old`` with ``changes`` in its env.

    :param api: the daemon, to check that the image name still points at the same image.
    :param old: the old container's inspect document.
    :param changes: environment variables to set.
    :returns: the create body, and the extra networks to connect after creation (the create
        call accepts one network on API < 1.44).
    """
    cfg: dict[str, Any] = copy.deepcopy(old.get("Config") or {})
    host: dict[str, Any] = copy.deepcopy(old.get("HostConfig") or {})
    cfg["Env"] = merge_env(cfg.get("Env"), changes)

    # Keep the very image the container runs: if its tag was moved since (a newer agent was
    # pulled), recreating from the tag would silently upgrade the agent.
    image_id = str(old.get("Image") or "")
    name = str(cfg.get("Image") or image_id)
    try:
        same = str(api.inspect_image(name).get("Id")) == image_id
    except Exception:
        same = False
    cfg["Image"] = name if same else image_id

    mode = str(host.get("NetworkMode") or "default")
    if mode.startswith("container:"):
        # The daemon refuses these with another container's network (runconfig: conflicting
        # options); inspect fills them in from that container.
        for key in ("Hostname", "Domainname", "ExposedPorts", "MacAddress"):
            cfg.pop(key, None)
    if host.get("Links"):
        host["Links"] = [_link(x) for x in host["Links"]]

    # Anonymous volumes (``-v /path`` or an image VOLUME) would be created afresh: mount the
    # old container's volumes by name instead, so the agent's state survives.
    taken = {b.split(":")[1] for b in host.get("Binds") or [] if b.count(":") >= 1}
    taken |= {str(m.get("Target")) for m in host.get("Mounts") or []}
    declared = set((cfg.get("Volumes") or {}).keys())
    for m in old.get("Mounts") or []:
        dest = str(m.get("Destination"))
        if m.get("Type") == "volume" and m.get("Name") and dest in declared and dest not in taken:
            suffix = "" if m.get("RW", True) else ":ro"
            host.setdefault("Binds", [])
            host["Binds"] = [*(host["Binds"] or []), f"{m['Name']}:{dest}{suffix}"]

    # The same for anonymous volumes given with --mount (type=volume, no source).
    names = {str(m.get("Destination")): m.get("Name") for m in old.get("Mounts") or []}
    for mount in host.get("Mounts") or []:
        if mount.get("Type") == "volume" and not mount.get("Source"):
            mount["Source"] = names.get(str(mount.get("Target"))) or None

    old_short = str(old.get("Id", ""))[:12]
    endpoints: dict[str, dict[str, Any]] = {}
    for net, found in ((old.get("NetworkSettings") or {}).get("Networks") or {}).items():
        ep = found or {}
        endpoints[net] = {
            "Aliases": [a for a in ep.get("Aliases") or [] if a != old_short] or None,
            "IPAMConfig": ep.get("IPAMConfig") or None,
            "Links": ep.get("Links") or None,
            "DriverOpts": ep.get("DriverOpts") or None,
            "NetworkID": ep.get("NetworkID"),
        }
    extra: dict[str, dict[str, Any]] = {}
    if mode in _DEFAULT_MODES or mode.startswith("container:"):
        if mode in ("", "default", "bridge"):
            extra = {n: e for n, e in endpoints.items() if n != "bridge"}
    else:
        primary = (
            mode
            if mode in endpoints
            else next(
                (n for n, e in endpoints.items() if str(e.get("NetworkID", "")).startswith(mode)),
                None,
            )
        )
        if primary is not None:
            ep = {k: v for k, v in endpoints[primary].items() if k != "NetworkID"}
            cfg["NetworkingConfig"] = {"EndpointsConfig": {primary: ep}}
        extra = {n: e for n, e in endpoints.items() if n != primary}
    cfg["HostConfig"] = host
    return cfg, extra


@attrs.define
class _Applied:
    old_id: str
    new_id: str
    kept_name: str
    was_running: bool
    restart_policy: dict[str, Any] | None


class RecreateWithEnv:
    """A :class:`~wpprotect.Change` that recreates one container with new environment variables.

    Apply: create the twin under a temporary name, stop the original, rename it
    ``<name>.wpprotect-old-<time>-<id>``, give the twin the name, start it and check it stays up.
    Any failure puts the original back (name, restart policy, running) and removes the twin.
    Undo: stop and remove the twin, bring the original back under its name and start it.

    :param connection: the Docker platform's daemon connection.
    :param name: the container's name.
    :param env: the variables to set (string values).
    :param settle: seconds the twin must stay up before it counts as started.
    """

    def __init__(
        self, connection: DockerConnection, name: str, env: dict[str, str], *, settle: float
    ) -> None:
        self._connection = connection
        self._name = name
        self._settle = settle
        self._env = dict(env)
        self._applied: _Applied | None = None
        # The environment as planned against: diff() shows it without asking the daemon again
        # (and still shows what was done after apply).
        try:
            self._before = env_dict(self._inspect().get("Config", {}).get("Env"))
        except WPProtectError:
            self._before = {}

    # -- description ------------------------------------------------------------------------------

    @property
    def target(self) -> str:
        """``docker:<container name>``."""
        return f"docker:{self._name}"

    @property
    def description(self) -> str:
        """One line: which variables are set on which container."""
        return f"recreate container {self._name} with {', '.join(sorted(self._env))} set"

    @property
    def env(self) -> dict[str, str]:
        """The variables the change sets (values may be secrets: do not print them)."""
        return dict(self._env)

    def _show(self, key: str, value: str) -> str:
        return f"{key}={MASK if secret_key(key) else redact(value)}"

    def diff(self) -> str:
        """The environment lines removed and added, secret values masked, against the container
        as it was when the change was planned."""
        current = self._before
        lines = [f"--- {self.target} (environment)\n", f"+++ {self.target} (recreated)\n"]
        changed = False
        for key in sorted(self._env):
            if current.get(key) == self._env[key]:
                continue
            changed = True
            if key in current:
                lines.append(f"-{self._show(key, current[key])}\n")
            lines.append(f"+{self._show(key, self._env[key])}\n")
        return "".join(lines) if changed else ""

    def __repr__(self) -> str:
        state = "applied" if self._applied else "planned"
        return f"<RecreateWithEnv {self.target} {state}: {', '.join(sorted(self._env))}>"

    # -- state ------------------------------------------------------------------------------------

    @property
    def _api(self) -> DockerAPI:
        return self._connection.api

    def _inspect(self, ref: str | None = None) -> dict[str, Any]:
        with docker_errors("inspect the container", target=self.target):
            data: dict[str, Any] = self._api.inspect_container(ref or self._name)
        return data

    def _missing(self, env: dict[str, str]) -> list[str]:
        return sorted(k for k, v in self._env.items() if env.get(k) != v)

    def is_satisfied(self) -> bool:
        """True when the container named already has every variable at its planned value."""
        return not self._missing(env_dict(self._inspect().get("Config", {}).get("Env")))

    def verify(self) -> None:
        """Check the container under the name has the variables (and runs, if it did).

        :raises PlanVerifyError: it does not.
        """
        info = self._inspect()
        missing = self._missing(env_dict(info.get("Config", {}).get("Env")))
        if missing:
            raise PlanVerifyError(
                f"container {self._name} lacks the planned value of {', '.join(missing)}",
                target=self.target,
            )
        applied = self._applied
        if applied is not None:
            if info.get("Id") != applied.new_id:
                raise PlanVerifyError(
                    f"container {self._name} is not the one created by the plan", target=self.target
                )
            if applied.was_running and not (info.get("State") or {}).get("Running"):
                raise PlanVerifyError(f"container {self._name} is not running", target=self.target)

    # -- apply ------------------------------------------------------------------------------------

    def apply(self) -> None:
        """Swap in a twin of the container with the new environment.

        :raises PlanApplyError: something failed; the original container is back as it was.
        """
        api = self._api
        old = self._inspect()
        old_id = str(old["Id"])
        state = old.get("State") or {}
        host = old.get("HostConfig") or {}
        if host.get("AutoRemove"):
            raise PlanApplyError(
                f"container {self._name} was started with --rm: stopping it would delete it, so "
                "it cannot be recreated safely; recreate it by hand without --rm",
                target=self.target,
            )
        if state.get("Paused") or state.get("Restarting"):
            raise PlanApplyError(
                f"container {self._name} is {state.get('Status')}; try again when it is running",
                target=self.target,
            )
        was_running = bool(state.get("Running"))
        # The time says when; the id keeps names apart when plans follow within one second.
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        temp_name = f"{self._name}.wpprotect-new-{stamp}-{secrets.token_hex(3)}"
        kept_name = f"{self._name}.wpprotect-old-{stamp}-{old_id[:12]}"
        policy = host.get("RestartPolicy") or None
        undo_steps: list[tuple[str, Callable[[], Any]]] = []
        new_id = ""
        try:
            with docker_errors("recreate the container", target=self.target):
                body, extra = create_config(api, old, self._env)
                new_id = str(api.create_container_from_config(body, name=temp_name)["Id"])
                undo_steps.append(("remove the new container", lambda: self._remove(new_id)))
                for net, ep in extra.items():
                    ipam = ep.get("IPAMConfig") or {}
                    api.connect_container_to_network(
                        new_id,
                        net,
                        aliases=ep.get("Aliases"),
                        links=ep.get("Links"),
                        ipv4_address=ipam.get("IPv4Address") or None,
                        ipv6_address=ipam.get("IPv6Address") or None,
                        driver_opt=ep.get("DriverOpts"),
                    )
                if was_running:
                    api.stop(old_id, timeout=_stop_timeout(old))
                    undo_steps.append(("start the original", lambda: self._start(old_id)))
                if policy and policy.get("Name") not in (None, "", "no"):
                    # A kept container with restart=always would come back on a daemon restart,
                    # next to its replacement.
                    api.update_container(old_id, restart_policy={"Name": "no"})
                    undo_steps.append(
                        ("restore its restart policy", lambda: self._policy(old_id, policy))
                    )
                api.rename(old_id, kept_name)
                undo_steps.append(
                    ("give the original its name back", lambda: api.rename(old_id, self._name))
                )
                api.rename(new_id, self._name)
                undo_steps.append(
                    ("move the new container aside", lambda: api.rename(new_id, temp_name))
                )
                if was_running:
                    api.start(new_id)
                    undo_steps.append(
                        ("stop the new container", lambda: api.stop(new_id, timeout=5))
                    )
                    self._wait_up(new_id)
        except BaseException as exc:
            errors = _run_undo(undo_steps)
            detail = str(exc) if isinstance(exc, WPProtectError) else redact(repr(exc))
            msg = f"could not recreate {self._name}: {detail}; the original container was restored"
            if errors:
                msg = (
                    f"could not recreate {self._name}: {detail}; restoring the original "
                    f"failed: {'; '.join(errors)}"
                )
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise PlanApplyError(msg, target=self.target) from exc
        self._applied = _Applied(
            old_id=old_id,
            new_id=new_id,
            kept_name=kept_name,
            was_running=was_running,
            restart_policy=policy,
        )
        log.info("recreated %s (kept the original as %s)", self._name, kept_name)

    def _remove(self, cid: str) -> None:
        self._api.remove_container(cid, v=False, force=True)

    def _start(self, cid: str) -> None:
        self._api.start(cid)
        self._wait_up(cid)

    def _policy(self, cid: str, policy: dict[str, Any]) -> None:
        self._api.update_container(
            cid,
            restart_policy={
                "Name": policy.get("Name"),
                "MaximumRetryCount": policy.get("MaximumRetryCount") or 0,
            },
        )

    def _wait_up(self, cid: str) -> None:
        """Wait until the container runs, then check it stays up ``settle`` seconds."""
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            state = self._inspect(cid).get("State") or {}
            if state.get("Running"):
                break
            if (
                state.get("Status") in ("exited", "dead", "restarting")
                or time.monotonic() > deadline
            ):
                raise PlatformError(_down(state), target=self.target)
            time.sleep(0.05)
        started, restarts = state.get("StartedAt"), self._inspect(cid).get("RestartCount")
        end = time.monotonic() + self._settle
        while True:
            info = self._inspect(cid)
            state = info.get("State") or {}
            health = (state.get("Health") or {}).get("Status")
            if (
                not state.get("Running")
                or state.get("StartedAt") != started
                or info.get("RestartCount") != restarts
                or health == "unhealthy"
            ):
                raise PlatformError(_down(state), target=self.target)
            if time.monotonic() >= end:
                return
            time.sleep(0.1)

    # -- undo -------------------------------------------------------------------------------------

    def undo(self) -> None:
        """Bring the original container back (same id, name and state) and remove the twin.

        :raises PlanUndoError: the change was not applied, the container was replaced since,
            or a step failed (what was done is reported).
        """
        applied = self._applied
        if applied is None:
            raise PlanUndoError(f"{self.description!r} was not applied", target=self.target)
        api = self._api
        try:
            current = self._inspect()
        except AgentNotFoundError:
            current = {}
        if current and current.get("Id") != applied.new_id:
            raise PlanUndoError(
                f"container {self._name} was replaced after the plan was applied; the original "
                f"is kept as {applied.kept_name}",
                target=self.target,
            )
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = f"{self._name}.wpprotect-undone-{stamp}-{applied.new_id[:12]}"
        done: list[tuple[str, Callable[[], Any]]] = []
        try:
            with docker_errors("restore the original container", target=self.target):
                if current:
                    api.stop(applied.new_id, timeout=_stop_timeout(current))
                    done.append(("start the new container", lambda: api.start(applied.new_id)))
                    api.rename(applied.new_id, aside)
                    done.append(
                        (
                            "give the new container its name",
                            lambda: api.rename(applied.new_id, self._name),
                        )
                    )
                api.rename(applied.old_id, self._name)
                done.append(
                    (
                        "set the original aside",
                        lambda: api.rename(applied.old_id, applied.kept_name),
                    )
                )
                if applied.restart_policy and applied.restart_policy.get("Name") not in (
                    None,
                    "",
                    "no",
                ):
                    self._policy(applied.old_id, applied.restart_policy)
                if applied.was_running:
                    api.start(applied.old_id)
                    done.append(("stop the original", lambda: api.stop(applied.old_id, timeout=5)))
                    self._wait_up(applied.old_id)
        except BaseException as exc:
            errors = _run_undo(done)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            detail = str(exc) if isinstance(exc, WPProtectError) else redact(repr(exc))
            extra = f"; putting the new one back failed: {'; '.join(errors)}" if errors else ""
            raise PlanUndoError(
                f"could not restore {self._name}: {detail}{extra}", target=self.target
            ) from exc
        if current:
            try:
                with docker_errors("remove the replacement", target=self.target):
                    self._remove(applied.new_id)
            except WPProtectError as exc:  # the original is back; the leftover is only named
                log.warning("could not remove the replacement %s: %s", aside, exc)
        self._applied = None
        log.info("restored the original %s", self._name)


def _stop_timeout(info: dict[str, Any]) -> int | None:
    value = (info.get("Config") or {}).get("StopTimeout")
    return int(value) if isinstance(value, int) else None


def _down(state: dict[str, Any]) -> str:
    words = f"the container did not stay up (status {state.get('Status')}"
    if state.get("ExitCode"):
        words += f", exit code {state.get('ExitCode')}"
    if (state.get("Health") or {}).get("Status") == "unhealthy":
        words += ", unhealthy"
    if state.get("Error"):
        words += f": {redact(str(state['Error']))}"
    return words + ")"


def _run_undo(steps: list[tuple[str, Callable[[], Any]]]) -> list[str]:
    """Run undo steps newest first; keep going past failures and report them."""
    errors: list[str] = []
    for what, step in reversed(steps):
        try:
            step()
        except Exception as exc:
            log.error("rollback: could not %s: %s", what, exc)
            errors.append(f"could not {what}")
    return errors
