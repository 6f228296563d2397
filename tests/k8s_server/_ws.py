"""Server side of RFC 6455 websockets, just enough for the Kubernetes exec channel protocol.

The Kubernetes API server upgrades ``.../pods/{pod}/exec`` to a websocket whose subprotocol is one
of ``v4.channel.k8s.io`` / ``v5.channel.k8s.io`` (``staging/src/k8s.io/apiserver/pkg/util/wsstream``
in kubernetes/kubernetes). Every data frame starts with one channel byte.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import struct
import threading

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "ClosedError",
    "WebSocket",
    "accept_key",
]

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for a client's ``Sec-WebSocket-Key``."""
    digest = hashlib.sha1((key + _GUID).encode("ascii")).digest()  # noqa: S324 - fixed by RFC 6455
    return base64.b64encode(digest).decode("ascii")


class ClosedError(Exception):
    """The peer closed the connection (close frame or EOF)."""


class WebSocket:
    """One upgraded connection: thread-safe sends, one reader."""

    def __init__(self, sock: socket.socket, rfile: object) -> None:
        self.sock = sock
        self._rfile = rfile
        self._send_lock = threading.Lock()
        self.closed = False

    def _read_exact(self, n: int) -> bytes:
        data = self._rfile.read(n)  # type: ignore[attr-defined]
        if len(data) != n:
            raise ClosedError("connection closed mid-frame")
        return bytes(data)

    def recv_frame(self) -> tuple[int, bytes]:
        """Read one complete message (fragments joined); answers pings itself.

        :returns: ``(opcode, payload)``; ``OP_CLOSE`` is returned, not raised.
        :raises ClosedError: EOF.
        """
        message = b""
        first_op: int | None = None
        while True:
            b1, b2 = self._read_exact(2)
            fin = bool(b1 & 0x80)
            opcode = b1 & 0x0F
            masked = bool(b2 & 0x80)
            length = b2 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read_exact(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read_exact(8))
            mask = self._read_exact(4) if masked else b""
            payload = self._read_exact(length)
            if masked:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == OP_PING:
                self.send(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                return OP_CLOSE, payload
            if opcode != OP_CONT:
                first_op = opcode
            message += payload
            if fin:
                return (first_op if first_op is not None else OP_BINARY), message

    def send(self, opcode: int, payload: bytes) -> None:
        """Send one unmasked (server-to-client) frame.

        :raises ClosedError: the socket is gone.
        """
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        with self._send_lock:
            if self.closed:
                raise ClosedError("already closed")
            try:
                self.sock.sendall(header + payload)
            except OSError as exc:
                self.closed = True
                raise ClosedError(str(exc)) from exc

    def send_channel(self, channel: int, data: bytes, *, chunk: int = 32 * 1024) -> None:
        """Send ``data`` on an exec channel, split into frames of at most ``chunk`` bytes."""
        if not data:
            return
        for i in range(0, len(data), chunk):
            self.send(OP_BINARY, bytes([channel]) + data[i : i + chunk])

    def close(self, code: int = 1000) -> None:
        """Send a close frame (best effort) and mark the connection closed."""
        with contextlib.suppress(ClosedError):
            self.send(OP_CLOSE, struct.pack("!H", code))
        with self._send_lock:
            self.closed = True

    def drop(self) -> None:
        """Cut the TCP connection without a close frame (a network failure)."""
        with self._send_lock:
            self.closed = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
