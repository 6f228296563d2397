"""What runs behind ``pods/{pod}/exec``: a real Docker container, or an in-memory fake.

The server hands each exec to a backend with an :class:`ExecContext`; the backend streams stdout
and stderr through it and returns the exit code.
"""

from __future__ import annotations

import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = [
    "DockerExecBackend",
    "ExecBackend",
    "ExecContext",
    "FakeExecBackend",
    "FakeExecRequest",
    "Responder",
]


class ExecContext:
    """One exec call as the backend sees it."""

    def __init__(
        self,
        *,
        namespace: str,
        pod: dict[str, Any],
        container: str,
        argv: list[str],
        with_stdin: bool,
        write: Callable[[int, bytes], None],
    ) -> None:
        self.namespace = namespace
        self.pod = pod
        self.pod_name: str = pod["metadata"]["name"]
        self.container = container
        self.argv = argv
        self.with_stdin = with_stdin
        self._write = write
        self._stdin: queue.Queue[bytes | None] = queue.Queue()
        self.aborted = threading.Event()

    # -- fed by the server's websocket reader ------------------------------------------------
    def feed_stdin(self, data: bytes) -> None:
        """Queue bytes received on channel 0."""
        self._stdin.put(data)

    def close_stdin(self) -> None:
        """The client half-closed stdin (v5 close frame) or went away."""
        self._stdin.put(None)

    # -- used by backends --------------------------------------------------------------------
    def stdin_chunks(self) -> Any:
        """Yield stdin chunks until the client closes stdin."""
        if not self.with_stdin:
            return
        while True:
            chunk = self._stdin.get()
            if chunk is None:
                return
            yield chunk

    def read_stdin(self) -> bytes:
        """All of stdin (blocks until the client closes it)."""
        return b"".join(self.stdin_chunks())

    def stdout(self, data: bytes) -> None:
        """Send bytes on channel 1."""
        self._write(1, data)

    def stderr(self, data: bytes) -> None:
        """Send bytes on channel 2."""
        self._write(2, data)


class ExecBackend(Protocol):
    """Runs one exec; returns the process's exit code."""

    def run(self, ctx: ExecContext) -> int:
        """Run ``ctx.argv`` in ``ctx.container`` of ``ctx.pod``."""
        ...


class FakeExecRequest:
    """What a :data:`Responder` is asked: which pod, which container, which argv, which stdin."""

    def __init__(self, pod: str, container: str, argv: list[str], stdin: bytes) -> None:
        self.pod = pod
        self.container = container
        self.argv = argv
        self.stdin = stdin


#: ``(request) -> (exit_code, stdout, stderr)``
Responder = Callable[[FakeExecRequest], tuple[int, bytes, bytes]]


def _echo_responder(req: FakeExecRequest) -> tuple[int, bytes, bytes]:
    return 0, (" ".join(req.argv) + "\n").encode(), b""


class FakeExecBackend:
    """An in-memory pod: each exec waits ``delay`` seconds, then answers with ``responder``.

    Used where hundreds of pods are needed (the fleet benchmark); every call goes through the
    real websocket protocol all the same.
    """

    def __init__(self, responder: Responder | None = None, *, delay: float = 0.0) -> None:
        self.responder = responder or _echo_responder
        self.delay = delay
        self.calls: list[FakeExecRequest] = []
        self._lock = threading.Lock()
        self.active = 0
        self.max_active = 0

    def run(self, ctx: ExecContext) -> int:
        """Sleep ``delay`` (cut short if the client leaves), then answer."""
        stdin = ctx.read_stdin() if ctx.with_stdin else b""
        req = FakeExecRequest(ctx.pod_name, ctx.container, list(ctx.argv), stdin)
        with self._lock:
            self.calls.append(req)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                ctx.aborted.wait(self.delay)
            code, out, err = self.responder(req)
        finally:
            with self._lock:
                self.active -= 1
        ctx.stdout(out)
        ctx.stderr(err)
        return code


class DockerExecBackend:
    """Runs each exec in a real Docker container with the Docker SDK (``exec_create`` /
    ``exec_start(socket=True)``), streaming stdout and stderr as they come.

    :param containers: ``(namespace, pod) -> {k8s container name or "*": docker container id}``.
    """

    def __init__(self, client: Any, containers: dict[tuple[str, str], dict[str, str]]) -> None:
        self.client = client
        self.containers = containers

    def run(self, ctx: ExecContext) -> int:
        """``docker exec`` the argv, pumping stdin in and the multiplexed stream out."""
        mapping = self.containers.get((ctx.namespace, ctx.pod_name), {})
        target = mapping.get(ctx.container) or mapping.get("*")
        if target is None:
            ctx.stderr(f"no docker container backs {ctx.pod_name}/{ctx.container}\n".encode())
            return 126
        api = self.client.api
        exec_id = api.exec_create(
            target, ctx.argv, stdin=ctx.with_stdin, stdout=True, stderr=True, tty=False
        )["Id"]
        sock = api.exec_start(exec_id, socket=True)
        raw: socket.socket = getattr(sock, "_sock", sock)
        pump: threading.Thread | None = None
        if ctx.with_stdin:

            def _pump() -> None:
                try:
                    for chunk in ctx.stdin_chunks():
                        raw.sendall(chunk)
                    raw.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

            pump = threading.Thread(target=_pump, daemon=True)
            pump.start()
        try:
            while True:
                header = _recv_exact(raw, 8)
                if header is None:
                    break
                stream, size = header[0], struct.unpack(">I", header[4:])[0]
                data = _recv_exact(raw, size) or b""
                if stream == 2:
                    ctx.stderr(data)
                else:
                    ctx.stdout(data)
        finally:
            raw.close()
        # exec_inspect can lag the end of the stream by a moment.
        for _ in range(100):
            info = api.exec_inspect(exec_id)
            if not info.get("Running"):
                return int(info.get("ExitCode") or 0)
            time.sleep(0.02)
        return int(api.exec_inspect(exec_id).get("ExitCode") or 0)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return buf or None
        buf += chunk
    return buf
