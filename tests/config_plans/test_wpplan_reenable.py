"""A workload-protection disable checked against every setting that can turn it back on:
``fim_enabled``, ``security_profile.v2.host_dump.enabled`` and the fleet policy layer
(docs/reference/agent-cli.md#cli-reenable). Each either shows up as a change in the same plan
or makes the plan refuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.config_plans.manifests import DAEMONSET_HELM, DATADOG_AGENT
from wpprotect.config import (
    CWS_ENABLED,
    FIM_ENABLED,
    FLEET_POLICY_FILE,
    HOST_DUMP_ENABLED,
    ConfigEditor,
    effective_settings,
    plan_disable,
)
from wpprotect.errors import ConfigOverriddenError

FIM_KEY = "runtime_security_config.fim_enabled"
DUMP_KEY = "runtime_security_config.security_profile.v2.host_dump.enabled"
FIM_ENV = "DD_RUNTIME_SECURITY_CONFIG_FIM_ENABLED"
DUMP_ENV = "DD_RUNTIME_SECURITY_CONFIG_SECURITY_PROFILE_V2_HOST_DUMP_ENABLED"
ON = "runtime_security_config:\n  enabled: true\n"


def host_dir(tmp_path: Path, sp: str, sa: str = ON) -> Path:
    d = tmp_path / "etc"
    d.mkdir(exist_ok=True)
    (d / "system-probe.yaml").write_text(sp)
    (d / "security-agent.yaml").write_text(sa)
    return d


def changed(diff: str) -> str:
    """Only the added and removed lines of a diff."""
    return "\n".join(
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )


def snapshot(*paths: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in paths}


# --- host files ----------------------------------------------------------------------------


def test_fim_enabled_is_turned_off_in_the_same_plan(tmp_path: Path) -> None:
    etc = host_dir(tmp_path, ON + "  fim_enabled: true  # FIM\n")
    plan = plan_disable(etc)
    diff = plan.diff()
    assert "-  fim_enabled: true  # FIM" in diff
    assert "+  fim_enabled: false  # FIM" in diff
    assert any(FIM_KEY in n and "turns it off too" in n for n in plan.notes)
    plan.apply()
    values = effective_settings(config_dir=etc)
    assert values["cws_enabled"].value is False
    assert values["fim_enabled"].value is False
    assert plan_disable(etc).is_satisfied()


def test_host_dump_is_turned_off_in_the_same_plan(tmp_path: Path) -> None:
    sp = ON + "  security_profile:\n    v2:\n      host_dump:\n        enabled: true\n"
    etc = host_dir(tmp_path, sp)
    plan = plan_disable(etc / "system-probe.yaml")
    assert "-        enabled: true" in plan.diff()
    assert "+        enabled: false" in plan.diff()
    assert any(DUMP_KEY in n for n in plan.notes)
    plan.apply()
    data = yaml.safe_load((etc / "system-probe.yaml").read_text())
    assert (
        data["runtime_security_config"]["security_profile"]["v2"]["host_dump"]["enabled"] is False
    )
    assert data["runtime_security_config"]["enabled"] is False


def test_settings_already_off_are_not_touched(tmp_path: Path) -> None:
    etc = host_dir(tmp_path, ON + "  fim_enabled: false\n")
    plan = plan_disable(etc)
    assert "fim_enabled" not in changed(plan.diff())
    assert "host_dump" not in changed(plan.diff())
    assert not any(FIM_KEY in n or DUMP_KEY in n for n in plan.notes)
    sp_change = next(c for c in plan.changes if c.target.endswith("system-probe.yaml"))
    assert list(sp_change.to_dict()["settings"]) == ["cws_enabled"]


def test_network_scope_leaves_them_alone(tmp_path: Path) -> None:
    etc = host_dir(tmp_path, ON + "  fim_enabled: true\n")
    assert "fim_enabled" not in changed(plan_disable(etc, scope="network").diff())


def test_security_agent_yaml_alone_says_where_they_live(tmp_path: Path) -> None:
    etc = host_dir(tmp_path, ON + "  fim_enabled: true\n")
    plan = plan_disable(etc / "security-agent.yaml")
    assert any("plan system-probe.yaml too" in n for n in plan.notes)


def test_upstream_example_with_fim_on(tmp_path: Path, upstream: Path) -> None:
    # the shipped system-probe.yaml.example with CWS and FIM turned on in place, as a user does
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("system-probe.yaml", "security-agent.yaml"):
        ed = ConfigEditor.from_text(
            (upstream / "datadog-agent" / f"{name}.example").read_text(), etc / name
        )
        ed.set("runtime_security_config.enabled", True)
        if name == "system-probe.yaml":
            ed.set(FIM_KEY, True)
        (etc / name).write_text(ed.text)
    assert effective_settings(config_dir=etc)["fim_enabled"].value is True
    plan = plan_disable(etc)
    assert "+  fim_enabled: false" in plan.diff()
    plan.apply()
    values = effective_settings(config_dir=etc)
    assert (values["cws_enabled"].value, values["fim_enabled"].value) == (False, False)
    assert (
        "## Set to true to enable the File Integrity Monitoring"
        in (etc / "system-probe.yaml").read_text()
    )


# --- the fleet policy layer ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "key"),
    [
        (ON, "runtime_security_config.enabled"),
        ("runtime_security_config:\n  fim_enabled: true\n", FIM_KEY),
        (
            "runtime_security_config:\n  security_profile:\n    v2:\n      host_dump:\n"
            "        enabled: 'true'\n",
            DUMP_KEY,
        ),
    ],
)
def test_a_fleet_policy_that_keeps_it_on_makes_the_plan_refuse(
    tmp_path: Path, policy: str, key: str
) -> None:
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "system-probe.yaml").write_text(policy)
    etc = host_dir(tmp_path, f"fleet_policies_dir: {fleet}\n" + ON)
    before = snapshot(etc / "system-probe.yaml", etc / "security-agent.yaml")
    with pytest.raises(ConfigOverriddenError) as info:
        plan_disable(etc)
    message = str(info.value)
    assert str(fleet / "system-probe.yaml") in message
    assert key in message
    assert "no effect" in message
    assert snapshot(*before) == before


def test_a_fleet_policy_that_keeps_it_off_is_reported(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "system-probe.yaml").write_text("runtime_security_config:\n  enabled: false\n")
    etc = host_dir(tmp_path, f"fleet_policies_dir: {fleet}\n" + ON)
    plan = plan_disable(etc)
    assert any("does not turn it back on" in n for n in plan.notes)
    assert "+  enabled: false" in plan.diff()


def test_a_configured_but_empty_fleet_directory_is_a_warning(tmp_path: Path) -> None:
    etc = host_dir(tmp_path, f"fleet_policies_dir: {tmp_path / 'none'}\n" + ON)
    plan = plan_disable(etc)
    assert any("a policy written later" in n for n in plan.notes)


def test_effective_settings_name_the_fleet_policy_layer(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "system-probe.yaml").write_text(ON + "  fim_enabled: true\n")
    etc = host_dir(tmp_path, "runtime_security_config:\n  enabled: false\n")
    # DD_FLEET_POLICIES_DIR names it; the fleet value beats the file and the env var
    env = {"DD_FLEET_POLICIES_DIR": str(fleet), "DD_RUNTIME_SECURITY_CONFIG_ENABLED": "false"}
    values = effective_settings(config_dir=etc, env=env)
    cws = values["cws_enabled"]
    assert cws.value is True
    assert cws.from_fleet_policy
    assert cws.source == f"fleet-policy {fleet / 'system-probe.yaml'}"
    assert [(s.source, s.value) for s in cws.shadowed] == [
        ("env DD_RUNTIME_SECURITY_CONFIG_ENABLED", False),
        (str(etc / "system-probe.yaml"), False),
    ]
    assert any("fleet policy layer" in n for n in cws.notes)
    assert values["fim_enabled"].from_fleet_policy
    assert values["fim_enabled"].value is True
    assert not values["network_enabled"].from_fleet_policy
    # without the directory setting, no fleet layer
    plain = effective_settings(config_dir=etc)
    assert plain["cws_enabled"].value is False
    assert not plain["cws_enabled"].from_fleet_policy
    # given explicitly (e.g. read out of a container)
    given = effective_settings(
        files={"system-probe.yaml": {}, FLEET_POLICY_FILE: fleet / "system-probe.yaml"}
    )
    assert given["cws_enabled"].from_fleet_policy
    assert given["cws_enabled"].value is True


# --- Kubernetes surfaces -------------------------------------------------------------------


@pytest.fixture
def helm_values_on(upstream: Path, tmp_path: Path) -> Path:
    """The chart's values.yaml (3.240.0) with CWS on (line 1306)."""
    lines = (upstream / "helm-charts" / "values.yaml").read_text().splitlines(keepends=True)
    assert lines[1305] == "      enabled: false\n"
    lines[1305] = "      enabled: true\n"
    p = tmp_path / "values.yaml"
    p.write_text("".join(lines))
    return p


