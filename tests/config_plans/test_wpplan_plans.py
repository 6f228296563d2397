"""File plans on real upstream files and realistic manifests: diffs, apply, verify, undo."""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.config_plans import manifests
from wpprotect.config import (
    CLASSIFIER_PRIORITY,
    CWS_ENABLED,
    NETWORK_ENABLED,
    TargetKind,
    detect_kind,
    effective_value,
    plan_classifier_priority,
    plan_disable,
)
from wpprotect.config._plans import FileChange, host_dir_changes, settings_plan
from wpprotect.errors import (
    ConfigFileError,
    InvalidArgumentError,
    PlanApplyError,
    PlanUndoError,
    PlanVerifyError,
    TargetKindError,
)
from wpprotect.plan import Change

ENV_PRIO = "DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY"
SP_ON = """\
# system-probe for CWS
runtime_security_config:
  enabled: true   # turned on by ops
  socket: /opt/datadog-agent/run/runtime-security.sock
"""
SA_ON = "runtime_security_config:\n  enabled: true\ncompliance_config:\n  enabled: false\n"


def changed_lines(diff: str) -> tuple[list[str], list[str]]:
    lines = diff.splitlines()
    removed = [ln[1:] for ln in lines if ln.startswith("-") and not ln.startswith("---")]
    added = [ln[1:] for ln in lines if ln.startswith("+") and not ln.startswith("+++")]
    return removed, added


def host_dir(tmp_path: Path, sp: str | None = SP_ON, sa: str | None = SA_ON) -> Path:
    d = tmp_path / "etc-datadog-agent"
    d.mkdir()
    if sp is not None:
        (d / "system-probe.yaml").write_text(sp)
    if sa is not None:
        (d / "security-agent.yaml").write_text(sa)
    return d


def pyyaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# --- the real Helm values --------------------------------------------------------------------


@pytest.fixture
def helm_values(upstream: Path, tmp_path: Path) -> Path:
    """values.yaml of chart 3.240.0 with CWS on, as a user running CWS has it (line 1306)."""
    lines = (upstream / "helm-charts" / "values.yaml").read_text().splitlines(keepends=True)
    assert lines[1305] == "      enabled: false\n"
    assert "datadog.securityAgent.runtime.enabled" in lines[1304]
    lines[1305] = "      enabled: true\n"
    p = tmp_path / "values.yaml"
    p.write_text("".join(lines))
    return p


def only_replaced(before: str, after: str) -> list[tuple[list[str], list[str]]]:
    """Each non-equal block of a line diff: (old lines, new lines)."""
    a, b = before.splitlines(), after.splitlines()
    sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    return [(a[i1:i2], b[j1:j2]) for op, i1, i2, j1, j2 in sm.get_opcodes() if op != "equal"]


def test_helm_disable_changes_one_line(helm_values: Path) -> None:
    before = helm_values.read_text()
    assert detect_kind(helm_values) is TargetKind.HELM_VALUES
    plan = plan_disable(helm_values)
    assert changed_lines(plan.diff()) == (["      enabled: true"], ["      enabled: false"])
    plan.apply()
    assert only_replaced(before, helm_values.read_text()) == [
        (["      enabled: true"], ["      enabled: false"])
    ]
    assert pyyaml(helm_values)["datadog"]["securityAgent"]["runtime"]["enabled"] is False
    assert any("helm upgrade" in n for n in plan.notes)


def test_helm_network_changes_one_line(helm_values: Path) -> None:
    before = helm_values.read_text()
    plan = plan_disable(helm_values, scope="network")
    assert changed_lines(plan.diff()) == (["        enabled: true"], ["        enabled: false"])
    plan.apply()
    assert len(only_replaced(before, helm_values.read_text())) == 1
    runtime = pyyaml(helm_values)["datadog"]["securityAgent"]["runtime"]
    assert runtime["network"]["enabled"] is False
    assert runtime["enabled"] is True


