"""Property tests: any sequence of set/delete on any generated layout reads back as a plain
dict model says, through an independent parser (PyYAML), and touches only the lines it must."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wpprotect.config._editor import ConfigEditor
from wpprotect.errors import ConfigStructureError

KEYS = ["a", "b", "enabled", "network", "x_y", "rsc"]
TRICKY = ["false", "true", "yes", "off", "10", "0755", "1.5", "", " pad", "#x", "a: b", "~", "x"]

scalars = st.one_of(
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.sampled_from([0.5, -2.25, 100.0]),
    st.sampled_from(TRICKY),
    st.from_regex(r"[a-z][a-z_./-]{0,7}", fullmatch=True),
    st.none(),
)
leaves = st.one_of(scalars, st.lists(scalars, min_size=1, max_size=3))
trees = st.recursive(
    leaves,
    lambda children: st.dictionaries(st.sampled_from(KEYS), children, min_size=1, max_size=4),
    max_leaves=12,
)
docs = st.dictionaries(st.sampled_from(KEYS), trees, max_size=5)
paths = st.lists(st.sampled_from(KEYS), min_size=1, max_size=4)
ops = st.lists(
    st.tuples(st.sampled_from(["set", "delete"]), paths, st.one_of(scalars, trees)),
    max_size=6,
)


def render(doc: dict[str, Any], indent: int, comments: bool, seq_offset: int = 0) -> str:
    """A hand-written YAML layout (not ruamel's), with comments and blank lines."""
    out: list[str] = []
    if comments:
        out.append("# generated")

    def scalar(v: Any) -> str:
        return (
            yaml.safe_dump(v, default_flow_style=True, width=1000).removesuffix("\n...\n").strip()
        )

    def emit(d: dict[str, Any], depth: int) -> None:
        pad = " " * (indent * depth)
        for i, (k, v) in enumerate(d.items()):
            if comments and i % 2:
                out.append(f"{pad}# about {k}")
            if isinstance(v, dict):
                out.append(f"{pad}{k}:" + ("  # section" if comments else ""))
                emit(v, depth + 1)
            elif isinstance(v, list):
                out.append(f"{pad}{k}:")
                out.extend(f"{pad}{' ' * seq_offset}- {scalar(item)}" for item in v)
            else:
                out.append(
                    f"{pad}{k}: {scalar(v)}" + ("  # value" if comments and i % 3 == 0 else "")
                )
            if comments and depth == 0:
                out.append("")

    emit(doc, 0)
    return "\n".join(out) + "\n"


class ModelError(Exception):
    pass


def model_set(doc: dict[str, Any], path: list[str], value: Any) -> None:
    node = doc
    for k in path[:-1]:
        if k not in node or node[k] is None:
            node[k] = {}
        elif not isinstance(node[k], dict):
            raise ModelError
        node = node[k]
    node[path[-1]] = value


def model_delete(doc: dict[str, Any], path: list[str]) -> None:
    node = doc
    for k in path[:-1]:
        if k not in node or node[k] is None:
            return
        if not isinstance(node[k], dict):
            raise ModelError
        node = node[k]
    node.pop(path[-1], None)


class _Fallbacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc=docs,
    indent=st.sampled_from([2, 4]),
    comments=st.booleans(),
    seq_offset=st.sampled_from([0, 2]),
    edits=ops,
)
def test_edits_match_model(
    doc: dict[str, Any],
    indent: int,
    comments: bool,
    seq_offset: int,
    edits: list[tuple[str, list[str], Any]],
) -> None:
    text = render(doc, indent, comments, seq_offset)
    assert (yaml.safe_load(text) or {}) == doc
    model = yaml.safe_load(text) or {}
    ed = ConfigEditor.from_text(text)
    watcher = _Fallbacks()
    logger = logging.getLogger("wpprotect.config._editor")
    logger.addHandler(watcher)
    try:
        for op, path, value in edits:
            try:
                if op == "set":
                    model_set(model, path, value)
                else:
                    model_delete(model, path)
            except ModelError:
                action = ed.set if op == "set" else (lambda p, _v: ed.delete(p))
                with pytest.raises(ConfigStructureError):
                    action(path, value)
                continue
            if op == "set":
                ed.set(path, value)
                assert ed.get(path) == value
            else:
                ed.delete(path)
                assert ed.get(path, "gone") == "gone"
        out = ed.text
    finally:
        logger.removeHandler(watcher)
    assert (yaml.safe_load(out) or {}) == model
    # Stable: re-loading what was written changes nothing.
    assert ConfigEditor.from_text(out).text == out
    assert not watcher.records, [r.getMessage() for r in watcher.records]
    if not edits:
        assert out == text


