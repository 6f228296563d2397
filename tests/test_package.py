"""The package's face: exports, lazy backends, the error tree."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import wpprotect
from wpprotect import errors

PKG = Path(wpprotect.__file__).parent
HEAVY = ("docker", "kubernetes", "pyroute2", "ruamel", "websocket", "urllib3")


def test_all_is_sorted_and_complete() -> None:
    assert wpprotect.__all__ == sorted(wpprotect.__all__)
    assert len(set(wpprotect.__all__)) == len(wpprotect.__all__)
    for name in wpprotect.__all__:
        assert getattr(wpprotect, name) is not None, name


def test_unknown_attribute_names_itself() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = wpprotect.no_such_thing  # type: ignore[attr-defined]


def test_import_loads_no_heavy_backend() -> None:
    code = (
        "import sys, wpprotect\n"
        "wpprotect.Plan; wpprotect.WPProtectError\n"
        f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_every_error_derives_from_the_root() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.WPProtectError), name
        assert name in errors.__doc__, f"{name} missing from the tree in the docstring"


def test_error_message_names_what_and_where(tmp_path: Path) -> None:
    err = errors.ConfigStructureError("not a mapping", path=tmp_path / "x.yaml", line=3, key="a.b")
    assert str(err) == f"not a mapping ({tmp_path / 'x.yaml'}:3, key 'a.b')"
    assert isinstance(errors.InvalidArgumentError("bad"), ValueError)


BACKEND_HOMES = {
    "docker": ("wpprotect/platforms/docker", "wpprotect/platforms/_docker"),
    "kubernetes": ("wpprotect/platforms/kubernetes", "wpprotect/platforms/_k8s"),
    "urllib3": ("wpprotect/platforms/kubernetes", "wpprotect/platforms/_k8s"),
    "websocket": ("wpprotect/platforms/kubernetes", "wpprotect/platforms/_k8s"),
    "pyroute2": ("wpprotect/tc/",),
    "ruamel": ("wpprotect/config/",),
}


def test_backends_are_imported_only_in_their_own_module() -> None:
    """One wall per backend: each SDK may be imported only inside its adapter."""
    offenders = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                homes = BACKEND_HOMES.get(top)
                if homes and not rel.startswith(homes):
                    offenders.append(f"{rel}: {name}")
    assert offenders == []


def test_the_version_is_written_once() -> None:
    """pyproject.toml takes the version from ``wpprotect/_version.py``, which the package
    re-exports as ``wpprotect.__version__``; pyproject.toml has no literal."""
    import tomllib

    pyproject = tomllib.loads((PKG.parent / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    attr = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "wpprotect._version.__version__"
    from wpprotect._version import __version__

    assert wpprotect.__version__ is __version__
    assert re.fullmatch(
        r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?(?:\.post\d+)?(?:\.dev\d+)?", wpprotect.__version__
    )


def test_the_build_reads_the_version_without_importing_the_package() -> None:
    """setuptools reads the assignment statically: building imports neither wpprotect nor attrs."""
    pytest.importorskip("setuptools", reason="setuptools is not installed")
    code = (
        "import sys\n"
        "from setuptools.config.expand import read_attr\n"
        f"print(read_attr('wpprotect._version.__version__', root_dir={str(PKG.parent)!r}))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('wpprotect', 'attrs')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    ).stdout.splitlines()
    assert out == [wpprotect.__version__, "[]"]


def test_the_installed_metadata_has_the_same_version() -> None:
    from importlib import metadata

    try:
        installed = metadata.version("wpprotect")
    except metadata.PackageNotFoundError:
        pytest.skip("wpprotect is not installed (imported from the tree): no metadata to compare")
    assert installed == wpprotect.__version__
