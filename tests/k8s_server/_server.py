"""A Kubernetes API server in a thread, speaking the real wire protocol to the real client.

REST JSON for pods, namespaces, nodes, ``apps/v1`` DaemonSets and ``datadoghq.com/v2alpha1``
DatadogAgents (get/list/patch/replace, ``resourceVersion`` bumped on every write, 409 on a stale
precondition, ``Status`` bodies on errors), and pod exec over a websocket with the
``v4.channel.k8s.io`` / ``v5.channel.k8s.io`` channel protocols.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.k8s_server._exec import ExecBackend, ExecContext, FakeExecBackend
from tests.k8s_server._patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from tests.k8s_server._ws import OP_BINARY, OP_CLOSE, OP_TEXT, ClosedError, WebSocket, accept_key

__all__ = ["Faults", "K8sTestServer", "status_body"]

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
    503: "ServiceUnavailable",
}

# kind -> (api group, version, Kind, namespaced)
_RESOURCES: dict[str, tuple[str, str, str, bool]] = {
    "pods": ("", "v1", "Pod", True),
    "namespaces": ("", "v1", "Namespace", False),
    "nodes": ("", "v1", "Node", False),
    "daemonsets": ("apps", "v1", "DaemonSet", True),
    "datadogagents": ("datadoghq.com", "v2alpha1", "DatadogAgent", True),
}
_CUSTOM = {"datadogagents"}  # CRDs: no strategic merge patch, as on a real API server

CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")


def status_body(
    code: int, message: str, *, reason: str | None = None, details: Any = None
) -> dict[str, Any]:
    """A ``metav1.Status`` failure object, as the API server sends with every error."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


class _HTTPError(Exception):
    def __init__(self, code: int, message: str, *, reason: str | None = None, details: Any = None):
        super().__init__(message)
        self.code = code
        self.body = status_body(code, message, reason=reason, details=details)


class Faults:
    """Switches a test flips to make the server misbehave; each is consumed as it fires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fail: list[tuple[int, int, set[str] | None, str]] = []  # (count, code, methods, path)
        self._drop_exec = 0
        self._drop_after = 0
        self._hang_exec = 0
        self._abrupt_end = 0
        self._hang_requests: list[list[Any]] = []  # [count, methods, path]
        self._concurrent_writes: list[list[Any]] = []  # [count, kind, ns, name]
        self.hang_release = threading.Event()

    def fail_next(
        self, count: int, code: int = 500, *, methods: set[str] | None = None, path: str = ""
    ) -> None:
        """Answer the next ``count`` matching requests with ``code`` and a Status body."""
        with self._lock:
            self._fail.append((count, code, methods, path))

    def drop_exec_next(self, count: int = 1, *, after_bytes: int = 0) -> None:
        """Cut the next exec websockets without a close frame or exit status, after sending
        ``after_bytes`` of the command's stdout."""
        with self._lock:
            self._drop_exec, self._drop_after = count, after_bytes

    def abrupt_end_next(self, count: int = 1) -> None:
        """The next execs end with a TCP reset right after their exit status (no close frame),
        as some proxies do."""
        with self._lock:
            self._abrupt_end = count

    def take_abrupt_end(self) -> bool:
        with self._lock:
            if self._abrupt_end:
                self._abrupt_end -= 1
                return True
        return False

    def hang_exec_next(self, count: int = 1) -> None:
        """The next exec calls never answer (until the client leaves or ``hang_release``)."""
        with self._lock:
            self._hang_exec = count

    def hang_next(self, count: int = 1, *, methods: set[str] | None = None, path: str = "") -> None:
        """The next ``count`` matching requests (REST, or an exec before its upgrade) get no
        answer until ``hang_release`` is set or 30 s pass."""
        with self._lock:
            self._hang_requests.append([count, methods, path])

    def take_hang(self, method: str, path: str) -> bool:
        with self._lock:
            for entry in self._hang_requests:
                count, methods, sub = entry
                if count > 0 and (methods is None or method in methods) and sub in path:
                    entry[0] -= 1
                    return True
        return False

    def concurrent_write(self, count: int, kind: str, namespace: str, name: str) -> None:
        """Before each of the next ``count`` PATCH/PUT on that object, another writer changes
        it (an annotation), so a client's resourceVersion precondition goes stale."""
        with self._lock:
            self._concurrent_writes.append([count, kind, namespace, name])

    # -- consumed by the server --------------------------------------------------------------
    def take_failure(self, method: str, path: str) -> int | None:
        with self._lock:
            for i, (count, code, methods, sub) in enumerate(self._fail):
                if (methods is None or method in methods) and sub in path:
                    if count <= 1:
                        del self._fail[i]
                    else:
                        self._fail[i] = (count - 1, code, methods, sub)
                    return code
        return None

    def take_exec_fault(self) -> tuple[str, int] | None:
        with self._lock:
            if self._hang_exec:
                self._hang_exec -= 1
                return ("hang", 0)
            if self._drop_exec:
                self._drop_exec -= 1
                return ("drop", self._drop_after)
        return None

    def take_concurrent_write(self, kind: str, namespace: str, name: str) -> bool:
        with self._lock:
            for entry in self._concurrent_writes:
                if entry[1:] == [kind, namespace, name] and entry[0] > 0:
                    entry[0] -= 1
                    return True
        return False


