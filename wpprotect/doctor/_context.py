"""What every check receives: the caller's options, the time budget, and what earlier checks
learned (a check is a function ``Context -> list[Check]``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import attrs

from wpprotect.agent import AgentVersion
from wpprotect.doctor._procs import RunningComponent
from wpprotect.errors import ExecTimeoutError
from wpprotect.platforms import BasePlatform

__all__ = ["Context", "Options", "restart_hint"]

T = TypeVar("T")

#: How the packages restart every component (datadog-agent-sysprobe and datadog-agent-security
#: are bound to datadog-agent's unit: docs/reference/agent-cli.md#cli-host-layout).
restart_hint = "sudo systemctl restart datadog-agent"


@attrs.frozen
class Options:
    """What :func:`~wpprotect.doctor.diagnose` was asked to look at (see its parameters)."""

    install_dir: Path
    config_dir: Path
    proc: Path
    docker: bool
    kubernetes: bool
    tc: bool
    self_test: bool
    timeout: float
    self_test_timeout: float
    kubeconfig: Path | None
    namespace: str | None
    containers: tuple[str, ...]
    env: Mapping[str, str] | None


@attrs.define
class Context:
    """The options, plus what the checks made so far learned, for the checks that follow.

    :ivar processes: the agent processes in ``/proc``.
    :ivar agent_env: the host system-probe's ``DD_*`` environment, when known.
    :ivar env_note: why that environment is not known, when it should be.
    :ivar host_present: an agent install or config was found on the host.
    :ivar host_version: the host install's version, when known.
    :ivar cws_enabled: the host's effective ``runtime_security_config.enabled``.
    :ivar cws_enabled_source: where that value came from (``default`` when no file or env sets
        it).
    :ivar network_enabled: the host's effective ``runtime_security_config.network.enabled``.
    :ivar network_enabled_source: where that value came from.
    :ivar classifier_priority: the classifier priority the TC assessment is judged against.
    :ivar classifier_priority_source: where that priority came from.
    :ivar agents: every agent found (host, containers, pods), for the self-test.
    :ivar seen_containers: short ids of containers whose settings were read through an API.
    :ivar container_priorities: the classifier priority of each containerised system-probe.
    """

    options: Options
    processes: tuple[RunningComponent, ...] = ()
    agent_env: Mapping[str, str] | None = None
    env_note: str | None = None
    host_present: bool = False
    host_version: AgentVersion | None = None
    host_version_text: str | None = None
    cws_enabled: bool | None = None
    cws_enabled_source: str | None = None
    network_enabled: bool | None = None
    network_enabled_source: str | None = None
    classifier_priority: int | None = None
    classifier_priority_source: str | None = None
    agents: list[BasePlatform] = attrs.field(factory=list)
    seen_containers: set[str] = attrs.field(factory=set)
    container_priorities: dict[str, int] = attrs.field(factory=dict)

    def within(self, fn: Callable[[], T], what: str, seconds: float | None = None) -> T:
        """``fn()``, given ``seconds`` (default: the probe timeout) to answer.

        ``fn`` runs in a daemon thread; past the deadline the thread is abandoned (a daemon
        thread never delays the interpreter's exit), so no daemon or API can hang doctor.

        :raises ExecTimeoutError: ``fn`` did not return in time.
        """
        limit = self.options.timeout if seconds is None else seconds
        box: dict[str, object] = {}

        def run() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # handed back to the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=run, name=f"wpprotect-doctor-{what}", daemon=True)
        thread.start()
        thread.join(limit)
        if thread.is_alive():
            raise ExecTimeoutError(f"{what} did not answer within {limit:g} s")
        error = box.get("error")
        if isinstance(error, BaseException):
            raise error
        return box["value"]  # type: ignore[return-value]
