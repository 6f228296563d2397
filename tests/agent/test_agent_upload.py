"""Flare.send against a local HTTP server speaking the flare backend's protocol."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.agent.conftest import SimFactory
from wpprotect.agent import Flare, flare_base_url, flare_url
from wpprotect.errors import FlareUploadError, InvalidArgumentError

KEY = "0123456789abcdef0123456789abcdef"


@attrs.define
class Backend:
    """What the fake backend answers and what it received."""

    url: str = ""
    post_status: int = 200
    post_body: bytes = b'{"case_id": 1234567, "error": "", "request_uuid": "u-1"}'
    head_status: int = 200
    redirect_to: str | None = None
    #: statuses answered to the first POSTs, in order, before ``post_status``
    post_statuses: list[int] = attrs.field(factory=list)
    requests: list[dict[str, Any]] = attrs.field(factory=list)

    def posts(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST"]


def _parts(content_type: str, body: bytes) -> list[tuple[str, str | None, bytes]]:
    msg = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    out = []
    for part in msg.iter_parts():
        out.append(
            (
                part.get_param("name", header="content-disposition"),
                part.get_filename(),
                part.get_payload(decode=True),
            )
        )
    return out


def _serve(host: str) -> Iterator[Backend]:
    state = Backend()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _record(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.requests.append(
                {
                    "method": method,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                }
            )

        def do_HEAD(self) -> None:
            self._record("HEAD")
            if state.redirect_to and not self.path.startswith("/moved"):
                self.send_response(307)
                self.send_header("Location", state.redirect_to)
                self.end_headers()
                return
            self.send_response(state.head_status)
            self.end_headers()

        def do_POST(self) -> None:
            self._record("POST")
            status = state.post_statuses.pop(0) if state.post_statuses else state.post_status
            self.send_response(status)
            self.send_header("Content-Length", str(len(state.post_body)))
            self.end_headers()
            self.wfile.write(state.post_body)

    server = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://{host}:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def short_retry_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent's 1, 2, 4 s pauses between POST retries, cut so the suite stays fast."""
    monkeypatch.setattr("wpprotect.agent._upload._RETRY_DELAYS", (0.01, 0.02, 0.04))


@pytest.fixture
def backend() -> Iterator[Backend]:
    yield from _serve("127.0.0.1")


@pytest.fixture
def other_site() -> Iterator[Backend]:
    yield from _serve("127.0.0.2")


@pytest.fixture
def flare(sim_host: SimFactory, tmp_path: Path) -> Flare:
    _, host = sim_host(version="7.59.0", hostname="node-7")
    return host.flare(case_id="1234567", email="ops@example.com", dest=tmp_path)


def test_send_uploads_exactly_the_reviewed_archive(backend: Backend, flare: Flare) -> None:
    assert flare.archive is not None
    reviewed = hashlib.sha256(flare.archive.read_bytes()).hexdigest()
    flare.scan_secrets()
    up = flare.send(KEY, url=backend.url)
    assert up.case_id == 1234567
    assert up.request_uuid == "u-1"
    assert up.sha256 == reviewed
    head, post = backend.requests
    assert head["method"] == "HEAD"
    assert head["path"] == post["path"] == "/support/flare/1234567"
    for req in (head, post):
        assert req["headers"]["dd-api-key"] == KEY
        assert "api_key" not in req["path"]
    parts = _parts(post["headers"]["content-type"], post["body"])
    assert [p[0] for p in parts] == [
        "case_id",
        "email",
        "source",
        "flare_file",
        "agent_version",
        "hostname",
    ]
    fields = {name: data for name, _, data in parts}
    assert fields["case_id"] == b"1234567"
    assert fields["email"] == b"ops@example.com"
    assert fields["source"] == b"local"
    # the agent's full version.String(): number, then "+commit.<commit>"
    assert fields["agent_version"] == b"7.59.0+commit.1a2b3c4"
    assert fields["hostname"] == b"node-7"
    filename = next(fn for name, fn, _ in parts if name == "flare_file")
    assert filename == flare.archive.name
    assert hashlib.sha256(fields["flare_file"]).hexdigest() == reviewed
    assert "1234567" in up.message