def test_helm_values_env_entry_is_turned_off(helm_values_on: Path) -> None:
    ed = ConfigEditor.load(helm_values_on)
    ed.set("agents.containers.systemProbe.env", [{"name": FIM_ENV, "value": "true"}])
    ed.save(backup=False)
    plan = plan_disable(helm_values_on)
    diff = plan.diff()
    assert "-      enabled: true" in diff
    assert "+      enabled: false" in diff
    assert changed(diff).splitlines() == [
        "-      enabled: true",
        "+      enabled: false",
        '-          value: "true"',
        '+          value: "false"',
    ]
    assert DUMP_ENV not in diff  # off by default: not added
    plan.apply()
    data = yaml.safe_load(helm_values_on.read_text())
    assert data["agents"]["containers"]["systemProbe"]["env"] == [
        {"name": FIM_ENV, "value": "false"}
    ]


def test_helm_values_without_them_change_one_line(helm_values_on: Path) -> None:
    plan = plan_disable(helm_values_on)
    assert changed(plan.diff()).splitlines() == ["-      enabled: true", "+      enabled: false"]


def _json_file(tmp_path: Path, name: str, doc: dict[str, Any]) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc, indent=2) + "\n")
    return p


def test_datadogagent_override_env_is_turned_off(tmp_path: Path) -> None:
    doc = yaml.safe_load(DATADOG_AGENT)
    doc["spec"]["override"]["nodeAgent"]["containers"]["system-probe"]["env"].append(
        {"name": DUMP_ENV, "value": "true"}
    )
    p = _json_file(tmp_path, "dda.json", doc)
    plan = plan_disable(p)
    assert DUMP_ENV in plan.diff()
    plan.apply()
    after = json.loads(p.read_text())
    assert after["spec"]["features"]["cws"]["enabled"] is False
    env = after["spec"]["override"]["nodeAgent"]["containers"]["system-probe"]["env"]
    assert {"name": DUMP_ENV, "value": "false"} in env
    assert not any(e["name"] == FIM_ENV for e in env)


