"""Self-test and flare through DockerPlatform with the simulated agent CLI in real containers."""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests import images
from tests.docker.conftest import PREFIX, unique
from wpprotect.errors import ExecError, WPProtectError
from wpprotect.platforms.docker import DockerPlatform

pytestmark = pytest.mark.docker

# Before system-probe had `runtime` (7.56), between it and the security-agent's removal of it
# (7.67), after that, and after the security-agent process stopped running (7.77).
VERSIONS = ["7.50.3", "7.59.1", "7.70.0", "7.78.2"]


@pytest.fixture(scope="module", params=VERSIONS)
def agent(request: pytest.FixtureRequest) -> Any:
    version: str = request.param
    image = images.build_agent_image(version, tag_prefix=PREFIX)
    name = unique(f"agent-{version.replace('.', '-')}")
    with images.container(image, name):
        yield DockerPlatform(container=name), version


def test_version(agent: Any) -> None:
    box, version = agent
    assert str(box.version()) == version


def test_self_test(agent: Any) -> None:
    box, version = agent
    res = box.self_test()
    assert res.ok, res.output
    assert res.exit_code == 0
    assert res.target == box.target
    newer = tuple(int(x) for x in version.split(".")[:2]) >= (7, 67)
    # security-agent lost `runtime` in 7.67 (docs/reference/agent-cli.md#cli-runtime-binary):
    # system-probe must have run it.
    if newer:
        assert res.command[0] == "system-probe"
    assert "Runtime self test: OK" in res.output


def test_flare_copied_out(agent: Any, tmp_path: Path) -> None:
    box, _version = agent
    fl = box.flare(case_id="1234567", email="ops@example.com", dest=tmp_path)
    assert fl.archive is not None
    assert fl.archive.parent == tmp_path
    assert fl.archive.name.startswith("datadog-agent-")
    assert fl.archive.suffix == ".zip"
    with zipfile.ZipFile(fl.archive) as zf:
        assert sorted(zf.namelist()) == sorted(fl.files)
    assert fl.files
    assert not fl.sent
    assert fl.target == box.target
    # Nothing secret in this template; the review runs on the copied-out file.
    assert fl.scan_secrets() == []


def test_self_test_failure_is_reported(make_container: Any) -> None:
    image = images.build_agent_image("7.59.1", outcome="unavailable", tag_prefix=PREFIX)
    box = DockerPlatform(container=make_container(image, "unavailable"))
    res = box.self_test()
    assert not res.ok
    assert res.error


def test_fleet_of_containers(make_container: Any) -> None:
    old = make_container(images.build_agent_image("7.50.3", tag_prefix=PREFIX), "fleet-a")
    new = make_container(images.build_agent_image("7.78.2", tag_prefix=PREFIX), "fleet-b")
    fleet = DockerPlatform(names=[old, new]).agents()
    assert [a.target for a in fleet][:2] == [f"docker:{old}", f"docker:{new}"]
    results = [a.self_test() for a in fleet[:2]]
    assert [r.ok for r in results] == [True, True]
    assert [str(r.version) for r in results] == ["7.50.3", "7.78.2"]


def test_flare_in_stopped_container(make_container: Any, agent_image: str, client: Any) -> None:
    box = DockerPlatform(container=make_container(agent_image, "flare-stopped"))
    client.containers.get(box.container).stop(timeout=1)
    with pytest.raises(ExecError, match="not running"):
        box.exec(["security-agent", "flare"])
    # The flare reports it too (whatever class the flare logic wraps it in), naming the container.
    with pytest.raises(WPProtectError, match="not running") as err:
        box.flare(case_id="1234567", email="ops@example.com")
    assert box.container in str(err.value)


def test_container_stopped_mid_flare(make_container: Any, client: Any, tmp_path: Path) -> None:
    # The flare blocks reading its template from a FIFO nobody writes: the container is stopped
    # while the agent's flare command runs.
    image = images.build_agent_image(
        "7.50.3", tag_prefix=PREFIX, sim_env={"WPSIM_FLARE_TEMPLATE": "/tmp/wpdk-fifo"}
    )
    box = DockerPlatform(container=make_container(image, "flare-mid"))
    assert box.exec(["mkfifo", "/tmp/wpdk-fifo"]).ok
    stopper = threading.Timer(1.0, lambda: client.containers.get(box.container).stop(timeout=1))
    stopper.start()
    try:
        with pytest.raises(WPProtectError, match=r"stopped|not running") as err:
            box.flare(case_id="1234567", email="ops@example.com", dest=tmp_path, timeout=30)
    finally:
        stopper.cancel()
    assert box.container in str(err.value)
    assert "the container stopped (exited) while 'security-agent' was running" in str(err.value)
    assert list(tmp_path.iterdir()) == []
