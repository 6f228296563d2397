"""A 3-node cluster whose agent pods are real Docker containers running the simulated agent CLI.

Every call goes through the real ``kubernetes`` client and the exec websocket to the test API
server, which runs it with ``docker exec`` in the pod's container. The nodes run different agent
versions, as in the middle of a rolling upgrade, so each pod needs its own command choice.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests import images
from tests.k8s_server import DockerExecBackend, K8sTestServer, api_client_for, seed_helm
from wpprotect.fleet import run_fleet
from wpprotect.platforms.kubernetes import KubernetesPlatform

pytestmark = pytest.mark.docker

PREFIX = "wpk8s"
# Before system-probe had `runtime` (7.56), between (7.59), and after the security-agent process
# stopped running (7.77): docs/reference/agent-cli.md#cli-runtime-binary.
NODE_VERSIONS = {"node-1": "7.50.3", "node-2": "7.59.1", "node-3": "7.78.2"}


@attrs.define
class DockerCluster:
    server: K8sTestServer
    api_client: Any
    containers: dict[str, str]  # pod name -> docker container name
    versions: dict[str, str]  # pod name -> agent version

    def platform(self, **kwargs: Any) -> KubernetesPlatform:
        return KubernetesPlatform(client=self.api_client, **kwargs)


@pytest.fixture(scope="module")
def docker_cluster() -> Iterator[DockerCluster]:
    client = images.docker_client()
    server = K8sTestServer()
    _, pods = seed_helm(server, len(NODE_VERSIONS))
    mapping: dict[tuple[str, str], dict[str, str]] = {}
    containers: dict[str, str] = {}
    versions: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        for pod in pods:
            name = pod["metadata"]["name"]
            version = NODE_VERSIONS[pod["spec"]["nodeName"]]
            image = images.build_agent_image(version, tag_prefix=PREFIX)
            docker_name = stack.enter_context(
                images.container(image, f"{PREFIX}-{name}-{os.getpid()}")
            )
            mapping[("datadog", name)] = {"*": docker_name}
            containers[name] = docker_name
            versions[name] = version
        server.exec_backend = DockerExecBackend(client, mapping)
        server.start()
        api_client = api_client_for(server)
        try:
            yield DockerCluster(server, api_client, containers, versions)
        finally:
            api_client.close()
            server.stop()


def test_version_of_each_pod(docker_cluster: DockerCluster) -> None:
    agents = docker_cluster.platform(namespace="datadog").agents()
    assert len(agents) == 3
    for agent in agents:
        assert isinstance(agent, KubernetesPlatform)
        assert str(agent.version()) == docker_cluster.versions[str(agent.pod)]


def test_fleet_self_test_across_three_nodes(docker_cluster: DockerCluster) -> None:
    agents = docker_cluster.platform().agents()
    logged = len(docker_cluster.server.exec_log)  # the module's other tests exec too
    result = run_fleet(agents, lambda p: p.self_test(timeout=60))
    assert result.ok, [i.error_message for i in result.items]
    for item, agent in zip(result.items, agents, strict=True):
        assert isinstance(agent, KubernetesPlatform)
        res = item.value
        assert res is not None
        assert item.target == agent.target
        assert "Runtime self test: OK" in res.output
        version = tuple(int(x) for x in docker_cluster.versions[str(agent.pod)].split(".")[:2])
        # system-probe has no `runtime` before 7.56 and security-agent none from 7.67
        # (docs/reference/agent-cli.md#cli-runtime-binary): each pod's exec went to the container
        # that has it
        if version < (7, 56):
            assert res.command[0] == "security-agent"
        if version >= (7, 67):
            assert res.command[0] == "system-probe"
    # every command ran in the container named after its binary (`kubectl exec -c <binary>`)
    ran = [(c, argv[0]) for _, _, c, argv in docker_cluster.server.exec_log[logged:]]
    assert ran
    assert all(container == binary for container, binary in ran)


def test_flare_is_copied_out_byte_for_byte(docker_cluster: DockerCluster, tmp_path: Path) -> None:
    for agent in docker_cluster.platform(namespace="datadog").agents():
        assert isinstance(agent, KubernetesPlatform)
        dest = tmp_path / str(agent.pod)
        dest.mkdir()
        fl = agent.flare(case_id="1234567", email="ops@example.com", dest=dest)
        assert fl.archive is not None
        assert fl.archive.parent == dest
        assert fl.archive.suffix == ".zip"
        with zipfile.ZipFile(fl.archive) as zf:
            assert zf.testzip() is None
            assert sorted(zf.namelist()) == sorted(fl.files)
        assert fl.files
        assert not fl.sent
        # the local copy matches the file in the container, byte for byte
        res = agent.exec(["sha256sum", fl.remote_path], component=fl.component)  # type: ignore[arg-type]
        assert res.ok, res.stderr
        local = hashlib.sha256(fl.archive.read_bytes()).hexdigest()
        assert res.stdout.split()[0] == local


def test_copy_out_of_a_binary_file_from_a_container(
    docker_cluster: DockerCluster, tmp_path: Path
) -> None:
    agent = docker_cluster.platform(namespace="datadog").agents()[0]
    assert isinstance(agent, KubernetesPlatform)
    # every byte value, written inside the container by busybox itself
    script = 'i=0; while [ $i -lt 256 ]; do printf "\\\\$(printf %o $i)"; i=$((i+1)); done'
    made = agent.exec(["sh", "-c", f"({script}) > /tmp/all-bytes.bin"], component="agent")
    assert made.ok, made.stderr
    out = agent.copy_out("/tmp/all-bytes.bin", tmp_path, component="agent")
    assert out.read_bytes() == bytes(range(256))


def test_stdin_reaches_a_real_process(docker_cluster: DockerCluster) -> None:
    agent = docker_cluster.platform(namespace="datadog").agents()[1]
    # `head -c` stops after the bytes it wants: no stdin EOF needed, which v4.channel.k8s.io
    # (older clients and servers) cannot send
    res = agent.exec(["head", "-c", "100000"], stdin=b"xy" * 50_000, timeout=30)
    assert res.ok, res.stderr
    assert res.stdout == "xy" * 50_000
    failed = agent.exec(["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert (failed.exit_code, failed.stdout, failed.stderr) == (7, "out\n", "err\n")
