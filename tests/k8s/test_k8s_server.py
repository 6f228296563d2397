"""The test API server speaks the wire protocol the real ``kubernetes`` client expects.

These tests drive the server only through the real client (REST and the exec websocket), so a
server that drifted from the protocol would fail them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from tests.k8s.conftest import Cluster, needs_v5
from tests.k8s_server import FakeExecBackend, FakeExecRequest, seed_helm, seed_operator

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def sending(cluster: Cluster, content_type: str) -> Any:
    """An ``ApiClient`` whose request bodies go out as ``content_type`` (on every client
    version: old generated PATCH methods take no ``_content_type``)."""
    api = client.ApiClient(cluster.api_client.configuration)
    api.select_header_content_type = lambda *_a, **_k: content_type
    return api


def _env(ds: dict, container: str) -> list[dict]:
    return next(c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == container)[
        "env"
    ]


def test_list_pods_by_label_selector_in_all_namespaces(cluster: Cluster) -> None:
    seed_helm(cluster.server, 2)
    seed_helm(cluster.server, 1, fullname="other-datadog", namespace="monitoring")
    core = client.CoreV1Api(cluster.api_client)
    pods = core.list_pod_for_all_namespaces(label_selector="agent.datadoghq.com/component=agent")
    assert sorted(p.metadata.namespace for p in pods.items) == ["datadog", "datadog", "monitoring"]
    only = core.list_namespaced_pod("monitoring", label_selector="app in (other-datadog),!nope")
    assert [p.spec.node_name for p in only.items] == ["node-1"]
    none = core.list_namespaced_pod("datadog", label_selector="app notin (datadog-agent)")
    assert none.items == []


def test_strategic_merge_patch_merges_containers_and_env_by_name(cluster: Cluster) -> None:
    ds, _ = seed_helm(cluster.server, 1)
    apps = client.AppsV1Api(sending(cluster, SMP))
    patch = {
        "metadata": {"resourceVersion": ds["metadata"]["resourceVersion"]},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "security-agent",
                            "env": [
                                {"name": "DD_RUNTIME_SECURITY_CONFIG_ENABLED", "value": "false"},
                                {"name": "DD_LOG_LEVEL", "$patch": "delete"},
                                {"name": "NEW", "value": "1"},
                            ],
                        }
                    ]
                }
            }
        },
    }
    out = apps.patch_namespaced_daemon_set("datadog-agent", "datadog", patch)
    assert int(out.metadata.resource_version) > int(ds["metadata"]["resourceVersion"])
    stored = cluster.server.get("daemonsets", "datadog", "datadog-agent")
    env = {e["name"]: e.get("value") for e in _env(stored, "security-agent")}
    assert env["DD_RUNTIME_SECURITY_CONFIG_ENABLED"] == "false"
    assert "DD_LOG_LEVEL" not in env
    assert env["NEW"] == "1"
    # the other containers are untouched
    assert _env(stored, "system-probe") == _env(ds, "system-probe")
    assert [c["name"] for c in stored["spec"]["template"]["spec"]["containers"]] == [
        "agent",
        "system-probe",
        "security-agent",
    ]


def test_stale_resource_version_is_a_409_status(cluster: Cluster) -> None:
    seed_helm(cluster.server, 1)
    apps = client.AppsV1Api(sending(cluster, SMP))
    with pytest.raises(ApiException) as info:
        apps.patch_namespaced_daemon_set(
            "datadog-agent", "datadog", {"metadata": {"resourceVersion": "1"}}
        )
    assert info.value.status == 409
    body = json.loads(info.value.body)
    assert body["kind"] == "Status"
    assert body["reason"] == "Conflict"
    assert body["code"] == 409
    assert "the object has been modified" in body["message"]


def test_json_patch_test_op_and_merge_patch(cluster: Cluster) -> None:
    ds, _ = seed_helm(cluster.server, 1)
    apps = client.AppsV1Api(sending(cluster, JSON_PATCH))
    rv = ds["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as info:
        apps.patch_namespaced_daemon_set(
            "datadog-agent",
            "datadog",
            [{"op": "test", "path": "/metadata/name", "value": "wrong"}],
        )
    assert info.value.status == 422
    apps.patch_namespaced_daemon_set(
        "datadog-agent",
        "datadog",
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "add", "path": "/metadata/labels/team~1owner", "value": "sec"},
        ],
    )
    client.AppsV1Api(sending(cluster, MERGE)).patch_namespaced_daemon_set(
        "datadog-agent",
        "datadog",
        {"metadata": {"labels": {"helm.sh/chart": None}}},
    )
    labels = cluster.server.get("daemonsets", "datadog", "datadog-agent")["metadata"]["labels"]
    assert labels["team/owner"] == "sec"
    assert "helm.sh/chart" not in labels


def test_custom_resources_refuse_strategic_merge_patch(cluster: Cluster) -> None:
    seed_operator(cluster.server, 1)
    args = ("datadoghq.com", "v2alpha1", "datadog", "datadogagents", "datadog")
    with pytest.raises(ApiException) as info:
        client.CustomObjectsApi(sending(cluster, SMP)).patch_namespaced_custom_object(
            *args, {"spec": {}}
        )
    assert info.value.status == 415
    out = client.CustomObjectsApi(sending(cluster, MERGE)).patch_namespaced_custom_object(
        *args, {"spec": {"features": {"cws": {"enabled": False}}}}
    )
    assert out["spec"]["features"]["cws"] == {"enabled": False, "network": {"enabled": True}}


def test_not_found_and_injected_failures_carry_status_bodies(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api_client)
    with pytest.raises(ApiException) as info:
        core.read_namespaced_pod("absent", "datadog")
    assert info.value.status == 404
    assert json.loads(info.value.body)["reason"] == "NotFound"
    cluster.server.faults.fail_next(1, 503)
    with pytest.raises(ApiException) as info:
        core.list_namespace()
    assert info.value.status == 503
    assert json.loads(info.value.body)["reason"] == "ServiceUnavailable"
    assert core.list_namespace().items == []  # the fault fired once


@needs_v5
def test_exec_websocket_channels_and_status(cluster: Cluster) -> None:
    _, pods = seed_helm(cluster.server, 1)

    def responder(req: FakeExecRequest) -> tuple[int, bytes, bytes]:
        return 3, b"out:" + req.stdin, b"err\n"

    cluster.server.exec_backend = FakeExecBackend(responder)
    core = client.CoreV1Api(cluster.api_client)
    ws = stream(
        core.connect_get_namespaced_pod_exec,
        pods[0]["metadata"]["name"],
        "datadog",
        command=["security-agent", "x"],
        container="security-agent",
        stdin=True,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
        binary=True,
    )
    assert ws.subprotocol == "v5.channel.k8s.io"
    ws.write_stdin(b"\x00\xff")
    ws.close_channel(0)
    ws.run_forever(timeout=10)
    assert ws.read_channel(1) == b"out:\x00\xff"
    assert ws.read_channel(2) == b"err\n"
    assert ws.returncode == 3


def test_replace_needs_a_current_resource_version(cluster: Cluster) -> None:
    ds, _ = seed_helm(cluster.server, 1)
    apps = client.AppsV1Api(cluster.api_client)
    body = dict(ds)
    body["metadata"] = {**ds["metadata"], "resourceVersion": "1"}
    with pytest.raises(ApiException) as info:
        apps.replace_namespaced_daemon_set("datadog-agent", "datadog", body)
    assert info.value.status == 409
    body["metadata"]["resourceVersion"] = ds["metadata"]["resourceVersion"]
    body["metadata"]["labels"] = {**ds["metadata"]["labels"], "replaced": "yes"}
    out = apps.replace_namespaced_daemon_set("datadog-agent", "datadog", body)
    assert out.metadata.labels["replaced"] == "yes"
    assert out.metadata.resource_version != ds["metadata"]["resourceVersion"]
