"""One platform contract: every adapter built with the same keywords, behaving the same way.

Host runs on temporary directories, Docker against the real daemon (busybox containers named
``wpct-…``), Kubernetes against the in-process API server of ``tests/k8s_server`` through the
real client, and the public :class:`~wpprotect.testing.FakePlatform` in memory.

Whether a client was closed is read from this process's open sockets (``/proc/self/fd``): the
connections a client keeps alive to the daemon or the API server are gone once it is closed.
"""

from __future__ import annotations

import gc
import inspect
import itertools
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests import images
from tests.k8s_server import K8sTestServer, api_client_for, seed_helm, write_kubeconfig
from wpprotect import (
    AgentNotFoundError,
    BasePlatform,
    DockerPlatform,
    HostPlatform,
    InvalidArgumentError,
    KubernetesPlatform,
    Platform,
    PlatformError,
)
from wpprotect.testing import FakePlatform

PREFIX = "wpct"
ADAPTERS: tuple[type[BasePlatform], ...] = (
    HostPlatform,
    DockerPlatform,
    KubernetesPlatform,
    FakePlatform,
)
_seq = itertools.count()


def unique(word: str) -> str:
    return f"{PREFIX}-{word}-{os.getpid()}-{next(_seq)}"


# -- sockets of this process ----------------------------------------------------------------------


def _socket_inodes() -> set[str]:
    """The inodes of every socket this process holds open."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            found.add(link[len("socket:[") : -1])
    return found


def _connections_to(port: int) -> set[str]:
    """Inodes of this process's established TCP connections whose remote port is ``port``
    (the client side only: the in-process server's own ends have it as their local port)."""
    inodes = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes & _socket_inodes()


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def cluster() -> Iterator[K8sTestServer]:
    """An in-process API server with two agent pods of a Helm release."""
    server = K8sTestServer().start()
    try:
        seed_helm(server, 2)
        yield server
    finally:
        server.stop()


@pytest.fixture
def empty_cluster() -> Iterator[K8sTestServer]:
    server = K8sTestServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kubeconfig(cluster: K8sTestServer, tmp_path: Path) -> Path:
    return write_kubeconfig(cluster, tmp_path / "kubeconfig")


@pytest.fixture(scope="module")
def docker_client() -> Iterator[Any]:
    import docker

    client = docker.from_env(timeout=120)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def busybox_container() -> Iterator[str]:
    """A running busybox container (discoverable by its name)."""
    image = images.busybox_image(tag_prefix=PREFIX)
    try:
        with images.container(image, unique("box")) as name:
            yield name
    finally:
        images.remove_images(PREFIX)


# -- one constructor vocabulary -------------------------------------------------------------------


@pytest.fixture
def constructors(
    tmp_path: Path, empty_cluster: K8sTestServer, docker_client: Any
) -> Iterator[dict[str, Callable[..., BasePlatform]]]:
    """Each adapter's factory, taking only the shared keywords."""
    k8s_client = api_client_for(empty_cluster)
    try:
        yield {
            "host": lambda **kw: HostPlatform(tmp_path / "opt", tmp_path / "etc", **kw),
            "docker": lambda **kw: DockerPlatform(unique("absent"), client=docker_client, **kw),
            "kubernetes": lambda **kw: KubernetesPlatform(client=k8s_client, **kw),
            "fake": FakePlatform,
        }
    finally:
        k8s_client.close()


@pytest.mark.docker
def test_every_adapter_takes_timeout_the_same_way(
    constructors: dict[str, Callable[..., BasePlatform]],
) -> None:
    for kind, make in constructors.items():
        with make(timeout=2.5) as platform:
            assert isinstance(platform, Platform), kind
            assert platform.kind == kind
            assert getattr(platform, "timeout") == 2.5, kind  # noqa: B009 - not on BasePlatform
        with make(timeout=None) as platform:
            assert getattr(platform, "timeout") is None, kind  # noqa: B009
        for bad in (0, -1, True, "5"):
            with pytest.raises(InvalidArgumentError, match="timeout must be"):
                make(timeout=bad)


def test_constructor_keywords_agree() -> None:
    """The same option has the same name, kind and annotation wherever it exists."""
    shared = ("timeout", "client", "namespace", "install_dir", "config_dir", "container", "pod")
    seen: dict[str, tuple[str, Any]] = {}
    for cls in ADAPTERS:
        params = inspect.signature(cls.__init__).parameters
        assert "timeout" in params, cls.__name__
        for name in shared:
            if name not in params:
                continue
            p = params[name]
            assert p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY), (cls.__name__, name)
            if name in seen:
                assert p.annotation == seen[name][1] or name == "client", (cls.__name__, name)
            seen.setdefault(name, (cls.__name__, p.annotation))
    assert seen["timeout"][1] == "float | None"
    assert {"client"} <= set(inspect.signature(DockerPlatform.__init__).parameters)
    assert {"client"} <= set(inspect.signature(KubernetesPlatform.__init__).parameters)