def test_helm_priority_adds_one_env_entry(helm_values: Path) -> None:
    before_text = helm_values.read_text()
    before = yaml.safe_load(before_text)
    plan = plan_classifier_priority(helm_values, 4)
    removed, added = changed_lines(plan.diff())
    assert removed == ["      env: []"]
    assert added[0] == "      env:"
    assert len(added) == 3
    assert ENV_PRIO in added[1]
    assert '"4"' in added[2]
    assert any("no values key for the classifier priority" in n for n in plan.notes)
    plan.apply()
    after_text = helm_values.read_text()
    assert len(only_replaced(before_text, after_text)) == 1
    after = yaml.safe_load(after_text)
    assert after["agents"]["containers"]["systemProbe"]["env"] == [{"name": ENV_PRIO, "value": "4"}]
    before["agents"]["containers"]["systemProbe"]["env"] = after["agents"]["containers"][
        "systemProbe"
    ]["env"]
    assert after == before  # nothing else moved
    assert plan_classifier_priority(helm_values, 4).is_satisfied()


# --- the agent's example files ---------------------------------------------------------------


@pytest.fixture
def example_dir(upstream: Path, tmp_path: Path) -> Path:
    d = tmp_path / "etc-datadog-agent"
    d.mkdir()
    shutil.copyfile(
        upstream / "datadog-agent" / "system-probe.yaml.example", d / "system-probe.yaml"
    )
    shutil.copyfile(
        upstream / "datadog-agent" / "security-agent.yaml.example", d / "security-agent.yaml"
    )
    return d


def doc_comment_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.lstrip().startswith("##")]


def test_example_files_disable(example_dir: Path) -> None:
    files = [example_dir / "system-probe.yaml", example_dir / "security-agent.yaml"]
    before = {f: f.read_text() for f in files}
    assert all(pyyaml(f) is None for f in files)  # every key commented out
    plan = plan_disable(example_dir)
    assert [c.target for c in plan.changes] == [str(f) for f in files]
    plan.apply()
    for f in files:
        text = f.read_text()
        assert pyyaml(f) == {"runtime_security_config": {"enabled": False}}
        assert len(re.findall(r"^runtime_security_config:", text, re.MULTILINE)) == 1
        assert doc_comment_lines(text) == doc_comment_lines(before[f])
        assert len(doc_comment_lines(text)) > 10
    ev = effective_value(CWS_ENABLED, config_dir=example_dir)
    assert (ev.value, ev.source) == (False, str(files[0]))
    assert ev.notes == ()  # security-agent.yaml agrees


def test_example_file_network_and_priority(example_dir: Path) -> None:
    sp = example_dir / "system-probe.yaml"
    plan_disable(example_dir, scope="network").apply()
    plan = plan_classifier_priority(example_dir, 4)
    assert [c.target for c in plan.changes] == [str(sp)]  # security-agent.yaml untouched
    plan.apply()
    assert pyyaml(sp) == {
        "runtime_security_config": {"network": {"enabled": False, "classifier_priority": 4}}
    }
    assert effective_value(NETWORK_ENABLED, config_dir=example_dir).value is False
    assert effective_value(CLASSIFIER_PRIORITY, config_dir=example_dir).value == 4
    assert pyyaml(example_dir / "security-agent.yaml") is None


# --- host files ------------------------------------------------------------------------------


def test_deprecated_key_ends_with_the_new_value(tmp_path: Path) -> None:
    d = host_dir(
        tmp_path,
        sp="runtime_security_config:\n  network:\n    classifier_priority: 8  # below cilium\n",
        sa=None,
    )
    plan = plan_classifier_priority(d, 4)
    assert changed_lines(plan.diff()) == (
        ["    classifier_priority: 8  # below cilium"],
        ["    classifier_priority: 4  # below cilium"],
    )
    plan.apply()
    ev = effective_value(CLASSIFIER_PRIORITY, config_dir=d)
    assert (ev.value, ev.key) == (4, "runtime_security_config.network.classifier_priority")


