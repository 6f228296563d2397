"""The settings model: validation, scopes, and the agent's reading order for effective values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wpprotect.config import (
    CLASSIFIER_PRIORITY,
    CWS_ENABLED,
    FIM_ENABLED,
    HOST_DUMP_ENABLED,
    NETWORK_ENABLED,
    SETTINGS,
    EffectiveValue,
    ShadowedValue,
    effective_settings,
    effective_value,
    scope_settings,
    validate_classifier_priority,
)
from wpprotect.config._settings import get_setting, validate_settings
from wpprotect.errors import ConfigFileError, ConfigParseError, InvalidArgumentError

PRIO_DEP = "runtime_security_config.network.classifier_priority"
PRIO_NEW = "event_monitoring_config.network.classifier_priority"
ENV_RS = "DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY"
ENV_EM = "DD_EVENT_MONITORING_CONFIG_NETWORK_CLASSIFIER_PRIORITY"


def write(d: Path, name: str, text: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text(text)
    return p


# --- the table -------------------------------------------------------------------------------


def test_settings_table_matches_the_reference() -> None:
    assert SETTINGS == (
        CWS_ENABLED,
        NETWORK_ENABLED,
        CLASSIFIER_PRIORITY,
        FIM_ENABLED,
        HOST_DUMP_ENABLED,
    )
    assert FIM_ENABLED.yaml_keys == ("runtime_security_config.fim_enabled",)
    assert HOST_DUMP_ENABLED.yaml_keys == (
        "runtime_security_config.security_profile.v2.host_dump.enabled",
    )
    for s in (FIM_ENABLED, HOST_DUMP_ENABLED):
        assert (s.default, s.files, s.components) == (
            False,
            ("system-probe.yaml",),
            ("system-probe",),
        )
        # the chart's fimEnabled has no effect and the CRD has no field: env on system-probe
        assert (s.helm_path, s.dda_path, s.helm_env_container) == (None, None, "systemProbe")
    assert CWS_ENABLED.components == ("system-probe", "security-agent")
    assert CWS_ENABLED.files == ("system-probe.yaml", "security-agent.yaml")
    assert CWS_ENABLED.env_vars == ("DD_RUNTIME_SECURITY_CONFIG_ENABLED",)
    assert CWS_ENABLED.helm_path == "datadog.securityAgent.runtime.enabled"
    assert CWS_ENABLED.dda_path == "spec.features.cws.enabled"
    assert (CWS_ENABLED.default, NETWORK_ENABLED.default, CLASSIFIER_PRIORITY.default) == (
        False,
        True,
        10,
    )
    assert NETWORK_ENABLED.components == CLASSIFIER_PRIORITY.components == ("system-probe",)
    assert NETWORK_ENABLED.helm_path == "datadog.securityAgent.runtime.network.enabled"
    assert NETWORK_ENABLED.dda_path == "spec.features.cws.network.enabled"
    assert NETWORK_ENABLED.dda_override_env == "when-false"
    assert CLASSIFIER_PRIORITY.helm_path is None
    assert CLASSIFIER_PRIORITY.dda_path is None
    assert CLASSIFIER_PRIORITY.helm_env_container == "systemProbe"
    assert CLASSIFIER_PRIORITY.env_vars == (ENV_EM, ENV_RS)
    assert CLASSIFIER_PRIORITY.yaml_keys == (PRIO_DEP, PRIO_NEW)


def test_precedence_puts_the_deprecated_yaml_key_before_env() -> None:
    assert CLASSIFIER_PRIORITY.precedence == (
        ("yaml", PRIO_DEP),
        ("env", ENV_EM),
        ("env", ENV_RS),
        ("yaml", PRIO_NEW),
    )
    assert CWS_ENABLED.precedence == (
        ("env", "DD_RUNTIME_SECURITY_CONFIG_ENABLED"),
        ("yaml", "runtime_security_config.enabled"),
    )


def test_setting_repr_and_to_dict_are_json_ready() -> None:
    assert repr(NETWORK_ENABLED).startswith("<Setting network_enabled ")
    d = CLASSIFIER_PRIORITY.to_dict()
    json.dumps(d)
    assert d["type"] == "int"
    assert d["default"] == 10


def test_get_setting_names_the_valid_choices() -> None:
    assert get_setting("network_enabled") is NETWORK_ENABLED
    with pytest.raises(InvalidArgumentError, match="cws_enabled, network_enabled"):
        get_setting("nope")


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 4, 10, 65535])
def test_valid_priorities(n: int) -> None:
    assert validate_classifier_priority(n) == n


def test_priority_zero_explains_what_zero_means() -> None:
    with pytest.raises(InvalidArgumentError, match="kernel picks") as info:
        validate_classifier_priority(0)
    assert "50" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("n", "match"),
    [
        (True, "not bool"),
        (False, "not bool"),
        (4.0, "not float"),
        ("4", "not str"),
        (None, "not NoneType"),
        (-1, "out of range"),
        (65536, "out of range"),
    ],
)
def test_invalid_priorities(n: object, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        validate_classifier_priority(n)


def test_scopes() -> None:
    assert scope_settings("workload-protection") == {CWS_ENABLED: False}
    assert scope_settings("network") == {NETWORK_ENABLED: False}
    # a fresh dict each time: callers may mutate it
    scope_settings("network")[NETWORK_ENABLED] = True
    assert scope_settings("network") == {NETWORK_ENABLED: False}


@pytest.mark.parametrize("scope", ["cws", "", "Network", None, ["network"]])
def test_unknown_scope_names_the_valid_ones(scope: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        scope_settings(scope)  # type: ignore[arg-type]
    assert "network" in str(info.value)
    assert "workload-protection" in str(info.value)


def test_validate_settings_rejects_wrong_types() -> None:
    with pytest.raises(InvalidArgumentError, match="true or false"):
        validate_settings({CWS_ENABLED: "false"})
    with pytest.raises(InvalidArgumentError, match="keyed by Setting"):
        validate_settings({"cws_enabled": False})  # type: ignore[dict-item]
    with pytest.raises(InvalidArgumentError, match="kernel picks"):
        validate_settings({CLASSIFIER_PRIORITY: 0})
    with pytest.raises(InvalidArgumentError, match="nothing to plan"):
        validate_settings({})


# --- effective values ------------------------------------------------------------------------


def test_missing_files_give_defaults(tmp_path: Path) -> None:
    values = effective_settings(config_dir=tmp_path / "nowhere")
    assert list(values) == [
        "cws_enabled",
        "network_enabled",
        "classifier_priority",
        "fim_enabled",
        "host_dump_enabled",
    ]
    assert [v.value for v in values.values()] == [False, True, 10, False, False]
    assert all(v.source == "default" and v.is_default for v in values.values())
    assert any("not found" in n for n in values["classifier_priority"].notes)


def test_deprecated_key_wins_over_the_new_key(tmp_path: Path) -> None:
    sp = write(
        tmp_path,
        "system-probe.yaml",
        "runtime_security_config:\n  network:\n    classifier_priority: 3\n"
        "event_monitoring_config:\n  network:\n    classifier_priority: 7\n",
    )
    ev = effective_value(CLASSIFIER_PRIORITY, config_dir=tmp_path)
    assert (ev.value, ev.source, ev.key) == (3, str(sp), PRIO_DEP)
    assert ev.shadowed == (ShadowedValue(str(sp), PRIO_NEW, 7, 7),)
    assert str(ev.shadowed[0]) == f"{sp} {PRIO_NEW}: 7"
    assert ev.ignored == ev.shadowed  # 7 differs from the 3 in effect
    assert any("deprecated" in n for n in ev.notes)


def test_deprecated_yaml_key_beats_env_vars(tmp_path: Path) -> None:
    write(
        tmp_path, "system-probe.yaml", "runtime_security_config:\n  network:\n    enabled: false\n"
    )
    ev = effective_value(
        NETWORK_ENABLED,
        config_dir=tmp_path,
        env={"DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED": "true"},
    )
    assert ev.value is False
    assert ev.key == "runtime_security_config.network.enabled"
    (lost,) = ev.shadowed
    assert (lost.source, lost.raw, lost.value, lost.from_env) == (
        "env DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED",
        "true",
        True,
        True,
    )
    assert str(lost) == "env DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED=true"


def test_env_beats_the_yaml_of_the_key_it_is_bound_to(tmp_path: Path) -> None:
    write(
        tmp_path,
        "system-probe.yaml",
        "event_monitoring_config:\n  network:\n    classifier_priority: 7\n",
    )
    ev = effective_value(CLASSIFIER_PRIORITY, config_dir=tmp_path, env={ENV_RS: "5"})
    assert (ev.value, ev.source, ev.key) == (5, f"env {ENV_RS}", ENV_RS)
    (lost,) = ev.shadowed
    assert (lost.key, lost.value, lost.from_env) == (PRIO_NEW, 7, False)


def test_event_monitoring_env_name_is_looked_up_first(tmp_path: Path) -> None:
    ev = effective_value(CLASSIFIER_PRIORITY, config_dir=tmp_path, env={ENV_RS: "5", ENV_EM: "6"})
    assert (ev.value, ev.key) == (6, ENV_EM)
    assert ev.shadowed == (ShadowedValue(f"env {ENV_RS}", ENV_RS, "5", 5, from_env=True),)


def test_empty_env_value_counts_as_unset(tmp_path: Path) -> None:
    ev = effective_value(CLASSIFIER_PRIORITY, config_dir=tmp_path, env={ENV_EM: "", ENV_RS: "4"})
    assert (ev.value, ev.key) == (4, ENV_RS)


def test_cws_env_beats_yaml(tmp_path: Path) -> None:
    write(tmp_path, "system-probe.yaml", "runtime_security_config:\n  enabled: true\n")
    write(tmp_path, "security-agent.yaml", "runtime_security_config:\n  enabled: true\n")
    assert effective_value(CWS_ENABLED, config_dir=tmp_path).value is True
    ev = effective_value(
        CWS_ENABLED, config_dir=tmp_path, env={"DD_RUNTIME_SECURITY_CONFIG_ENABLED": "false"}
    )
    assert (ev.value, ev.source) == (False, "env DD_RUNTIME_SECURITY_CONFIG_ENABLED")


def test_cws_reports_system_probe_and_notes_a_disagreement(tmp_path: Path) -> None:
    sp = write(tmp_path, "system-probe.yaml", "runtime_security_config:\n  enabled: true\n")
    write(tmp_path, "security-agent.yaml", "runtime_security_config:\n  enabled: false\n")
    ev = effective_value(CWS_ENABLED, config_dir=tmp_path)
    assert (ev.value, ev.source) == (True, str(sp))
    (conflict,) = ev.conflicts
    assert (conflict.file, conflict.value, conflict.other_value) == (
        "security-agent.yaml",
        False,
        True,
    )
    assert str(conflict).startswith("security-agent.yaml gives false")
    assert ev.notes == ()  # the disagreement is data, not a note


def test_null_key_counts_as_unset(tmp_path: Path) -> None:
    write(
        tmp_path,
        "system-probe.yaml",
        "runtime_security_config:\n  network:\n    classifier_priority:\n",
    )
    assert effective_value(CLASSIFIER_PRIORITY, config_dir=tmp_path).is_default


@pytest.mark.parametrize(
    ("raw", "value", "note"),
    [
        ("'010'", 8, None),  # Go's base-0 ParseInt: a leading 0 is octal
        ("'0x10'", 16, None),
        ("'4.0'", 4, None),
        ("abc", 0, "not an integer"),
        ("70000", 70000 & 0xFFFF, "uint16"),
    ],
)
def test_values_are_read_like_the_agent(
    tmp_path: Path, raw: str, value: int, note: str | None
) -> None:
    write(
        tmp_path,
        "system-probe.yaml",
        f"event_monitoring_config:\n  network:\n    classifier_priority: {raw}\n",
    )
    ev = effective_value(CLASSIFIER_PRIORITY, config_dir=tmp_path)
    assert ev.value == value
    if note:
        assert any(note in n for n in ev.notes)


def test_yaml_11_booleans_are_booleans(tmp_path: Path) -> None:
    # go-yaml v2 reads `no` as false; a YAML 1.2 reader would keep the string
    write(tmp_path, "system-probe.yaml", "runtime_security_config:\n  network:\n    enabled: no\n")
    assert effective_value(NETWORK_ENABLED, config_dir=tmp_path).value is False


def test_files_take_paths_parsed_documents_or_none(tmp_path: Path) -> None:
    sp = write(tmp_path / "a", "sp.yaml", "runtime_security_config:\n  enabled: true\n")
    assert effective_value(CWS_ENABLED, files={"system-probe.yaml": sp}).value is True
    doc = {"runtime_security_config": {"network": {"classifier_priority": 2}}}
    ev = effective_value(CLASSIFIER_PRIORITY, files={"system-probe.yaml": doc})
    assert (ev.value, ev.source) == (2, "system-probe.yaml")
    assert effective_value(CLASSIFIER_PRIORITY, files={"system-probe.yaml": None}).is_default


def test_effective_value_is_data(tmp_path: Path) -> None:
    write(
        tmp_path,
        "system-probe.yaml",
        "event_monitoring_config:\n  network:\n    classifier_priority: 7\n",
    )
    ev = effective_value(CLASSIFIER_PRIORITY, config_dir=tmp_path, env={ENV_RS: "5"})
    assert isinstance(ev, EffectiveValue)
    d = ev.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["setting"] == "classifier_priority"
    assert d["value"] == 5
    assert repr(ev) == f"<EffectiveValue classifier_priority=5 from env {ENV_RS}, 1 shadowed>"
    assert "classifier_priority" in ev._repr_html_()


def test_unparsable_file_is_a_parse_error_with_its_path(tmp_path: Path) -> None:
    sp = write(tmp_path, "system-probe.yaml", "runtime_security_config: [\n")
    with pytest.raises(ConfigParseError) as info:
        effective_value(CWS_ENABLED, config_dir=tmp_path)
    assert str(sp) in str(info.value)


def test_directory_in_place_of_the_file_is_a_file_error(tmp_path: Path) -> None:
    (tmp_path / "system-probe.yaml").mkdir()
    with pytest.raises(ConfigFileError, match="not a regular file"):
        effective_value(CWS_ENABLED, config_dir=tmp_path)


def test_shipped_example_does_not_set_the_priority(upstream: Path, tmp_path: Path) -> None:
    example = (upstream / "datadog-agent" / "system-probe.yaml.example").read_bytes()
    assert b"#  enabled: true" in example  # its network section is there, commented out
    (tmp_path / "system-probe.yaml").write_bytes(example)
    found = effective_value(CLASSIFIER_PRIORITY, config_dir=tmp_path)
    assert (found.value, found.source) == (10, "default")
