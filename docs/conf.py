"""Sphinx configuration for the wpprotect documentation."""

from __future__ import annotations

import wpprotect

project = "wpprotect"
author = "wpprotect developers"
copyright = "2026, wpprotect developers"  # noqa: A001 - Sphinx's own setting name
release = wpprotect.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.napoleon",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
nitpicky = False
html_theme = "alabaster"
html_title = f"wpprotect {release}"
