"""Fixtures: an in-process API server and the real ``kubernetes`` client pointed at it."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.k8s_server import K8sTestServer, api_client_for

_NO_CLIENT = importlib.util.find_spec("kubernetes") is None


def client_speaks_v5() -> bool:
    """True when the installed client can half-close stdin (``v5.channel.k8s.io``, ``binary``
    frames); older clients speak only ``v4.channel.k8s.io``."""
    from kubernetes.stream.ws_client import WSClient

    return hasattr(WSClient, "close_channel")


needs_v5 = pytest.mark.skipif(
    not _NO_CLIENT and not client_speaks_v5(),
    reason="this kubernetes client speaks only v4.channel.k8s.io: no stdin EOF, no binary frames",
)


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    """Without the ``kubernetes`` package (the ``wpprotect[kubernetes]`` extra) these tests
    cannot import: leave them out, and say so, rather than erroring at collection."""
    if _NO_CLIENT and collection_path.name.startswith("test_k8s_"):
        warnings.warn(
            f"{collection_path.name} not collected: the kubernetes package is not installed",
            stacklevel=1,
        )
        return True
    return None


@attrs.define
class Cluster:
    """A running test API server and a configured ``kubernetes.client.ApiClient`` for it."""

    server: K8sTestServer
    api_client: Any

    def platform(self, **kwargs: Any) -> Any:
        """A :class:`~wpprotect.platforms.kubernetes.KubernetesPlatform` on this cluster."""
        from wpprotect.platforms.kubernetes import KubernetesPlatform

        return KubernetesPlatform(client=self.api_client, **kwargs)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A fresh, empty cluster (in-memory exec backend); seed it with ``seed_helm`` & co."""
    server = K8sTestServer().start()
    api_client = api_client_for(server)
    try:
        yield Cluster(server, api_client)
    finally:
        api_client.close()
        server.stop()
