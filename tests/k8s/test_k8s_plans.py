"""Settings plans on a cluster: DaemonSet env patches and DatadogAgent patches."""

from __future__ import annotations

from typing import Any

import pytest

from tests.k8s.conftest import Cluster
from tests.k8s_server import seed_helm, seed_operator
from wpprotect.errors import PlanApplyError, PlanUndoError, PlatformError, RemoteConflictError
from wpprotect.platforms._k8s_changes import MAX_ATTEMPTS, DaemonSetEnvChange

API_KEY = "0123456789abcdef0123456789abcdef"  # a fake key shaped like a real one (32 hex)
ENABLED = "DD_RUNTIME_SECURITY_CONFIG_ENABLED"
NETWORK = "DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED"
PRIORITY = "DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY"
FIM = "DD_RUNTIME_SECURITY_CONFIG_FIM_ENABLED"
HOST_DUMP = "DD_RUNTIME_SECURITY_CONFIG_SECURITY_PROFILE_V2_HOST_DUMP_ENABLED"


def env_of(cluster: Cluster, container: str, name: str = "datadog-agent") -> dict[str, Any]:
    ds = cluster.server.get("daemonsets", "datadog", name)
    (c,) = [c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == container]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env") or []}


def patches(cluster: Cluster) -> list[str]:
    return [ctype for method, _, ctype in cluster.server.requests if method == "PATCH"]


@pytest.fixture
def helm(cluster: Cluster) -> Cluster:
    # a literal API key on the system-probe container: it must never show in a diff
    seed_helm(
        cluster.server,
        3,
        extra_env={"system-probe": [{"name": "DD_API_KEY", "value": API_KEY}]},
    )
    return cluster


def test_disable_plan_diff_apply_verify_undo(helm: Cluster) -> None:
    before_sp, before_sa = env_of(helm, "system-probe"), env_of(helm, "security-agent")
    rv_before = helm.server.get("daemonsets", "datadog", "datadog-agent")["metadata"][
        "resourceVersion"
    ]
    plan = helm.platform(namespace="datadog").disable()
    assert [c.target for c in plan.changes] == ["daemonset/datadog/datadog-agent"]
    diff = plan.diff()
    assert f'+  {ENABLED}="false"' in diff  # added on system-probe
    assert f'-  {ENABLED}="true"' in diff  # updated in place on security-agent
    assert API_KEY not in diff
    assert API_KEY not in repr(plan.to_dict())
    assert "DD_API_KEY=********" in diff
    # Helm: the next helm upgrade would revert it, say where the values change goes
    assert any("datadog.securityAgent.runtime.enabled: false" in n for n in plan.notes)
    assert (
        helm.server.get("daemonsets", "datadog", "datadog-agent")["metadata"]["resourceVersion"]
        == rv_before
    )  # planning wrote nothing

    # the settings that would keep it on, as env vars (they beat any mounted YAML)
    assert f'+  {FIM}="false"' in diff
    assert f'+  {HOST_DUMP}="false"' in diff
    plan.apply()
    assert env_of(helm, "system-probe")[ENABLED] == "false"
    assert env_of(helm, "security-agent")[ENABLED] == "false"
    assert env_of(helm, "system-probe")[FIM] == env_of(helm, "system-probe")[HOST_DUMP] == "false"
    assert FIM not in env_of(helm, "security-agent")
    assert list(env_of(helm, "security-agent")) == list(before_sa)  # updated in place
    assert patches(helm) == ["application/strategic-merge-patch+json"]
    assert plan.is_satisfied()
    assert helm.platform(namespace="datadog").disable().pending() == []

    plan.undo()
    assert env_of(helm, "system-probe") == before_sp
    assert env_of(helm, "security-agent") == before_sa


def test_classifier_priority_goes_on_system_probe_only(helm: Cluster) -> None:
    plan = helm.platform().set_classifier_priority(4)
    plan.apply()
    assert env_of(helm, "system-probe")[PRIORITY] == "4"
    assert PRIORITY not in env_of(helm, "security-agent")
    plan.undo()
    assert PRIORITY not in env_of(helm, "system-probe")


