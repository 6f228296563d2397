"""Every row of the version table against the simulated agent in real Docker containers, one per
version of the grid; wpprotect never starts an old system-probe's daemon; a hung version read is
bounded by the operation's timeout and the hung process is killed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import images
from tests.agent_sim.rows import VERSION_GRID, assert_never_started_daemon, check_rows
from tests.docker.conftest import PREFIX, unique
from wpprotect._agentversions import BEHAVIOURS
from wpprotect.errors import ExecTimeoutError
from wpprotect.platforms.docker import DockerPlatform

pytestmark = pytest.mark.docker

STATE = "/etc/wpprotect-sim/state/daemon-started"
ENV_FILE = "/etc/wpprotect-sim/env"


def _daemon_starts(box: DockerPlatform) -> Callable[[], list[str]]:
    def read() -> list[str]:
        res = box.exec(["cat", STATE], component="system-probe", timeout=30)
        return res.stdout.splitlines() if res.exit_code == 0 else []

    return read


def _set_sim(box: DockerPlatform) -> Callable[[str, str], None]:
    def set_sim(key: str, value: str) -> None:
        line = f"WPSIM_{key.upper()}={value}"
        res = box.exec(["sh", "-c", f"echo {line} >> {ENV_FILE}"], timeout=30)
        assert res.exit_code == 0, res

    return set_sim


@pytest.fixture
def versioned_box(request: pytest.FixtureRequest) -> Iterator[tuple[DockerPlatform, str]]:
    version: str = request.param
    image = images.build_agent_image(
        version, tag_prefix=PREFIX, sim_env={"WPSIM_DAEMON_SECONDS": "0"}
    )
    with images.container(image, unique(f"v{version.replace('.', '-')}")) as name:
        yield DockerPlatform(container=name), version


@pytest.mark.parametrize("versioned_box", VERSION_GRID, indirect=True)
def test_every_row_in_a_container(
    versioned_box: tuple[DockerPlatform, str], tmp_path: Path
) -> None:
    box, version = versioned_box
    starts = _daemon_starts(box)
    assert_never_started_daemon(box, version, starts, tmp_path, _set_sim(box))
    assert check_rows(box, version, starts, tmp_path) == set(BEHAVIOURS)


@pytest.mark.parametrize("version", ["7.43.0", "7.78.0"])
def test_hung_version_read_is_bounded_and_killed(version: str) -> None:
    image = images.build_agent_image(
        version,
        tag_prefix=PREFIX,
        sim_env={"WPSIM_VERSION_ANSWER": "hang", "WPSIM_HANG_SECONDS": "300"},
    )
    with images.container(image, unique("hang")) as name:
        box = DockerPlatform(container=name)
        started = time.monotonic()
        with pytest.raises(ExecTimeoutError) as info:
            box.self_test(timeout=5)
        assert time.monotonic() - started < 15
        assert "self-test ran past its 5 s timeout" in str(info.value)
        # The daemon reports the exec's pid; wpprotect killed it: no `sleep 300` is left.
        for _ in range(50):
            ps = box.exec(["ps", "-o", "args"], timeout=30).stdout
            if "sleep 300" not in ps:
                break
            time.sleep(0.1)
        assert "sleep 300" not in ps, ps
        assert "/bin/sh -c trap" in ps, ps  # ps did list the container's processes
        assert box.exec(["cat", STATE], timeout=30).exit_code != 0  # no daemon either