def test_both_spellings_are_updated(tmp_path: Path) -> None:
    d = host_dir(
        tmp_path,
        sp="event_monitoring_config:\n  network:\n    classifier_priority: 9\n"
        "runtime_security_config:\n  network:\n    classifier_priority: 8\n",
        sa=None,
    )
    plan_classifier_priority(d / "system-probe.yaml", 3).apply()
    ev = effective_value(CLASSIFIER_PRIORITY, config_dir=d)
    assert ev.value == 3
    assert str(ev.shadowed[0]).endswith("classifier_priority: 3")
    assert ev.ignored == ()  # both spellings now agree


def test_host_dir_plan_has_two_changes_and_a_restart_note(tmp_path: Path) -> None:
    d = host_dir(tmp_path)
    plan = plan_disable(d)
    assert len(plan.changes) == 2
    assert all(isinstance(c, Change) for c in plan.changes)
    assert any("systemctl restart datadog-agent" in n for n in plan.notes)
    sp_removed, sp_added = changed_lines(plan.changes[0].diff())
    assert sp_removed == ["  enabled: true   # turned on by ops"]
    assert sp_added == ["  enabled: false   # turned on by ops"]
    json.dumps(plan.to_dict())
    plan.apply()
    assert pyyaml(d / "security-agent.yaml")["runtime_security_config"]["enabled"] is False
    assert [c.backup is not None and c.backup.exists() for c in plan.changes] == [True, True]  # type: ignore[attr-defined]


def test_rollback_when_the_second_file_cannot_be_written(tmp_path: Path) -> None:
    d = host_dir(tmp_path)
    sp = d / "system-probe.yaml"
    original = sp.read_bytes()
    plan = plan_disable(d)
    # between plan and apply, security-agent.yaml becomes a directory
    (d / "security-agent.yaml").unlink()
    (d / "security-agent.yaml").mkdir()
    with pytest.raises(PlanApplyError, match="rolled back") as info:
        plan.apply()
    assert "security-agent.yaml" in str(info.value)
    assert sp.read_bytes() == original
    assert plan.state == "rolled-back"


def test_rollback_when_the_second_file_changed_since_the_plan(tmp_path: Path) -> None:
    d = host_dir(tmp_path)
    sp, sa = d / "system-probe.yaml", d / "security-agent.yaml"
    original = sp.read_bytes()
    plan = plan_disable(d)
    sa.write_text(SA_ON + "# edited by someone else\n")
    with pytest.raises(PlanApplyError, match="changed after the plan was made"):
        plan.apply()
    assert sp.read_bytes() == original
    assert sa.read_text().endswith("# edited by someone else\n")


def test_satisfied_plan_changes_nothing(tmp_path: Path) -> None:
    d = host_dir(tmp_path)
    plan_disable(d).apply()
    files = sorted(d.iterdir())
    stats = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files}
    again = plan_disable(d)
    assert again.is_satisfied()
    assert again.diff() == ""
    again.apply()
    assert again.applied_changes == ()
    assert sorted(d.iterdir()) == files  # no new backup
    assert {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files} == stats


def test_undo_restores_bytes_mode_and_owner(tmp_path: Path) -> None:
    d = host_dir(tmp_path)
    sp = d / "system-probe.yaml"
    original = sp.read_bytes()
    os.chmod(sp, 0o640)
    if os.geteuid() == 0:
        os.chown(sp, 0, 4321)  # root (or dd-agent) may own it; others are refused
    owner = (sp.stat().st_uid, sp.stat().st_gid)
    plan = plan_disable(d)
    plan.apply()
    assert sp.read_bytes() != original
    assert (sp.stat().st_mode & 0o777, sp.stat().st_uid, sp.stat().st_gid) == (0o640, *owner)
    plan.undo()
    assert sp.read_bytes() == original
    assert (sp.stat().st_mode & 0o777, sp.stat().st_uid, sp.stat().st_gid) == (0o640, *owner)
    assert plan.state == "undone"


