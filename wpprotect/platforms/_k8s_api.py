"""The wall around the ``kubernetes`` client: plain JSON in and out, wpprotect errors only.

``kubernetes`` ships no type information, so every client object is ``Any`` here and nowhere
else; callers get ``dict`` objects exactly as the API server sent them (camelCase JSON), which is
what the config surface editors (:func:`wpprotect.config._surfaces.edit_daemonset`) work on.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any, NoReturn

from wpprotect.errors import (
    AgentNotFoundError,
    BackendUnavailableError,
    ExecError,
    ExecTimeoutError,
    PermissionDeniedError,
    PlatformError,
    RemoteConflictError,
)
from wpprotect.platforms._owned import OwnedClient
from wpprotect.platforms._thirdparty import ExecStream, JSONObject, K8sApiClient

__all__ = ["DDA_GROUP", "DDA_PLURAL", "DDA_VERSION", "K8sAPI", "api_error", "stream_errors"]

log = logging.getLogger(__name__)

# api/datadoghq/v2alpha1/groupversion_info.go in DataDog/datadog-operator
DDA_GROUP = "datadoghq.com"
DDA_VERSION = "v2alpha1"
DDA_PLURAL = "datadogagents"

_MAX_MESSAGE = 300  # Status messages are quoted in errors; keep them short


def _status_message(body: object) -> str:
    """The ``message`` of a ``metav1.Status`` body, or the body itself, truncated."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        text = parsed["message"]
    text = text.strip()
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."


def api_error(status: int, message: str, *, what: str, target: str | None) -> PlatformError:
    """The wpprotect error for an HTTP status from the API server.

    :param status: the HTTP status (0 when no HTTP answer was received).
    :param message: the server's ``Status`` message.
    :param what: what was being done, e.g. ``read daemonset datadog/datadog-agent``.
    :param target: the platform target, for the error's context.
    """
    text = f"cannot {what}: HTTP {status}: {message}" if status else f"cannot {what}: {message}"
    if status in (401, 403):
        return PermissionDeniedError(text, target=target)
    if status == 404:
        return AgentNotFoundError(text, target=target)
    if status == 409:
        return RemoteConflictError(text, target=target)
    if status in (0, 502, 503, 504):
        return BackendUnavailableError(text, target=target)
    return PlatformError(text, target=target)


def _raise_translated(exc: BaseException, *, what: str, target: str | None) -> NoReturn:
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        cause = exc.__context__
        code = getattr(cause, "status_code", None)
        if status == 0 and isinstance(code, int):
            # A websocket handshake refused by the server: websocket-client's
            # WebSocketBadStatusException carries the HTTP status and the Status body.
            body = getattr(cause, "resp_body", b"") or b""
            raise api_error(code, _status_message(body), what=what, target=target) from exc
        if status == 0:
            raise BackendUnavailableError(
                f"cannot {what}: {_status_message(exc.reason)}", target=target
            ) from exc
        raise api_error(
            status, _status_message(exc.body or exc.reason), what=what, target=target
        ) from exc
    raise BackendUnavailableError(
        f"cannot {what}: the Kubernetes API did not answer ({type(exc).__name__}: {exc})",
        target=target,
    ) from exc


@contextlib.contextmanager
def translated(what: str, target: str | None) -> Iterator[None]:
    """Turn ``ApiException``, urllib3 and socket errors raised inside into wpprotect errors."""
    import urllib3.exceptions
    from kubernetes.client.exceptions import ApiException

    try:
        yield
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
        _raise_translated(exc, what=what, target=target)


def stream_errors() -> tuple[type[BaseException], ...]:
    """What reading an open exec stream raises when the connection is lost (websocket-client's
    errors, and the socket's own), for the adapter to catch without importing the SDK."""
    from websocket import WebSocketException

    return (WebSocketException, OSError)


