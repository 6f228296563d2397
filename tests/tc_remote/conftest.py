"""A cluster whose nodes are real containers, each holding a different real TC scene.

Every "node" is a Docker container (busybox ``FROM scratch``, see tests/images.py) with
CAP_NET_ADMIN and CAP_SYS_ADMIN, in its own network namespace, with:

- a lab namespace (tc/_lab.py: veths, clsact, BPF programs) bind-mounted at
  ``/var/run/netns/<name>``, a different scene per node;
- a Python mounted read-only as the agent image's embedded one: a pyenv 3.8 (the oldest
  embedded Python of a supported agent) when there is one, else the interpreter running the
  tests, at ``/opt/datadog-agent/embedded`` (with the host's C libraries, read-only).

The in-process Kubernetes API server runs each pod exec in the pod's container with
``docker exec``; its ``exec_log`` shows which container each exec went to.
"""

from __future__ import annotations

import contextlib
import glob
import os
import sys
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from tests import images
from tests.k8s_server import DockerExecBackend, K8sTestServer, api_client_for, node, seed_helm

PREFIX = "wprmt"
EMBEDDED = "/opt/datadog-agent/embedded"
CAPS = ["NET_ADMIN", "SYS_ADMIN"]  # CAP_BPF/CAP_PERFMON are unknown to older dockerd


def embedded_prefix() -> str:
    """The Python installation mounted as the embedded one (3.8 when available)."""
    found = sorted(glob.glob("/root/.pyenv/versions/3.8.*/bin/python3"))
    if found:
        return os.path.dirname(os.path.dirname(found[-1]))
    return sys.base_prefix


def _lib_mounts() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for host, inside in (
        ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"),
        ("/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu"),
        ("/usr/lib64", "/lib64"),
    ):
        if os.path.isdir(host) and not os.path.islink(host):
            out[host] = {"bind": inside, "mode": "ro"}
    return out


@contextlib.contextmanager
def node_container(
    name: str, netns_path: str | None, *, python: bool = True, caps: list[str] | None = None
) -> Iterator[str]:
    """A node container; yields its docker name."""
    image = images.build_image("tcnode", {}, tag_prefix=PREFIX)
    volumes = _lib_mounts()
    env = {}
    if python:
        prefix = embedded_prefix()
        volumes[prefix] = {"bind": EMBEDDED, "mode": "ro"}
        env["LD_LIBRARY_PATH"] = f"{EMBEDDED}/lib"
    if netns_path is not None:
        volumes[netns_path] = {
            "bind": f"/var/run/netns/{os.path.basename(netns_path)}",
            "mode": "ro",
        }
    with images.container(
        image,
        f"{PREFIX}-{name}-{os.getpid()}",
        env=env,
        cap_add=CAPS if caps is None else caps,
        volumes=volumes,
    ) as docker_name:
        yield docker_name


@attrs.define
class RemoteCluster:
    server: K8sTestServer
    api_client: Any
    scenes: dict[str, Any]  # node name -> (netns name, netns path)
    containers: dict[str, str]  # node name -> docker container name
    pods: dict[str, str]  # node name -> pod name

    def platform(self, **kwargs: Any) -> Any:
        from wpprotect.platforms.kubernetes import KubernetesPlatform

        return KubernetesPlatform(client=self.api_client, **kwargs)


def build_scenes(lab: Any) -> dict[str, tuple[str, str]]:
    """node-1: every vendor (lab.scene_mimic_vendors); node-2: an unknown classifier at
    priority 3 ahead of Datadog's (recommend 2); node-3: Datadog's classifiers alone (clean)."""
    from wpprotect.tc import _bpf

    scenes: dict[str, tuple[str, str]] = {}
    vendors = lab.scene_mimic_vendors("r1")
    scenes["node-1"] = (vendors.netns, vendors.path)
    for node_name, extra in (("node-2", True), ("node-3", False)):
        ns = lab.netns(node_name.replace("-", ""))
        ns.add_veths([("r2a", "r2ap"), ("r2b", "r2bp")])
        for dev in ("r2a", "r2b"):
            for direction in ("ingress", "egress"):
                ns.add_filter(
                    dev,
                    direction,
                    _bpf.TC_ACT_UNSPEC,
                    prog_name=f"classifier_{direction}"[:15],
                    priority=10,
                    handle=2,
                    name=f"classifier_{direction}_security_{ns.inode}_1",
                )
        if extra:
            ns.add_filter("r2a", "ingress", _bpf.TC_ACT_OK, prog_name="mystery_fw", priority=3,
                          handle=1, name="mystery_fw")  # fmt: skip
        scenes[node_name] = (ns.name, ns.path)
    return scenes


@pytest.fixture(scope="module")
def remote_cluster() -> Iterator[RemoteCluster]:
    from wpprotect.tc._lab import Lab

    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and bpf(2)")
    client = images.docker_client()
    server = K8sTestServer()
    _, pods = seed_helm(server, 3)
    with contextlib.ExitStack() as stack:
        lab = stack.enter_context(Lab(PREFIX))
        scenes = build_scenes(lab)
        mapping: dict[tuple[str, str], dict[str, str]] = {}
        containers: dict[str, str] = {}
        pod_names: dict[str, str] = {}
        for pod in pods:
            node_name = pod["spec"]["nodeName"]
            name = stack.enter_context(node_container(node_name, scenes[node_name][1]))
            mapping[("datadog", pod["metadata"]["name"])] = {"system-probe": name, "agent": name}
            containers[node_name] = name
            pod_names[node_name] = pod["metadata"]["name"]
        server.exec_backend = DockerExecBackend(client, mapping)
        server.start()
        stack.callback(server.stop)
        api_client = api_client_for(server)
        stack.callback(api_client.close)
        server.put(node("node-4"))
        yield RemoteCluster(server, api_client, scenes, containers, pod_names)
