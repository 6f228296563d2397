"""The Docker wall: the SDK's objects described for mypy, and its errors translated.

The ``docker`` SDK ships no type information; the few low-level ``APIClient`` calls wpprotect
makes are described by :class:`~wpprotect.platforms._thirdparty.DockerAPI` so the rest of the
package stays ``mypy --strict``.
Every call into the SDK goes through :func:`docker_errors`, which turns docker-py and requests
exceptions into wpprotect's own (chained with ``from``) so none of them escapes this package.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any, cast

from wpprotect.errors import (
    AgentNotFoundError,
    BackendUnavailableError,
    ExecError,
    PlatformError,
    WPProtectError,
)
from wpprotect.platforms._owned import OwnedClient
from wpprotect.platforms._thirdparty import DockerAPI, DockerClient

__all__ = [
    "DockerAPI",
    "DockerConnection",
    "docker_errors",
    "import_docker",
    "redact",
    "secret_key",
]

log = logging.getLogger(__name__)

# Keep messages from the daemon short: they are shown to people and logged.
_MAX_EXPLANATION = 300


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


class DockerConnection(OwnedClient):
    """The daemon connection one :class:`~wpprotect.DockerPlatform` and the platforms its
    ``agents()`` returned share.

    It creates a client on first use unless one was given, and :meth:`close` closes only a
    client it created. Garbage-collected with a client it created still open, it warns with
    ``ResourceWarning`` (and closes it).

    :param client: a ``docker.DockerClient`` or ``docker.APIClient`` to use (never closed here).
    :param base_url: the daemon's address when no client is given (else ``DOCKER_HOST`` etc.).
    :param timeout: seconds the daemon has to answer each API call of a created client
        (``None``: no limit).
    """

    def __init__(
        self,
        client: DockerClient | DockerAPI | None,
        *,
        base_url: str | None,
        timeout: float | None,
    ) -> None:
        self._api: DockerAPI | None = None if client is None else _low_level(client)
        self._base_url = base_url
        self._timeout = timeout
        super().__init__()

    @property
    def api(self) -> DockerAPI:
        """The low-level client, created on first use.

        :raises PlatformError: the connection was closed.
        :raises BackendUnavailableError: the SDK is missing or the daemon cannot be reached.
        """
        with self._lock:
            if self._closed:
                raise PlatformError(
                    "the Docker platform was closed; create a new one", target="docker"
                )
            if self._api is None:
                created = self._connect()
                self._created = created
                self._api = created.api
            return self._api

    def _connect(self) -> DockerClient:
        docker = import_docker()
        with docker_errors("connect to the Docker daemon"):
            try:
                if self._base_url is not None:
                    client: DockerClient = docker.DockerClient(
                        base_url=self._base_url, version="auto", timeout=self._timeout
                    )
                else:
                    client = docker.from_env(version="auto", timeout=self._timeout)
            except docker.errors.DockerException as exc:
                raise BackendUnavailableError(
                    f"cannot reach the Docker daemon: {explanation(exc)}"
                ) from exc
        return client

    unclosed_message = (
        "a DockerPlatform that created its Docker client was not closed: call close() or use "
        "it in a with block"
    )


def _low_level(client: DockerClient | DockerAPI) -> DockerAPI:
    """The ``APIClient`` of a ``DockerClient``; an ``APIClient`` itself."""
    return cast("DockerAPI", getattr(client, "api", client))


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
