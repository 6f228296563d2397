"""Attacks on parsing: alias bombs, secrets in parser errors, nesting that overflows the stack,
and arguments of the wrong type.

Each test performs the attack and asserts the typed error (a ``WPProtectError``), that it comes
quickly (under the hard limit of a fresh interpreter), that no secret is on any surface of the
error, and that the attacked file and its directory are left as they were.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import pytest

import wpprotect as wp
from tests.attacks.conftest import run_bounded, tree_digest
from wpprotect.config import ConfigEditor, detect_kind, plan_classifier_priority, plan_disable
from wpprotect.errors import (
    ConfigExpansionError,
    ConfigParseError,
    InvalidArgumentError,
    WPProtectError,
)

SECRET = "s3cr3t-Zq9-never-shown"


def billion_laughs(levels: int) -> str:
    """A "billion laughs" document: each level is nine aliases of the level below, so
    ``levels`` lines stand for 9**levels scalars (6 levels: 340 bytes, 531,441 nodes)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


# --- 5. alias bombs ---------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [6, 9])
def test_billion_laughs_is_refused_quickly(levels: int) -> None:
    # 6 levels took 16 s in ConfigEditor.from_text; 9 levels never ended.
    code = (
        "from tests.attacks.test_attack_parsing import billion_laughs\n"
        "from wpprotect.config import ConfigEditor\n"
        "from wpprotect.config._settings import parse_yaml_bytes\n"
        "from wpprotect.errors import ConfigExpansionError\n"
        f"text = billion_laughs({levels})\n"
        "for load in (ConfigEditor.from_text, parse_yaml_bytes):\n"
        "    try:\n"
        "        load(text)\n"
        "    except ConfigExpansionError as exc:\n"
        "        print(type(exc).__name__)\n"
    )
    assert run_bounded(code).split() == ["ConfigExpansionError"] * 2


def test_billion_laughs_in_a_plan_target_is_refused_and_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "values.yaml"
    target.write_text("datadog:\n  securityAgent: {}\n" + billion_laughs(9))
    before = tree_digest(tmp_path)
    with pytest.raises(ConfigExpansionError) as info:
        plan_disable(target)
    assert "100,000" in str(info.value)
    assert isinstance(info.value, ConfigParseError)
    assert tree_digest(tmp_path) == before


def test_aliases_under_the_limit_still_load() -> None:
    editor = ConfigEditor.from_text(billion_laughs(3))  # 9**3 scalars: a legitimate size
    assert editor.get("a3")[0][0][0][0] == "lol"
    editor.set("b", 1)
    assert "+b: 1" in editor.diff()


def test_the_limit_is_a_class_setting() -> None:
    class Strict(ConfigEditor):
        MAX_ALIAS_EXPANSION = 50

    with pytest.raises(ConfigExpansionError):
        Strict.from_text(billion_laughs(2))
    assert ConfigEditor.from_text(billion_laughs(2)).get("a0")[0] == "lol"


# --- 8. secrets in exception chains -----------------------------------------------------------

BAD_YAML = {
    "mapping-in-value": f"api:\n  token: abc: {SECRET}\n",
    "duplicate-key": f"token: 1\ntoken: {SECRET}\n",
    "bad-flow": f"token: [{SECRET}\n",
}


def _every_surface(exc: BaseException) -> str:
    chain = [exc, exc.__cause__, exc.__context__]
    parts = [str(e) for e in chain if e is not None] + [repr(e) for e in chain if e is not None]
    parts += traceback.format_exception(exc)
    return "\n".join(parts)


@pytest.mark.parametrize("shape", sorted(BAD_YAML))
def test_parse_error_chains_no_secret(tmp_path: Path, shape: str) -> None:
    from wpprotect.config._settings import parse_yaml_bytes

    target = tmp_path / "system-probe.yaml"
    target.write_text(BAD_YAML[shape])
    before = tree_digest(tmp_path)
    loaders: list[Any] = [
        lambda: ConfigEditor.from_text(BAD_YAML[shape]),
        lambda: ConfigEditor.load(target),
        lambda: parse_yaml_bytes(BAD_YAML[shape]),
        lambda: plan_disable(target),
    ]
    for load in loaders:
        with pytest.raises(ConfigParseError) as info:
            load()
        assert info.value.__cause__ is None
        assert info.value.__context__ is None
        assert SECRET not in _every_surface(info.value)
    assert tree_digest(tmp_path) == before


# --- 14. nothing but WPProtectError escapes ---------------------------------------------------

NESTED = {
    "yaml-flow-lists": "a: " + "[" * 50_000 + "]" * 50_000 + "\n",
    "yaml-flow-maps": "a: " + "{b: " * 25_000 + "1" + "}" * 25_000 + "\n",
    "json": '{"a": ' * 20_000 + "1" + "}" * 20_000 + "\n",
}


@pytest.mark.parametrize("shape", sorted(NESTED))
def test_100kb_of_nesting_is_a_parse_error(tmp_path: Path, shape: str) -> None:
    # RecursionError used to escape from the parser.
    target = tmp_path / ("ds.json" if shape == "json" else "values.yaml")
    target.write_text(NESTED[shape])
    before = tree_digest(tmp_path)
    calls: list[Any] = [lambda: plan_disable(target), lambda: detect_kind(target)]
    if shape != "json":
        calls.append(lambda: ConfigEditor.from_text(NESTED[shape]))
    for call in calls:
        with pytest.raises(ConfigParseError, match="nested deeper"):
            call()
    assert tree_digest(tmp_path) == before


@pytest.mark.parametrize("bad", [None, 5, b"/etc", ""])
def test_wrong_argument_types_are_invalid_argument_errors(bad: object) -> None:
    calls: list[Any] = [
        lambda: plan_disable(bad),  # type: ignore[arg-type]
        lambda: plan_classifier_priority(bad, 5),  # type: ignore[arg-type]
        lambda: detect_kind(bad),  # type: ignore[arg-type]
        lambda: ConfigEditor.load(bad),  # type: ignore[arg-type]
        lambda: ConfigEditor.load_all(bad),  # type: ignore[arg-type]
        lambda: wp.HostPlatform(bad),  # type: ignore[arg-type]
        lambda: wp.HostPlatform(config_dir=bad),  # type: ignore[arg-type]
    ]
    if not isinstance(bad, str):
        calls.append(lambda: ConfigEditor.from_text(bad))  # type: ignore[arg-type]
    for call in calls:
        with pytest.raises(InvalidArgumentError) as info:
            call()
        assert isinstance(info.value, WPProtectError)
        assert isinstance(info.value, ValueError)
