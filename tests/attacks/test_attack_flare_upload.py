"""Attacks on the flare upload from the network side: local HTTP servers on 127.0.0.x that
trickle, flood, redirect to a look-alike host, and URLs and agent output that carry secrets.

Each test asserts the typed error or the safe outcome and that the reviewed archive is unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.agent.conftest import SimFactory, sim_host
from wpprotect.agent import Flare
from wpprotect.agent._upload import MAX_RESPONSE_BYTES
from wpprotect.errors import FlareUploadError

__all__ = ["sim_host"]  # the simulated agent's fixture, shared with tests/agent

KEY = "0123456789abcdef0123456789abcdef"
Behaviour = Callable[[BaseHTTPRequestHandler, str], None]


class Server:
    """A real HTTP server on ``host``; ``behave(handler, method)`` answers each request, and
    every request's method, path and headers are recorded."""

    def __init__(self, host: str, behave: Behaviour) -> None:
        self.requests: list[dict[str, Any]] = []
        self.sent = 0
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                    }
                )
                with contextlib.suppress(OSError):  # the client hung up: what attacks expect
                    behave(self, self.command)

            do_HEAD = do_POST = _any

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[str, Behaviour], Server]]:
    servers: list[Server] = []

    def make(host: str, behave: Behaviour) -> Server:
        servers.append(Server(host, behave))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


@pytest.fixture
def flare(sim_host: SimFactory, tmp_path: Path) -> Flare:
    _, host = sim_host(version="7.59.0", hostname="node-7")
    return host.flare(case_id="1234567", dest=tmp_path)


def _digest(flare: Flare) -> str:
    assert flare.archive is not None
    return hashlib.sha256(flare.archive.read_bytes()).hexdigest()


