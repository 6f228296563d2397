"""Edit functions on plain dicts (as from the API server) and on round-trip documents."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from tests.config_plans import manifests
from wpprotect.config import CLASSIFIER_PRIORITY, CWS_ENABLED, NETWORK_ENABLED, ConfigEditor
from wpprotect.config._surfaces import (
    edit_daemonset,
    edit_datadogagent,
    edit_helm_values,
    edit_host_file,
    env_changes,
    read_daemonset,
    read_datadogagent,
    read_helm_values,
)
from wpprotect.errors import ConfigStructureError, InvalidArgumentError

ENV_PRIO = "DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY"


def as_json(text: str) -> dict[str, Any]:
    """A manifest as the API server would hand it over: plain JSON types."""
    doc: dict[str, Any] = json.loads(json.dumps(yaml.safe_load(text)))
    return doc


def env_of(ds: dict[str, Any], container: str) -> list[dict[str, Any]]:
    for c in ds["spec"]["template"]["spec"]["containers"]:
        if c["name"] == container:
            env: list[dict[str, Any]] = c.get("env", [])
            return env
    raise AssertionError(container)


def names(env: list[dict[str, Any]]) -> list[str]:
    return [e["name"] for e in env]


# --- host files ------------------------------------------------------------------------------


def test_host_file_on_a_plain_dict_creates_parents() -> None:
    doc: dict[str, Any] = {"system_probe_config": {"enabled": True}}
    assert edit_host_file(doc, "system-probe.yaml", {NETWORK_ENABLED: False}) is True
    assert doc["runtime_security_config"] == {"network": {"enabled": False}}
    assert edit_host_file(doc, "system-probe.yaml", {NETWORK_ENABLED: False}) is False


def test_host_file_updates_every_spelling_present() -> None:
    doc: dict[str, Any] = {
        "runtime_security_config": {"network": {"classifier_priority": 8}},
        "event_monitoring_config": {"network": {"classifier_priority": 9}},
    }
    assert edit_host_file(doc, "system-probe.yaml", {CLASSIFIER_PRIORITY: 4})
    assert doc["runtime_security_config"]["network"]["classifier_priority"] == 4
    assert doc["event_monitoring_config"]["network"]["classifier_priority"] == 4


def test_host_file_keeps_the_users_modern_key() -> None:
    doc: dict[str, Any] = {"event_monitoring_config": {"network": {"classifier_priority": 9}}}
    assert edit_host_file(doc, "system-probe.yaml", {CLASSIFIER_PRIORITY: 4})
    assert doc == {"event_monitoring_config": {"network": {"classifier_priority": 4}}}


def test_host_file_replaces_a_string_boolean() -> None:
    doc: dict[str, Any] = {"runtime_security_config": {"enabled": "false"}}
    assert edit_host_file(doc, "security-agent.yaml", {CWS_ENABLED: False}) is True
    assert doc["runtime_security_config"]["enabled"] is False


def test_host_file_refuses_a_setting_it_does_not_carry() -> None:
    with pytest.raises(InvalidArgumentError, match=r"system-probe\.yaml, not security-agent\.yaml"):
        edit_host_file({}, "security-agent.yaml", {NETWORK_ENABLED: False})
    with pytest.raises(InvalidArgumentError, match="unknown host file"):
        edit_host_file({}, "datadog.yaml", {CWS_ENABLED: False})


def test_host_file_path_through_a_scalar_is_a_structure_error() -> None:
    with pytest.raises(ConfigStructureError, match="runtime_security_config is a str"):
        edit_host_file({"runtime_security_config": "on"}, "system-probe.yaml", {CWS_ENABLED: False})


# --- Helm values -----------------------------------------------------------------------------


def test_helm_values_on_a_small_dict() -> None:
    doc: dict[str, Any] = {"datadog": {"apiKeyExistingSecret": "dd"}}
    assert edit_helm_values(doc, {CWS_ENABLED: False, CLASSIFIER_PRIORITY: 4})
    assert doc["datadog"]["securityAgent"]["runtime"]["enabled"] is False
    assert doc["agents"]["containers"]["systemProbe"]["env"] == [{"name": ENV_PRIO, "value": "4"}]
    values = read_helm_values(doc)
    assert values[CWS_ENABLED] is False
    assert values[CLASSIFIER_PRIORITY] == 4
    assert values[NETWORK_ENABLED] is True  # the chart's default


def test_helm_priority_updates_an_existing_entry_or_envdict() -> None:
    doc: dict[str, Any] = {
        "agents": {
            "containers": {
                "systemProbe": {
                    "env": [
                        {"name": "DD_LOG_LEVEL", "value": "debug"},
                        {
                            "name": "DD_EVENT_MONITORING_CONFIG_NETWORK_CLASSIFIER_PRIORITY",
                            "value": "9",
                        },
                    ]
                }
            }
        }
    }
    assert edit_helm_values(doc, {CLASSIFIER_PRIORITY: 3})
    env = doc["agents"]["containers"]["systemProbe"]["env"]
    assert len(env) == 2
    assert env[1]["value"] == "3"
    assert edit_helm_values(doc, {CLASSIFIER_PRIORITY: 3}) is False

    with_dict: dict[str, Any] = {
        "agents": {"containers": {"systemProbe": {"env": [], "envDict": {ENV_PRIO: "9"}}}}
    }
    assert edit_helm_values(with_dict, {CLASSIFIER_PRIORITY: 3})
    sp = with_dict["agents"]["containers"]["systemProbe"]
    assert sp == {"env": [], "envDict": {ENV_PRIO: "3"}}
    assert read_helm_values(with_dict)[CLASSIFIER_PRIORITY] == 3


def test_helm_disable_keeps_hand_written_env_consistent() -> None:
    doc: dict[str, Any] = {
        "datadog": {"securityAgent": {"runtime": {"enabled": True}}},
        "agents": {
            "containers": {
                "securityAgent": {
                    "env": [{"name": "DD_RUNTIME_SECURITY_CONFIG_ENABLED", "value": "true"}]
                }
            }
        },
    }
    assert edit_helm_values(doc, {CWS_ENABLED: False})
    assert doc["agents"]["containers"]["securityAgent"]["env"][0]["value"] == "false"
    assert "systemProbe" not in doc["agents"]["containers"]  # nothing added


# --- DatadogAgent ----------------------------------------------------------------------------


def test_datadogagent_disable() -> None:
    dda = as_json(manifests.DATADOG_AGENT)
    before = copy.deepcopy(dda)
    assert edit_datadogagent(dda, {CWS_ENABLED: False})
    before["spec"]["features"]["cws"]["enabled"] = False
    assert dda == before
    assert read_datadogagent(dda)[CWS_ENABLED] is False
    assert edit_datadogagent(dda, {CWS_ENABLED: False}) is False


def test_datadogagent_network_needs_the_override_env() -> None:
    dda = as_json(manifests.DATADOG_AGENT)
    assert read_datadogagent(dda)[NETWORK_ENABLED] is True
    dda["spec"]["features"]["cws"]["network"]["enabled"] = False
    # the field alone leaves the agent's default on: the Operator writes no "false" env var
    assert read_datadogagent(dda)[NETWORK_ENABLED] is True
    assert edit_datadogagent(dda, {NETWORK_ENABLED: False})
    env = dda["spec"]["override"]["nodeAgent"]["containers"]["system-probe"]["env"]
    assert env == [
        {"name": "DD_LOG_LEVEL", "value": "debug"},
        {"name": "DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED", "value": "false"},
    ]
    assert read_datadogagent(dda)[NETWORK_ENABLED] is False
    assert edit_datadogagent(dda, {NETWORK_ENABLED: False}) is False
    # turning it back on updates the override in place (an override replaces the feature's env)
    assert edit_datadogagent(dda, {NETWORK_ENABLED: True})
    assert env[1]["value"] == "true"
    assert len(env) == 2
    assert read_datadogagent(dda)[NETWORK_ENABLED] is True


def test_datadogagent_priority_creates_the_override() -> None:
    dda = as_json(manifests.DATADOG_AGENT_BARE)
    assert edit_datadogagent(dda, {CLASSIFIER_PRIORITY: 4})
    assert dda["spec"]["override"] == {
        "nodeAgent": {"containers": {"system-probe": {"env": [{"name": ENV_PRIO, "value": "4"}]}}}
    }
    assert read_datadogagent(dda)[CLASSIFIER_PRIORITY] == 4
    assert edit_datadogagent(dda, {CLASSIFIER_PRIORITY: 4}) is False
    assert edit_datadogagent(dda, {CLASSIFIER_PRIORITY: 5})
    assert dda["spec"]["override"]["nodeAgent"]["containers"]["system-probe"]["env"] == [
        {"name": ENV_PRIO, "value": "5"}
    ]


def test_datadogagent_updates_component_and_global_env() -> None:
    dda = as_json(manifests.DATADOG_AGENT_BARE)
    dda["spec"]["global"] = {"env": [{"name": ENV_PRIO, "value": "9"}]}
    assert edit_datadogagent(dda, {CLASSIFIER_PRIORITY: 4})
    assert dda["spec"]["global"]["env"] == [{"name": ENV_PRIO, "value": "4"}]


def test_datadogagent_v1alpha1_is_refused() -> None:
    dda = as_json(manifests.DATADOG_AGENT)
    dda["apiVersion"] = "datadoghq.com/v1alpha1"
    with pytest.raises(ConfigStructureError, match="v2alpha1"):
        edit_datadogagent(dda, {CWS_ENABLED: False})


def test_wrong_kind_is_refused() -> None:
    with pytest.raises(ConfigStructureError, match="expected a DatadogAgent"):
        edit_datadogagent(as_json(manifests.DAEMONSET_HELM), {CWS_ENABLED: False})
    with pytest.raises(ConfigStructureError, match="expected a DaemonSet"):
        edit_daemonset(as_json(manifests.DATADOG_AGENT), {CWS_ENABLED: False})


# --- DaemonSet -------------------------------------------------------------------------------


def test_daemonset_disable_sets_both_containers_without_duplicates() -> None:
    ds = as_json(manifests.DAEMONSET_HELM)
    assert edit_daemonset(ds, {CWS_ENABLED: False})
    sp, sa = env_of(ds, "system-probe"), env_of(ds, "security-agent")
    assert sp[-1] == {"name": "DD_RUNTIME_SECURITY_CONFIG_ENABLED", "value": "false"}
    assert names(sa) == [
        "DD_LOG_LEVEL",
        "DD_RUNTIME_SECURITY_CONFIG_ENABLED",
        "DD_RUNTIME_SECURITY_CONFIG_POLICIES_DIR",
        "DD_RUNTIME_SECURITY_CONFIG_SOCKET",
    ]
    assert sa[1]["value"] == "false"  # updated in place
    assert env_of(ds, "agent") == env_of(as_json(manifests.DAEMONSET_HELM), "agent")
    values = read_daemonset(ds)
    assert values["system-probe"][CWS_ENABLED] is False
    assert values["security-agent"][CWS_ENABLED] is False
    assert edit_daemonset(ds, {CWS_ENABLED: False}) is False


def test_daemonset_operator_env_updated_everywhere_it_is() -> None:
    ds = as_json(manifests.DAEMONSET_OPERATOR)
    before = copy.deepcopy(ds)
    assert edit_daemonset(ds, {CWS_ENABLED: False, NETWORK_ENABLED: False})
    for c in ("agent", "system-probe", "security-agent"):
        assert len(env_of(ds, c)) == len(env_of(before, c)), c
        for e in env_of(ds, c):
            if e["name"] in (
                "DD_RUNTIME_SECURITY_CONFIG_ENABLED",
                "DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED",
            ):
                assert e["value"] == "false", (c, e)


def test_daemonset_priority_only_on_system_probe() -> None:
    ds = as_json(manifests.DAEMONSET_HELM)
    assert edit_daemonset(ds, {CLASSIFIER_PRIORITY: 4})
    assert env_of(ds, "system-probe")[-1] == {"name": ENV_PRIO, "value": "4"}
    assert ENV_PRIO not in names(env_of(ds, "security-agent"))
    assert read_daemonset(ds)["system-probe"][CLASSIFIER_PRIORITY] == 4


def test_daemonset_value_from_is_replaced_by_a_value() -> None:
    ds = as_json(manifests.DAEMONSET_HELM)
    env_of(ds, "system-probe").append(
        {"name": ENV_PRIO, "valueFrom": {"configMapKeyRef": {"name": "x", "key": "p"}}}
    )
    assert read_daemonset(ds)["system-probe"][CLASSIFIER_PRIORITY] is None  # not knowable
    assert edit_daemonset(ds, {CLASSIFIER_PRIORITY: 4})
    assert env_of(ds, "system-probe")[-1] == {"name": ENV_PRIO, "value": "4"}


def test_daemonset_container_without_env_gets_one() -> None:
    ds = as_json(manifests.DAEMONSET_HELM)
    for c in ds["spec"]["template"]["spec"]["containers"]:
        c.pop("env", None)
    assert edit_daemonset(ds, {CLASSIFIER_PRIORITY: 2})
    assert env_of(ds, "system-probe") == [{"name": ENV_PRIO, "value": "2"}]


def test_daemonset_without_the_containers_names_what_it_has() -> None:
    ds = as_json(manifests.DAEMONSET_HELM)
    ds["spec"]["template"]["spec"]["containers"] = [{"name": "agent"}, {"name": "trace-agent"}]
    with pytest.raises(
        ConfigStructureError, match=r"no system-probe container .*agent, trace-agent"
    ):
        edit_daemonset(ds, {NETWORK_ENABLED: False})


def test_new_entry_is_shaped_like_its_siblings() -> None:
    ed = ConfigEditor.from_text(manifests.DAEMONSET_HELM)
    assert edit_daemonset(ed, {CLASSIFIER_PRIORITY: 4})
    assert "            - name: HOST_ROOT\n              value: /host/root\n" in ed.text
    added = [ln for ln in ed.diff().splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    assert added == [
        f"+            - name: {ENV_PRIO}",
        '+              value: "4"',
    ]


# --- Docker ----------------------------------------------------------------------------------


def test_env_changes_for_one_shared_container() -> None:
    assert env_changes({CWS_ENABLED: False}) == {
        "system-probe": {"DD_RUNTIME_SECURITY_CONFIG_ENABLED": "false"},
        "security-agent": {"DD_RUNTIME_SECURITY_CONFIG_ENABLED": "false"},
    }
    assert env_changes({CLASSIFIER_PRIORITY: 4}) == {"system-probe": {ENV_PRIO: "4"}}


def test_env_changes_updates_the_name_viper_would_read() -> None:
    current = {"DD_EVENT_MONITORING_CONFIG_NETWORK_CLASSIFIER_PRIORITY": "10", "DD_API_KEY": "x"}
    assert env_changes({CLASSIFIER_PRIORITY: 4}, current) == {
        "system-probe": {"DD_EVENT_MONITORING_CONFIG_NETWORK_CLASSIFIER_PRIORITY": "4"}
    }
    with pytest.raises(InvalidArgumentError):
        env_changes({CLASSIFIER_PRIORITY: 70000})
