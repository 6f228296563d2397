"""KubernetesPlatform finds agent pods the way Helm and the Operator label them."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.k8s.conftest import Cluster
from tests.k8s_server import (
    helm_daemonset,
    pod_for,
    running_cluster,
    seed_helm,
    seed_operator,
    write_kubeconfig,
)
from wpprotect.errors import (
    AgentNotFoundError,
    BackendUnavailableError,
    InvalidArgumentError,
    PermissionDeniedError,
    PlatformError,
)
from wpprotect.platforms.kubernetes import KubernetesPlatform


def test_helm_agents_one_per_node_with_targets(cluster: Cluster) -> None:
    _, pods = seed_helm(cluster.server, 3)
    agents = cluster.platform(namespace="datadog").agents()
    assert [a.target for a in agents] == [
        f"pod datadog/{p['metadata']['name']} (node-{i})" for i, p in enumerate(pods, 1)
    ]
    assert all(a.kind == "kubernetes" for a in agents)
    # the first selector tried is the one Helm and the Operator share
    selectors = [path for method, path, _ in cluster.server.requests if method == "GET"]
    assert selectors == ["/api/v1/namespaces/datadog/pods"]


def test_operator_agents_found_in_all_namespaces(cluster: Cluster) -> None:
    seed_operator(cluster.server, 2, namespace="datadog-operator")
    agents = cluster.platform().agents()
    assert [a.target.split(" (")[0] for a in agents] == [
        f"pod datadog-operator/{p['metadata']['name']}"
        for p in cluster.server.list("pods", "datadog-operator")
    ]


def test_only_running_pods_and_the_readiest_one_per_node(cluster: Cluster) -> None:
    ds, pods = seed_helm(cluster.server, 2)
    cluster.server.put(pod_for(ds, "node-3", phase="Pending"))
    # a second pod on node-1 (e.g. mid-rollout), not ready: the ready one is kept
    extra = pod_for(ds, "node-1", suffix="zzzzz")
    for status in extra["status"]["containerStatuses"]:
        status["ready"] = False
    cluster.server.put(extra)
    targets = [a.target for a in cluster.platform(namespace="datadog").agents()]
    assert targets == [
        f"pod datadog/{pods[0]['metadata']['name']} (node-1)",
        f"pod datadog/{pods[1]['metadata']['name']} (node-2)",
    ]


def test_fallback_selector_and_user_selector(cluster: Cluster) -> None:
    # an agent labelled only with app.kubernetes.io/component=agent (no Datadog label)
    ds = helm_daemonset("custom-agent", "infra")
    labels = ds["spec"]["template"]["metadata"]["labels"]
    del labels["agent.datadoghq.com/component"]
    cluster.server.put(ds)
    pod = cluster.server.put(pod_for(ds, "node-9"))
    agents = cluster.platform().agents()
    assert [a.target for a in agents] == [f"pod infra/{pod['metadata']['name']} (node-9)"]
    # a user selector wins over the defaults
    with pytest.raises(AgentNotFoundError, match="app=nothing-here"):
        cluster.platform(label_selector="app=nothing-here").agents()
    assert len(cluster.platform(label_selector="app=custom-agent").agents()) == 1


def test_named_pod_and_its_errors(cluster: Cluster) -> None:
    ds, pods = seed_helm(cluster.server, 2)
    name = pods[1]["metadata"]["name"]
    one = cluster.platform(pod=name)
    assert one.agents()[0].target == f"pod datadog/{name} (node-2)"
    with pytest.raises(AgentNotFoundError, match="absent"):
        cluster.platform(namespace="datadog", pod="absent").agents()
    pending = cluster.server.put(pod_for(ds, "node-5", phase="Pending"))
    with pytest.raises(AgentNotFoundError, match="Pending, not Running"):
        cluster.platform(namespace="datadog", pod=pending["metadata"]["name"]).agents()


def test_no_agent_anywhere_names_where_it_looked(cluster: Cluster) -> None:
    with pytest.raises(AgentNotFoundError) as info:
        cluster.platform(namespace="datadog").agents()
    assert "agent.datadoghq.com/component=agent" in str(info.value)
    assert "datadog" in str(info.value)


def test_several_pods_need_a_choice_for_exec(cluster: Cluster) -> None:
    seed_helm(cluster.server, 2)
    with pytest.raises(InvalidArgumentError, match="2 agent pods"):
        cluster.platform().exec(["true"])


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"namespace": "Bad/Name"}, "namespace"), ({"pod": "a?b=c"}, "pod")],
)
def test_names_are_validated(cluster: Cluster, kwargs: dict[str, str], needle: str) -> None:
    with pytest.raises(InvalidArgumentError, match=needle):
        cluster.platform(**kwargs)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (401, PermissionDeniedError),
        (403, PermissionDeniedError),
        (500, PlatformError),
        (503, BackendUnavailableError),
    ],
)
def test_api_errors_are_translated(cluster: Cluster, code: int, error: type[Exception]) -> None:
    seed_helm(cluster.server, 1)
    cluster.server.faults.fail_next(1, code, methods={"GET"})
    with pytest.raises(error) as info:
        cluster.platform(namespace="datadog").agents()
    assert f"HTTP {code}" in str(info.value)
    assert "list pods in namespace datadog" in str(info.value)
    assert info.value.__cause__ is not None  # chained from the ApiException


def test_unreachable_api_server_is_backend_unavailable(tmp_path: Path) -> None:
    from kubernetes import client

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    configuration.retries = 0
    api = client.ApiClient(configuration)
    with pytest.raises(BackendUnavailableError, match="did not answer"):
        KubernetesPlatform(client=api).agents()


def test_kubeconfig_and_context_are_used(cluster: Cluster, tmp_path: Path) -> None:
    seed_helm(cluster.server, 1)
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        f"""\
apiVersion: v1
kind: Config
clusters:
- name: wpk8s
  cluster: {{server: "{cluster.server.url}"}}