@pytest.mark.parametrize(
    "entry",
    [
        {"name": FIM_ENV, "value": "true"},
        # a valueFrom cannot be read from the manifest: it is replaced by "false"
        {"name": FIM_ENV, "valueFrom": {"configMapKeyRef": {"name": "cws", "key": "fim"}}},
    ],
)
def test_daemonset_system_probe_env_is_turned_off(tmp_path: Path, entry: dict[str, Any]) -> None:
    doc = yaml.safe_load(DAEMONSET_HELM)
    sp = next(
        c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == "system-probe"
    )
    sp.setdefault("env", []).append(entry)
    p = _json_file(tmp_path, "ds.json", doc)
    plan = plan_disable(p)
    assert FIM_ENV in plan.diff()
    note = next(n for n in plan.notes if FIM_KEY in n)
    assert ("is true" in note) is ("value" in entry)
    plan.apply()
    after = json.loads(p.read_text())
    sp = next(
        c for c in after["spec"]["template"]["spec"]["containers"] if c["name"] == "system-probe"
    )
    assert {"name": FIM_ENV, "value": "false"} in sp["env"]


def test_the_settings_table_reads_them() -> None:
    assert CWS_ENABLED.write_key == "runtime_security_config.enabled"
    assert FIM_ENABLED.write_env == FIM_ENV
    assert HOST_DUMP_ENABLED.write_env == DUMP_ENV
