"""Objects shaped like what the Datadog Helm chart and the Datadog Operator render.

Labels, container names and env follow docs/reference/deployments.md#deploy-helm-daemonset and
docs/reference/deployments.md#deploy-helm-container-env (Helm chart 3.240.0:
``templates/daemonset.yaml``, ``_helpers.tpl`` ``datadog.pod-template-labels``,
``_container-security-agent.yaml``), docs/reference/deployments.md#deploy-operator-daemonset and
docs/reference/deployments.md#deploy-operator (datadog-operator: golden DaemonSet labels,
``feature/cws/feature.go`` env).
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from tests.k8s_server._server import K8sTestServer

__all__ = [
    "datadog_agent",
    "helm_daemonset",
    "node",
    "operator_daemonset",
    "pod_for",
    "seed_helm",
    "seed_operator",
]

AGENT_IMAGE = "registry.datadoghq.com/agent:7.81.1"
# the fields apps/v1 DaemonSetStatus requires
_DS_STATUS = {
    "currentNumberScheduled": 0,
    "desiredNumberScheduled": 0,
    "numberMisscheduled": 0,
    "numberReady": 0,
}
_POLICIES_DIR = "/etc/datadog-agent/runtime-security.d"


def _env(pairs: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in pairs.items()]


def _api_key_env() -> dict[str, Any]:
    return {
        "name": "DD_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "datadog-secret", "key": "api-key"}},
    }


def _containers(image: str, env: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "image": image,
            "command": cmd,
            "env": env.get(name, []),
            "resources": {},
            "volumeMounts": [{"name": "sysprobe-socket-dir", "mountPath": "/var/run/sysprobe"}],
        }
        for name, cmd in (
            ("agent", ["agent", "run"]),
            ("system-probe", ["system-probe", "--config=/etc/datadog-agent/system-probe.yaml"]),
            ("security-agent", ["security-agent", "start", "-c=/etc/datadog-agent/datadog.yaml"]),
        )
    ]


def helm_daemonset(
    fullname: str = "datadog-agent",
    namespace: str = "datadog",
    *,
    image: str = AGENT_IMAGE,
    extra_env: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The node-agent DaemonSet ``helm install <fullname> datadog/datadog`` renders with
    ``datadog.securityAgent.runtime.enabled: true``."""
    template_labels = {
        "app.kubernetes.io/name": fullname,
        "app.kubernetes.io/instance": f"{fullname}-agent",
        "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/part-of": f"{namespace}-{fullname}".replace("-", "--"),
        "app.kubernetes.io/component": "agent",
        "admission.datadoghq.com/enabled": "false",
        "app": fullname,
        "agent.datadoghq.com/component": "agent",
    }
    env = {
        "agent": [_api_key_env(), *_env({"DD_COMPLIANCE_CONFIG_ENABLED": "false"})],
        "system-probe": _env({"DD_LOG_LEVEL": "INFO", "HOST_ROOT": "/host/root"}),
        "security-agent": [
            _api_key_env(),
            *_env(
                {
                    "DD_LOG_LEVEL": "INFO",
                    "DD_COMPLIANCE_CONFIG_ENABLED": "false",
                    "DD_RUNTIME_SECURITY_CONFIG_ENABLED": "true",
                    "DD_RUNTIME_SECURITY_CONFIG_POLICIES_DIR": _POLICIES_DIR,
                    "DD_RUNTIME_SECURITY_CONFIG_SOCKET": "/var/run/sysprobe/runtime-security.sock",
                    "DD_RUNTIME_SECURITY_CONFIG_USE_SECRUNTIME_TRACK": "true",
                    "DD_DOGSTATSD_SOCKET": "/var/run/datadog/dsd.socket",
                }
            ),
        ],
    }
    for name, extra in (extra_env or {}).items():
        env.setdefault(name, []).extend(copy.deepcopy(extra))
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": fullname,
            "namespace": namespace,
            "labels": {
                "helm.sh/chart": "datadog-3.240.0",
                "app.kubernetes.io/name": fullname,
                "app.kubernetes.io/instance": fullname,
                "app.kubernetes.io/managed-by": "Helm",
                "app.kubernetes.io/version": "7",
            },
            "annotations": {
                "meta.helm.sh/release-name": fullname,
                "meta.helm.sh/release-namespace": namespace,
            },
        },
        "spec": {
            "selector": {"matchLabels": {"app": fullname}},
            "template": {
                "metadata": {"labels": template_labels, "name": fullname},
                "spec": {"containers": _containers(image, env), "serviceAccountName": fullname},
            },
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
        },
        "status": dict(_DS_STATUS),
    }


def datadog_agent(
    name: str = "datadog", namespace: str = "datadog", *, network: bool = True
) -> dict[str, Any]:
    """A ``DatadogAgent`` (v2alpha1) with CWS on."""
    return {
        "apiVersion": "datadoghq.com/v2alpha1",
        "kind": "DatadogAgent",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "global": {
                "credentials": {"apiSecret": {"secretName": "datadog-secret", "keyName": "api-key"}}
            },
            "features": {"cws": {"enabled": True, "network": {"enabled": network}}},
        },
    }


