"""The one truth table for the agent's values: Go's strconv.ParseBool / ParseInt(s, 0, 0), as
the agent's config getters apply them (go/src/strconv/atob.go, atoi.go; spf13/cast)."""

from __future__ import annotations

import pytest

from wpprotect.config import (
    CLASSIFIER_PRIORITY,
    CWS_ENABLED,
    NETWORK_ENABLED,
    effective_value,
    parse_go_bool,
    parse_go_int,
)
from wpprotect.config._settings import parse_agent_value

# strconv.ParseBool accepts exactly these twelve spellings; anything else is an error.
GO_BOOLS = [
    ("1", True), ("t", True), ("T", True), ("TRUE", True), ("true", True), ("True", True),
    ("0", False), ("f", False), ("F", False), ("FALSE", False), ("false", False), ("False", False),
]  # fmt: skip
NOT_GO_BOOLS = ["yes", "no", "on", "off", "y", "n", "tRUE", "2", "", "enabled"]


@pytest.mark.parametrize(("text", "expected"), GO_BOOLS)
def test_go_bool_accepts_its_twelve_spellings(text: str, expected: bool) -> None:
    assert parse_go_bool(text) is expected


@pytest.mark.parametrize("text", NOT_GO_BOOLS)
def test_go_bool_rejects_everything_else(text: str) -> None:
    assert parse_go_bool(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10", 10), ("+7", 7), ("-3", -3), ("0", 0), ("010", 8), ("0x1F", 31), ("0o17", 15),
        ("0b101", 5), ("1_000", 1000), ("4.0", 4), (" 12 ", 12),
        ("four", None), ("", None), ("1e3", None), ("4.5", None), ("09", None), ("0x", None),
    ],
)  # fmt: skip
def test_go_int(text: str, expected: int | None) -> None:
    assert parse_go_int(text) == expected


@pytest.mark.parametrize(("text", "expected"), GO_BOOLS)
def test_env_bools_follow_go(text: str, expected: bool) -> None:
    assert parse_agent_value(CWS_ENABLED, text, from_env=True) == (expected, None)


@pytest.mark.parametrize("text", ["yes", "on", "no", "off"])
def test_yaml_11_words_are_booleans_in_yaml_but_not_in_env(text: str) -> None:
    in_yaml, note = parse_agent_value(CWS_ENABLED, text)
    assert note is None
    assert in_yaml is (text in ("yes", "on"))
    in_env, note = parse_agent_value(CWS_ENABLED, text, from_env=True)
    assert in_env is False
    assert note is not None
    assert "the agent reads it as false" in note


def test_a_shadowed_env_value_is_read_with_go_semantics() -> None:
    """`yes` in the env is false to the agent: it differs from a YAML `true`, so it is ignored."""
    doc = {"runtime_security_config": {"network": {"enabled": True}}}
    ev = effective_value(
        NETWORK_ENABLED,
        files={"system-probe.yaml": doc},
        env={"DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED": "yes"},
    )
    (lost,) = ev.shadowed
    assert (lost.raw, lost.value) == ("yes", False)
    assert ev.ignored == (lost,)


def test_a_shadowed_int_is_compared_as_the_agent_reads_it() -> None:
    doc = {
        "runtime_security_config": {"network": {"classifier_priority": 8}},
        "event_monitoring_config": {"network": {"classifier_priority": "010"}},
    }
    ev = effective_value(CLASSIFIER_PRIORITY, files={"system-probe.yaml": doc})
    assert ev.value == 8
    assert ev.shadowed[0].value == 8  # octal 010, as Go reads it
    assert ev.ignored == ()
