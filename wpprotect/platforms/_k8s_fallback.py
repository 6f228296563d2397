"""The opt-in fallback of a cluster TC scan: a short-lived privileged pod pinned to the node.

Used only when asked (``tc_scan(fallback_pod=True)``, ``--fallback-pod``) and only when the agent
pod's own container cannot run the kernel reader (no embedded Python, a missing capability, no
``system-probe``/``agent`` container). The pod:

- runs on that node (``nodeName``), with ``hostPID`` and ``hostNetwork``, privileged, tolerating
  every taint, so it sees what the node's agent would;
- uses the agent pod's own image (already on the node: nothing is pulled from elsewhere), its
  one container named ``system-probe`` running the image's embedded Python in a sleep loop;
- has ``activeDeadlineSeconds`` as a safety net, and is deleted as soon as the read is over,
  also when it fails and on Ctrl-C (``finally``).

RBAC it needs on top of the scan's: ``create`` and ``delete`` on ``pods`` in the agent's
namespace (and a policy admitting privileged, ``hostPID``/``hostNetwork`` pods there, which the
agent's namespace already does for the agent's DaemonSet).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wpprotect.errors import AgentNotFoundError, ExecTimeoutError, PlatformError

if TYPE_CHECKING:
    from wpprotect.platforms._k8s_api import K8sAPI

__all__ = ["FALLBACK_LABEL", "fallback_pod_manifest", "with_fallback_pod"]

log = logging.getLogger(__name__)

#: The label every fallback pod carries (``kubectl delete pod -l`` finds leftovers).
FALLBACK_LABEL = "wpprotect.io/tc-reader"
_EMBEDDED_PYTHON = "/opt/datadog-agent/embedded/bin/python3"
_DEADLINE = 900  # seconds: the API server ends the pod even if wpprotect is killed


def _agent_image(pod: dict[str, Any]) -> str:
    containers = [c for c in (pod.get("spec") or {}).get("containers") or [] if isinstance(c, dict)]
    for wanted in ("system-probe", "agent", "security-agent"):
        for c in containers:
            if c.get("name") == wanted and c.get("image"):
                return str(c["image"])
    raise AgentNotFoundError("the agent pod names no image to run the fallback pod with")


def fallback_pod_manifest(agent_pod: dict[str, Any]) -> dict[str, Any]:
    """The fallback pod for ``agent_pod``'s node (a new random name each time)."""
    meta = agent_pod.get("metadata") or {}
    spec = agent_pod.get("spec") or {}
    node = spec.get("nodeName")
    if not node:
        raise AgentNotFoundError(f"agent pod {meta.get('name')} is not scheduled on a node")
    name = f"wpprotect-tc-{secrets.token_hex(4)}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": meta.get("namespace"),
            "labels": {FALLBACK_LABEL: "true", "app.kubernetes.io/managed-by": "wpprotect"},
        },
        "spec": {
            "nodeName": node,
            "hostPID": True,
            "hostNetwork": True,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "activeDeadlineSeconds": _DEADLINE,
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {
                    "name": "system-probe",
                    "image": _agent_image(agent_pod),
                    "command": [
                        _EMBEDDED_PYTHON,
                        "-c",
                        f"import time; time.sleep({_DEADLINE})",
                    ],
                    "securityContext": {"privileged": True},
                }
            ],
        },
    }


def with_fallback_pod(
    api: K8sAPI,
    agent_pod: dict[str, Any],
    run: Callable[[dict[str, Any]], Any],
    *,
    target: str = "",
    wait: float = 120.0,
    poll: float = 0.25,
) -> Any:
    """Create the fallback pod on ``agent_pod``'s node, wait until it runs, call ``run`` with
    the running pod, and delete it whatever happens.

    :raises ExecTimeoutError: the pod did not start within ``wait`` seconds.
    :raises PlatformError: it failed to start, or the API refused.
    """
    body = fallback_pod_manifest(agent_pod)
    namespace = str(body["metadata"]["namespace"])
    name = str(body["metadata"]["name"])
    created = False
    try:
        api.create_pod(namespace, body)
        created = True
        log.info("fallback pod %s/%s created on %s", namespace, name, body["spec"]["nodeName"])
        deadline = time.monotonic() + wait
        while True:
            pod = api.read_pod(namespace, name)
            phase = (pod.get("status") or {}).get("phase")
            if phase == "Running":
                break
            if phase in ("Failed", "Succeeded"):
                raise PlatformError(
                    f"the fallback pod {namespace}/{name} ended ({phase}) before the read",
                    target=target,
                )
            if time.monotonic() > deadline:
                raise ExecTimeoutError(
                    f"the fallback pod {namespace}/{name} was not running after {wait:g} s",
                    target=target,
                )
            time.sleep(poll)
        return run(pod)
    finally:
        if created:
            try:
                api.delete_pod(namespace, name)
            except PlatformError as exc:  # said loudly: the pod's deadline still ends it
                log.warning(
                    "could not delete the fallback pod %s/%s (it ends by itself within %d s): %s",
                    namespace,
                    name,
                    _DEADLINE,
                    exc,
                )
