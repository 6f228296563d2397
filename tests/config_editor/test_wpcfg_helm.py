"""The real Helm chart values file (3000+ lines): edits are one-line, byte-exact diffs."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
import yaml

from wpprotect.config._editor import ConfigEditor


@pytest.fixture(scope="module")
def values_text(upstream: Path) -> str:
    text = (upstream / "helm-charts" / "values.yaml").read_text()
    assert text.count("\n") > 3000
    return text


def hunks(before: str, after: str) -> list[tuple[list[str], list[str]]]:
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    return [
        (a[i1:i2], b[j1:j2])
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
        if tag != "equal"
    ]


def test_enable_then_disable_runtime(values_text: str) -> None:
    ed = ConfigEditor.from_text(values_text)
    assert ed.get("datadog.securityAgent.runtime.enabled") is False
    ed.set("datadog.securityAgent.runtime.enabled", True)
    enabled = ed.text
    assert hunks(values_text, enabled) == [(["      enabled: false\n"], ["      enabled: true\n"])]
    assert enabled.splitlines()[1305] == "      enabled: true"  # line 1306 of the chart
    assert yaml.safe_load(enabled)["datadog"]["securityAgent"]["runtime"]["enabled"] is True
    assert ed.diff(context=0) == (
        "--- a/<text>\n+++ b/<text>\n@@ -1306 +1306 @@\n"
        "-      enabled: false\n+      enabled: true\n"
    )

    again = ConfigEditor.from_text(enabled)
    again.set("datadog.securityAgent.runtime.enabled", False)
    assert hunks(enabled, again.text) == [(["      enabled: true\n"], ["      enabled: false\n"])]
    assert again.text == values_text


def test_network_settings(values_text: str) -> None:
    ed = ConfigEditor.from_text(values_text)
    ed.set("datadog.securityAgent.runtime.network.enabled", False)
    ed.set("datadog.securityAgent.runtime.network.classifier_priority", 4)
    out = ed.text
    assert hunks(values_text, out) == [
        (
            ["        enabled: true\n"],
            ["        enabled: false\n", "        classifier_priority: 4\n"],
        )
    ]
    net = yaml.safe_load(out)["datadog"]["securityAgent"]["runtime"]["network"]
    assert net == {"enabled": False, "classifier_priority": 4}


def test_env_list_in_helm_sequence_style(values_text: str) -> None:
    ed = ConfigEditor.from_text(values_text)
    ed.set(
        "agents.containers.systemProbe.env",
        [{"name": "DD_RUNTIME_SECURITY_CONFIG_ENABLED", "value": "false"}],
    )
    ed.set(
        "agents.containers.securityAgent.env",
        [{"name": "DD_RUNTIME_SECURITY_CONFIG_ENABLED", "value": "false"}],
    )
    out = ed.text
    changes = hunks(values_text, out)
    assert len(changes) == 2
    for old, new in changes:
        assert old == ["      env: []\n"]
        assert new == [
            "      env:\n",
            "        - name: DD_RUNTIME_SECURITY_CONFIG_ENABLED\n",
            '          value: "false"\n',
        ]
    containers = yaml.safe_load(out)["agents"]["containers"]
    for name in ("systemProbe", "securityAgent"):
        assert containers[name]["env"] == [
            {"name": "DD_RUNTIME_SECURITY_CONFIG_ENABLED", "value": "false"}
        ]


def test_save_real_file_copy(values_text: str, tmp_path: Path, upstream: Path) -> None:
    f = tmp_path / "values.yaml"
    shutil.copyfile(upstream / "helm-charts" / "values.yaml", f)
    ed = ConfigEditor.load(f)
    ed.set("datadog.securityAgent.runtime.enabled", True)
    bak = ed.save()
    assert bak is not None
    assert bak.read_text() == values_text
    written = f.read_text()
    assert len(hunks(values_text, written)) == 1
    assert ConfigEditor.load(f).get("datadog.securityAgent.runtime.enabled") is True


def _mapping_paths(node: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    if isinstance(node, dict):
        if prefix:
            found.append(prefix)
        for k, v in node.items():
            if isinstance(k, str):
                found += _mapping_paths(v, (*prefix, k))
    return found


def _scalar_paths(
    node: object, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], object]]:
    found: list[tuple[tuple[str, ...], object]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, dict):
                found += _scalar_paths(v, (*prefix, k))
            elif isinstance(v, bool | int) and isinstance(k, str):
                found.append(((*prefix, k), v))
    return found


def _dig(data: object, path: tuple[str, ...]) -> object:
    for k in path:
        assert isinstance(data, dict)
        data = data[k]
    return data


def test_many_scalar_edits_change_exactly_their_lines(
    values_text: str, caplog: pytest.LogCaptureFixture
) -> None:
    plain = yaml.safe_load(values_text)
    targets = _scalar_paths(plain)[::7]  # a spread of booleans and integers across the file
    assert len(targets) >= 25
    ed = ConfigEditor.from_text(values_text)
    with ed.batch():
        for path, value in targets:
            ed.set(path, (not value) if isinstance(value, bool) else value + 1)
    with caplog.at_level("WARNING"):
        out = ed.text
    assert not caplog.records
    changed = list(hunks(values_text, out))
    assert sum(len(old) for old, _ in changed) == len(targets)
    assert all(len(old) == len(new) for old, new in changed)
    after = yaml.safe_load(out)
    for path, value in targets:
        assert _dig(after, path) == ((not value) if isinstance(value, bool) else value + 1)


def test_new_key_in_many_blocks_lands_inside_each(
    values_text: str, caplog: pytest.LogCaptureFixture
) -> None:
    plain = yaml.safe_load(values_text)
    targets = [p for p in _mapping_paths(plain) if _dig(plain, p)][::5]
    assert len(targets) >= 25
    ed = ConfigEditor.from_text(values_text)
    with ed.batch():
        for path in targets:
            ed.set((*path, "wpcfg_probe"), 7)
    with caplog.at_level("WARNING"):
        out = ed.text
    assert not caplog.records
    added = [new for old, new in hunks(values_text, out)]
    assert all(not old for old, _ in hunks(values_text, out))  # only insertions
    assert sum(len(new) for new in added) == len(targets)
    assert all(line.strip() == "wpcfg_probe: 7" for new in added for line in new)
    after = yaml.safe_load(out)
    for path in targets:
        block = _dig(after, path)
        assert isinstance(block, dict)
        assert block["wpcfg_probe"] == 7
    # Everything else is as it was.
    assert _strip_probe(after) == plain


def _strip_probe(node: object) -> object:
    if isinstance(node, dict):
        return {k: _strip_probe(v) for k, v in node.items() if k != "wpcfg_probe"}
    if isinstance(node, list):
        return [_strip_probe(v) for v in node]
    return node