def test_public_methods_agree() -> None:
    """Every method of the contract and of BasePlatform has one signature on every adapter."""
    names = {n for n, v in vars(BasePlatform).items() if callable(v) and not n.startswith("_")} | {
        "exec",
        "copy_out",
        "close",
        "__enter__",
        "__exit__",
    }
    assert {"agents", "close", "exec", "copy_out", "self_test", "flare", "disable"} <= names
    for name in sorted(names):
        reference = inspect.signature(getattr(BasePlatform, name))
        for cls in ADAPTERS:
            assert inspect.signature(getattr(cls, name)) == reference, f"{cls.__name__}.{name}"


# -- agents(): AgentNotFoundError when there is none ----------------------------------------------


def test_host_agents_none(tmp_path: Path) -> None:
    with (
        HostPlatform(tmp_path / "nothing", tmp_path, timeout=5.0) as host,
        pytest.raises(AgentNotFoundError) as err,
    ):
        host.agents()
    assert str(tmp_path / "nothing") in str(err.value)


@pytest.mark.docker
def test_docker_agents_none(docker_client: Any) -> None:
    name = unique("absent")
    with (
        DockerPlatform(name, client=docker_client, timeout=30.0) as box,
        pytest.raises(AgentNotFoundError) as err,
    ):
        box.agents()
    assert name in str(err.value)


def test_kubernetes_agents_none(empty_cluster: K8sTestServer) -> None:
    client = api_client_for(empty_cluster)
    try:
        with (
            KubernetesPlatform(namespace="datadog", client=client, timeout=30.0) as k8s,
            pytest.raises(AgentNotFoundError) as err,
        ):
            k8s.agents()
    finally:
        client.close()
    assert "agent.datadoghq.com/component=agent" in str(err.value)
    assert "datadog" in str(err.value)


def test_fake_agents_none() -> None:
    with (
        FakePlatform(target="fake:empty", children=[], timeout=5.0) as fake,
        pytest.raises(AgentNotFoundError, match="fake:empty"),
    ):
        fake.agents()


# -- with: close what was created, never what was injected ----------------------------------------


def _k8s_port(server: K8sTestServer) -> int:
    port = urlsplit(server.url).port
    assert port is not None
    return port


def test_kubernetes_with_closes_the_client_it_loaded(
    cluster: K8sTestServer, kubeconfig: Path
) -> None:
    port = _k8s_port(cluster)
    before = _connections_to(port)
    with KubernetesPlatform(kubeconfig=kubeconfig) as k8s:
        agents = k8s.agents()
        assert len(agents) == 2
        opened = _connections_to(port) - before
        assert opened, "the loaded client keeps its connection alive"
        agents[0].close()  # a platform from agents() closes nothing
        assert agents[0].disable("network").changes
    assert not opened & _socket_inodes()
    with pytest.raises(PlatformError, match="closed"):
        agents[1].disable("network")
    with pytest.raises(PlatformError, match="closed"):
        k8s.agents()


def test_kubernetes_with_leaves_an_injected_client_open(cluster: K8sTestServer) -> None:
    from kubernetes import client as k8s_client

    port = _k8s_port(cluster)
    api = api_client_for(cluster)
    try:
        with KubernetesPlatform(client=api) as k8s:
            assert len(k8s.agents()) == 2
            opened = _connections_to(port)
            assert opened
        assert opened <= _socket_inodes()  # still open: the caller owns the client
        pods = k8s_client.CoreV1Api(api).list_namespaced_pod("datadog")
        assert len(pods.items) == 2
        with pytest.raises(PlatformError, match="closed"):
            k8s.agents()
    finally:
        api.close()


def _leaks(caught: list[warnings.WarningMessage], adapter: str) -> list[str]:
    return [
        str(w.message)
        for w in caught
        if w.category is ResourceWarning and adapter in str(w.message)
    ]