def test_verify_reads_the_file_back(tmp_path: Path) -> None:
    d = host_dir(tmp_path)
    plan = plan_disable(d)
    plan.apply()
    change = plan.changes[0]
    change.verify()
    (d / "system-probe.yaml").write_text(SP_ON)
    with pytest.raises(PlanVerifyError, match="cws_enabled reads True, planned False"):
        change.verify()


def test_undo_before_apply_is_refused(tmp_path: Path) -> None:
    change = host_dir_changes(host_dir(tmp_path), {CWS_ENABLED: False})[0]
    assert isinstance(change, FileChange)
    with pytest.raises(PlanUndoError, match="not applied"):
        change.undo()
    assert repr(change).startswith("<FileChange system-probe.yaml ")


def test_host_dir_changes_skip_missing_files_but_need_one(tmp_path: Path) -> None:
    only_sa = host_dir(tmp_path, sp=None)
    changes = host_dir_changes(only_sa, {CWS_ENABLED: False})
    assert [Path(c.target).name for c in changes] == ["security-agent.yaml"]
    with pytest.raises(ConfigFileError, match=r"system-probe\.yaml not found"):
        host_dir_changes(only_sa, {CLASSIFIER_PRIORITY: 4})


def test_single_file_plans(tmp_path: Path) -> None:
    d = host_dir(tmp_path)
    plan = plan_disable(d / "security-agent.yaml")
    assert any("plan system-probe.yaml too" in n for n in plan.notes)
    with pytest.raises(InvalidArgumentError, match=r"system-probe\.yaml, not security-agent\.yaml"):
        plan_disable(d / "security-agent.yaml", scope="network")
    with pytest.raises(InvalidArgumentError, match="kernel picks"):
        plan_classifier_priority(d, 0)
    with pytest.raises(InvalidArgumentError, match="valid scopes"):
        plan_disable(d, scope="everything")


def test_settings_plan_takes_several_settings(tmp_path: Path) -> None:
    d = host_dir(tmp_path)
    plan = settings_plan(d, {NETWORK_ENABLED: False, CLASSIFIER_PRIORITY: 3}, title="tune")
    assert plan.title == "tune"
    assert len(plan.changes) == 1
    plan.apply()
    assert effective_value(CLASSIFIER_PRIORITY, config_dir=d).value == 3
    assert effective_value(NETWORK_ENABLED, config_dir=d).value is False


