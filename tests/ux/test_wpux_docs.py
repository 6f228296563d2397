"""The documentation keeps up with the code: every public name has an API entry, every page is
in the table of contents, every CLI command is in the generated reference. (The docs nox session
builds the site with -W and runs its examples.)"""

from __future__ import annotations

import importlib.util
import re

import pytest

import wpprotect
from tests.ux.wpux_support import ROOT
from wpprotect import errors

DOCS = ROOT / "docs"


def test_every_public_name_is_in_the_api_reference() -> None:
    text = (DOCS / "api.md").read_text()
    # the last dotted part: wpprotect.Plan and wpprotect.doctor.diagnose both count
    documented = set(re.findall(r"\.\. auto\w+:: wpprotect\.(?:\w+\.)*(\w+)", text))
    assert ".. automodule:: wpprotect.errors" in text  # the whole error tree, from its docstring
    public = {n for n in wpprotect.__all__ if n != "__version__" and n not in errors.__all__}
    assert sorted(public - documented) == []


def test_every_guide_and_page_is_in_the_toctree() -> None:
    index = (DOCS / "index.md").read_text()
    pages = sorted(
        p.relative_to(DOCS).with_suffix("").as_posix()
        for p in DOCS.rglob("*.md")
        if "_build" not in p.parts and p.name != "index.md"
    )
    assert [p for p in pages if p not in index] == []


def test_cli_reference_lists_every_command() -> None:
    """The generated page (docs/_ext/wpprotect_cli.py) walks the real parser; the docs session
    builds it with -W, so here only what it renders is checked."""
    pytest.importorskip("sphinx", reason="sphinx is not installed (the dev extra)")
    spec = importlib.util.spec_from_file_location(
        "wpux_cli_ext", DOCS / "_ext" / "wpprotect_cli.py"
    )
    assert spec is not None
    assert spec.loader is not None
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    from wpprotect.cli import build_parser

    parser = build_parser()
    lines: list[str] = []
    ext._render(parser, "wpprotect", 0, lines)
    text = "\n".join(lines)
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in sub.choices:  # type: ignore[attr-defined]
        assert f"wpprotect {name}\n" in text, name
    assert "``--install-dir DIR``" in text
    assert "(default: /opt/datadog-agent)" in text  # %(default)s is expanded
