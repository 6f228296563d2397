"""Shared fixtures. Tests that need root or Docker skip, saying why, where those are missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
UPSTREAM = SHARED / "upstream"


def _docker_ok() -> str | None:
    if shutil.which("docker") is None:
        return "the docker CLI is not installed (scripts/test installs docker.io)"
    try:
        proc = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "the Docker daemon did not answer within 20 s"
    if proc.returncode != 0:
        return "no Docker daemon is running (scripts/test starts dockerd)"
    return None


_DOCKER_REASON: list[str | None] = []


def docker_skip_reason() -> str | None:
    """Why Docker tests cannot run here, or None when they can (checked once per session)."""
    if not _DOCKER_REASON:
        _DOCKER_REASON.append(_docker_ok())
    return _DOCKER_REASON[0]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") and os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and bpf(2) (CI runs as root)")
    if item.get_closest_marker("docker"):
        reason = docker_skip_reason()
        if reason:
            pytest.skip(reason)


@pytest.fixture(scope="session")
def upstream() -> Path:
    """../shared/upstream: the real Helm values and agent example configs, read in place."""
    if not UPSTREAM.is_dir():
        pytest.skip(f"{UPSTREAM} is absent: the upstream example files are read from there")
    return UPSTREAM
