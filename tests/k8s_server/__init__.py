"""An in-process Kubernetes API server for tests: the real ``kubernetes`` client talks to it.

Start a :class:`K8sTestServer`, seed Helm- or Operator-shaped objects with :func:`seed_helm` /
:func:`seed_operator`, and point :func:`api_client_for` at it. Pod exec runs in real Docker
containers (:class:`DockerExecBackend`) or in memory (:class:`FakeExecBackend`).
"""

from __future__ import annotations

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
    "seed_helm",
    "seed_operator",
    "status_body",
]


def api_client_for(server: K8sTestServer, *, pool_maxsize: int = 32) -> Any:
    """A real ``kubernetes.client.ApiClient`` aimed at ``server`` (plain HTTP, no auth)."""
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = server.url
    configuration.verify_ssl = False
    configuration.connection_pool_maxsize = pool_maxsize
    return client.ApiClient(configuration)