class K8sTestServer:
    """The in-process API server. Start it, seed objects, point a client at :attr:`url`.

    :param exec_backend: what runs pod execs (default: an in-memory :class:`FakeExecBackend`).
    """

    def __init__(self, exec_backend: ExecBackend | None = None) -> None:
        self.exec_backend: ExecBackend = exec_backend or FakeExecBackend()
        #: per-pod backends override :attr:`exec_backend` (``(namespace, pod) -> backend``)
        self.pod_backends: dict[tuple[str, str], ExecBackend] = {}
        self.faults = Faults()
        #: the exec subprotocols this server speaks, preferred first (older API servers: v4 only)
        self.channel_protocols: tuple[str, ...] = CHANNEL_PROTOCOLS
        self.requests: list[tuple[str, str, str]] = []  # (method, path, content-type)
        #: every exec accepted: (namespace, pod, container, argv)
        self.exec_log: list[tuple[str, str, str, list[str]]] = []
        self._lock = threading.RLock()
        self._rv = 1000
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.exec_count = 0
        self.exec_active = 0
        self.exec_max_active = 0
        self._open_sockets: set[WebSocket] = set()
        #: called with each pod a client creates (POST), before it is stored: a test may back
        #: it with a container and set its phase (default: the pod stays ``Pending``)
        self.on_pod_created: Callable[[dict[str, Any]], None] | None = None
        #: called with each pod a client deletes, after it is removed
        self.on_pod_deleted: Callable[[dict[str, Any]], None] | None = None
        #: every pod a client created / deleted: (namespace, name)
        self.created_pods: list[tuple[str, str]] = []
        self.deleted_pods: list[tuple[str, str]] = []

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> K8sTestServer:
        """Listen on a random port of 127.0.0.1 and serve in a daemon thread."""
        server = self

        class Handler(_Handler):
            api = server

        class HTTPD(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024

        self._httpd = HTTPD(("127.0.0.1", 0), Handler)
        httpd = self._httpd
        self._thread = threading.Thread(
            target=lambda: httpd.serve_forever(poll_interval=0.05), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; open exec websockets are cut."""
        self.faults.hang_release.set()
        for ws in list(self._open_sockets):
            ws.drop()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> K8sTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- object store ------------------------------------------------------------------------
    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or overwrite an object (seeding); kind from ``obj['kind']``."""
        kind = _plural(obj["kind"])
        group, version, _, namespaced = _RESOURCES[kind]
        obj = copy.deepcopy(obj)
        obj["apiVersion"] = f"{group}/{version}" if group else version
        meta = obj.setdefault("metadata", {})
        ns = meta.get("namespace", "") if namespaced else ""
        with self._lock:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
            meta.setdefault("generation", 1)
            meta["resourceVersion"] = self._next_rv()
            self._objects[(kind, ns, meta["name"])] = obj
            if namespaced and ns and ("namespaces", "", ns) not in self._objects:
                self._objects[("namespaces", "", ns)] = {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": ns,
                        "uid": str(uuid.uuid4()),
                        "resourceVersion": self._next_rv(),
                        "creationTimestamp": "2026-01-01T00:00:00Z",
                    },
                    "status": {"phase": "Active"},
                }
        return copy.deepcopy(obj)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """A copy of a stored object (``kind`` is the plural resource, e.g. ``daemonsets``).

        :raises KeyError: no such object.
        """
        with self._lock:
            return copy.deepcopy(self._objects[(kind, namespace, name)])

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Copies of every stored object of a kind, optionally in one namespace."""
        with self._lock:
            return [
                copy.deepcopy(o)
                for (k, ns, _), o in sorted(self._objects.items())
                if k == kind and (namespace is None or ns == namespace)
            ]

    def delete(self, kind: str, namespace: str, name: str) -> None:
        """Remove a stored object (a pod evicted, a DaemonSet uninstalled)."""
        with self._lock:
            del self._objects[(kind, namespace, name)]

    def modify(
        self, kind: str, namespace: str, name: str, fn: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Change a stored object in place as another writer would (bumps resourceVersion)."""
        with self._lock:
            obj = self._objects[(kind, namespace, name)]
            fn(obj)
            obj["metadata"]["resourceVersion"] = self._next_rv()
            return copy.deepcopy(obj)

    def _write(
        self, kind: str, namespace: str, name: str, new: dict[str, Any], expected_rv: str | None
    ) -> dict[str, Any]:
        group = _RESOURCES[kind][0]
        with self._lock:
            key = (kind, namespace, name)
            if key not in self._objects:
                raise _not_found(kind, name)
            current = self._objects[key]
            if expected_rv is not None and expected_rv != current["metadata"]["resourceVersion"]:
                resource = f"{kind}.{group}" if group else kind
                raise _HTTPError(
                    409,
                    f'Operation cannot be fulfilled on {resource} "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    details={"name": name, "group": group, "kind": kind},
                )
            meta = new.setdefault("metadata", {})
            for field in ("name", "namespace", "uid", "creationTimestamp"):
                if field in current["metadata"]:
                    meta[field] = current["metadata"][field]
            meta["generation"] = current["metadata"].get("generation", 1) + (
                1 if new.get("spec") != current.get("spec") else 0
            )
            new["kind"], new["apiVersion"] = current["kind"], current["apiVersion"]
            meta["resourceVersion"] = self._next_rv()
            self._objects[key] = new
            return copy.deepcopy(new)

    # -- exec bookkeeping --------------------------------------------------------------------
    def _exec_started(self, ws: WebSocket) -> None:
        with self._lock:
            self.exec_count += 1
            self.exec_active += 1
            self.exec_max_active = max(self.exec_max_active, self.exec_active)
            self._open_sockets.add(ws)

    def _exec_ended(self, ws: WebSocket) -> None:
        with self._lock:
            self.exec_active -= 1
            self._open_sockets.discard(ws)


def _plural(kind: str) -> str:
    for plural, (_, _, name, _) in _RESOURCES.items():
        if name == kind:
            return plural
    raise KeyError(kind)


def _not_found(kind: str, name: str) -> _HTTPError:
    group = _RESOURCES[kind][0]
    resource = f"{kind}.{group}" if group else kind
    return _HTTPError(
        404,
        f'{resource} "{name}" not found',
        details={"name": name, "group": group, "kind": kind},
    )


def _parse_selector(text: str) -> list[tuple[str, str, set[str]]]:
    """``a=b,c!=d,e,!f,g in (x,y),h notin (z)`` -> [(key, op, values)]."""
    reqs: list[tuple[str, str, set[str]]] = []
    parts: list[str] = []
    depth, cur = 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    for raw in parts:
        part = raw.strip()
        if not part:
            continue
        if " notin " in part or " in " in part:
            op = "notin" if " notin " in part else "in"
            key, _, rest = part.partition(f" {op} ")
            values = {v.strip() for v in rest.strip().strip("()").split(",") if v.strip()}
            reqs.append((key.strip(), op, values))
        elif "!=" in part:
            key, _, value = part.partition("!=")
            reqs.append((key.strip(), "!=", {value.strip()}))
        elif "==" in part or "=" in part:
            key, _, value = part.partition("==" if "==" in part else "=")
            reqs.append((key.strip(), "=", {value.strip()}))
        elif part.startswith("!"):
            reqs.append((part[1:].strip(), "!exists", set()))
        else:
            reqs.append((part, "exists", set()))
    return reqs


def _matches(labels: dict[str, str], reqs: list[tuple[str, str, set[str]]]) -> bool:
    for key, op, values in reqs:
        has = key in labels
        value = labels.get(key)
        ok = {
            "=": has and value in values,
            "in": has and value in values,
            "!=": not has or value not in values,
            "notin": not has or value not in values,
            "exists": has,
            "!exists": not has,
        }[op]
        if not ok:
            return False
    return True


def _field(obj: dict[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)


class _Handler(BaseHTTPRequestHandler):
    api: K8sTestServer
    protocol_version = "HTTP/1.1"
    server_version = "wpk8s-apiserver/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: tests read server.requests instead

    # -- plumbing ----------------------------------------------------------------------------
    def _send_json(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise _HTTPError(400, f"the request body is not JSON: {exc}") from exc

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        self.api.requests.append((method, url.path, self.headers.get("Content-Type", "")))
        if self.api.faults.take_hang(method, url.path):
            self.api.faults.hang_release.wait(30)
            self.close_connection = True
            return
        try:
            code = self.api.faults.take_failure(method, url.path)
            if code is not None:
                if method in ("PATCH", "PUT", "POST"):
                    self._body()
                raise _HTTPError(code, f"injected failure {code} for {method} {url.path}")
            self._route(method, url.path, query)
        except _HTTPError as err:
            self._send_json(err.code, err.body)
        except Exception as exc:  # a server bug must still answer with a Status
            self._send_json(500, status_body(500, f"test server error: {exc!r}"))

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- routing -----------------------------------------------------------------------------
    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        parts = [p for p in path.split("/") if p]
        # /api/v1/... or /apis/{group}/{version}/...
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        elif parts in (["version"], ["api"], ["apis"]):
            self._send_json(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-wpk8s"})
            return
        else:
            raise _HTTPError(404, f"the server could not find the requested resource ({path})")
        namespace: str | None = None
        if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
            namespace, rest = rest[1], rest[2:]
        if not rest:
            raise _HTTPError(404, f"the server could not find the requested resource ({path})")
        kind = rest[0]
        if kind not in _RESOURCES or _RESOURCES[kind][:2] != (group, version):
            raise _HTTPError(404, f"the server could not find the requested resource ({path})")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        namespaced = _RESOURCES[kind][3]
        ns = (namespace or "") if namespaced else ""
        if sub == "exec" and kind == "pods" and method in ("GET", "POST"):
            self._exec(ns, name or "", query)
        elif sub is not None:
            raise _HTTPError(404, f"the server could not find the requested resource ({path})")
        elif name is None and method == "GET":
            self._list(kind, namespace if namespaced else None, query)
        elif name is not None and method == "GET":
            self._get(kind, ns, name)
        elif name is not None and method == "PATCH":
            self._patch(kind, ns, name)
        elif name is not None and method == "PUT":
            self._replace(kind, ns, name)
        elif name is None and method == "POST" and kind == "pods":
            self._create_pod(ns)
        elif name is not None and method == "DELETE" and kind == "pods":
            self._delete_pod(ns, name)
        else:
            raise _HTTPError(405, f"{method} is not supported on {path}")

    def _list(self, kind: str, namespace: str | None, query: dict[str, list[str]]) -> None:
        labels = _parse_selector(query.get("labelSelector", [""])[0])
        fields = _parse_selector(query.get("fieldSelector", [""])[0])
        items = []
        with self.api._lock:
            for (k, ns, _), obj in sorted(self.api._objects.items()):
                if k != kind or (namespace is not None and ns != namespace):
                    continue
                if not _matches(obj["metadata"].get("labels") or {}, labels):
                    continue
                flat = {key: _field(obj, key) for key, _, _ in fields}
                if not _matches(flat, fields):
                    continue
                items.append(copy.deepcopy(obj))
            rv = str(self.api._rv)
        group, version, kind_name, _ = _RESOURCES[kind]
        self._send_json(
            200,
            {
                "kind": f"{kind_name}List",
                "apiVersion": f"{group}/{version}" if group else version,
                "metadata": {"resourceVersion": rv},
                "items": items,
            },
        )

    def _get(self, kind: str, ns: str, name: str) -> None:
        try:
            obj = self.api.get(kind, ns, name)
        except KeyError:
            raise _not_found(kind, name) from None
        self._send_json(200, obj)

    def _create_pod(self, ns: str) -> None:
        body = self._body()
        meta = body.setdefault("metadata", {})
        meta["namespace"] = ns
        name = meta.get("name")
        if not name:
            raise _HTTPError(422, "metadata.name is required (generateName is not supported)")
        with self.api._lock:
            if ("pods", ns, name) in self.api._objects:
                raise _HTTPError(409, f'pods "{name}" already exists', reason="AlreadyExists")
        body.setdefault("status", {"phase": "Pending"})
        if self.api.on_pod_created is not None:
            self.api.on_pod_created(body)
        stored = self.api.put(body)
        self.api.created_pods.append((ns, name))
        self._send_json(201, stored)

    def _delete_pod(self, ns: str, name: str) -> None:
        if self.headers.get("Content-Length"):
            self._body()
        try:
            obj = self.api.get("pods", ns, name)
        except KeyError:
            raise _not_found("pods", name) from None
        self.api.delete("pods", ns, name)
        self.api.deleted_pods.append((ns, name))
        if self.api.on_pod_deleted is not None:
            self.api.on_pod_deleted(obj)
        self._send_json(200, obj)

    def _concurrent_writer(self, kind: str, ns: str, name: str) -> None:
        if self.api.faults.take_concurrent_write(kind, ns, name):

            def touch(obj: dict[str, Any]) -> None:
                ann = obj["metadata"].setdefault("annotations", {})
                ann["wpk8s/touched"] = str(int(ann.get("wpk8s/touched", "0")) + 1)

            self.api.modify(kind, ns, name, touch)

    def _patch(self, kind: str, ns: str, name: str) -> None:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        body = self._body()
        self._concurrent_writer(kind, ns, name)
        with self.api._lock:
            try:
                current = self.api.get(kind, ns, name)
            except KeyError:
                raise _not_found(kind, name) from None
            try:
                if ctype == "application/json-patch+json":
                    new = json_patch(current, body)
                elif ctype == "application/merge-patch+json":
                    new = merge_patch(current, body)
                elif ctype == "application/strategic-merge-patch+json" and kind not in _CUSTOM:
                    new = strategic_merge_patch(current, body)
                else:
                    accepted = ["application/json-patch+json", "application/merge-patch+json"]
                    if kind not in _CUSTOM:
                        accepted.append("application/strategic-merge-patch+json")
                    raise _HTTPError(
                        415,
                        "the body of the request was in an unknown format - accepted media "
                        f"types include: {', '.join(accepted)}",
                    )
            except PatchError as exc:
                raise _HTTPError(exc.code, str(exc)) from exc
            if not isinstance(new, dict):
                raise _HTTPError(422, "the patched object is not an object")
            # A resourceVersion left in the patched object is a precondition: the apiserver
            # updates with it, so a patch naming an older version fails with 409 Conflict.
            expected = (new.get("metadata") or {}).get("resourceVersion")
            written = self.api._write(kind, ns, name, new, expected)
        self._send_json(200, written)

    def _replace(self, kind: str, ns: str, name: str) -> None:
        body = self._body()
        self._concurrent_writer(kind, ns, name)
        if not isinstance(body, dict):
            raise _HTTPError(400, "the request body is not an object")
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if not rv:
            raise _HTTPError(
                422,
                f'{kind} "{name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: '
                "must be specified for an update",
            )
        self._send_json(200, self.api._write(kind, ns, name, body, rv))

    # -- exec --------------------------------------------------------------------------------
    def _exec(self, ns: str, name: str, query: dict[str, list[str]]) -> None:
        try:
            pod = self.api.get("pods", ns, name)
        except KeyError:
            raise _not_found("pods", name) from None
        argv = query.get("command", [])
        containers = [c["name"] for c in pod.get("spec", {}).get("containers", [])]
        container = query.get("container", [""])[0] or (
            containers[0] if len(containers) == 1 else ""
        )
        if not container:
            raise _HTTPError(
                400,
                f"a container name must be specified for pod {name}, choose one of: {containers}",
            )
        if container not in containers:
            raise _HTTPError(400, f"container {container} is not valid for pod {name}")
        if (pod.get("status") or {}).get("phase") != "Running":
            raise _HTTPError(400, f"pod {name} is not running")
        if not argv:
            raise _HTTPError(400, "you must specify at least 1 command")
        if self.headers.get("Upgrade", "").lower() != "websocket":
            raise _HTTPError(400, "Upgrade request required", reason="BadRequest")
        offered = [p.strip() for p in self.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        protocol = next((p for p in self.api.channel_protocols if p in offered), None)
        if protocol is None:
            raise _HTTPError(400, f"none of the offered subprotocols {offered} is supported")
        # apimachinery's Convert_Slice_string_To_bool: only "false", "0" (any case) and ""
        # are false; older clients send Python's "True".
        with_stdin = query.get("stdin", [""])[0].lower() not in ("false", "0", "")
        self.api.exec_log.append((ns, name, container, list(argv)))

        self.send_response(HTTPStatus.SWITCHING_PROTOCOLS)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(self.headers["Sec-WebSocket-Key"]))
        self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True

        ws = WebSocket(self.connection, self.rfile)
        self.api._exec_started(ws)
        try:
            self._run_exec(ws, ns, pod, container, argv, with_stdin, protocol)
        finally:
            self.api._exec_ended(ws)

    def _run_exec(  # noqa: PLR0917 - one call site, all of it the exec's state
        self,
        ws: WebSocket,
        ns: str,
        pod: dict[str, Any],
        container: str,
        argv: list[str],
        with_stdin: bool,
        protocol: str,
    ) -> None:
        fault = self.api.faults.take_exec_fault()
        sent = [0]
        drop_after = fault[1] if fault and fault[0] == "drop" else None

        def write(channel: int, data: bytes) -> None:
            if ctx.aborted.is_set():
                return
            if drop_after is not None:
                room = max(drop_after - sent[0], 0)
                data = data[:room]
            sent[0] += len(data)
            try:
                ws.send_channel(channel, data)
            except ClosedError:
                ctx.aborted.set()

        ctx = ExecContext(
            namespace=ns,
            pod=pod,
            container=container,
            argv=argv,
            with_stdin=with_stdin,
            write=write,
        )

        def reader() -> None:
            try:
                while True:
                    op, payload = ws.recv_frame()
                    if op == OP_CLOSE:
                        break
                    if op in (OP_BINARY, OP_TEXT) and payload:
                        channel, data = payload[0], payload[1:]
                        if channel == 0 and data:
                            ctx.feed_stdin(data)
                        elif channel == 255 and protocol.startswith("v5") and data[:1] == b"\x00":
                            ctx.close_stdin()  # v5 half-close of stdin
            except (ClosedError, OSError, ValueError):
                pass
            ctx.aborted.set()
            ctx.close_stdin()

        reader_thread = threading.Thread(target=reader, daemon=True)
        reader_thread.start()

        if fault and fault[0] == "hang":
            while not ctx.aborted.is_set() and not self.api.faults.hang_release.is_set():
                ctx.aborted.wait(0.05)
            ws.drop()
            return
        backend = self.api.pod_backends.get((ns, pod["metadata"]["name"]), self.api.exec_backend)
        try:
            code = backend.run(ctx)
        except Exception as exc:  # reported on the error channel, as the kubelet does
            status = status_body(500, f"error executing command {argv}: {exc}")
            write(3, json.dumps(status).encode())
            ws.close()
            return
        if drop_after is not None:
            ws.drop()
            return
        if code == 0:
            status: dict[str, Any] = {"metadata": {}, "status": "Success"}
        else:
            status = {
                "metadata": {},
                "status": "Failure",
                "message": "command terminated with non-zero exit code: error executing "
                f"command {argv}, exit code {code}",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
            }
        try:
            ws.send_channel(3, json.dumps(status).encode())
        except ClosedError:
            return
        if self.api.faults.take_abrupt_end():
            ws.drop()
            return
        ws.close()
        reader_thread.join(timeout=2)
