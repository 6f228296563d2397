"""Commented-out defaults (the agent's ``*.yaml.example`` files) are activated in place."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from wpprotect.config._editor import ConfigEditor


def doc_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.lstrip().startswith("##")]


def live_lines(text: str, key: str) -> list[str]:
    return [ln for ln in text.splitlines() if re.match(rf"^\s*{re.escape(key)}:", ln)]


def example(upstream: Path, name: str) -> str:
    return (upstream / "datadog-agent" / name).read_text()


def check_common(before: str, after: str) -> None:
    # One live block, every documentation comment kept, only lines changed or added.
    assert len(live_lines(after, "runtime_security_config")) == 1
    assert doc_lines(before) == doc_lines(after)
    removed = [ln for ln in before.splitlines() if ln not in after.splitlines()]
    assert all(ln.lstrip().startswith("#") for ln in removed), removed


@pytest.mark.parametrize("name", ["system-probe.yaml.example", "security-agent.yaml.example"])
@pytest.mark.parametrize("value", [True, False])
def test_enable_in_example(upstream: Path, name: str, value: bool) -> None:
    before = example(upstream, name)
    ed = ConfigEditor.from_text(before)
    ed.set("runtime_security_config.enabled", value)
    after = ed.text
    check_common(before, after)
    assert yaml.safe_load(after) == {"runtime_security_config": {"enabled": value}}
    # The commented lines became live where they were: same number of lines.
    assert len(after.splitlines()) == len(before.splitlines())
    i = after.splitlines().index("runtime_security_config:")
    assert before.splitlines()[i] == "# runtime_security_config:"
    j = after.splitlines().index(f"  enabled: {str(value).lower()}")
    assert j > i
    assert before.splitlines()[j] == "  # enabled: false"


def test_network_enabled_in_system_probe_example(upstream: Path) -> None:
    before = example(upstream, "system-probe.yaml.example")
    ed = ConfigEditor.from_text(before)
    ed.set("runtime_security_config.network.enabled", False)
    after = ed.text
    check_common(before, after)
    assert yaml.safe_load(after) == {"runtime_security_config": {"network": {"enabled": False}}}
    lines = after.splitlines()
    net = lines.index("  network:")
    assert before.splitlines()[net] == "  # network:"
    assert "    enabled: false" in lines[net:]
    # The other commented `enabled:` lines (syscall_monitor, activity_dump) stay commented.
    assert (
        sum(1 for ln in lines if re.match(r"^\s*#\s*enabled:", ln))
        == sum(1 for ln in before.splitlines() if re.match(r"^\s*#\s*enabled:", ln)) - 1
    )


def test_classifier_priority_not_in_template_goes_inside_the_block(upstream: Path) -> None:
    before = example(upstream, "system-probe.yaml.example")
    ed = ConfigEditor.from_text(before)
    ed.set("runtime_security_config.network.classifier_priority", 4)
    after = ed.text
    check_common(before, after)
    assert yaml.safe_load(after) == {
        "runtime_security_config": {"network": {"classifier_priority": 4}}
    }
    lines = after.splitlines()
    assert lines.index("runtime_security_config:") < lines.index("  network:")
    assert lines.index("  network:") < lines.index("    classifier_priority: 4")


def test_all_three_settings_together(upstream: Path) -> None:
    before = example(upstream, "system-probe.yaml.example")
    ed = ConfigEditor.from_text(before)
    ed.set("runtime_security_config.enabled", True)
    ed.set("runtime_security_config.network.enabled", False)
    ed.set("runtime_security_config.network.classifier_priority", 4)
    ed.set("runtime_security_config.fim_enabled", False)
    after = ed.text
    check_common(before, after)
    assert yaml.safe_load(after) == {
        "runtime_security_config": {
            "enabled": True,
            "fim_enabled": False,
            "network": {"enabled": False, "classifier_priority": 4},
        }
    }
    # Re-loading and editing again is stable: no second block, nothing duplicated.
    again = ConfigEditor.from_text(after)
    again.set("runtime_security_config.network.classifier_priority", 3)
    assert again.text == after.replace("classifier_priority: 4", "classifier_priority: 3")


def test_other_section_of_security_agent_example(upstream: Path) -> None:
    before = example(upstream, "security-agent.yaml.example")
    ed = ConfigEditor.from_text(before)
    ed.set("runtime_security_config.enabled", False)
    ed.set("compliance_config.enabled", False)
    after = ed.text
    assert yaml.safe_load(after) == {
        "runtime_security_config": {"enabled": False},
        "compliance_config": {"enabled": False},
    }
    assert live_lines(after, "compliance_config") == ["compliance_config:"]
    assert doc_lines(before) == doc_lines(after)


def test_unrelated_key_is_appended_inside_live_block(upstream: Path) -> None:
    before = example(upstream, "security-agent.yaml.example")
    ed = ConfigEditor.from_text(before)
    ed.set("runtime_security_config.enabled", False)
    ed.set("runtime_security_config.policies.dir", "/etc/dd/policies")
    after = ed.text
    data = yaml.safe_load(after)
    assert data["runtime_security_config"]["policies"]["dir"] == "/etc/dd/policies"
    assert len(live_lines(after, "runtime_security_config")) == 1
    lines = after.splitlines()
    # Placed right after the live `enabled:` line, before the commented `socket` docs.
    i = lines.index("  enabled: false")
    assert lines[i + 1 : i + 3] == ["  policies:", "    dir: /etc/dd/policies"]


@pytest.mark.parametrize(
    ("before", "path", "value", "after"),
    [
        pytest.param(
            "# a:\n#   b: 1\n#   c: 2\n",
            "a.c",
            5,
            "a:\n#   b: 1\n  c: 5\n",
            id="hash-at-column-0-style",
        ),
        pytest.param(
            "#a:\n#  b: 1\n",
            "a.b",
            2,
            "a:\n  b: 2\n",
            id="no-space-after-hash",
        ),
        pytest.param(
            "x: 1\n# a:\n  # b:\n    # c: false\n  # d: 1\n",
            "a.b.c",
            True,
            "x: 1\na:\n  b:\n    c: true\n  # d: 1\n",
            id="nested-three-levels",
        ),
        pytest.param(
            "a:\n  live: 1\n  # b: 2\n",
            "a.b",
            3,
            "a:\n  live: 1\n  b: 3\n",
            id="commented-sibling-of-live-key",
        ),
        pytest.param(
            "a:\n    live: 1\n# b: 2\n",
            "a.b",
            3,
            "a:\n    live: 1\n    b: 3\n# b: 2\n",
            id="commented-key-after-block-is-not-a-child",
        ),
        pytest.param(
            "a:\n  s: |\n    # b: 2\n",
            "a.b",
            3,
            "a:\n  s: |\n    # b: 2\n  b: 3\n",
            id="comment-like-line-inside-block-scalar-is-left-alone",
        ),
        pytest.param(
            "# a:\n#   b: [unclosed\n",
            "a.b",
            1,
            "a:\n  b: 1\n#   b: [unclosed\n",
            id="unparseable-commented-value-falls-back",
        ),
        pytest.param(
            "# a:\n  ## doc\n  # b: 1\n\n# other:\n  # b: 1\n",
            "other.b",
            2,
            "# a:\n  ## doc\n  # b: 1\n\nother:\n  b: 2\n",
            id="second-section",
        ),
        pytest.param(
            "a:\n  # syscall:\n\n    #  enabled: false\n  # enabled: false\n",
            "a.enabled",
            True,
            "a:\n  # syscall:\n\n    #  enabled: false\n  enabled: true\n",
            id="deeper-commented-key-with-same-name-skipped",
        ),
    ],
)
def test_synthetic_activation(before: str, path: str, value: Any, after: str) -> None:
    ed = ConfigEditor.from_text(before)
    ed.set(path, value)
    assert ed.text == after
    assert ConfigEditor.from_text(ed.text).get(path) == value