def load_api_client(
    api_client: K8sApiClient | None, *, context: str | None, kubeconfig: str | None
) -> K8sApiClient:
    """The given client, else one from kubeconfig (``context``), else in-cluster config.

    :raises BackendUnavailableError: ``kubernetes`` is not installed, or no usable config.
    """
    try:
        client: Any = importlib.import_module("kubernetes.client")
        config: Any = importlib.import_module("kubernetes.config")
    except ImportError as exc:
        raise BackendUnavailableError(
            "the kubernetes package is not installed (pip install 'wpprotect[kubernetes]')"
        ) from exc
    if api_client is not None:
        return api_client
    try:
        loaded: K8sApiClient = config.new_client_from_config(
            config_file=kubeconfig, context=context
        )
        return loaded
    except (config.ConfigException, OSError, ValueError) as exc:
        if kubeconfig is not None or context is not None:
            raise BackendUnavailableError(
                f"cannot load kubeconfig {kubeconfig or '(default)'}"
                f"{f' context {context!r}' if context else ''}: {exc}"
            ) from exc
        kube_error = exc
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException as exc:
        raise BackendUnavailableError(
            f"no Kubernetes configuration: no usable kubeconfig ({kube_error}) and not "
            f"running in a cluster ({exc})"
        ) from exc
    made: K8sApiClient = client.ApiClient(configuration)
    return made