- name: elsewhere
  cluster: {{server: "http://127.0.0.1:9"}}
users:
- name: wpk8s-user
  user: {{token: not-a-real-token}}
contexts:
- name: wpk8s
  context: {{cluster: wpk8s, user: wpk8s-user}}
- name: broken
  context: {{cluster: elsewhere, user: wpk8s-user}}
current-context: broken
"""
    )
    agents = KubernetesPlatform(kubeconfig=kubeconfig, context="wpk8s").agents()
    assert len(agents) == 1
    with pytest.raises(BackendUnavailableError, match="context 'nope'"):
        KubernetesPlatform(kubeconfig=kubeconfig, context="nope").agents()


def test_no_configuration_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(BackendUnavailableError, match="not running in a cluster"):
        KubernetesPlatform().agents()


def test_hung_api_server_is_backend_unavailable(cluster: Cluster) -> None:
    seed_helm(cluster.server, 1)
    # urllib3 retries a timed-out GET (3 times by default): every attempt hangs
    cluster.server.faults.hang_next(4, methods={"GET"})
    platform = cluster.platform(namespace="datadog", timeout=0.3)
    with pytest.raises(BackendUnavailableError, match="did not answer"):
        platform.agents()
    assert len(platform.agents()) == 1


@pytest.mark.parametrize("bad", [0, -1, True, "5"])
def test_timeout_is_validated(cluster: Cluster, bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="timeout must be"):
        cluster.platform(timeout=bad)


def test_current_context_of_a_written_kubeconfig(tmp_path: Path) -> None:
    with running_cluster() as (server, _):
        seed_operator(server, 2)
        kubeconfig = write_kubeconfig(server, tmp_path / "kubeconfig")
        assert len(KubernetesPlatform(kubeconfig=kubeconfig).agents()) == 2
