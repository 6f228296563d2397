"""Fixtures for the ConfigEditor tests.

``wpprotect.config/__init__.py`` also imports the settings model and the file plans; while those
modules are being written in parallel the package import can fail, so the editor's own modules
are loaded through a bare package object in that case (they do not need the rest).
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import wpprotect

try:
    importlib.import_module("wpprotect.config")
except ImportError:  # pragma: no cover - only while _settings/_plans do not exist yet
    for name in [m for m in sys.modules if m.startswith("wpprotect.config")]:
        del sys.modules[name]
    pkg = types.ModuleType("wpprotect.config")
    pkg.__path__ = [str(Path(wpprotect.__file__).parent / "config")]
    sys.modules["wpprotect.config"] = pkg