def leaf_values(
    d: dict[str, Any], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    found: list[tuple[tuple[str, ...], Any]] = []
    for k, v in d.items():
        if isinstance(v, dict):
            found += leaf_values(v, (*prefix, k))
        else:
            found.append(((*prefix, k), v))
    return found


@settings(max_examples=150, deadline=None)
@given(doc=docs, indent=st.sampled_from([2, 4]), comments=st.booleans(), data=st.data())
def test_changing_one_scalar_changes_one_line(
    doc: dict[str, Any], indent: int, comments: bool, data: st.DataObject
) -> None:
    candidates = [(p, v) for p, v in leaf_values(doc) if not isinstance(v, list)]
    if not candidates:
        return
    path, old = data.draw(st.sampled_from(candidates))
    new = data.draw(scalars.filter(lambda v: v != old or type(v) is not type(old)))
    if new is None:
        return  # `k:` vs `k: null` is a spelling question, covered elsewhere
    text = render(doc, indent, comments)
    ed = ConfigEditor.from_text(text)
    ed.set(path, new)
    before, after = text.splitlines(), ed.text.splitlines()
    assert len(before) == len(after)
    changed = [(x, y) for x, y in zip(before, after, strict=True) if x != y]
    assert len(changed) <= 1
    if changed:
        (x, y) = changed[0]
        assert x.split(":")[0] == y.split(":")[0]  # same key, same indentation


def render_commented(doc: dict[str, Any], style: str) -> tuple[str, dict[tuple[str, ...], int]]:
    """The agent's template layout: every key commented out under `## @param` lines.

    style "indent": `# key:` then `  # child:` (the `#` moves with the key, as in
    config_template.yaml); style "column0": `# key:` then `#   child:` (the `#` stays at 0).
    Returns the text and the line number of each key path.
    """
    out: list[str] = ["## generated template", ""]
    where: dict[tuple[str, ...], int] = {}

    def scalar(v: Any) -> str:
        return (
            yaml.safe_dump(v, default_flow_style=True, width=1000).removesuffix("\n...\n").strip()
        )

    def emit(d: dict[str, Any], depth: int, prefix: tuple[str, ...]) -> None:
        for k, v in d.items():
            pad, hash_pad = (
                ("  " * depth, "# ") if style == "indent" else ("", "#" + " " * (1 + 2 * depth))
            )
            out.append(f"{'  ' * depth}## @param {k} - doc line")
            out.append(f"{'  ' * depth}#")
            where[(*prefix, k)] = len(out)
            if isinstance(v, dict):
                out.append(f"{pad}{hash_pad}{k}:")
                emit(v, depth + 1, (*prefix, k))
            else:
                out.append(f"{pad}{hash_pad}{k}: {scalar(v)}")
            out.append("")

    emit(doc, 0, ())
    return "\n".join(out) + "\n", where


def nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: Any = value
    for k in reversed(path):
        out = {k: out}
    return dict(out)


@settings(max_examples=150, deadline=None)
@given(
    doc=st.dictionaries(st.sampled_from(KEYS), trees, min_size=1, max_size=4),
    style=st.sampled_from(["indent", "column0"]),
    value=scalars,
    data=st.data(),
)
def test_activating_commented_defaults(
    doc: dict[str, Any], style: str, value: Any, data: st.DataObject
) -> None:
    text, where = render_commented(doc, style)
    assert yaml.safe_load(text) is None  # everything is commented out
    path = data.draw(st.sampled_from(sorted(where)))
    ed = ConfigEditor.from_text(text)
    ed.set(path, value)
    out = ed.text
    assert yaml.safe_load(out) == nest(path, value)
    before, after = text.splitlines(), out.splitlines()
    # Activated in place: same line count, and only the lines of the path's keys changed.
    assert len(before) == len(after)
    changed = {i for i, (x, y) in enumerate(zip(before, after, strict=True)) if x != y}
    assert changed == {where[path[:n]] for n in range(1, len(path) + 1)}
