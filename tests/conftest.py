"""Shared fixtures. Tests that need root or Docker skip, saying why, where those are missing.

Two session-wide rules live here:

- The only data read from outside the repository is the optional upstream example files in
  ``../shared/upstream`` (the ``upstream`` fixture). Without them those tests skip, saying why;
  under ``CI=true`` they fail instead, so CI cannot go green by skipping them.
- A test run leaves nothing in the temp directory. The session runs with a temp directory of its
  own (``TMPDIR`` and :data:`tempfile.tempdir`, so subprocesses use it too), created under the
  system one; at the end, any ``wpprotect-*`` entry left in it fails the run, naming the entries,
  and the directory is removed. Entries other processes create in the system temp directory
  never count; new ``wpprotect-*`` entries there (from a command that reset its environment) are
  reported without failing the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = ROOT.parent / "shared" / "upstream"
#: What the library and its commands name their temp files and directories.
TEMP_PREFIX = "wpprotect-"


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
    """../shared/upstream: the real Helm values and agent example configs, read in place.

    Optional outside CI (the tests that need it skip, saying why); required under ``CI=true``.
    """
    return upstream_dir(UPSTREAM, ci=os.environ.get("CI") == "true")


def upstream_dir(path: Path, *, ci: bool) -> Path:
    """``path`` if it is a directory; else fail the test under CI, skip it elsewhere."""
    if not path.is_dir():
        why = (
            f"{path} is absent: the upstream example files (Helm chart values, the agent's "
            "example configs) are read from there"
        )
        if ci:
            pytest.fail(f"{why}; CI=true requires them", pytrace=False)
        pytest.skip(why)
    return path


def _ours(directory: Path) -> set[str]:
    try:
        return {name for name in os.listdir(directory) if name.startswith(TEMP_PREFIX)}
    except FileNotFoundError:
        return set()


#: ``(entries left in the session's temp dir, new entries in the system temp dir)``.
_LEFT_BEHIND: list[tuple[list[str], list[str]]] = []


@pytest.fixture(scope="session", autouse=True)
def _session_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Run the session in a temp directory of its own and record what is left in it."""
    tmp_path_factory.getbasetemp()  # pytest's own tmp_path dirs stay where pytest keeps them
    system = Path(tempfile.gettempdir())
    system_before = _ours(system)
    private = Path(tempfile.mkdtemp(prefix="pytest-wpprotect-temp-", dir=system))
    private.chmod(0o755)  # tests that run commands as another user give them files under it
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = tempfile.tempdir = str(private)
    try:
        yield private
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        left = sorted(_ours(private))
        _LEFT_BEHIND.append((left, sorted(_ours(system) - system_before)))
        shutil.rmtree(private, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when tests left ``wpprotect-*`` entries in the temp directory."""
    if any(left for left, _ in _LEFT_BEHIND) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for left, elsewhere in _LEFT_BEHIND:
        if left:
            terminalreporter.section("left behind in the temp directory", sep="=", red=True)
            terminalreporter.line(
                f"{len(left)} {TEMP_PREFIX}* entries were not removed (the run fails): "
                + ", ".join(left)
            )
        if elsewhere:
            terminalreporter.section("new in the system temp directory", sep="-", yellow=True)
            terminalreporter.line(
                f"{len(elsewhere)} {TEMP_PREFIX}* entries appeared there during the run (another "
                "process, or a command run with a reset environment): " + ", ".join(elsewhere)
            )
