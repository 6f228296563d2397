"""Nodes and the agent beside a workload: which node an application pod runs on, and what to tell
someone who pointed wpprotect at an application pod instead of the agent serving it.

People run flare and self-test in their application pod by mistake (the agent's docs warn
about it); the agent that serves a pod is the agent pod on that pod's node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wpprotect.errors import AgentNotFoundError

if TYPE_CHECKING:
    from wpprotect.platforms._k8s_api import K8sAPI

__all__ = ["application_pod_hint", "node_of_pod"]

_AGENT_CONTAINERS = frozenset({"agent", "system-probe", "security-agent"})


def node_of_pod(api: K8sAPI, for_pod: str, *, target: str = "") -> str:
    """The node ``namespace/pod`` is scheduled on.

    :raises AgentNotFoundError: the pod is not scheduled on a node yet.
    """
    namespace, name = for_pod.split("/", 1)
    pod = api.read_pod(namespace, name)
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise AgentNotFoundError(
            f"pod {for_pod} is not scheduled on a node yet: no agent serves it", target=target
        )
    return str(node)


def application_pod_hint(pod: dict[str, Any]) -> str | None:
    """For a pod that is not an agent pod: where its agent is, as a sentence; else None."""
    spec = pod.get("spec") or {}
    names = {str(c.get("name")) for c in spec.get("containers") or [] if isinstance(c, dict)}
    if names & _AGENT_CONTAINERS:
        return None
    meta = pod.get("metadata") or {}
    ref = f"{meta.get('namespace')}/{meta.get('name')}"
    node = spec.get("nodeName") or "its node"
    return (
        f"pod {ref} is an application pod, not a Datadog agent pod; the agent serving it is the "
        f"agent pod on {node}: use KubernetesPlatform(for_pod={ref!r}) or the CLI's "
        f"--for-pod {ref}"
    )
