"""Edits are checked when the text is needed, not at each set(): what the check refuses is still
refused (same error, edits undone, nothing written), and the local check never accepts a text
that reads back differently."""

from __future__ import annotations

import contextlib
import difflib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wpprotect.config._editor import ConfigEditor
from wpprotect.errors import ConfigStructureError

from .test_wpcfg_errors import unchanged
from .test_wpcfg_property import docs, paths, render, scalars, trees

# A string ruamel.yaml writes as is but reads back with a line break in it (NEL, U+0085): no
# rendering of it reads back as the same document, so the edit must be refused.
UNWRITABLE = "a\x85b"


def test_unwritable_set_is_refused_at_text_and_undone() -> None:
    text = "x: 1\ny: 2  # why\nz: 3\n"
    ed = ConfigEditor.from_text(text, path="/etc/datadog-agent/datadog.yaml")
    ed.set("x", 5)
    assert ed.text == "x: 5\ny: 2  # why\nz: 3\n"  # checked: stays
    ed.set("z", 4)
    ed.set("y", UNWRITABLE)  # refused later, not here
    with pytest.raises(ConfigStructureError, match="undone: set 'z', set 'y'") as info:
        _ = ed.text
    assert "/etc/datadog-agent/datadog.yaml" in str(info.value)
    # Back to the last text that was checked; what was checked before stays.
    assert ed.text == "x: 5\ny: 2  # why\nz: 3\n"
    assert (ed.get("x"), ed.get("y"), ed.get("z")) == (5, 2, 3)
    assert ed.original_text == text
    ed.set("z", 4)  # the editor works on afterwards
    assert ed.text == "x: 5\ny: 2  # why\nz: 4\n"


def test_unwritable_set_is_refused_by_diff() -> None:
    ed = ConfigEditor.from_text("a:\n  b: 1\n")
    ed.set("a.b", UNWRITABLE)
    with pytest.raises(ConfigStructureError, match="without changing other values"):
        ed.diff()
    assert ed.diff() == ""
    assert not ed.changed


def test_failed_save_leaves_the_file_untouched(tmp_path: Path) -> None:
    f = tmp_path / "system-probe.yaml"
    f.write_text("runtime_security_config:\n  enabled: true  # CWS\n")
    ed = ConfigEditor.load(f)
    ed.set("runtime_security_config.enabled", False)
    ed.set("runtime_security_config.policies", UNWRITABLE)
    with unchanged(tmp_path), pytest.raises(ConfigStructureError, match="undone"):
        ed.save()
    assert ed.save(backup=False) is None  # both edits were undone: nothing to write
    assert f.read_text() == "runtime_security_config:\n  enabled: true  # CWS\n"


def test_changed_refuses_like_text() -> None:
    ed = ConfigEditor.from_text("a: 1\n")
    ed.set("a", UNWRITABLE)
    with pytest.raises(ConfigStructureError):
        _ = ed.changed
    assert not ed.changed


def test_repr_neither_raises_nor_undoes() -> None:
    ed = ConfigEditor.from_text("a: 1\n", path="/etc/x.yaml")
    ed.set("a", UNWRITABLE)
    assert repr(ed) == "<ConfigEditor path='/etc/x.yaml' changed=?>"
    assert ed.get("a") == UNWRITABLE  # still there for text, diff or save to refuse
    with pytest.raises(ConfigStructureError):
        _ = ed.text


def test_batch_with_an_unwritable_edit_is_undone_whole() -> None:
    ed = ConfigEditor.from_text("a: 1\nb: 2\n")
    ed.set("b", 3)  # before the batch: checked when it starts, and kept

    def two_edits() -> None:
        with ed.batch():
            ed.set("a", 10)
            ed.set("c", UNWRITABLE)

    with pytest.raises(ConfigStructureError, match="without changing other values"):
        two_edits()
    assert ed.text == "a: 1\nb: 3\n"
    ed.set("a", UNWRITABLE)  # before a batch, unchecked: refused (and undone) as it starts
    with pytest.raises(ConfigStructureError, match="undone: set 'a'"), ed.batch():
        pytest.fail("the block must not run")
    assert ed.text == "a: 1\nb: 3\n"


