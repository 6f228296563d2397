"""Exactness: each layout feature of a file survives an edit, byte for byte, outside the edit."""

from __future__ import annotations

import doctest
import logging

import pytest
import yaml

from wpprotect import _redact
from wpprotect.config import _editor
from wpprotect.config._editor import ConfigEditor
from wpprotect.errors import ConfigParseError


def edit(text: str, path: str, value: object) -> str:
    ed = ConfigEditor.from_text(text)
    ed.set(path, value)
    return ed.text


@pytest.mark.parametrize(
    ("before", "path", "value", "after"),
    [
        pytest.param(
            "# head\n\na: 1   # inline\n\n# block\nb: 2\n",
            "a",
            10,
            "# head\n\na: 10   # inline\n\n# block\nb: 2\n",
            id="comments-and-blank-lines",
        ),
        pytest.param(
            "logLevel:  # INFO\nb: null   # x\n",
            "logLevel",
            "debug",
            "logLevel: debug  # INFO\nb: null   # x\n",
            id="null-with-comment-gets-a-value",
        ),
        pytest.param(
            "logLevel:  # INFO\nb: null   # x\n",
            "b",
            5,
            "logLevel:  # INFO\nb: 5   # x\n",
            id="spelled-null-with-comment-gets-a-value",
        ),
        pytest.param(
            "a: 'x'\nb: \"y\"\nc: z\n",
            "a",
            "new",
            "a: 'new'\nb: \"y\"\nc: z\n",
            id="single-quotes-kept",
        ),
        pytest.param(
            "a: 'x'\nb: \"y\"\nc: z\n",
            "b",
            "new",
            "a: 'x'\nb: \"new\"\nc: z\n",
            id="double-quotes-kept",
        ),
        pytest.param(
            "a: {b: 1, c: 2}\nd: [1, 2]\n",
            "a.b",
            3,
            "a: {b: 3, c: 2}\nd: [1, 2]\n",
            id="flow-mapping",
        ),
        pytest.param(
            "z: 1\na:\n    b: 1\n    c:\n        d: 2\n",
            "a.c.e",
            True,
            "z: 1\na:\n    b: 1\n    c:\n        d: 2\n        e: true\n",
            id="indent-4",
        ),
        pytest.param(
            "a:\n  b: 1\n",
            "x.y.z",
            False,
            "a:\n  b: 1\nx:\n  y:\n    z: false\n",
            id="indent-2-new-parents",
        ),
        pytest.param(
            "---\na: 1\n",
            "a",
            2,
            "---\na: 2\n",
            id="document-start-marker",
        ),
        pytest.param(
            "%YAML 1.2\n---\na: 1\n...\n",
            "a",
            2,
            "%YAML 1.2\n---\na: 2\n...\n",
            id="directive-and-document-end",
        ),
        pytest.param("a: 1\nb: 2", "b", 3, "a: 1\nb: 3", id="no-final-newline"),
        pytest.param("a: 1\r\nb: 2\r\n", "b", 3, "a: 1\r\nb: 3\r\n", id="crlf-kept"),
        pytest.param("\ufeffa: 1\nb: 2\n", "b", 3, "\ufeffa: 1\nb: 3\n", id="bom-kept"),
        pytest.param(
            "a: null\nb: ~\nc:\nd:    spaced\ne: 1\n",
            "e",
            2,
            "a: null\nb: ~\nc:\nd:    spaced\ne: 2\n",
            id="null-spellings-and-spacing-untouched",
        ),
        pytest.param(
            "env:\n- name: A\n  value: '1'\nx: 1\n",
            "y",
            ["p", "q"],
            "env:\n- name: A\n  value: '1'\nx: 1\ny:\n- p\n- q\n",
            id="sequence-no-offset",
        ),
        pytest.param(
            "env:\n  - name: A\n    value: '1'\nx: 1\n",
            "y",
            ["p", "q"],
            "env:\n  - name: A\n    value: '1'\nx: 1\ny:\n  - p\n  - q\n",
            id="sequence-offset-2",
        ),
        pytest.param(
            "a:\n  b: 1\n  # trailing doc for c\n\nc: 2\n",
            "a.x",
            5,
            "a:\n  b: 1\n  x: 5\n  # trailing doc for c\n\nc: 2\n",
            id="append-before-trailing-comments",
        ),
        pytest.param(
            "a:\n  b:\n    x: 1\n    # y: 2\n\n# next\nz: 1\n",
            "a.k",
            5,
            "a:\n  b:\n    x: 1\n    # y: 2\n  k: 5\n\n# next\nz: 1\n",
            id="append-after-the-last-entry-own-commented-lines",
        ),
        pytest.param(
            "script: |\n  line one\n    indented\na: 1\n",
            "a",
            2,
            "script: |\n  line one\n    indented\na: 2\n",
            id="block-scalar-untouched",
        ),
        pytest.param(
            "base: &b\n  x: 1\nuse:\n  <<: *b\n  y: 2\n",
            "use.y",
            3,
            "base: &b\n  x: 1\nuse:\n  <<: *b\n  y: 3\n",
            id="anchors-and-merge-keys",
        ),
        pytest.param(
            "# only comments\n# here\n",
            "a.b",
            1,
            "# only comments\n# here\na:\n  b: 1\n",
            id="comment-only-document",
        ),
        pytest.param("", "a", 1, "a: 1\n", id="empty-document"),
        pytest.param(
            "a: {}\nb: 1\n",
            "a.k",
            "v",
            "a:\n  k: v\nb: 1\n",
            id="empty-flow-mapping-becomes-block",
        ),
        pytest.param(
            "a:\nb: 1\n",
            "a.k",
            1,
            "a:\n  k: 1\nb: 1\n",
            id="null-parent-becomes-mapping",
        ),
    ],
)
def test_layout_kept(
    before: str, path: str, value: object, after: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="wpprotect.config._editor"):
        assert edit(before, path, value) == after
    assert not caplog.records  # the minimal-diff merge was used, not the full-dump fallback