def test_secrets_stay_out_of_diffs(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    secret = "0123456789abcdef0123456789abcdef"
    values.write_text(
        f"datadog:\n  apiKey: {secret}\n  securityAgent:\n    runtime:\n      enabled: true\n"
    )
    plan = plan_disable(values)
    assert "enabled: false" in plan.diff()
    assert secret not in plan.diff()
    assert secret not in json.dumps(plan.to_dict())


# --- manifests -------------------------------------------------------------------------------


def write_manifest(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_datadogagent_plans(tmp_path: Path) -> None:
    p = write_manifest(tmp_path, "datadog-agent.yaml", manifests.DATADOG_AGENT)
    assert detect_kind(p) is TargetKind.DATADOG_AGENT
    plan = plan_disable(p)
    assert changed_lines(plan.diff()) == (["      enabled: true"], ["      enabled: false"])
    plan.apply()
    assert pyyaml(p)["spec"]["features"]["cws"]["enabled"] is False
    assert plan_disable(p).is_satisfied()

    plan = plan_disable(p, scope="network")
    assert any("never writes a 'false' env var" in n for n in plan.notes)
    plan.apply()
    spec = pyyaml(p)["spec"]
    assert spec["features"]["cws"]["network"]["enabled"] is False
    assert spec["override"]["nodeAgent"]["containers"]["system-probe"]["env"] == [
        {"name": "DD_LOG_LEVEL", "value": "debug"},
        {"name": "DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED", "value": "false"},
    ]
    plan_classifier_priority(p, 4).apply()
    plan = plan_classifier_priority(p, 5)
    assert changed_lines(plan.diff()) == (
        ['              value: "4"'],
        ['              value: "5"'],
    )
    plan.apply()
    env = pyyaml(p)["spec"]["override"]["nodeAgent"]["containers"]["system-probe"]["env"]
    assert [e["name"] for e in env].count(ENV_PRIO) == 1


def test_helm_daemonset_plans(tmp_path: Path) -> None:
    p = write_manifest(tmp_path, "ds.yaml", manifests.DAEMONSET_HELM)
    assert detect_kind(p) is TargetKind.DAEMONSET
    plan = plan_disable(p)
    assert any("managed by Helm" in n for n in plan.notes)
    removed, added = changed_lines(plan.diff())
    assert removed == ['              value: "true"']
    assert added == [
        "            - name: DD_RUNTIME_SECURITY_CONFIG_ENABLED",
        '              value: "false"',
        '              value: "false"',
    ]
    plan.apply()
    containers = {c["name"]: c for c in pyyaml(p)["spec"]["template"]["spec"]["containers"]}
    for name in ("system-probe", "security-agent"):
        env = {e["name"]: e.get("value") for e in containers[name]["env"]}
        assert env["DD_RUNTIME_SECURITY_CONFIG_ENABLED"] == "false"
    assert plan_disable(p).is_satisfied()
    net = plan_disable(p, scope="network")
    assert any("YAML key wins over the env var" in n for n in net.notes)


def test_operator_daemonset_updates_in_place(tmp_path: Path) -> None:
    p = write_manifest(tmp_path, "ds.yaml", manifests.DAEMONSET_OPERATOR)
    plan = plan_disable(p, scope="network")
    assert any("managed by datadog-operator" in n for n in plan.notes)
    assert changed_lines(plan.diff()) == (
        ['              value: "true"'],
        ['              value: "false"'],
    )
    plan.apply()
    plan = plan_classifier_priority(p, 4)
    plan.apply()
    assert plan_classifier_priority(p, 4).is_satisfied()
    text = p.read_text()
    assert text.count(ENV_PRIO) == 1
    assert text.count("NETWORK_ENABLED") == 1


# --- detect_kind -----------------------------------------------------------------------------


def test_detect_kind_from_content(tmp_path: Path, upstream: Path) -> None:
    d = host_dir(tmp_path)
    assert detect_kind(d) is TargetKind.HOST_DIR
    assert detect_kind(d / "system-probe.yaml") is TargetKind.SYSTEM_PROBE_YAML
    assert (
        detect_kind(d / "security-agent.yaml") is TargetKind.SECURITY_AGENT_YAML
    )  # compliance_config
    # content beats the name
    swapped = write_manifest(
        tmp_path, "security-agent-copy.yaml", "system_probe_config:\n  enabled: true\n"
    )
    assert detect_kind(swapped) is TargetKind.SYSTEM_PROBE_YAML
    # an all-comment example, renamed: the commented-out root keys tell
    renamed = tmp_path / "sp-renamed.yaml"
    shutil.copyfile(upstream / "datadog-agent" / "system-probe.yaml.example", renamed)
    assert detect_kind(renamed) is TargetKind.SYSTEM_PROBE_YAML
    renamed_sa = tmp_path / "sa-renamed.yaml"
    shutil.copyfile(upstream / "datadog-agent" / "security-agent.yaml.example", renamed_sa)
    assert detect_kind(renamed_sa) is TargetKind.SECURITY_AGENT_YAML
    agents_only = write_manifest(tmp_path, "v.yaml", "agents:\n  enabled: true\n")
    assert detect_kind(agents_only) is TargetKind.HELM_VALUES


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        (
            "deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
            "Kubernetes Deployment",
        ),
        ("datadog.yaml", "api_key: abc\nsite: datadoghq.eu\n", "top-level keys api_key, site"),
        ("x.yaml", "runtime_security_config:\n  enabled: true\n", "only runtime_security_config"),
        ("x.yaml", "# nothing here\n", "empty YAML file"),
    ],
)
def test_detect_kind_refusals_say_what_was_seen(
    tmp_path: Path, name: str, text: str, match: str
) -> None:
    p = write_manifest(tmp_path, name, text)
    with pytest.raises(TargetKindError, match=match) as info:
        detect_kind(p)
    assert "accepted:" in str(info.value)
    assert str(p) in str(info.value)
    assert "abc" not in str(info.value)


