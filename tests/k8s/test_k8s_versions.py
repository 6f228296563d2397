"""Every row of the version table through the Kubernetes test server, one node per version of
the grid, each pod backed by a real Docker container running the simulated agent; wpprotect
never starts an old system-probe's daemon; a hung version read is bounded by the operation's
timeout, and the error says the command may still run."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests import images
from tests.agent_sim.rows import VERSION_GRID, assert_never_started_daemon, check_rows
from tests.k8s_server import DockerExecBackend, K8sTestServer, api_client_for, seed_helm
from wpprotect._agentversions import BEHAVIOURS
from wpprotect.errors import ExecTimeoutError
from wpprotect.fleet import run_fleet
from wpprotect.platforms.kubernetes import KubernetesPlatform

pytestmark = pytest.mark.docker

PREFIX = "wpk8sv"
STATE = "/etc/wpprotect-sim/state/daemon-started"
ENV_FILE = "/etc/wpprotect-sim/env"


@attrs.define
class VersionCluster:
    server: K8sTestServer
    api_client: Any
    containers: dict[str, str]  # pod name -> docker container name
    versions: dict[str, str]  # pod name -> agent version

    def agents(self) -> list[KubernetesPlatform]:
        found = KubernetesPlatform(client=self.api_client, namespace="datadog").agents()
        return [a for a in found if isinstance(a, KubernetesPlatform)]


@contextlib.contextmanager
def _cluster(versions: list[str], sim_env: dict[str, str], tag: str) -> Iterator[VersionCluster]:
    client = images.docker_client()
    server = K8sTestServer()
    _, pods = seed_helm(server, len(versions))
    mapping: dict[tuple[str, str], dict[str, str]] = {}
    containers: dict[str, str] = {}
    by_pod: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        for pod in pods:
            name = pod["metadata"]["name"]
            index = int(pod["spec"]["nodeName"].rsplit("-", 1)[1]) - 1
            version = versions[index]
            image = images.build_agent_image(version, tag_prefix=PREFIX, sim_env=sim_env)
            docker_name = stack.enter_context(
                images.container(image, f"{PREFIX}-{tag}-{name}-{os.getpid()}")
            )
            mapping[("datadog", name)] = {"*": docker_name}
            containers[name] = docker_name
            by_pod[name] = version
        server.exec_backend = DockerExecBackend(client, mapping)
        server.start()
        api_client = api_client_for(server)
        try:
            yield VersionCluster(server, api_client, containers, by_pod)
        finally:
            api_client.close()
            server.stop()


@pytest.fixture(scope="module")
def grid_cluster() -> Iterator[VersionCluster]:
    with _cluster(list(VERSION_GRID), {"WPSIM_DAEMON_SECONDS": "0"}, "grid") as cluster:
        yield cluster


def _docker_exec(container: str, argv: list[str]) -> tuple[int, str]:
    c = images.docker_client().containers.get(container)
    code, out = c.exec_run(argv)
    return int(code), out.decode()


def _daemon_starts(container: str) -> Callable[[], list[str]]:
    def read() -> list[str]:
        code, out = _docker_exec(container, ["cat", STATE])
        return out.splitlines() if code == 0 else []

    return read


def _set_sim(container: str) -> Callable[[str, str], None]:
    def set_sim(key: str, value: str) -> None:
        line = f"WPSIM_{key.upper()}={value}"
        assert _docker_exec(container, ["sh", "-c", f"echo {line} >> {ENV_FILE}"])[0] == 0

    return set_sim


def test_fleet_self_test_never_starts_a_daemon(grid_cluster: VersionCluster) -> None:
    agents = grid_cluster.agents()
    assert len(agents) == len(VERSION_GRID)
    # The module's row tests start old daemons on purpose (to check the simulator): compare
    # with what each node recorded before this run, whatever ran first.
    starts = {pod: _daemon_starts(c) for pod, c in grid_cluster.containers.items()}
    before = {pod: read() for pod, read in starts.items()}
    logged = len(grid_cluster.server.exec_log)
    result = run_fleet(agents, lambda p: p.self_test(), timeout=60)
    assert result.ok, [i.error_message for i in result.items]
    for agent, item in zip(agents, result.items, strict=True):
        assert item.value is not None
        assert str(item.value.version) == grid_cluster.versions[str(agent.pod)]
        assert item.value.confirmed == "confirmed"
        assert starts[str(agent.pod)]() == before[str(agent.pod)]
    ran = [argv[:2] for _, _, _, argv in grid_cluster.server.exec_log[logged:]]
    assert ran
    assert ["system-probe", "version"] not in ran


@pytest.mark.parametrize("version", VERSION_GRID)
def test_every_row_through_the_api_server(
    grid_cluster: VersionCluster, version: str, tmp_path: Path
) -> None:
    (agent,) = [a for a in grid_cluster.agents() if grid_cluster.versions[str(a.pod)] == version]
    container = grid_cluster.containers[str(agent.pod)]
    starts = _daemon_starts(container)
    assert_never_started_daemon(agent, version, starts, tmp_path, _set_sim(container))
    assert check_rows(agent, version, starts, tmp_path) == set(BEHAVIOURS)


def test_hung_version_read_is_bounded_and_said_to_maybe_still_run() -> None:
    env = {"WPSIM_VERSION_ANSWER": "hang", "WPSIM_HANG_SECONDS": "120"}
    with _cluster(["7.59.0"], env, "hang") as cluster:
        (agent,) = cluster.agents()
        started = time.monotonic()
        with pytest.raises(ExecTimeoutError) as info:
            agent.self_test(timeout=5)
        assert time.monotonic() - started < 15
        message = str(info.value)
        assert "self-test ran past its 5 s timeout" in message
        assert "may still run" in message
