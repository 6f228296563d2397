"""The version of wpprotect: written here only (``pyproject.toml`` reads it from here)."""

__version__ = "0.1.0.dev0"