def ok_head(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


# -- one deadline for the whole upload -----------------------------------------------------------


def _trickle_body(server: list[Server]) -> Behaviour:
    def behave(h: BaseHTTPRequestHandler, method: str) -> None:
        if method == "HEAD":
            ok_head(h)
            return
        h.send_response(200)
        h.send_header("Content-Length", "100000")
        h.end_headers()
        while not server[0].stop.is_set():  # one byte every 0.1 s: each read returns in time
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(0.1)

    return behave


def _trickle_status(server: list[Server]) -> Behaviour:
    def behave(h: BaseHTTPRequestHandler, method: str) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100000:
            if server[0].stop.is_set():
                return
            h.wfile.write(bytes([byte]))
            h.wfile.flush()
            time.sleep(0.1)

    return behave


@pytest.mark.parametrize("trickle", [_trickle_body, _trickle_status], ids=["body", "headers"])
def test_trickling_server_cannot_stretch_the_deadline(
    serve: Callable[[str, Behaviour], Server],
    flare: Flare,
    trickle: Callable[[list[Server]], Behaviour],
) -> None:
    # Before: the timeout applied to each read, so a byte every 0.1 s ran past 40 s with
    # timeout=2. After: one deadline for the whole exchange.
    holder: list[Server] = []
    holder.append(serve("127.0.0.1", trickle(holder)))
    before = _digest(flare)
    started = time.monotonic()
    with pytest.raises(FlareUploadError, match=r"did not finish within 2 s") as info:
        flare.send(KEY, url=f"http://127.0.0.1:{holder[0].port}", timeout=2)
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 3, elapsed  # the deadline plus slack: a bound, not a benchmark
    assert KEY not in str(info.value)
    assert _digest(flare) == before


# -- a bounded answer ----------------------------------------------------------------------------


def test_flooding_answer_is_cut_at_the_bound(
    serve: Callable[[str, Behaviour], Server], flare: Flare
) -> None:
    # Before: resp.read() took a 400 MB answer whole (824 MB RSS). After: a typed error past
    # MAX_RESPONSE_BYTES, and the server could not push much more than that.
    holder: list[Server] = []

    def behave(h: BaseHTTPRequestHandler, method: str) -> None:
        if method == "HEAD":
            ok_head(h)
            return
        h.send_response(200)
        h.send_header("Content-Length", str(400 * 1000 * 1000))
        h.end_headers()
        block = b"0" * 65536
        while not holder[0].stop.is_set() and holder[0].sent < 400 * 1000 * 1000:
            h.wfile.write(block)
            holder[0].sent += len(block)

    holder.append(serve("127.0.0.1", behave))
    before = _digest(flare)
    with pytest.raises(FlareUploadError, match=f"more than {MAX_RESPONSE_BYTES} bytes"):
        flare.send(KEY, url=f"http://127.0.0.1:{holder[0].port}", timeout=30)
    time.sleep(0.2)
    assert holder[0].sent < 64 * 1024 * 1024  # the rest was never read, only socket buffers
    assert _digest(flare) == before


# -- redirects never carry the key to another host -----------------------------------------------


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Resolve look-alike host names to loopback addresses, the one thing this machine cannot
    do for real without editing /etc/hosts; the servers and the client are real."""
    table = {"proxy.corp.co.uk": "127.0.0.1", "attacker.co.uk": "127.0.0.2"}
    real = socket.getaddrinfo

    def fake(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real(table.get(host, host), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return table


def test_redirect_to_a_host_sharing_the_last_two_labels_gets_no_key(
    serve: Callable[[str, Behaviour], Server], flare: Flare, names: dict[str, str]
) -> None:
    # Before: proxy.corp.co.uk -> attacker.co.uk kept DD-API-KEY (same last two labels).
    attacker = serve(names["attacker.co.uk"], lambda h, m: ok_head(h))

    def redirect(h: BaseHTTPRequestHandler, method: str) -> None:
        h.send_response(307)
        h.send_header("Location", f"http://attacker.co.uk:{attacker.port}/support/flare")
        h.send_header("Content-Length", "0")
        h.end_headers()

    proxy = serve(names["proxy.corp.co.uk"], redirect)
    before = _digest(flare)
    with pytest.raises(FlareUploadError, match="another host") as info:
        flare.send(KEY, url=f"http://proxy.corp.co.uk:{proxy.port}")
    assert KEY not in str(info.value)
    assert all("dd-api-key" not in r["headers"] for r in attacker.requests)
    assert attacker.requests == []
    assert [r["method"] for r in proxy.requests] == ["HEAD"]
    assert _digest(flare) == before


# -- credentials in the URL and in agent output --------------------------------------------------


@pytest.mark.parametrize("status", [200, 500])
def test_url_credentials_never_shown(
    serve: Callable[[str, Behaviour], Server],
    flare: Flare,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    # Before: http://user:pass@... was printed in the INFO log and in FlareUploadError.
    def behave(h: BaseHTTPRequestHandler, method: str) -> None:
        body = b'{"case_id": 7, "error": ""}' if method == "POST" else b""
        h.send_response(status if method == "POST" else 200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    server = serve("127.0.0.1", behave)
    caplog.set_level(logging.DEBUG)
    before = _digest(flare)
    url = f"http://ops:hunter2hunter2@127.0.0.1:{server.port}"
    shown: list[str] = []
    if status == 200:
        up = flare.send(KEY, url=url)
        shown += [repr(up), str(up.to_dict()), up._repr_html_()]
    else:
        with pytest.raises(FlareUploadError) as info:
            flare.send(KEY, url=url)
        shown += [str(info.value), repr(info.value)]
    shown.append(caplog.text)
    assert "127.0.0.1" in caplog.text  # the URL is logged, without its credentials
    for text in shown:
        assert "hunter2hunter2" not in text
        assert "ops:" not in text
        assert KEY not in text
    # they are still used: Basic authentication, to that origin only
    assert all(r["headers"]["authorization"].startswith("Basic ") for r in server.requests)
    assert _digest(flare) == before


def test_url_credentials_not_in_connection_errors(flare: Flare) -> None:
    with pytest.raises(FlareUploadError) as info:
        flare.send(KEY, url="http://ops:hunter2hunter2@127.0.0.1:9", timeout=5)
    assert "hunter2hunter2" not in str(info.value)
    assert "couldn't reach" in str(info.value)


def test_agent_error_text_is_redacted(
    sim_host: SimFactory, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    # Before: "Error: ... ?api_key=<32 hex>" from the agent was re-raised as is.
    leak = f"see https://app.datadoghq.com/support/flare?api_key={KEY}"
    _, host = sim_host(version="7.59.0", upload="forbidden", api_key_end=leak)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(FlareUploadError, match="the agent could not upload the flare") as info:
        host.flare(send=True, dest=tmp_path / "out")
    for text in (str(info.value), repr(info.value), caplog.text):
        assert KEY not in text