def test_one_conflict_then_retry_keeps_the_other_writer(helm: Cluster) -> None:
    plan = helm.platform().disable("network")
    helm.server.faults.concurrent_write(1, "daemonsets", "datadog", "datadog-agent")
    plan.apply()
    ds = helm.server.get("daemonsets", "datadog", "datadog-agent")
    assert ds["metadata"]["annotations"]["wpk8s/touched"] == "1"  # the other write survived
    assert env_of(helm, "system-probe")[NETWORK] == "false"
    assert len(patches(helm)) == 2  # 409, then re-read, recompute, re-patch


def test_persistent_conflict_changes_nothing(helm: Cluster) -> None:
    before = env_of(helm, "system-probe"), env_of(helm, "security-agent")
    plan = helm.platform().disable()
    helm.server.faults.concurrent_write(100, "daemonsets", "datadog", "datadog-agent")
    with pytest.raises(PlanApplyError) as info:
        plan.apply()
    assert isinstance(info.value.__cause__, RemoteConflictError)
    assert f"409 Conflict on {MAX_ATTEMPTS} attempts" in str(info.value)
    assert (env_of(helm, "system-probe"), env_of(helm, "security-agent")) == before
    assert plan.state == "rolled-back"
    # the change on its own raises the documented error
    change = plan.changes[0]
    assert isinstance(change, DaemonSetEnvChange)
    with pytest.raises(RemoteConflictError):
        change.apply()


def test_server_error_during_apply_is_clear_and_harmless(helm: Cluster) -> None:
    before = env_of(helm, "security-agent")
    plan = helm.platform().disable()
    helm.server.faults.fail_next(1, 500, methods={"PATCH"})
    with pytest.raises(PlanApplyError) as info:
        plan.apply()
    assert isinstance(info.value.__cause__, PlatformError)
    assert "HTTP 500" in str(info.value)
    assert "patch daemonset datadog/datadog-agent" in str(info.value)
    assert env_of(helm, "security-agent") == before
    plan.apply()  # the fault is gone: it works now
    assert env_of(helm, "security-agent")[ENABLED] == "false"


def test_undo_keeps_env_others_changed_meanwhile(helm: Cluster) -> None:
    plan = helm.platform().disable().apply()

    def add_var(ds: dict[str, Any]) -> None:
        for c in ds["spec"]["template"]["spec"]["containers"]:
            if c["name"] == "system-probe":
                c["env"].append({"name": "DD_LOG_FORMAT_JSON", "value": "true"})

    helm.server.modify("daemonsets", "datadog", "datadog-agent", add_var)
    plan.undo()
    assert env_of(helm, "system-probe")["DD_LOG_FORMAT_JSON"] == "true"
    assert ENABLED not in env_of(helm, "system-probe")
    with pytest.raises(PlanUndoError):
        plan.undo()


def test_value_from_is_replaced_and_restored(cluster: Cluster) -> None:
    ref = {"configMapKeyRef": {"name": "cws", "key": "enabled"}}
    seed_helm(
        cluster.server,
        1,
        extra_env={"system-probe": [{"name": ENABLED, "valueFrom": ref}]},
    )
    plan = cluster.platform().disable().apply()
    assert env_of(cluster, "system-probe")[ENABLED] == "false"
    plan.undo()
    assert env_of(cluster, "system-probe")[ENABLED] == ref


@pytest.mark.parametrize("owner_kind", ["DatadogAgent", "DatadogAgentInternal"])
def test_operator_network_disable_patches_the_datadogagent(
    cluster: Cluster, owner_kind: str
) -> None:
    dda, ds, _ = seed_operator(cluster.server, 3, owner_kind=owner_kind)
    plan = cluster.platform(namespace="datadog").disable("network")
    assert [c.target for c in plan.changes] == ["datadogagent/datadog/datadog"]
    assert any("Operator" in n for n in plan.notes)
    plan.apply()
    spec = cluster.server.get("datadogagents", "datadog", "datadog")["spec"]
    assert spec["features"]["cws"]["network"] == {"enabled": False}
    # the Operator never writes "false" env vars: the override carries it
    # (docs/reference/deployments.md#deploy-operator)
    assert spec["override"]["nodeAgent"]["containers"]["system-probe"]["env"] == [
        {"name": NETWORK, "value": "false"}
    ]
    assert patches(cluster) == ["application/merge-patch+json"]
    # the DaemonSet itself is left to the Operator
    assert cluster.server.get("daemonsets", "datadog", "datadog-agent") == ds
    plan.undo()
    assert cluster.server.get("datadogagents", "datadog", "datadog")["spec"] == dda["spec"]