def test_kubernetes_unclosed_client_warns(cluster: K8sTestServer, kubeconfig: Path) -> None:
    gc.collect()  # what earlier tests left is not this test's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        agents = KubernetesPlatform(kubeconfig=kubeconfig).agents()
        assert len(agents) == 2
        assert not _leaks(caught, "KubernetesPlatform")  # its children keep the client
        del agents
        gc.collect()
        with KubernetesPlatform(kubeconfig=kubeconfig) as closed:
            closed.agents()
        del closed
        gc.collect()
    assert len(_leaks(caught, "KubernetesPlatform")) == 1


@pytest.mark.docker
def test_docker_with_closes_the_client_it_created(busybox_container: str) -> None:
    before = _socket_inodes()
    with DockerPlatform(names=[busybox_container]) as box:
        (agent,) = box.agents()
        assert agent.target == f"docker:{busybox_container}"
        opened = _socket_inodes() - before
        assert opened, "the created client keeps its connection alive"
        agent.close()  # a platform from agents() closes nothing
        assert agent.exec(["true"]).ok
    assert not opened & _socket_inodes()
    with pytest.raises(PlatformError, match="closed"):
        agent.exec(["true"])


@pytest.mark.docker
def test_docker_with_leaves_an_injected_client_open(busybox_container: str) -> None:
    import docker

    before = _socket_inodes()
    client = docker.from_env()
    try:
        with DockerPlatform(busybox_container, client=client) as box:
            assert box.exec(["true"]).ok
            held = _socket_inodes() - before
            assert held, "the client keeps its connection alive"
        assert held <= _socket_inodes()  # still open: the caller owns the client
        assert client.ping()
        with pytest.raises(PlatformError, match="closed"):
            box.exec(["true"])
    finally:
        client.close()


@pytest.mark.docker
def test_docker_unclosed_client_warns(busybox_container: str) -> None:
    gc.collect()  # what earlier tests left is not this test's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        box = DockerPlatform(busybox_container)
        assert box.exec(["true"]).ok
        del box
        gc.collect()
    assert len(_leaks(caught, "DockerPlatform")) == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: HostPlatform(tmp, tmp, sudo=False),
        lambda tmp: FakePlatform(),
    ],
    ids=["host", "fake"],
)
def test_clientless_adapters_are_context_managers(
    make: Callable[[Path], BasePlatform], tmp_path: Path
) -> None:
    platform = make(tmp_path)
    with platform as entered:
        assert entered is platform
    platform.close()  # twice is harmless


# -- the old Kubernetes spellings -----------------------------------------------------------------


def test_kubernetes_old_keywords_still_work_and_warn(cluster: K8sTestServer) -> None:
    api = api_client_for(cluster)
    try:
        with pytest.warns(DeprecationWarning, match="api_client=.*client="):
            k8s = KubernetesPlatform(api_client=api)
        with k8s:
            assert len(k8s.agents()) == 2
        with pytest.warns(DeprecationWarning, match="request_timeout=.*timeout="):
            slow = KubernetesPlatform(client=api, request_timeout=7.5)
        assert slow.timeout == 7.5
        with pytest.raises(InvalidArgumentError, match="client="):
            KubernetesPlatform(client=api, api_client=api)
        with pytest.raises(InvalidArgumentError, match="timeout="):
            KubernetesPlatform(client=api, timeout=3.0, request_timeout=4.0)
    finally:
        api.close()


def test_configured_priority_reads_the_env_as_the_agent_does() -> None:
    from wpprotect.platforms._tc import configured_priority

    class Pod:
        target = "pod datadog/x"

        def __init__(self, env: dict[str, str]) -> None:
            self.env = env

        def container_env(self, component: str) -> dict[str, str]:
            return self.env

    new, old = (
        "DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY",
        "DD_EVENT_MONITORING_CONFIG_NETWORK_CLASSIFIER_PRIORITY",
    )
    # The settings model's order (CLASSIFIER_PRIORITY.env_vars): event_monitoring first.
    assert configured_priority(Pod({new: "5", old: "3"})) == 3
    assert configured_priority(Pod({new: "5"})) == 5
    assert configured_priority(Pod({new: "010"})) == 8  # Go's base 0: octal
    assert configured_priority(Pod({new: "0"})) is None
    assert configured_priority(Pod({})) is None
