"""ConfigEditor basics: get/set/delete/text/diff/save on small documents and the real files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from wpprotect.config._editor import ConfigEditor


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    """Pairs of (old, new) lines that differ; documents must keep the same line count."""
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(a) == len(b), (a, b)
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


def test_set_existing_scalar_changes_one_line_and_keeps_comment_gap() -> None:
    text = "# CWS\nruntime_security_config:\n  enabled: true  # on\n  socket: /x\n"
    ed = ConfigEditor.from_text(text)
    assert ed.get("runtime_security_config.enabled") is True
    ed.set("runtime_security_config.enabled", False)
    assert ed.text == "# CWS\nruntime_security_config:\n  enabled: false  # on\n  socket: /x\n"
    assert ed.changed
    assert ed.get("runtime_security_config.enabled") is False


def test_get_default_and_missing() -> None:
    ed = ConfigEditor.from_text("a:\n  b: 1\n")
    assert ed.get("a.c") is None
    assert ed.get("a.c", default=7) == 7
    assert ed.get("x.y.z", default="d") == "d"
    assert ed.get(("a", "b")) == 1
    assert "a.b" in ed
    assert "a.c" not in ed


def test_set_creates_missing_parents_in_file_indent() -> None:
    ed = ConfigEditor.from_text("a:\n    b: 1\n")
    ed.set("c.d.e", True)
    assert ed.text == "a:\n    b: 1\nc:\n    d:\n        e: true\n"


def test_delete_removes_only_the_key() -> None:
    text = "rsc:\n  enabled: true\n  # doc for fim\n  fim_enabled: true\n  socket: /s\n"
    ed = ConfigEditor.from_text(text)
    assert ed.delete("rsc.fim_enabled") is True
    assert ed.text == "rsc:\n  enabled: true\n  # doc for fim\n  socket: /s\n"
    assert ed.delete("rsc.fim_enabled") is False


def test_unchanged_document_is_byte_identical() -> None:
    text = "---\n# top\na: null\nb:   'x'\nc: [1, 2]\n"
    ed = ConfigEditor.from_text(text)
    assert ed.text == text
    assert not ed.changed
    assert ed.diff() == ""


def test_save_roundtrip(tmp_path: Path) -> None:
    f = tmp_path / "system-probe.yaml"
    f.write_text("runtime_security_config:\n  enabled: true\n")
    f.chmod(0o640)
    ed = ConfigEditor.load(f)
    ed.set("runtime_security_config.enabled", False)
    bak = ed.save()
    assert bak is not None
    assert bak.read_text() == "runtime_security_config:\n  enabled: true\n"
    assert f.read_text() == "runtime_security_config:\n  enabled: false\n"
    assert f.stat().st_mode & 0o777 == 0o640
    assert bak.stat().st_mode & 0o777 == 0o640
    assert not ed.changed


def test_helm_values_one_line(upstream: Path) -> None:
    values = upstream / "helm-charts" / "values.yaml"
    text = values.read_text()
    ed = ConfigEditor.from_text(text, path=values)
    ed.set("datadog.securityAgent.runtime.enabled", True)
    diff = changed_lines(text, ed.text)
    assert diff == [("      enabled: false\n", "      enabled: true\n")]
    assert yaml.safe_load(ed.text)["datadog"]["securityAgent"]["runtime"]["enabled"] is True
    ed.set("datadog.securityAgent.runtime.enabled", False)
    assert ed.text == text


@pytest.mark.parametrize("name", ["system-probe.yaml.example", "security-agent.yaml.example"])
def test_example_files_activate_in_place(upstream: Path, name: str) -> None:
    text = (upstream / "datadog-agent" / name).read_text()
    ed = ConfigEditor.from_text(text)
    ed.set("runtime_security_config.enabled", False)
    out = ed.text
    assert out.count("runtime_security_config:") == 1
    assert "\nruntime_security_config:\n" in out
    assert [ln for ln in text.splitlines() if ln.lstrip().startswith("##")] == [
        ln for ln in out.splitlines() if ln.lstrip().startswith("##")
    ]
    assert yaml.safe_load(out) == {"runtime_security_config": {"enabled": False}}