def test_operator_conflict_retry(cluster: Cluster) -> None:
    seed_operator(cluster.server, 1)
    plan = cluster.platform().disable()
    cluster.server.faults.concurrent_write(2, "datadogagents", "datadog", "datadog")
    plan.apply()
    dda = cluster.server.get("datadogagents", "datadog", "datadog")
    assert dda["spec"]["features"]["cws"]["enabled"] is False
    assert dda["metadata"]["annotations"]["wpk8s/touched"] == "2"
    assert len(patches(cluster)) == 3


def test_pod_without_daemonset_cannot_be_planned(cluster: Cluster) -> None:
    _, pods = seed_helm(cluster.server, 1)

    def orphan(pod: dict[str, Any]) -> None:
        pod["metadata"]["ownerReferences"] = []

    cluster.server.modify("pods", "datadog", pods[0]["metadata"]["name"], orphan)
    with pytest.raises(PlatformError, match="not owned by a DaemonSet"):
        cluster.platform().disable()


def test_injected_409_is_retried(helm: Cluster) -> None:
    plan = helm.platform().set_classifier_priority(3)
    helm.server.faults.fail_next(2, 409, methods={"PATCH"})
    plan.apply()
    assert env_of(helm, "system-probe")[PRIORITY] == "3"
    assert len(patches(helm)) == 3


def test_datadogagent_diff_never_shows_secrets(cluster: Cluster) -> None:
    seed_operator(cluster.server, 1)

    def add_secrets(dda: dict[str, Any]) -> None:
        dda["spec"]["global"]["credentials"] = {"apiKey": API_KEY, "appKey": API_KEY + "abcdefgh"}
        dda["spec"]["override"] = {
            "nodeAgent": {
                "containers": {"system-probe": {"env": [{"name": "DD_API_KEY", "value": API_KEY}]}}
            }
        }

    cluster.server.modify("datadogagents", "datadog", "datadog", add_secrets)
    plan = cluster.platform().disable("network")
    diff = plan.diff()
    assert NETWORK in diff
    assert API_KEY not in diff
    assert API_KEY not in repr(plan.to_dict())
    assert API_KEY not in repr(plan)
    plan.apply()
    env = cluster.server.get("datadogagents", "datadog", "datadog")["spec"]["override"][
        "nodeAgent"
    ]["containers"]["system-probe"]["env"]
    # the override list was extended, the key entry kept as it was
    assert env == [{"name": "DD_API_KEY", "value": API_KEY}, {"name": NETWORK, "value": "false"}]
    plan.undo()
    env = cluster.server.get("datadogagents", "datadog", "datadog")["spec"]["override"][
        "nodeAgent"
    ]["containers"]["system-probe"]["env"]
    assert env == [{"name": "DD_API_KEY", "value": API_KEY}]


def test_plan_data_methods_ask_the_api_nothing(helm: Cluster) -> None:
    plan = helm.platform(namespace="datadog").disable()
    asked = len(helm.server.requests)
    doc = plan.to_dict()
    plan.diff()
    repr(plan)
    plan._repr_html_()
    assert len(helm.server.requests) == asked  # no request to describe the plan
    assert [c["satisfied"] for c in doc["changes"]] == [None]  # not checked yet: unknown
    assert not plan.is_satisfied()
    assert [c["satisfied"] for c in plan.to_dict()["changes"]] == [False]
    plan.apply()
    assert [c["satisfied"] for c in plan.to_dict()["changes"]] == [True]
    plan.undo()
    assert [c["satisfied"] for c in plan.to_dict()["changes"]] == [None]  # stale: forgotten
