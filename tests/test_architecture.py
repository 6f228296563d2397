"""docs/architecture.md draws the same layers as the import-linter contract that enforces them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _contract_layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c for c in contracts if c["type"] == "layers"]
    assert layers["containers"] == ["wpprotect"]
    return list(layers["layers"])


def test_the_docs_page_shows_the_enforced_layers() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"```text\n(.*?)```", page, re.S)
    assert block is not None, "docs/architecture.md has no ```text block of layers"
    assert block[1].splitlines() == _contract_layers()


def test_every_module_of_the_package_is_in_a_layer() -> None:
    named = {m.strip() for line in _contract_layers() for m in line.split("|")}
    pkg = ROOT / "wpprotect"
    top = {p.stem for p in pkg.glob("*.py") if p.stem != "__init__"}
    top |= {p.parent.name for p in pkg.glob("*/__init__.py")}
    assert top <= named, f"not in any layer: {sorted(top - named)}"