def test_detect_kind_directory_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "datadog.yaml").write_text("site: x\n")
    with pytest.raises(TargetKindError, match=r"without system-probe.yaml .*datadog.yaml"):
        detect_kind(tmp_path)
    with pytest.raises(ConfigFileError, match="no such file"):
        plan_disable(tmp_path / "missing.yaml")


@pytest.mark.root
def test_rollback_when_the_second_file_is_immutable(tmp_path: Path) -> None:
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr (e2fsprogs) is not installed: cannot make a file immutable")
    d = host_dir(tmp_path)
    sp, sa = d / "system-probe.yaml", d / "security-agent.yaml"
    original_sp, original_sa = sp.read_bytes(), sa.read_bytes()
    plan = plan_disable(d)
    proc = subprocess.run([chattr, "+i", str(sa)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"this filesystem refuses chattr +i: {proc.stderr.strip()}")
    try:
        with pytest.raises(PlanApplyError, match=r"security-agent\.yaml") as info:
            plan.apply()
        assert "rollback incomplete" not in str(info.value)
        assert sp.read_bytes() == original_sp
        assert sa.read_bytes() == original_sa
    finally:
        subprocess.run([chattr, "-i", str(sa)], check=True)


def test_json_manifest_stays_json(tmp_path: Path) -> None:
    """``kubectl get ds -o json`` output: edited as JSON, indentation and key order kept."""
    ds = yaml.safe_load(manifests.DAEMONSET_HELM)
    p = tmp_path / "ds.json"
    p.write_text(json.dumps(ds, indent=4) + "\n")
    assert detect_kind(p) is TargetKind.DAEMONSET
    plan = plan_classifier_priority(p, 4)
    removed, added = changed_lines(plan.diff())
    assert removed == []
    assert added == [
        "                            },",
        "                            {",
        f'                                "name": "{ENV_PRIO}",',
        '                                "value": "4"',
    ]
    plan.apply()
    after = json.loads(p.read_text())
    assert list(after) == list(ds)
    assert after["spec"]["template"]["spec"]["containers"][1]["env"][-1] == {
        "name": ENV_PRIO,
        "value": "4",
    }
    assert plan_classifier_priority(p, 4).is_satisfied()
    plan.undo()
    assert json.loads(p.read_text()) == ds


def test_compact_json_manifest(tmp_path: Path) -> None:
    p = tmp_path / "dda.json"
    p.write_text(json.dumps(yaml.safe_load(manifests.DATADOG_AGENT)))
    plan_disable(p).apply()
    text = p.read_text()
    assert "\n" not in text
    assert json.loads(text)["spec"]["features"]["cws"]["enabled"] is False


def test_notes_say_when_cws_itself_is_off(tmp_path: Path, example_dir: Path) -> None:
    plan = plan_classifier_priority(example_dir, 4)  # the example files: everything off
    assert any("Workload Protection itself is off" in n for n in plan.notes)
    assert any("deprecated in favour of event_monitoring_config" in n for n in plan.notes)
    (tmp_path / "on").mkdir()
    on = host_dir(tmp_path / "on")
    plan = plan_disable(on, scope="network")
    assert not any("itself is off" in n for n in plan.notes)
    modern = tmp_path / "modern"
    modern.mkdir()
    (modern / "system-probe.yaml").write_text(
        "runtime_security_config:\n  enabled: true\n"
        "event_monitoring_config:\n  network:\n    classifier_priority: 9\n"
    )
    plan = plan_classifier_priority(modern, 4)
    assert not any("deprecated" in n for n in plan.notes)  # the user's modern key was kept
    dda = write_manifest(
        tmp_path, "dda.yaml", manifests.DATADOG_AGENT_BARE.replace("true", "false")
    )
    assert any("itself is off" in n for n in plan_classifier_priority(dda, 4).notes)