def test_untouched_document_is_identical_even_where_ruamel_would_reformat() -> None:
    text = (
        "a:   1\n"
        "b:  null\n"
        "c:      # comment far away\n"
        "   - x\n"
        "   -   y\n"
        "d: !!str 1\n"
        "e: >-\n  folded\n  text\n"
        "f: 'it''s'\n"
        'g: "tab\\there"\n'
        "h: 0x1F\n"
        "i: 1_000\n"
        "j: 1.50\n"
    )
    ed = ConfigEditor.from_text(text)
    assert ed.text == text
    ed.set("h", 31)
    out = ed.text
    assert [x for x in zip(text.splitlines(), out.splitlines(), strict=True) if x[0] != x[1]] == [
        ("h: 0x1F", "h: 31")
    ]


@pytest.mark.parametrize(
    ("value", "expected_line"),
    [
        (True, "k: true"),
        (False, "k: false"),
        (4, "k: 4"),
        (-1, "k: -1"),
        (1.5, "k: 1.5"),
        (None, "k:"),
        ("plain", "k: plain"),
        ("false", 'k: "false"'),
        ("true", 'k: "true"'),
        ("yes", 'k: "yes"'),
        ("off", 'k: "off"'),
        ("10", 'k: "10"'),
        ("0755", 'k: "0755"'),
        ("1.5", 'k: "1.5"'),
        ("null", 'k: "null"'),
        ("~", 'k: "~"'),
        ("", 'k: ""'),
        (" padded", 'k: " padded"'),
        (
            "/opt/datadog-agent/run/runtime-security.sock",
            "k: /opt/datadog-agent/run/runtime-security.sock",
        ),
        ("a: b", "k: 'a: b'"),
        ("#notacomment", "k: '#notacomment'"),
    ],
)
def test_value_types_and_quoting(value: object, expected_line: str) -> None:
    out = edit("other: 1\n", "k", value)
    assert out.splitlines()[1] == expected_line
    assert yaml.safe_load(out)["k"] == value
    assert ConfigEditor.from_text(out).get("k") == value


def test_quote_style_follows_the_file() -> None:
    out = edit("a: 'x'\nb: 'y'\n", "c", "false")
    assert out.endswith("c: 'false'\n")
    out = edit('a: "x"\nb: 1\n', "c", "false")
    assert out.endswith('c: "false"\n')


def test_multiline_string_is_a_literal_block() -> None:
    out = edit("a: 1\n", "s", "one\ntwo\n")
    assert out == "a: 1\ns: |\n  one\n  two\n"
    assert yaml.safe_load(out)["s"] == "one\ntwo\n"


def test_mixed_line_endings_are_refused() -> None:
    with pytest.raises(ConfigParseError, match="mixed line endings") as info:
        ConfigEditor.from_text("a: 1\r\nb: 2\nc: 3\r\n", path="/x.yaml")
    assert info.value.line == 2