def test_send_without_case_id_posts_to_the_bare_path(
    backend: Backend, sim_host: SimFactory, tmp_path: Path
) -> None:
    _, host = sim_host(version="7.50.3")
    fl = host.flare(dest=tmp_path)
    backend.post_body = b'{"case_id": 99, "error": ""}'
    up = fl.send(KEY, url=backend.url + "/")
    assert up.case_id == 99
    post = backend.posts()[0]
    assert post["path"].partition("?")[0] == "/support/flare"
    names = [p[0] for p in _parts(post["headers"]["content-type"], post["body"])]
    assert names == ["source", "flare_file", "agent_version", "hostname"]


def test_tampered_archive_is_refused_before_any_request(backend: Backend, flare: Flare) -> None:
    assert flare.archive is not None
    data = bytearray(flare.archive.read_bytes())
    data[-1] ^= 0xFF
    flare.archive.write_bytes(bytes(data))
    with pytest.raises(Exception, match="changed since it was reviewed"):
        flare.send(KEY, url=backend.url)
    assert backend.requests == []


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            403,
            b"",
            "HTTP 403 Forbidden: Make sure your API key is valid. API Key ending with: bcdef",
        ),
        (500, b"boom", "HTTP 500 Internal Server Error"),
        (501, b"", "HTTP 501 Not Implemented"),
        (
            200,
            b"<html>not json " + KEY.encode() + b"</html>",
            "could not deserialize response body",
        ),
        (
            200,
            b'{"case_id": 0, "error": "bad archive", "request_uuid": "r-9"}',
            "An error occurred while uploading the flare: bad archive. Please contact support by "
            "email and facilitate the request uuid: `r-9`.",
        ),
    ],
)
def test_backend_errors(  # noqa: PLR0917 - pytest passes fixtures and parameters by name
    backend: Backend,
    flare: Flare,
    status: int,
    body: bytes,
    message: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    backend.post_status = status
    backend.post_body = body
    with pytest.raises(FlareUploadError) as info:
        flare.send(KEY, url=backend.url)
    assert message in str(info.value)
    for text in (str(info.value), repr(info.value), caplog.text):
        assert KEY not in text


def test_head_refusal(backend: Backend, flare: Flare) -> None:
    backend.head_status = 401
    with pytest.raises(FlareUploadError, match="We couldn't reach the flare backend") as info:
        flare.send(KEY, url=backend.url)
    assert KEY not in str(info.value)
    assert backend.posts() == []


def test_head_404_is_accepted(backend: Backend, flare: Flare) -> None:
    backend.head_status = 404
    assert flare.send(KEY, url=backend.url).case_id == 1234567


def test_unreachable_backend(flare: Flare) -> None:
    with pytest.raises(FlareUploadError, match="couldn't reach") as info:
        flare.send(KEY, url="http://127.0.0.1:9", timeout=5)
    assert KEY not in str(info.value)


@pytest.mark.parametrize("key", ["", "has space", "new\nline", "x" * 300])
def test_bad_api_keys(flare: Flare, key: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        flare.send(key, url="http://127.0.0.1:9")
    assert key not in str(info.value) or key == ""


def test_base_url_rules() -> None:
    assert flare_base_url(version="7.50.3") == "https://7-50-3-flare.agent.datadoghq.com"
    assert (
        flare_base_url("us3.datadoghq.com", version="7.78.1")
        == "https://7-78-1-flare.agent.us3.datadoghq.com"
    )
    assert flare_base_url("datadoghq.eu", version="7.59.0") == (
        "https://7-59-0-flare.agent.datadoghq.eu"
    )
    assert flare_base_url("ddog-gov.com", version="7.59.0") == (
        "https://7-59-0-flare.agent.ddog-gov.com"
    )
    # custom and proxy URLs are left alone; no version, no rewrite
    assert flare_base_url(url="https://proxy.corp:8443/dd") == "https://proxy.corp:8443/dd"
    assert flare_base_url() == "https://app.datadoghq.com"
    assert flare_url("https://x", "12") == "https://x/support/flare/12"
    assert flare_url("https://x/", None) == "https://x/support/flare"
    with pytest.raises(InvalidArgumentError):
        flare_base_url("evil.com/../", version="7.50.3")
    with pytest.raises(InvalidArgumentError):
        flare_base_url(url="file:///etc/passwd")


def test_response_json_is_parsed(backend: Backend, flare: Flare) -> None:
    backend.post_body = json.dumps({"case_id": 5, "request_uuid": "abc"}).encode()
    up = flare.send(KEY, url=backend.url)
    assert (up.case_id, up.request_uuid) == (5, "abc")
    assert up.to_dict()["url"].endswith("/support/flare/1234567")


def test_same_site_redirect_is_followed(backend: Backend, flare: Flare) -> None:
    backend.redirect_to = backend.url + "/moved/support/flare/1234567"
    assert flare.send(KEY, url=backend.url).case_id == 1234567
    head, moved, post = backend.requests
    assert (head["path"], moved["path"]) == (
        "/support/flare/1234567",
        "/moved/support/flare/1234567",
    )
    assert moved["headers"]["dd-api-key"] == KEY
    assert post["path"] == "/moved/support/flare/1234567"


def test_redirect_to_another_site_never_gets_the_key(
    backend: Backend, other_site: Backend, flare: Flare
) -> None:
    backend.redirect_to = other_site.url + "/moved/x"
    with pytest.raises(FlareUploadError, match="another host") as info:
        flare.send(KEY, url=backend.url)
    assert KEY not in str(info.value)
    assert other_site.requests == []  # refused before anything is sent there
    assert backend.posts() == []


@pytest.mark.parametrize(
    ("a", "b", "follow"),
    [
        ("https://app.datadoghq.com/x", "https://7-59-0-flare.agent.datadoghq.com/y", True),
        ("https://7-59-0-flare.agent.datadoghq.eu/x", "https://app.datadoghq.eu/y", True),
        ("https://app.datadoghq.com/x", "https://app.datadoghq.eu/x", False),
        ("https://app.datadoghq.com/x", "http://app.datadoghq.com/x", False),
        ("http://app.datadoghq.com/x", "https://app.datadoghq.com/x", True),
        ("https://app.datadoghq.com/x", "https://datadoghq.com.evil.io/x", False),
        ("https://app.datadoghq.com/x", "https://evil.datadoghq.com/x", False),
        ("https://app.datadoghq.com/x", "ftp://app.datadoghq.com/x", False),
        ("https://proxy.corp.co.uk/x", "https://attacker.co.uk/x", False),
        ("https://a.elb.amazonaws.com/x", "https://b.s3.amazonaws.com/x", False),
        ("https://proxy.corp:8443/x", "https://proxy.corp:8443/y?z", True),
        ("https://proxy.corp/x", "https://proxy.corp:443/y", True),
        ("https://proxy.corp:8443/x", "https://proxy.corp:9443/x", False),
        ("http://127.0.0.1:1/x", "http://127.0.0.2:1/x", False),
        ("http://127.0.0.1:1/x", "http://127.0.0.1:2/y", False),
        ("http://127.0.0.1:1/x", "http://127.0.0.1:1/y", True),
    ],
)
def test_redirect_rule(a: str, b: str, follow: bool) -> None:
    from wpprotect.agent._upload import _may_follow

    assert _may_follow(a, b) is follow


def test_5xx_is_retried_then_uploaded(
    backend: Backend, sim_host: SimFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A release candidate: the full version string carries the pre-release and the commit.
    caplog.set_level(logging.DEBUG)
    _, host = sim_host(version="7.60.0-rc.3", commit="abc1234", hostname="node-9")
    fl = host.flare(case_id="42", email="ops@example.com", dest=tmp_path)
    assert fl.archive is not None
    backend.post_statuses = [503, 502]
    up = fl.send(KEY, url=backend.url)
    assert up.case_id == 1234567
    assert [r["method"] for r in backend.requests] == ["HEAD", "POST", "POST", "POST"]
    bodies = set()
    for post in backend.posts():
        assert post["path"] == "/support/flare/42"
        assert post["headers"]["dd-api-key"] == KEY
        parts = _parts(post["headers"]["content-type"], post["body"])
        assert [p[0] for p in parts] == [
            "case_id",
            "email",
            "source",
            "flare_file",
            "agent_version",
            "hostname",
        ]
        fields = {name: data for name, _, data in parts}
        assert fields["agent_version"] == b"7.60.0-rc.3+commit.abc1234"
        assert fields["hostname"] == b"node-9"
        assert fields["flare_file"] == fl.archive.read_bytes()
        bodies.add(post["body"])
    assert len(bodies) == 1  # the same archive each time
    assert caplog.text.count("retrying") == 2
    assert KEY not in caplog.text


def test_5xx_retries_stop_after_three(backend: Backend, flare: Flare) -> None:
    backend.post_status = 503
    with pytest.raises(FlareUploadError, match="HTTP 503"):
        flare.send(KEY, url=backend.url)
    assert len(backend.posts()) == 4  # the first POST and 3 retries


def test_a_4xx_is_not_retried(backend: Backend, flare: Flare) -> None:
    backend.post_statuses = [400]
    with pytest.raises(FlareUploadError, match="HTTP 400"):
        flare.send(KEY, url=backend.url)
    assert len(backend.posts()) == 1


def test_retry_pauses_stay_within_the_deadline(
    backend: Backend, flare: Flare, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a pause that does not fit in what is left of the one deadline is not taken
    monkeypatch.setattr("wpprotect.agent._upload._RETRY_DELAYS", (3600.0,))
    backend.post_status = 502
    with pytest.raises(FlareUploadError, match="no time left for another within 20 s"):
        flare.send(KEY, url=backend.url, timeout=20)
    assert len(backend.posts()) == 1


def test_head_answers_other_than_200_or_404_are_refused(backend: Backend, flare: Flare) -> None:
    # the agent accepts 200 or 404 only, not any 2xx
    backend.head_status = 204
    with pytest.raises(FlareUploadError, match="via redirects: 204"):
        flare.send(KEY, url=backend.url)
    assert backend.posts() == []


def test_agents_before_7_57_send_the_key_in_the_query_string(
    backend: Backend, sim_host: SimFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, host = sim_host(version="7.56.2")
    fl = host.flare(case_id="7", dest=tmp_path)
    assert fl.send(KEY, url=backend.url).case_id == 1234567
    head, post = backend.requests
    for req in (head, post):
        assert req["path"] == f"/support/flare/7?api_key={KEY}"
        assert "dd-api-key" not in req["headers"]
    fields = {n: d for n, _, d in _parts(post["headers"]["content-type"], post["body"])}
    assert fields["agent_version"] == b"7.56.2+commit.1a2b3c4"
    assert KEY not in caplog.text
    # and an error never shows the URL with the key
    backend.post_status = 403
    with pytest.raises(FlareUploadError) as info:
        fl.send(KEY, url=backend.url)
    assert KEY not in str(info.value)
    backend.post_status, backend.head_status = 200, 401
    with pytest.raises(FlareUploadError, match="via redirects: 401") as info:
        fl.send(KEY, url=backend.url)
    assert KEY not in str(info.value)
    assert KEY not in caplog.text


def test_7_57_sends_the_key_in_the_header(
    backend: Backend, sim_host: SimFactory, tmp_path: Path
) -> None:
    _, host = sim_host(version="7.57.0")
    fl = host.flare(dest=tmp_path)
    fl.send(KEY, url=backend.url)
    for req in backend.requests:
        assert req["path"] == "/support/flare"
        assert req["headers"]["dd-api-key"] == KEY


@pytest.mark.parametrize(
    ("site", "host"),
    [
        ("us5.datadoghq.com", "7-59-0-flare.agent.us5.datadoghq.com"),
        ("ap1.datadoghq.com", "7-59-0-flare.agent.ap1.datadoghq.com"),
        ("ap2.datadoghq.com", "7-59-0-flare.agent.ap2.datadoghq.com"),
        # the agent's [a-z]{2,}\\d{1,2}: longer labels and two digits
        ("apac12.datadoghq.com", "7-59-0-flare.agent.apac12.datadoghq.com"),
        ("eu1.datadoghq.eu", "7-59-0-flare.agent.eu1.datadoghq.eu"),
    ],
)
def test_site_pattern_is_the_agents(site: str, host: str) -> None:
    from wpprotect.agent._upload import _may_follow

    assert flare_base_url(site, version="7.59.0") == f"https://{host}"
    assert _may_follow(f"https://app.{site}/support/flare", f"https://{host}/support/flare")


def test_labels_outside_the_site_pattern_are_not_rewritten() -> None:
    # three digits or a single letter: not a Datadog datacenter label for the agent
    for site in ("us123.datadoghq.com", "u1.datadoghq.com"):
        assert flare_base_url(site, version="7.59.0") == f"https://app.{site}"
