"""Sphinx configuration for the wpprotect documentation."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The CLI-reference extension lives beside this file; the package is imported from the tree so
# the docs always describe the code next to them.
sys.path[:0] = [str(HERE / "_ext"), str(HERE.parent)]

import wpprotect  # noqa: E402 - after the path set-up above

project = "wpprotect"
author = "wpprotect developers"
copyright = "2026, wpprotect developers"  # Sphinx's own setting name
release = wpprotect.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.napoleon",
    "wpprotect_cli",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "_ext", "examples/.ipynb_checkpoints"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
nitpicky = False
html_theme = "alabaster"
html_title = f"wpprotect {release}"

# Every doctest block starts from the same imports (the public names too, for the examples in
# docstrings that autodoc pulls in); each runs in a fresh temp directory so examples can write
# files without touching the tree. That directory is also the temp directory while the block runs
# (examples such as a flare keep their archive in a temp dir), and the cleanup removes it: a
# doctest run leaves nothing behind.
doctest_global_setup = """
import os, pathlib, shutil, tempfile
import wpprotect as wp
from wpprotect import *
_wpux_old_cwd = os.getcwd()
_wpux_tmp = tempfile.mkdtemp(prefix="wpprotect-doctest-")
os.chdir(_wpux_tmp)
_wpux_old_tempdir, tempfile.tempdir = tempfile.tempdir, _wpux_tmp
"""
doctest_global_cleanup = """
os.chdir(_wpux_old_cwd)
tempfile.tempdir = _wpux_old_tempdir
shutil.rmtree(_wpux_tmp, ignore_errors=True)
"""

# Helper bases that carry no user-facing meaning (a shared context-manager or file-view base)
# are left out of the "Bases:" lines; their members are documented on the public classes.
_HIDDEN_BASES = {"wpprotect._closing.Closing", "wpprotect.config._editor._EditedFile"}


def _public_bases(app, name, obj, options, bases):
    kept = [b for b in bases if f"{b.__module__}.{b.__qualname__}" not in _HIDDEN_BASES]
    bases[:] = kept or [object]


def setup(app):
    app.connect("autodoc-process-bases", _public_bases)
