"""TC scans and measurements through a platform: the read-only kernel reader run inside the agent's
own container (:mod:`wpprotect.tc._remote`), and what each adapter adds (its node, its agent's
configured classifier priority).

Written once here for every adapter that runs the agent in a container (Docker, each Kubernetes
agent pod, :class:`~wpprotect.testing.FakePlatform`); :class:`~wpprotect.platforms.HostPlatform`
reads the local kernel in-process instead.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from wpprotect.errors import (
    AgentNotFoundError,
    CapabilityError,
    InvalidArgumentError,
    UnsupportedAgentError,
    WPProtectError,
)

if TYPE_CHECKING:
    from wpprotect._contract import Platform
    from wpprotect.tc import TCReport
    from wpprotect.tc._measure import TCMeasurement

__all__ = ["configured_priority", "remote_measure", "remote_tc_scan"]

log = logging.getLogger(__name__)


def configured_priority(platform: Platform) -> int | None:
    """The classifier priority the agent's container env sets, when the platform can tell
    (``container_env()`` on Kubernetes); None otherwise (the default 10 then applies)."""
    reader = getattr(platform, "container_env", None)
    if reader is None:
        return None
    try:
        env = reader("system-probe")
    except WPProtectError as exc:
        log.debug("cannot read the system-probe env of %s: %s", platform.target, exc)
        return None
    from wpprotect.config import CLASSIFIER_PRIORITY, parse_go_int

    # The settings model's env vars, in the order the agent looks them up: the first one set
    # decides, read as Go reads an integer.
    for name in CLASSIFIER_PRIORITY.env_vars:
        value = env.get(name) if isinstance(env, dict) else None
        if isinstance(value, str):
            n = parse_go_int(value)
            return n if n is not None and 1 <= n <= 0xFFFF else None
    return None


def _check(netns: object, probe: object) -> str | None:
    if probe:
        raise InvalidArgumentError(
            "probe=True runs programs (BPF_PROG_TEST_RUN) and is done on the host platform only; "
            "a remote scan is read-only"
        )
    if netns is not None and (not isinstance(netns, str) or "\x00" in netns or not netns):
        raise InvalidArgumentError(f"netns must be 'all', None, a name or a path, not {netns!r}")
    return netns


def remote_tc_scan(
    platform: Platform,
    *,
    netns: str | None = "all",
    probe: bool = False,
    classifier_priority: int | None = None,
    timeout: float | None = 60.0,
    fallback_pod: bool = False,
) -> tuple[TCReport, dict[str, Any]]:
    """Scan with the reader run in ``platform``'s ``system-probe`` (else ``agent``) container.

    :param fallback_pod: Kubernetes only: when the agent's container cannot run the reader (no
        embedded Python, a missing capability, no such container), run it in a short-lived
        privileged pod pinned to the node (:mod:`wpprotect.platforms._k8s_fallback`).
    :returns: the report (judged against ``classifier_priority``, else the agent's configured
        one when the platform can read it) and where the reader ran.
    """
    from wpprotect.tc import _remote

    spec = _check(netns, probe)
    if classifier_priority is None:
        classifier_priority = configured_priority(platform)

    def scan(target: Platform) -> tuple[TCReport, dict[str, Any]]:
        return _remote.remote_scan(
            target, netns=spec, classifier_priority=classifier_priority, timeout=timeout
        )

    try:
        return scan(platform)
    except (UnsupportedAgentError, CapabilityError, AgentNotFoundError) as exc:
        if isinstance(exc, AgentNotFoundError):
            _reraise_for_application_pod(platform, exc)
        fallback = getattr(platform, "_tc_fallback", None)
        if not fallback_pod or fallback is None:
            raise
        log.info("%s: %s; reading through a fallback pod", platform.target, exc)
        report, where = fallback(scan)
        where = {**where, "fallback_pod": True, "fallback_reason": str(exc)}
        return report, where


def _reraise_for_application_pod(platform: Platform, exc: AgentNotFoundError) -> None:
    """An application pod named as the agent: point at the agent on its node."""
    from wpprotect.platforms._k8s_nodes import application_pod_hint

    pod = getattr(platform, "_pod_obj", None)
    hint = application_pod_hint(pod) if isinstance(pod, dict) else None
    if hint is not None:
        raise AgentNotFoundError(hint, target=platform.target) from exc


def remote_measure(
    platform: Platform,
    seconds: float,
    *,
    netns: str | None = "all",
    timeout: float | None = None,
) -> tuple[TCMeasurement, dict[str, Any]]:
    """Measure with the reader run in ``platform``'s agent container (see
    :func:`wpprotect.tc._remote.remote_measure`)."""
    from wpprotect.tc import _remote

    spec = _check(netns, False)
    try:
        return _remote.remote_measure(platform, seconds, netns=spec, timeout=timeout)
    except AgentNotFoundError as exc:
        _reraise_for_application_pod(platform, exc)
        raise
