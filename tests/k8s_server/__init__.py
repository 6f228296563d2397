"""An in-process Kubernetes API server for tests: the real ``kubernetes`` client talks to it.

Start a :class:`K8sTestServer`, seed Helm- or Operator-shaped objects with :func:`seed_helm` /
:func:`seed_operator`, and point :func:`api_client_for` at it. Pod exec runs in real Docker
containers (:class:`DockerExecBackend`) or in memory (:class:`FakeExecBackend`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.k8s_server._exec import (
    DockerExecBackend,
    ExecBackend,
    ExecContext,
    FakeExecBackend,
    FakeExecRequest,
    Responder,
)
from tests.k8s_server._objects import (
    datadog_agent,
    helm_daemonset,
    node,
    operator_daemonset,
    pod_for,
    seed_helm,
    seed_operator,
)
from tests.k8s_server._server import Faults, K8sTestServer, status_body

__all__ = [
    "DockerExecBackend",
    "ExecBackend",
    "ExecContext",
    "FakeExecBackend",
    "FakeExecRequest",
    "Faults",
    "K8sTestServer",
    "Responder",
    "api_client_for",
    "datadog_agent",
    "helm_daemonset",
    "node",
    "operator_daemonset",
    "pod_for",
    "running_cluster",
    "seed_helm",
    "seed_operator",
    "status_body",
    "write_kubeconfig",
]


def api_client_for(server: K8sTestServer, *, pool_maxsize: int = 32) -> Any:
    """A real ``kubernetes.client.ApiClient`` aimed at ``server`` (plain HTTP, no auth)."""
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = server.url
    configuration.verify_ssl = False
    configuration.connection_pool_maxsize = pool_maxsize
    return client.ApiClient(configuration)


def write_kubeconfig(server: K8sTestServer, path: Path, *, context: str = "wpk8s") -> Path:
    """Write a kubeconfig whose ``context`` (also the current one) points at ``server``.

    For code that loads its own configuration (the CLI, ``KubernetesPlatform(kubeconfig=...)``).
    """
    path.write_text(
        "apiVersion: v1\n"
        "kind: Config\n"
        f"clusters:\n- name: {context}\n  cluster: {{server: '{server.url}'}}\n"
        f"users:\n- name: {context}-user\n  user: {{token: wpk8s-test-token}}\n"
        f"contexts:\n- name: {context}\n  context: {{cluster: {context}, user: {context}-user}}\n"
        f"current-context: {context}\n"
    )
    return path


@contextlib.contextmanager
def running_cluster(exec_backend: ExecBackend | None = None) -> Iterator[tuple[K8sTestServer, Any]]:
    """A started server and an ``ApiClient`` for it; both closed on exit.

    >>> with running_cluster() as (server, api_client):  # doctest: +SKIP
    ...     seed_helm(server, 3)
    """
    server = K8sTestServer(exec_backend).start()
    api_client = api_client_for(server)
    try:
        yield server, api_client
    finally:
        api_client.close()
        server.stop()
