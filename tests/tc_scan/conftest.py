"""Fixtures for the scan tests: a throwaway kernel scene, always removed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.tc_scan._scene import Scene


@pytest.fixture
def scene() -> Iterator[Scene]:
    """An empty :class:`Scene`; everything added to it is removed after the test."""
    sc = Scene()
    try:
        yield sc
    finally:
        sc.close()
