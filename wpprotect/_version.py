"""wpprotect's version, in a leaf module so that any layer can report it without importing the
top-level package."""

__all__ = ["__version__"]

__version__ = "0.1.0.dev0"
