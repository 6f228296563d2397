"""The opt-in fallback: a short-lived privileged pod pinned to the node, created when the agent's
own container cannot run the reader, deleted afterwards (also after a failure)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.k8s_server import DockerExecBackend, pod_for
from tests.tc_remote.conftest import RemoteCluster, node_container
from wpprotect import errors
from wpprotect.platforms._k8s_fallback import FALLBACK_LABEL
from wpprotect.tc import TCInspector
from wpprotect.tc._remote import EMBEDDED_PYTHON

pytestmark = [pytest.mark.docker, pytest.mark.root]


@pytest.fixture
def nopy_node(remote_cluster: RemoteCluster) -> Iterator[dict[str, Any]]:
    """An agent pod on node-nopy whose container has no embedded Python; fallback pods created
    on the server are backed by a container holding node-2's scene, with Python."""
    server = remote_cluster.server
    backend = server.exec_backend
    assert isinstance(backend, DockerExecBackend)
    ds = server.get("daemonsets", "datadog", "datadog-agent")
    seen: dict[str, Any] = {"created": [], "fault": None}
    with contextlib.ExitStack() as stack:
        nopy = stack.enter_context(node_container("fbnopy", None, python=False))
        pod = server.put(pod_for(ds, "node-nopy", suffix="nopy"))
        backend.containers[("datadog", pod["metadata"]["name"])] = {"*": nopy}

        def created(body: dict[str, Any]) -> None:
            seen["created"].append(body)
            name = body["metadata"]["name"]
            scene = remote_cluster.scenes["node-2"][1]
            container = stack.enter_context(node_container(f"fb{len(seen['created'])}", scene))
            backend.containers[("datadog", name)] = {"system-probe": container}
            body["status"] = {"phase": "Running"}
            if seen["fault"] is not None:
                seen["fault"]()

        server.on_pod_created = created
        try:
            yield seen
        finally:
            server.on_pod_created = None
            server.delete("pods", "datadog", pod["metadata"]["name"])


def test_without_the_option_the_error_names_the_missing_python(
    remote_cluster: RemoteCluster, nopy_node: dict[str, Any]
) -> None:
    before = len(remote_cluster.server.created_pods)
    with pytest.raises(errors.UnsupportedAgentError, match=re.escape(EMBEDDED_PYTHON)):
        remote_cluster.platform(node="node-nopy").agents()[0].tc_scan()
    assert len(remote_cluster.server.created_pods) == before


def test_fallback_pod_is_pinned_privileged_and_deleted(
    remote_cluster: RemoteCluster, nopy_node: dict[str, Any]
) -> None:
    server = remote_cluster.server
    agent = remote_cluster.platform(node="node-nopy").agents()[0]
    report = agent.tc_scan(fallback_pod=True)
    assert agent.last_tc_read is not None
    assert agent.last_tc_read["fallback_pod"] is True
    assert "no embedded Python" in str(agent.last_tc_read["fallback_reason"])
    (body,) = nopy_node["created"]
    spec = body["spec"]
    assert spec["nodeName"] == "node-nopy"
    assert spec["hostPID"] is True
    assert spec["hostNetwork"] is True
    assert spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] > 0
    (container,) = spec["containers"]
    assert container["securityContext"] == {"privileged": True}
    ds = server.get("daemonsets", "datadog", "datadog-agent")
    images = {c["image"] for c in ds["spec"]["template"]["spec"]["containers"]}
    assert container["image"] in images  # the agent's own image, already on the node
    assert body["metadata"]["labels"][FALLBACK_LABEL] == "true"
    name = body["metadata"]["name"]
    assert ("datadog", name) in server.deleted_pods
    with pytest.raises(KeyError):
        server.get("pods", "datadog", name)
    netns = remote_cluster.scenes["node-2"][0]
    local = TCInspector(netns).scan()
    remote = sorted((p.ifname, p.direction, p.priority, p.prog_id) for p in report.programs
                    if p.netns == netns)  # fmt: skip
    assert remote == sorted((p.ifname, p.direction, p.priority, p.prog_id) for p in local.programs)


def test_fallback_pod_is_deleted_after_a_failure(
    remote_cluster: RemoteCluster, nopy_node: dict[str, Any]
) -> None:
    server = remote_cluster.server
    nopy_node["fault"] = lambda: server.faults.drop_exec_next(1, after_bytes=5)
    agent = remote_cluster.platform(node="node-nopy").agents()[0]
    with pytest.raises(errors.ExecError):
        agent.tc_scan(fallback_pod=True)
    (body,) = nopy_node["created"]
    assert ("datadog", body["metadata"]["name"]) in server.deleted_pods


def test_fallback_pod_that_never_runs_is_deleted(
    remote_cluster: RemoteCluster, nopy_node: dict[str, Any]
) -> None:
    from wpprotect.platforms import _k8s_fallback

    server = remote_cluster.server

    def created(body: dict[str, Any]) -> None:
        nopy_node["created"].append(body)  # no container, no phase: it stays Pending

    server.on_pod_created = created
    agent = remote_cluster.platform(node="node-nopy").agents()[0]
    pod = agent._the_pod()
    with pytest.raises(errors.ExecTimeoutError, match="not running"):
        _k8s_fallback.with_fallback_pod(
            agent._api, pod, lambda _pod: None, target=agent.target, wait=0.5, poll=0.1
        )
    (body,) = nopy_node["created"]
    assert ("datadog", body["metadata"]["name"]) in server.deleted_pods


def test_fallback_pod_is_deleted_on_ctrl_c(
    remote_cluster: RemoteCluster, nopy_node: dict[str, Any]
) -> None:
    from wpprotect.platforms import _k8s_fallback

    server = remote_cluster.server

    def created(body: dict[str, Any]) -> None:
        nopy_node["created"].append(body)
        body["status"] = {"phase": "Running"}

    def interrupted(_pod: dict[str, Any]) -> None:
        raise KeyboardInterrupt

    server.on_pod_created = created
    agent = remote_cluster.platform(node="node-nopy").agents()[0]
    with pytest.raises(KeyboardInterrupt):
        _k8s_fallback.with_fallback_pod(agent._api, agent._the_pod(), interrupted)
    (body,) = nopy_node["created"]
    assert ("datadog", body["metadata"]["name"]) in server.deleted_pods
