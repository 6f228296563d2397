"""Fixtures for the agent-operation tests: the simulated agent installed in a temp host layout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.agent_sim import SimInstall, install_host
from wpprotect.platforms.host import HostPlatform

#: The versions the suite runs against: before system-probe runtime (7.50), after it (7.59),
#: after security-agent runtime was removed (7.70), after the 7.77 deprecation (7.78).
VERSIONS = ("7.50.3", "7.59.0", "7.70.1", "7.78.0")

SimFactory = Callable[..., tuple[SimInstall, HostPlatform]]


@pytest.fixture
def sim_host(tmp_path: Path) -> SimFactory:
    """``sim_host(version="7.59.0", selftest="ok", ...)`` → (simulator install, HostPlatform)."""
    count = [0]

    def make(**settings: object) -> tuple[SimInstall, HostPlatform]:
        count[0] += 1
        root = tmp_path / f"opt{count[0]}"
        flare_extra = settings.pop("flare_extra_files", None)
        sim = install_host(root, flare_extra_files=flare_extra, **settings)  # type: ignore[arg-type]
        return sim, HostPlatform(root, tmp_path / "etc", sudo=False)

    return make