class K8sAPI(OwnedClient):
    """The few API calls the platform makes, each returning parsed JSON.

    One instance is shared by a platform and the single-pod platforms its ``agents()`` returned.
    It closes, in :meth:`close`, only a client it loaded itself; garbage-collected with such a
    client still open, it warns with ``ResourceWarning`` (and closes it).

    :param client: a ``kubernetes.client.ApiClient`` (never closed here), or None to load one
        lazily.
    :param timeout: seconds each REST call (and opening an exec stream) may take; None: no limit.
    """

    def __init__(
        self,
        client: K8sApiClient | None = None,
        *,
        context: str | None = None,
        kubeconfig: str | None = None,
        timeout: float | None = 60.0,
    ) -> None:
        self.timeout = timeout
        # (connect, read): a lone float is ignored by clients before v31 (rest.py takes an int)
        self._timeouts = None if timeout is None else (timeout, timeout)
        self._given = client
        self._context = context
        self._kubeconfig = kubeconfig
        self._client: K8sApiClient | None = None
        super().__init__()
        #: False once the client turned out to have no binary exec frames (kubernetes < 31)
        self.binary_frames = True

    @property
    def client(self) -> K8sApiClient:
        """The ``ApiClient`` (loaded on first use).

        :raises PlatformError: :meth:`close` was called.
        """
        with self._lock:
            if self._closed:
                raise PlatformError("the Kubernetes platform was closed; create a new one")
            if self._client is None:
                self._client = load_api_client(
                    self._given, context=self._context, kubeconfig=self._kubeconfig
                )
                if self._given is None:
                    self._created = self._client
            return self._client

    unclosed_message = (
        "a KubernetesPlatform that loaded its Kubernetes client was not closed: call close() or "
        "use it in a with block"
    )

    @property
    def host(self) -> str:
        """The API server URL."""
        return str(self.client.configuration.host)

    @staticmethod
    def _json(response: Any) -> Any:
        data = response.data if hasattr(response, "data") else response
        if isinstance(data, bytes | str):
            return json.loads(data or "null")
        return data

    # -- reads -------------------------------------------------------------------------------
    def list_pods(
        self, namespace: str | None, selector: str | None, *, field_selector: str | None = None
    ) -> list[JSONObject]:
        """Pods in ``namespace`` (all namespaces when None) matching ``selector``."""
        from kubernetes import client

        core = client.CoreV1Api(self.client)
        where = f"namespace {namespace}" if namespace else "all namespaces"
        kwargs: dict[str, Any] = {
            "_preload_content": False,
            "_request_timeout": self._timeouts,
        }
        if selector:
            kwargs["label_selector"] = selector
        if field_selector:
            kwargs["field_selector"] = field_selector
        with translated(f"list pods in {where}", None):
            if namespace:
                resp = core.list_namespaced_pod(namespace, **kwargs)
            else:
                resp = core.list_pod_for_all_namespaces(**kwargs)
            items = self._json(resp).get("items") or []
        return [i for i in items if isinstance(i, dict)]

    def read_pod(self, namespace: str, name: str) -> JSONObject:
        """One pod."""
        from kubernetes import client

        with translated(f"read pod {namespace}/{name}", f"pod {namespace}/{name}"):
            resp = client.CoreV1Api(self.client).read_namespaced_pod(
                name, namespace, _preload_content=False, _request_timeout=self._timeouts
            )
            return dict(self._json(resp))

    def create_pod(self, namespace: str, body: JSONObject) -> JSONObject:
        """Create a pod; returns it as stored."""
        from kubernetes import client

        name = str((body.get("metadata") or {}).get("name"))
        with translated(f"create pod {namespace}/{name}", f"pod {namespace}/{name}"):
            core: Any = client.CoreV1Api(self.client)  # takes a dict as well as a V1Pod
            resp = core.create_namespaced_pod(
                namespace, body, _preload_content=False, _request_timeout=self._timeouts
            )
            return dict(self._json(resp))

    def delete_pod(self, namespace: str, name: str) -> None:
        """Delete a pod at once (grace period 0); one already gone is not an error."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        with translated(f"delete pod {namespace}/{name}", f"pod {namespace}/{name}"):
            try:
                client.CoreV1Api(self.client).delete_namespaced_pod(
                    name,
                    namespace,
                    grace_period_seconds=0,
                    _preload_content=False,
                    _request_timeout=self._timeouts,
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise

    def read_daemonset(self, namespace: str, name: str) -> JSONObject:
        """One DaemonSet."""
        from kubernetes import client

        with translated(f"read daemonset {namespace}/{name}", f"daemonset/{namespace}/{name}"):
            resp = client.AppsV1Api(self.client).read_namespaced_daemon_set(
                name, namespace, _preload_content=False, _request_timeout=self._timeouts
            )
            return dict(self._json(resp))

    def patch_daemonset(
        self, namespace: str, name: str, body: Any, content_type: str
    ) -> JSONObject:
        """PATCH a DaemonSet with the given patch flavour; returns the stored object.

        :raises RemoteConflictError: 409, the resourceVersion precondition failed.
        """
        from kubernetes import client

        private = self._private_client(content_type=content_type)
        with (
            contextlib.closing(private),
            translated(f"patch daemonset {namespace}/{name}", f"daemonset/{namespace}/{name}"),
        ):
            resp = client.AppsV1Api(private).patch_namespaced_daemon_set(
                name,
                namespace,
                body,
                _preload_content=False,
                _request_timeout=self._timeouts,
            )
            return dict(self._json(resp))

    def read_datadogagent(self, namespace: str, name: str) -> JSONObject:
        """One DatadogAgent custom resource."""
        from kubernetes import client

        with translated(
            f"read datadogagent {namespace}/{name}", f"datadogagent/{namespace}/{name}"
        ):
            resp = client.CustomObjectsApi(self.client).get_namespaced_custom_object(
                DDA_GROUP,
                DDA_VERSION,
                namespace,
                DDA_PLURAL,
                name,
                _preload_content=False,
                _request_timeout=self._timeouts,
            )
            return dict(self._json(resp))

    def patch_datadogagent(self, namespace: str, name: str, body: Any) -> JSONObject:
        """JSON merge patch (RFC 7386) a DatadogAgent: custom resources take no strategic
        merge patch."""
        from kubernetes import client

        private = self._private_client(content_type="application/merge-patch+json")
        with (
            contextlib.closing(private),
            translated(
                f"patch datadogagent {namespace}/{name}", f"datadogagent/{namespace}/{name}"
            ),
        ):
            resp = client.CustomObjectsApi(private).patch_namespaced_custom_object(
                DDA_GROUP,
                DDA_VERSION,
                namespace,
                DDA_PLURAL,
                name,
                body,
                _preload_content=False,
                _request_timeout=self._timeouts,
            )
            return dict(self._json(resp))

    def _private_client(self, *, content_type: str | None = None) -> K8sApiClient:
        """A fresh ``ApiClient`` over the shared configuration (and default headers).

        With ``content_type``, its request bodies are sent as that type: the generated PATCH
        methods pick the first JSON type they list (``application/json-patch+json``) and only
        recent clients take ``_content_type``, so the choice is made on this private instance,
        the same way on every client version, without touching the shared client.
        """
        from kubernetes import client

        shared = self.client
        private: Any = client.ApiClient(shared.configuration)
        for key, value in getattr(shared, "default_headers", {}).items():
            private.set_default_header(key, value)
        if content_type is not None:
            private.select_header_content_type = lambda *_args, **_kwargs: content_type
        typed: K8sApiClient = private
        return typed

    # -- exec --------------------------------------------------------------------------------
    def open_exec(
        self,
        namespace: str,
        pod: str,
        container: str,
        argv: list[str],
        *,
        stdin: bool,
        target: str,
        timeout: float | None,
    ) -> tuple[ExecStream, K8sApiClient]:
        """Open the exec websocket; returns ``(ws_client, private_api_client)``.

        ``kubernetes.stream.stream`` swaps ``call_api`` on the ``ApiClient`` it is given for the
        length of the call, so concurrent execs sharing one client would corrupt each other (and
        every REST call made meanwhile). Each exec therefore gets its own ``ApiClient`` over the
        same configuration; the caller closes it.

        The websocket handshake has no timeout of its own in the client, so it runs in a helper
        thread that is given at most ``timeout`` seconds (or :attr:`timeout`).

        :raises ExecTimeoutError: the API server did not open the stream in time.
        :raises ExecError: the websocket could not be opened (with the HTTP status translated).
        """
        from kubernetes import client
        from kubernetes.stream import stream

        private = self._private_client()
        core = client.CoreV1Api(private)
        kwargs: dict[str, Any] = {
            "command": argv,
            "container": container,
            "stdin": stdin,
            "stdout": True,
            "stderr": True,
            "tty": False,
            "_preload_content": False,
        }
        outcome: list[tuple[bool, Any]] = []
        handoff = threading.Lock()
        abandoned: list[bool] = []

        def connect() -> None:
            result: tuple[bool, Any]
            try:
                try:
                    ws = stream(
                        core.connect_get_namespaced_pod_exec, pod, namespace, binary=True, **kwargs
                    )
                except TypeError:
                    # kubernetes < 31 has no binary mode: frames arrive as text.
                    self.binary_frames = False
                    ws = stream(core.connect_get_namespaced_pod_exec, pod, namespace, **kwargs)
                result = (True, ws)
            except BaseException as exc:  # handed to the calling thread
                result = (False, exc)
            with handoff:
                if not abandoned:
                    outcome.append(result)
                    return
            # the caller gave up waiting: close what arrived late
            late: Any = result[1]
            with contextlib.suppress(Exception):
                if result[0]:
                    late.close()
                private.close()

        limits = [t for t in (timeout, self.timeout) if t is not None]
        limit = min(limits) if limits else None
        worker = threading.Thread(target=connect, name=f"wpprotect-exec-{pod}", daemon=True)
        worker.start()
        worker.join(None if limit is None else max(limit, 0.0))
        with handoff:
            if not outcome:
                abandoned.append(True)
                raise ExecTimeoutError(
                    f"the API server did not open the exec stream for {argv[0]} within "
                    f"{limit or 0:g} s",
                    target=target,
                )
        ok, value = outcome[0]
        if ok:
            return value, private
        private.close()
        try:
            with translated(f"exec {argv[0]} in {container}", target):
                raise value
        except PlatformError as exc:
            if isinstance(
                exc, AgentNotFoundError | PermissionDeniedError | BackendUnavailableError
            ):
                raise
            raise ExecError(exc.message, target=target) from exc
        except Exception as exc:
            raise ExecError(
                f"cannot exec {argv[0]} in {container}: {exc!r}", target=target
            ) from exc