def operator_daemonset(
    dda: dict[str, Any], *, image: str = AGENT_IMAGE, owner_kind: str = "DatadogAgent"
) -> dict[str, Any]:
    """The node-agent DaemonSet the Operator renders for ``dda`` (name ``<dda>-agent``)."""
    name = dda["metadata"]["name"]
    namespace = dda["metadata"]["namespace"]
    labels = {
        "agent.datadoghq.com/component": "agent",
        "agent.datadoghq.com/name": name,
        "app.kubernetes.io/component": "agent",
        "app.kubernetes.io/instance": f"{name}-agent",
        "app.kubernetes.io/managed-by": "datadog-operator",
        "app.kubernetes.io/name": "datadog-agent-deployment",
        "app.kubernetes.io/part-of": f"{namespace}-{name}".replace("-", "--"),
    }
    common = {
        "DD_RUNTIME_SECURITY_CONFIG_ENABLED": "true",
        "DD_RUNTIME_SECURITY_CONFIG_SOCKET": "/var/run/sysprobe/runtime-security.sock",
    }
    env = {
        "agent": [_api_key_env(), *_env(common)],
        "security-agent": [_api_key_env(), *_env(common)],
        "system-probe": _env(
            {
                **common,
                # feature.go adds each flag only when true: network.enabled=false leaves it unset.
                **(
                    {"DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED": "true"}
                    if dda["spec"]["features"]["cws"].get("network", {}).get("enabled", True)
                    else {}
                ),
                "DD_RUNTIME_SECURITY_CONFIG_ACTIVITY_DUMP_ENABLED": "true",
                "DD_RUNTIME_SECURITY_CONFIG_REMOTE_CONFIGURATION_ENABLED": "true",
                "DD_RUNTIME_SECURITY_CONFIG_POLICIES_DIR": "/etc/datadog-agent/runtime-security.d",
            }
        ),
    }
    owner_api = (
        "datadoghq.com/v1alpha1"
        if owner_kind == "DatadogAgentInternal"
        else "datadoghq.com/v2alpha1"
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": f"{name}-agent",
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": owner_api,
                    "kind": owner_kind,
                    "name": name,
                    "uid": dda["metadata"].get("uid", "00000000-0000-0000-0000-000000000000"),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "selector": {
                "matchLabels": {
                    "agent.datadoghq.com/component": "agent",
                    "app.kubernetes.io/instance": f"{name}-agent",
                }
            },
            "template": {
                "metadata": {"labels": dict(labels), "name": f"{name}-agent"},
                "spec": {"containers": _containers(image, env), "hostPID": True},
            },
        },
        "status": dict(_DS_STATUS),
    }


def node(name: str) -> dict[str, Any]:
    """A Ready node."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def pod_for(
    ds: dict[str, Any], node_name: str, *, phase: str = "Running", suffix: str | None = None
) -> dict[str, Any]:
    """A pod the DaemonSet controller would create for ``ds`` on ``node_name``."""
    ds_name = ds["metadata"]["name"]
    suffix = suffix or hashlib.sha256(f"{ds_name}/{node_name}".encode()).hexdigest()[:5]
    template = copy.deepcopy(ds["spec"]["template"])
    labels = dict(template["metadata"].get("labels") or {})
    labels.update({"controller-revision-hash": "6b8f9c7d5", "pod-template-generation": "1"})
    spec = template["spec"]
    spec["nodeName"] = node_name
    containers = [c["name"] for c in spec["containers"]]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{ds_name}-{suffix}",
            "namespace": ds["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "name": ds_name,
                    "uid": ds["metadata"].get("uid", "00000000-0000-0000-0000-000000000000"),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
        "status": {
            "phase": phase,
            "hostIP": "10.0.0.1",
            "podIP": "10.0.0.1",
            "containerStatuses": [
                {
                    "name": c,
                    "ready": phase == "Running",
                    "restartCount": 0,
                    "image": "",
                    "imageID": "",
                }
                for c in containers
            ],
        },
    }


def seed_helm(
    server: K8sTestServer,
    nodes: int = 3,
    *,
    fullname: str = "datadog-agent",
    namespace: str = "datadog",
    extra_env: dict[str, list[dict[str, Any]]] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A Helm release on ``nodes`` nodes: the DaemonSet and one Running pod per node."""
    ds = server.put(helm_daemonset(fullname, namespace, extra_env=extra_env))
    pods = []
    for i in range(1, nodes + 1):
        server.put(node(f"node-{i}"))
        pods.append(server.put(pod_for(ds, f"node-{i}")))
    return ds, pods


def seed_operator(
    server: K8sTestServer,
    nodes: int = 3,
    *,
    name: str = "datadog",
    namespace: str = "datadog",
    network: bool = True,
    owner_kind: str = "DatadogAgent",
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """An Operator install: the DatadogAgent, its DaemonSet, one Running pod per node."""
    dda = server.put(datadog_agent(name, namespace, network=network))
    ds = server.put(operator_daemonset(dda, owner_kind=owner_kind))
    pods = []
    for i in range(1, nodes + 1):
        server.put(node(f"node-{i}"))
        pods.append(server.put(pod_for(ds, f"node-{i}")))
    return dda, ds, pods
