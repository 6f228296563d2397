"""effective_settings at a given agent version: env beats YAML for runtime_security_config.network.*
on about 7.36 to 7.43, and the default classifier priority is 1 on 7.36 to 7.39.1
(docs/reference/agent-cli.md#cli-old-precedence, #cli-cilium-race)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wpprotect.agent import AgentVersion
from wpprotect.config import (
    CLASSIFIER_PRIORITY,
    NETWORK_ENABLED,
    effective_settings,
    effective_value,
)

SP = "system-probe.yaml"
PRIORITY_ENV = "DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY"


def _files(network: dict[str, object]) -> dict[str, object]:
    return {SP: {"runtime_security_config": {"network": network}}}


@pytest.mark.parametrize(
    ("version", "value", "source"),
    [
        (None, 5, SP),  # unknown: today's order
        ("7.36.0", 3, f"env {PRIORITY_ENV}"),
        ("7.40.1", 3, f"env {PRIORITY_ENV}"),
        ("7.43.2", 3, f"env {PRIORITY_ENV}"),
        ("7.44.0", 5, SP),
        ("7.59.0", 5, SP),
        ("7.35.0", 5, SP),  # before the classifiers: no row, today's order
    ],
)
def test_env_beats_yaml_for_network_keys_on_old_agents(
    version: str | None, value: int, source: str
) -> None:
    v = None if version is None else AgentVersion.parse(version)
    got = effective_settings(
        files=_files({"classifier_priority": 5}), env={PRIORITY_ENV: "3"}, version=v
    )["classifier_priority"]
    assert (got.value, got.source) == (value, source)
    if source.startswith("env"):
        assert any("beats the YAML" in n for n in got.notes)
        assert [s.value for s in got.shadowed] == [5]
        assert not any("deprecated" in n for n in got.notes)


def test_network_enabled_follows_the_same_order() -> None:
    env = {"DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED": "true"}
    files = _files({"enabled": False})
    old = effective_value(NETWORK_ENABLED, files=files, env=env, version=(7, 41, 0))
    new = effective_value(NETWORK_ENABLED, files=files, env=env, version=(7, 50, 0))
    assert (old.value, new.value) == (True, False)


def test_event_monitoring_spellings_are_not_read_by_old_agents() -> None:
    files = {SP: {"event_monitoring_config": {"network": {"classifier_priority": 7}}}}
    env = {"DD_EVENT_MONITORING_CONFIG_NETWORK_CLASSIFIER_PRIORITY": "8"}
    old = effective_value(CLASSIFIER_PRIORITY, files=files, env=env, version=(7, 38, 0))
    assert (old.value, old.source) == (1, "default")
    new = effective_value(CLASSIFIER_PRIORITY, files=files, env=env, version=(7, 50, 0))
    assert new.value == 8


@pytest.mark.parametrize(
    ("version", "default"),
    [("7.36.0", 1), ("7.39.1", 1), ("7.39.2", 10), ("7.40.0", 10), ("7.78.0", 10), (None, 10)],
)
def test_default_classifier_priority_by_version(version: str | None, default: int) -> None:
    v = None if version is None else AgentVersion.parse(version)
    got = effective_value(CLASSIFIER_PRIORITY, files={SP: {}}, version=v)
    assert (got.value, got.source) == (default, "default")
    assert any("defaults to 1" in n for n in got.notes) == (default == 1)


def test_version_as_a_tuple_and_a_config_dir(tmp_path: Path) -> None:
    (tmp_path / SP).write_text("runtime_security_config:\n  network:\n    enabled: true\n")
    got = effective_settings(config_dir=tmp_path, version=(7, 37, 0))
    assert got["classifier_priority"].value == 1
    assert got["network_enabled"].value is True
