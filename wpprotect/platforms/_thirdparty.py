"""The untyped SDK objects wpprotect touches, described for mypy in one place.

Neither ``docker`` (docker-py) nor ``kubernetes`` ships type information. The few members of
their objects that the adapters use are written down here as Protocols, so every other module
of :mod:`wpprotect.platforms` stays ``mypy --strict`` and no public method hands ``Any`` back.
The SDKs themselves are imported only inside the adapters, on first use.

Values the SDKs return as parsed JSON (``inspect_container``, ``containers``...) stay loosely
typed (:data:`JSONObject`): they are the daemon's documents, read with ``.get()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

__all__ = [
    "DockerAPI",
    "DockerClient",
    "ExecStream",
    "JSONObject",
    "K8sApiClient",
    "K8sConfiguration",
]

#: A JSON object as an SDK parsed it (Docker's ``inspect``, a Kubernetes object).
JSONObject = dict[str, Any]


class DockerAPI(Protocol):
    """The subset of ``docker.APIClient`` (docker-py >= 7) that wpprotect calls."""

    base_url: str

    def ping(self) -> bool: ...

    def containers(
        self, all: bool = False, filters: Mapping[str, Any] | None = None
    ) -> list[JSONObject]: ...

    def inspect_container(self, container: str) -> JSONObject: ...

    def inspect_image(self, image: str) -> JSONObject: ...

    def exec_create(self, container: str, cmd: list[str], **kwargs: Any) -> JSONObject: ...

    def exec_start(self, exec_id: str, **kwargs: Any) -> Any: ...

    def exec_inspect(self, exec_id: str) -> JSONObject: ...

    def get_archive(
        self, container: str, path: str, **kwargs: Any
    ) -> tuple[Iterable[bytes], JSONObject]: ...

    def create_container_from_config(
        self, config: Mapping[str, Any], name: str | None = None
    ) -> Any: ...

    def connect_container_to_network(self, container: str, net_id: str, **kwargs: Any) -> Any: ...

    def start(self, container: str) -> Any: ...

    def stop(self, container: str, timeout: int | None = None) -> Any: ...

    def rename(self, container: str, name: str) -> Any: ...

    def remove_container(self, container: str, v: bool = False, force: bool = False) -> Any: ...

    def update_container(self, container: str, **kwargs: Any) -> Any: ...

    def top(self, container: str, ps_args: str | None = None) -> JSONObject: ...

    def close(self) -> None: ...


class DockerClient(Protocol):
    """``docker.DockerClient``: wpprotect only reaches through it to its ``APIClient``."""

    @property
    def api(self) -> DockerAPI: ...

    def close(self) -> None: ...


class K8sConfiguration(Protocol):
    """``kubernetes.client.Configuration``: where the API server is."""

    host: str


class K8sApiClient(Protocol):
    """``kubernetes.client.ApiClient``: the members wpprotect reads or calls itself (the
    generated API classes take it whole)."""

    configuration: Any
    default_headers: Mapping[str, str]

    def set_default_header(self, header_name: str, header_value: str) -> None: ...

    def close(self) -> None: ...


class ExecStream(Protocol):
    """``kubernetes.stream.ws_client.WSClient``: an exec websocket, read channel by channel
    (0 stdin, 1 stdout, 2 stderr, 3 the exit status)."""

    def is_open(self) -> bool: ...

    def update(self, timeout: float = 0) -> None: ...

    def read_channel(self, channel: int, timeout: float = 0) -> Any: ...

    def write_stdin(self, data: bytes | str) -> None: ...

    def close(self, **kwargs: Any) -> None: ...
