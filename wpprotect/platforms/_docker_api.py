"""The Docker wall: the SDK's objects described for mypy, and its errors translated.

The ``docker`` SDK ships no type information; the few low-level ``APIClient`` calls wpprotect
makes are described by :class:`DockerAPI` so the rest of the package stays ``mypy --strict``.
Every call into the SDK goes through :func:`docker_errors`, which turns docker-py and requests
exceptions into wpprotect's own (chained with ``from``) so none of them escapes this package.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from wpprotect.errors import (
    AgentNotFoundError,
    BackendUnavailableError,
    ExecError,
    PlatformError,
    WPProtectError,
)

__all__ = ["DockerAPI", "docker_errors", "import_docker", "redact", "secret_key"]

log = logging.getLogger(__name__)

# Keep messages from the daemon short: they are shown to people and logged.
_MAX_EXPLANATION = 300


class DockerAPI(Protocol):
    """The subset of ``docker.APIClient`` (docker-py >= 7) that wpprotect calls."""

    base_url: str

    def ping(self) -> Any: ...

    def containers(self, all: bool = False, filters: Mapping[str, Any] | None = None) -> Any: ...

    def inspect_container(self, container: str) -> Any: ...

    def inspect_image(self, image: str) -> Any: ...

    def exec_create(self, container: str, cmd: list[str], **kwargs: Any) -> Any: ...

    def exec_start(self, exec_id: str, **kwargs: Any) -> Any: ...

    def exec_inspect(self, exec_id: str) -> Any: ...

    def get_archive(self, container: str, path: str, **kwargs: Any) -> Any: ...

    def create_container_from_config(
        self, config: Mapping[str, Any], name: str | None = None
    ) -> Any: ...

    def connect_container_to_network(self, container: str, net_id: str, **kwargs: Any) -> Any: ...

    def start(self, container: str) -> Any: ...

    def stop(self, container: str, timeout: int | None = None) -> Any: ...

    def rename(self, container: str, name: str) -> Any: ...

    def remove_container(self, container: str, v: bool = False, force: bool = False) -> Any: ...

    def update_container(self, container: str, **kwargs: Any) -> Any: ...

    def top(self, container: str, ps_args: str | None = None) -> Any: ...


def import_docker() -> Any:
    """Import the docker SDK, or say how to install it.

    :raises BackendUnavailableError: the ``docker`` package is not installed.
    """
    try:
        import docker
    except ImportError as exc:
        raise BackendUnavailableError(
            "the docker Python package is not installed: pip install 'wpprotect[docker]'"
        ) from exc
    return docker


# --- secrets -------------------------------------------------------------------------------------
# The project's redaction rules live in wpprotect._redact; the fallback below only keeps this
# module importable on its own and is deliberately broader than it.
_FALLBACK_SECRET = re.compile(r"(KEY|TOKEN|SECRET|PASS|PWD|AUTH|CREDENTIAL)", re.IGNORECASE)
_FALLBACK_HEX = re.compile(r"\b[0-9a-fA-F]{32}(?:[0-9a-fA-F]{8})?\b")


def secret_key(name: str) -> bool:
    """Whether the environment variable ``name`` holds a secret (its value is never shown)."""
    try:
        from wpprotect._redact import is_secret_key
    except ImportError:  # pragma: no cover - only before wpprotect._redact exists
        return bool(_FALLBACK_SECRET.search(name))
    return is_secret_key(name)


def redact(text: str) -> str:
    """``text`` with every secret the project knows how to spot masked."""
    try:
        from wpprotect._redact import redact_text
    except ImportError:  # pragma: no cover - only before wpprotect._redact exists
        return _FALLBACK_HEX.sub("********", text)
    return redact_text(text)


# --- errors --------------------------------------------------------------------------------------
def explanation(exc: BaseException) -> str:
    """The daemon's own words for an SDK error, redacted and shortened."""
    text = getattr(exc, "explanation", None) or str(exc) or type(exc).__name__
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = redact(str(text).strip())
    return text if len(text) <= _MAX_EXPLANATION else text[:_MAX_EXPLANATION] + "…"


def status_code(exc: BaseException) -> int | None:
    """The HTTP status of a docker ``APIError`` (None for other errors)."""
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


@contextlib.contextmanager
def docker_errors(
    action: str,
    *,
    target: str | None = None,
    not_found: type[PlatformError] = AgentNotFoundError,
    api_error: type[PlatformError] = PlatformError,
) -> Iterator[None]:
    """Translate every docker-py / requests exception raised inside the block.

    :param action: what was being done, for the message (``"exec in the container"``).
    :param target: the platform target, for the message.
    :param not_found: the error raised for HTTP 404 (the container, or a file in it).
    :param api_error: the error raised for other daemon errors (409, 500...).
    :raises BackendUnavailableError: the daemon cannot be reached.
    """
    docker = import_docker()
    import requests

    try:
        yield
    except WPProtectError:
        raise
    except docker.errors.NotFound as exc:
        raise not_found(f"{action}: {explanation(exc)}", target=target) from exc
    except docker.errors.APIError as exc:
        raise api_error(
            f"{action}: the Docker daemon answered {status_code(exc) or 'an error'}: "
            f"{explanation(exc)}",
            target=target,
        ) from exc
    except (requests.exceptions.ConnectionError, ConnectionError) as exc:
        raise BackendUnavailableError(
            f"{action}: cannot reach the Docker daemon ({explanation(exc)})", target=target
        ) from exc
    except requests.exceptions.Timeout as exc:
        raise ExecError(
            f"{action}: the Docker daemon did not answer in time", target=target
        ) from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise BackendUnavailableError(
            f"{action}: Docker error ({explanation(exc)})", target=target
        ) from exc
    except OSError as exc:
        raise ExecError(f"{action}: {explanation(exc)}", target=target) from exc