def test_unwritable_edit_before_an_activation_is_refused_by_set(upstream: Path) -> None:
    # Activating a commented-out default renders the text first: earlier edits are checked there.
    text = (upstream / "datadog-agent" / "system-probe.yaml.example").read_text()
    ed = ConfigEditor.from_text(text)
    ed.set("extra", UNWRITABLE)
    with pytest.raises(ConfigStructureError, match="undone: set 'extra'"):
        ed.set("runtime_security_config.enabled", False)
    assert ed.text == text
    ed.set("runtime_security_config.enabled", False)
    assert ed.get("runtime_security_config.enabled") is False


def test_helm_values_edits_are_proved_without_a_full_read(upstream: Path) -> None:
    # The benchmark's edits, each alone and all together: the local check suffices (a full
    # re-read is the slow path this module exists to avoid), and the text is what a full
    # re-read would accept.
    text = (upstream / "helm-charts" / "values.yaml").read_text()
    edits: list[tuple[str, Any]] = [
        ("datadog.securityAgent.runtime.enabled", True),
        ("datadog.securityAgent.runtime.network.enabled", False),
        ("datadog.securityAgent.compliance.enabled", True),
        ("clusterAgent.replicas", 2),
        ("agents.image.tag", "7.60.0"),
        ("datadog.securityAgent.runtime.newKey", {"a": [1, 2]}),  # after a nested block
        ("datadog.kubelet", {"host": "x"}),  # replaces a block
    ]
    for n in [*range(len(edits)), None]:
        ed = ConfigEditor.from_text(text)
        for path, value in edits if n is None else [edits[n]]:
            ed.set(path, value)
        lines, changes = merged(ed)
        assert ed._proved_locally(lines, changes), n
        assert ed._same_document("".join(lines)), n
        assert ed.text == "".join(lines)


def merged(ed: ConfigEditor) -> tuple[list[str], list[tuple[int, int, int]]]:
    """The merge behind ``ed.text``, and its changes to the real text."""
    from wpprotect.config._editor import _merge

    base = ed._base_dump.splitlines(True)
    return _merge(ed._orig_lines, base, ed._dump(ed.data).splitlines(True))


def without_change(
    orig: list[str], lines: list[str], changes: list[tuple[int, int, int]], lost: int
) -> list[str]:
    """``lines`` (``orig`` with ``changes``) with change number ``lost`` not made."""
    out: list[str] = []
    at = 0  # in orig
    pos = 0  # in lines
    for n, (start, end, count) in enumerate(changes):
        out += orig[at:start]
        pos += start - at
        out += orig[start:end] if n == lost else lines[pos : pos + count]
        pos += count
        at = end
    return out + orig[at:]


def changes_between(a: list[str], b: list[str]) -> list[tuple[int, int, int]]:
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return [(i1, i2, j2 - j1) for tag, i1, i2, j1, j2 in sm.get_opcodes() if tag != "equal"]