def test_helm_sequence_style_detected_for_new_lists() -> None:
    text = (
        "agents:\n  containers:\n    agent:\n      env:\n        - name: A\n          value: x\n"
        "    systemProbe:\n      env: []\n"
    )
    ed = ConfigEditor.from_text(text)
    ed.set(
        "agents.containers.systemProbe.env",
        [{"name": "DD_RUNTIME_SECURITY_CONFIG_ENABLED", "value": "false"}],
    )
    assert ed.text.endswith(
        "    systemProbe:\n      env:\n        - name: DD_RUNTIME_SECURITY_CONFIG_ENABLED\n"
        "          value: 'false'\n"
        if "'" in ed.text
        else "    systemProbe:\n      env:\n        - name: DD_RUNTIME_SECURITY_CONFIG_ENABLED\n"
        '          value: "false"\n'
    )
    assert yaml.safe_load(ed.text)["agents"]["containers"]["systemProbe"]["env"] == [
        {"name": "DD_RUNTIME_SECURITY_CONFIG_ENABLED", "value": "false"}
    ]


def test_in_place_edit_of_data_is_round_trip() -> None:
    text = (
        "spec:\n  containers:\n  - name: system-probe\n    env:\n    - name: DD_A\n"
        '      value: "1"  # keep me\n    image: x\n# tail\n'
    )
    ed = ConfigEditor.from_text(text)
    env = ed.get("spec.containers")[0]["env"]
    env.append(ed.make_node({"name": "DD_RUNTIME_SECURITY_CONFIG_ENABLED", "value": "false"}))
    ed.set_in(env[0], "value", "2")
    assert ed.text == (
        "spec:\n  containers:\n  - name: system-probe\n    env:\n    - name: DD_A\n"
        '      value: "2"  # keep me\n    - name: DD_RUNTIME_SECURITY_CONFIG_ENABLED\n'
        '      value: "false"\n    image: x\n# tail\n'
    )


def test_set_then_delete_restores_original() -> None:
    text = "a:\n  b: 1\n  # doc\n\nc: 2\n"
    ed = ConfigEditor.from_text(text)
    ed.set("a.x", 5)
    assert ed.changed
    ed.delete("a.x")
    assert ed.text == text
    assert not ed.changed


@pytest.mark.parametrize(
    ("before", "path", "after"),
    [
        ("a: 1\nb: 2\nc: 3\n", "b", "a: 1\nc: 3\n"),
        ("a: 1\n# doc of b\nb: 2\n# doc of c\nc: 3\n", "b", "a: 1\n# doc of b\n# doc of c\nc: 3\n"),
        ("# doc of a\na: 1\n# doc of b\nb: 2\n", "a", "# doc of a\n# doc of b\nb: 2\n"),
        (
            "x:\n  a: 1\n  b:\n    c: 2\n  # after b\nz: 1\n",
            "x.b",
            "x:\n  a: 1\n  # after b\nz: 1\n",
        ),
        ("a: 1  # eol\nb: 2\n", "a", "b: 2\n"),
    ],
)
def test_delete_keeps_surrounding_comments(before: str, path: str, after: str) -> None:
    ed = ConfigEditor.from_text(before)
    assert ed.delete(path)
    assert ed.text == after


def test_keys_containing_dots() -> None:
    text = "metadata:\n  annotations:\n    example.com/x: 'a'\n"
    ed = ConfigEditor.from_text(text)
    assert ed.get(("metadata", "annotations", "example.com/x")) == "a"
    ed.set(["metadata", "annotations", "example.com/x"], "b")
    assert ed.text == "metadata:\n  annotations:\n    example.com/x: 'b'\n"


def test_docstring_examples_run() -> None:
    for module in (_editor, _redact):
        result = doctest.testmod(module, raise_on_error=False)
        assert result.attempted > 0
        assert result.failed == 0, module.__name__


def test_get_returns_plain_values() -> None:
    ed = ConfigEditor.from_text("a: 0x1F\nb: 'q'\nc: !!str 1\nd: 1.50\ne: ~\nf: [1]\n")
    assert ed.get("a") == 31
    assert type(ed.get("a")) is int
    assert type(ed.get("b")) is str
    assert ed.get("c") == "1"
    assert ed.get("d") == 1.5
    assert ed.get("e", "default") is None  # present, null
    assert list(ed.get("f")) == [1]
