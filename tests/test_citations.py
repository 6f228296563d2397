"""The repository stands alone: citations point at pages and anchors of ``docs/reference/`` that
exist, nothing cites a file outside the repository, and the one optional outside path
(``../shared/upstream``) is required under CI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
SCANNED = ("wpprotect", "tests", "benchmarks")
SUFFIXES = {".py", ".sh", ".md", ".txt", ".yaml", ".toml", ""}

#: ``docs/reference/<page>.md#<anchor>``: how the code cites a fact.
CITATION = re.compile(r"docs/reference/(?P<page>[\w-]+)\.md#(?P<anchor>[\w-]+)")
#: A MyST target, ``(anchor)=`` on a line of its own.
TARGET = re.compile(r"^\((?P<anchor>[\w-]+)\)=\s*$", re.M)
#: Citations of files that are not in the repository (research notes, absolute paths).
OUTSIDE = re.compile(
    r"(?<![\w-])design\.md"
    r"|tc-ebpf\.md"
    r"|datadog-agent-cli\.md"
    r"|(?<!docs/reference/)deployments\.md"
    r"|reference (?:§ ?|sections? )?\d"
    r"|shared/(?!upstream\b)"
    r"|(?<![\w.])/work/"
)


def _sources() -> list[Path]:
    here = Path(__file__).resolve()
    files = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            wanted = path.is_file() and path.suffix in SUFFIXES and "__pycache__" not in path.parts
            if wanted and path.resolve() != here:
                files.append(path)
    return files


def _anchors(page: Path) -> set[str]:
    return set(TARGET.findall(page.read_text()))


def _citations() -> list[tuple[str, str, str]]:
    found = []
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for match in CITATION.finditer(line):
                found.append((f"{rel}:{lineno}", match["page"], match["anchor"]))
    return found


def test_the_reference_pages_have_anchors() -> None:
    pages = sorted(REFERENCE.glob("*.md"))
    assert {p.stem for p in pages} >= {"agent-cli", "contract", "deployments", "kernel-tc"}
    for page in pages:
        if page.stem != "index":
            assert _anchors(page), f"{page.name} has no (anchor)= targets"


def test_every_citation_names_an_existing_page_and_anchor() -> None:
    anchors = {p.stem: _anchors(p) for p in REFERENCE.glob("*.md")}
    citations = _citations()
    assert citations, "no docs/reference citations found: the scan itself is broken"
    broken = [
        f"{where}: docs/reference/{page}.md#{anchor}"
        for where, page, anchor in citations
        if anchor not in anchors.get(page, set())
    ]
    assert broken == []


def test_the_outside_pattern_tells_old_forms_from_new() -> None:
    old = [
        "(design.md §2)",
        "reference tc-ebpf.md §7",
        "datadog-agent-cli.md §3.2",
        "(deployments.md §4)",
        "(reference section 1.4)",
        "(reference §2.1)",
        "removed in 7.67: reference 2.1.",
        "(per reference/deployments.md §2-3)",
        "``shared/reference/tc-ebpf.md``",
        "``/work/shared/reference/deployments.md``",
    ]
    new = [
        "docs/reference/deployments.md#deploy-docker",
        "docs/reference/contract.md#contract-findings",
        "../shared/upstream/helm-charts/values.yaml",
        "the shared redaction helpers",
    ]
    assert [o for o in old if not OUTSIDE.search(o)] == []
    assert [n for n in new if OUTSIDE.search(n)] == []


def test_nothing_cites_a_file_outside_the_repository() -> None:
    offenders = []
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{rel}:{lineno}: {line.strip()}")
    assert offenders == []


def test_missing_upstream_data_fails_under_ci_and_skips_elsewhere(tmp_path: Path) -> None:
    """The one outside path, ../shared/upstream, is optional only outside CI."""
    from tests.conftest import upstream_dir

    missing = tmp_path / "upstream"
    with pytest.raises(pytest.fail.Exception, match="CI=true requires them"):
        upstream_dir(missing, ci=True)
    with pytest.raises(pytest.skip.Exception, match="is absent"):
        upstream_dir(missing, ci=False)
    missing.mkdir()
    assert upstream_dir(missing, ci=True) == missing