def corrupt(lines: list[str], at: int, how: int) -> list[str]:
    out = list(lines)
    line = out[at] if at < len(out) else "\n"
    body = line.rstrip("\n")
    indent = len(body) - len(body.lstrip(" "))
    variants = [
        "  " + line,  # deeper
        line[2:] if body.startswith("  ") else " " + line,  # shallower
        body + " x\n",  # a longer value
        body.replace(":", ": #", 1) + "\n",  # the value commented out
        " " * indent + "enabled: 1\n",  # another key at this column
        body + "\n" + line,  # doubled (a duplicate key, or an extra item)
        "",  # gone
        " " * indent + "- 1\n",  # a list item
        body.replace("true", "false").replace("1", "2") + "\n",
        " " * indent + "'\n",  # an unclosed quote
    ]
    out[at : at + 1] = [variants[how % len(variants)]]
    return "".join(out).splitlines(True)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc=docs,
    layout=st.tuples(st.sampled_from([2, 4]), st.booleans(), st.sampled_from([0, 2])),
    edits=st.lists(st.tuples(paths, st.one_of(scalars, trees)), min_size=1, max_size=3),
    data=st.data(),
)
def test_local_check_never_accepts_a_text_that_reads_differently(
    doc: dict[str, Any],
    layout: tuple[int, bool, int],
    edits: list[tuple[list[str], Any]],
    data: st.DataObject,
) -> None:
    ed = ConfigEditor.from_text(render(doc, *layout))
    for path, value in edits:
        with contextlib.suppress(ConfigStructureError):  # through a scalar: refused, no change
            ed.set(path, value)
    lines, changes = merged(ed)
    if ed._proved_locally(lines, changes):
        assert ed._same_document("".join(lines))
    # A merge that lost one of its changes: the text outside the checked entries no longer
    # says what the document holds.
    if changes:
        lost = data.draw(st.integers(0, len(changes) - 1))
        kept = without_change(ed._orig_lines, lines, changes, lost)
        if ed._proved_locally(kept, changes[:lost] + changes[lost + 1 :]):
            assert ed._same_document("".join(kept)), "".join(kept)
    # Any other text with the same document data: accepted only if it reads back the same.
    at = data.draw(st.integers(0, max(0, len(lines) - 1)))
    bad = corrupt(lines, at, data.draw(st.integers(0, 100)))
    if ed._proved_locally(bad, changes_between(ed._orig_lines, bad)):
        assert ed._same_document("".join(bad)), "".join(bad)


@settings(max_examples=100, deadline=None)
@given(doc=docs, edits=st.lists(st.tuples(paths, scalars), min_size=1, max_size=4))
def test_lazy_sets_end_where_eager_sets_do(doc: dict[str, Any], edits: list[Any]) -> None:
    # The same edits, checked once at the end or after each one, give the same text.
    text = render(doc, 2, True)
    lazy, eager = ConfigEditor.from_text(text), ConfigEditor.from_text(text)
    for path, value in edits:
        try:
            lazy.set(path, value)
        except ConfigStructureError:
            continue
        eager.set(path, value)
        _ = eager.text
    assert lazy.text == eager.text


# Lines whose redaction depends on the lines before them (block scalars and PEM bodies under
# secret keys, env name/value pairs), and a hunk-like line that makes redact_text read a diff.
REDACTION_LINES = [
    "api_key: 0123456789abcdef0123456789abcdef\n",
    "password: |\n",
    "  line of a secret block\n",
    "    deeper secret\n",
    "-----BEGIN RSA PRIVATE KEY-----\n",
    "MIIEpAIBAAKCAQEA\n",
    "-----END RSA PRIVATE KEY-----\n",
    "- name: DD_API_KEY\n",
    "  value: plain-secret\n",
    "@@ -1 +1 @@\n",
    "site: datadoghq.com\n",
    "x: 1\n",
    "\n",
]


@settings(max_examples=300, deadline=None)
@given(
    before=st.lists(st.sampled_from(REDACTION_LINES), max_size=25),
    edits=st.lists(
        st.tuples(st.integers(0, 30), st.sampled_from(["drop", *REDACTION_LINES])), max_size=3
    ),
    context=st.integers(0, 3),
)
def test_diff_redacts_as_if_each_whole_text_were_redacted(
    before: list[str], edits: list[tuple[int, str]], context: int
) -> None:
    # diff() redacts only up to its last hunk: the same output as redacting both texts whole.
    SECRETS = frozenset({"hunter2", "0123456789abcdef0123456789abcdef"})
    from wpprotect._redact import redact_text
    from wpprotect.config._editor import _redacted_diff, _unified_diff

    after = list(before)
    for at, line in edits:
        if line == "drop":
            if after:
                del after[at % len(after)]
        else:
            after.insert(at % (len(after) + 1), line)
    a, b = "".join(before), "".join(after)
    whole = _unified_diff(
        a.splitlines(keepends=True),
        b.splitlines(keepends=True),
        redact_text(a, secrets=SECRETS).splitlines(keepends=True),
        redact_text(b, secrets=SECRETS).splitlines(keepends=True),
        names=("a/f.yaml", "b/f.yaml"),
        context=context,
    )
    assert _redacted_diff(a, b, Path("/f.yaml"), context, SECRETS) == whole
