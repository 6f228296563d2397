"""Upload a flare archive with the agent's own protocol (``comp/core/flare/helpers/send_flare.go``,
docs/reference/agent-cli.md#cli-flare-upload), using only the standard library.

The exchange is bounded as a whole: one deadline covers connecting, sending and every read (a
watchdog shuts the socket down when it passes, so a server trickling bytes cannot stretch it),
the answer is read up to :data:`MAX_RESPONSE_BYTES`, and redirects are followed only to the same
origin or to a Datadog flare host of the same site, so the API key never reaches another host.
Credentials in the URL (``https://user:pass@proxy/``) are sent as Basic authentication to that
origin only and never appear in a log, an error or a repr; every text from the other side is
redacted before it is shown.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import re
import secrets
import socket
import ssl
import threading
import time
import urllib.parse
from typing import Any

import attrs

from wpprotect._agentversions import rows_of
from wpprotect._redact import MASK, redact_text
from wpprotect.agent._validate import validate_site
from wpprotect.errors import FlareUploadError, InvalidArgumentError

__all__ = [
    "API_KEY_HEADER_SINCE",
    "MAX_RESPONSE_BYTES",
    "POST_RETRIES",
    "FlareUpload",
    "flare_base_url",
    "flare_url",
    "safe_excerpt",
    "safe_url",
    "upload_flare",
]

log = logging.getLogger(__name__)

SUPPORT_PATH = "/support/flare"
# AddAgentVersionToDomain's test for a Datadog host (pkg/config/utils/endpoints.go), with the
# newest agents' datacenter label [a-z]{2,}\d{1,2} (us3, ap1, and longer future ones;
# docs/reference/agent-cli.md#cli-flare-upload).
_DD_HOST_RE = re.compile(
    r"^app(\.mrf)?(\.[a-z]{2,}\d{1,2})?\.(datad(oghq|0g)\.(com|eu)|ddog-gov\.com)(\.)?$"
)
# The hosts the agent sends a flare to, for one site: app.<site> and its versioned flare host
# <maj>-<min>-<patch>-flare.agent.<site> (the rewrite in flare_base_url). A redirect between
# two of them for the same site keeps the API key; any other host change drops the request.
_DD_FLARE_HOST_RE = re.compile(
    r"^(?:app|[0-9]{1,4}-[0-9]{1,4}-[0-9]{1,4}-flare\.agent)(?:\.mrf)?"
    r"\.(?P<site>(?:[a-z]{2,}[0-9]{1,2}\.)?(?:datad(?:oghq|0g)\.(?:com|eu)|ddog-gov\.com))\.?$"
)
#: The most of the backend's answer that is read (its JSON answer is a few hundred bytes).
MAX_RESPONSE_BYTES = 1 << 20
#: The first agent version that sends the API key in the ``DD-API-KEY`` header (PR #27912,
#: milestone 7.57.0); older agents put it in the query string as ``?api_key=``
#: (docs/reference/agent-cli.md#cli-flare-upload). Taken from the version table's
#: ``flare-api-key`` rows.
API_KEY_HEADER_SINCE: tuple[int, ...] = next(
    r.since for r in rows_of("flare-api-key") if r.value == "header" and r.since is not None
)
#: How many times the POST is repeated after a 5xx answer (newer agents retry up to 3 times),
#: and the pause before each repeat; every pause stays within the one deadline.
POST_RETRIES = 3
_RETRY_DELAYS = (1.0, 2.0, 4.0)
# Go's http.Client, which the agent uses for the HEAD, stops after 10 redirects.
_MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Texts from the other side are redacted over at most this much, then cut for display (the
# redaction patterns are line-based; the bound keeps their cost fixed whatever is answered).
_EXCERPT_SCAN = 4096
_EXCERPT_SHOW = 300


@attrs.frozen
class FlareUpload:
    """What the flare backend answered to an accepted upload."""

    case_id: int | None
    request_uuid: str | None
    url: str
    sha256: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return attrs.asdict(self)

    def __repr__(self) -> str:
        return f"<FlareUpload case {self.case_id} to {self.url}>"

    def _repr_html_(self) -> str:
        import html

        return f"<p>{html.escape(self.message)}</p>"


def flare_base_url(
    site: str = "datadoghq.com", *, version: str | None = None, url: str | None = None
) -> str:
    """The flare backend's base URL, as the agent computes it.

    ``url`` (the agent's ``dd_url``) if given, else ``https://app.<site>``; a Datadog host is
    then rewritten to ``https://<maj>-<min>-<patch>-flare.agent.<site>`` when the version is known.
    Custom and proxy URLs are kept as they are. (The agent also appends a ``.`` to well-known
    sites to make them FQDNs; that is DNS-equivalent and left out here.)
    """
    if url is None:
        base = f"https://app.{validate_site(site)}"
    else:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidArgumentError(
                f"flare URL must be http(s)://host[:port], got {safe_url(url[:200])!r}"
            )
        base = url.rstrip("/")
    parts = urllib.parse.urlsplit(base)
    host = parts.hostname or ""
    if version and _DD_HOST_RE.match(host):
        numbers = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
        if numbers:
            sub = "-".join(numbers.groups()) + "-flare.agent"
            new_host = sub + host.rstrip(".")[len("app") :]
            netloc = new_host + (f":{parts.port}" if parts.port else "")
            base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return base


def flare_url(base: str, case_id: str | None) -> str:
    """``<base>/support/flare`` plus ``/<case_id>`` when there is one (``mkURL``)."""
    url = base.rstrip("/") + SUPPORT_PATH
    return f"{url}/{case_id}" if case_id else url


def _multipart(
    fields: list[tuple[str, str]], file_name: str, data: bytes, after: list[tuple[str, str]]
) -> tuple[bytes, str]:
    boundary = "wpprotect-" + secrets.token_hex(16)
    chunks: list[bytes] = []

    def field(name: str, value: str) -> None:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        chunks.append(f"{head}{value}\r\n".encode())

    for name, value in fields:
        field(name, value)
    chunks.append(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="flare_file"; '
            f'filename="{file_name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
    )
    chunks.append(data)
    chunks.append(b"\r\n")
    for name, value in after:
        field(name, value)
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def safe_url(url: str) -> str:
    """``url`` fit for a log or an error: any userinfo (``user:pass@``) replaced by ``********``
    and secret-looking query parameters (``api_key=...``) masked.

    >>> safe_url("https://ops:hunter2@proxy.corp:8443/support/flare?api_key=x")
    'https://********@proxy.corp:8443/support/flare?api_key=********'
    """
    head, sep, rest = url.partition("://")
    if sep:
        netloc, slash, tail = rest.partition("/")
        if "@" in netloc:
            netloc = MASK + "@" + netloc.rpartition("@")[2]
        url = f"{head}{sep}{netloc}{slash}{tail}"
    return safe_excerpt(url)


def safe_excerpt(text: str, *secrets_: str, tail: bool = False) -> str:
    """A bounded, redacted excerpt of ``text`` from the other side (agent output, a backend's
    answer, a socket error): each of ``secrets_`` replaced, then :func:`redact_text` over at most
    4096 characters (the first, or the last with ``tail=True``), shown up to 300 of them."""
    text = text[-_EXCERPT_SCAN:] if tail else text[:_EXCERPT_SCAN]
    for secret in secrets_:
        if secret:
            text = text.replace(secret, MASK)
    text = redact_text(text)
    if len(text) <= _EXCERPT_SHOW:
        return text
    return "..." + text[3 - _EXCERPT_SHOW :] if tail else text[: _EXCERPT_SHOW - 3] + "..."


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").rstrip("."), parts.port or default


def _may_follow(a: str, b: str) -> bool:
    """True when the request for URL ``a`` (API key included) may be repeated at URL ``b``: the
    same origin (scheme, host and port), or, over https, another Datadog flare host of the same
    site (``app.datadoghq.com`` → ``7-59-0-flare.agent.datadoghq.com``). Sharing a parent
    domain is not enough: ``proxy.corp.co.uk`` and ``attacker.co.uk`` share ``co.uk``."""
    oa, ob = _origin(a), _origin(b)
    if ob[0] not in ("http", "https") or not ob[1]:
        return False
    if oa == ob:
        return True
    ma, mb = _DD_FLARE_HOST_RE.match(oa[1]), _DD_FLARE_HOST_RE.match(ob[1])
    return bool(ob[0] == "https" and ma and mb and ma["site"] == mb["site"])


class _Deadline:
    """One deadline for a whole exchange."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.end

    def left(self) -> float:
        """Seconds left; raises when there are none."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left


def _shut(socks: list[socket.socket]) -> None:
    # Runs on the watchdog thread: wakes a recv/send blocked in the caller's thread. The socket
    # itself is held, not the connection: http.client hands it to the response and forgets it.
    for sock in socks:
        with contextlib.suppress(OSError):  # already closed: nothing to wake
            sock.shutdown(socket.SHUT_RDWR)


def _exchange(  # noqa: PLR0917 - one HTTP exchange, every part explicit
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    deadline: _Deadline,
    ssl_context: ssl.SSLContext | None,
    hide: tuple[str, ...],
) -> tuple[int, str, http.client.HTTPMessage, bytes]:
    """``(status, reason, headers, body)`` of one request, within ``deadline``; the body is read
    (up to :data:`MAX_RESPONSE_BYTES`) only for a 200 answer to a POST."""
    parts = urllib.parse.urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn: http.client.HTTPConnection
    watchdog: threading.Timer | None = None
    try:
        host, port = parts.hostname or "", parts.port
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(
                host, port, timeout=deadline.left(), context=ssl_context
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=deadline.left())
        socks: list[socket.socket] = []
        watchdog = threading.Timer(deadline.left(), _shut, (socks,))
        watchdog.daemon = True
        watchdog.start()
        try:
            conn.connect()  # bounded by its own timeout, the time left
            if conn.sock is not None:
                socks.append(conn.sock)
            deadline.left()
            conn.request(method, target, body=body, headers=headers)
            resp = conn.getresponse()
            raw = b""
            if method == "POST" and resp.status == 200:
                chunks: list[bytes] = []
                size = 0
                while chunk := resp.read(min(64 * 1024, MAX_RESPONSE_BYTES + 1 - size)):
                    deadline.left()
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise FlareUploadError(
                            f"the flare backend {safe_url(url)} answered more than "
                            f"{MAX_RESPONSE_BYTES} bytes; the answer was not read further"
                        )
                raw = b"".join(chunks)
            deadline.left()
            return resp.status, resp.reason, resp.headers, raw
        finally:
            conn.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if deadline.passed or isinstance(exc, TimeoutError):
            raise FlareUploadError(
                f"the flare upload to {safe_url(url)} did not finish within "
                f"{deadline.seconds:g} s (one deadline for connecting, sending and reading)"
            ) from None
        failed = "We couldn't reach" if method == "HEAD" else "could not upload to"
        raise FlareUploadError(
            f"{failed} the flare backend {safe_url(url)}: {safe_excerpt(str(exc), *hide)}"
        ) from None
    finally:
        if watchdog is not None:
            watchdog.cancel()


def _basic_auth(url: str) -> dict[str, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return {}
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def _without_userinfo(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def upload_flare(
    data: bytes,
    *,
    file_name: str,
    sha256: str,
    api_key: str,
    url: str,
    case_id: str | None,
    email: str | None,
    agent_version: str,
    hostname: str,
    timeout: float = 60.0,
    ssl_context: ssl.SSLContext | None = None,
    key_in_query: bool = False,
) -> FlareUpload:
    """HEAD then POST ``data`` to ``url`` the way the agent does; see :meth:`Flare.send`.

    A 5xx answer to the POST is retried up to :data:`POST_RETRIES` times with a growing pause
    (1, 2, 4 s), as newer agents do, as long as the deadline leaves room for the pause.

    :param agent_version: the agent's full version string, sent as is.
    :param timeout: seconds for the whole exchange (HEAD, redirects, POST and its retries).
    :param key_in_query: send the API key as ``?api_key=`` (agents before 7.57) instead of the
        ``DD-API-KEY`` header. The URL is then never shown or logged with the key in it.
    :raises FlareUploadError: the backend could not be reached, refused the archive, redirected
        to another host, answered too much, or the deadline passed.
    :raises InvalidArgumentError: ``timeout`` is not a positive number.
    """
    limit: object = timeout
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not limit > 0:
        raise InvalidArgumentError(f"timeout must be a positive number of seconds, got {timeout!r}")
    deadline = _Deadline(float(timeout))
    parts = urllib.parse.urlsplit(url)
    hide = tuple(s for s in (api_key, parts.username, parts.password) if s)
    origin = _origin(url)
    auth = _basic_auth(url)
    shown = safe_url(url)
    log.info("uploading the flare to %s", shown)

    def headers_for(target: str) -> dict[str, str]:
        # URL credentials go to the origin they were given for, never further.
        extra = auth if _origin(target) == origin else {}
        key = {} if key_in_query else {"DD-API-KEY": api_key}
        return {**key, "User-Agent": "wpprotect", **extra}

    # 1. HEAD, following redirects; 200 or 404 are fine (the agent's getFlareURL).
    current = _without_userinfo(url)
    if key_in_query:
        # mkURL of agents before 7.57: "?api_key=<key>" appended to the URL
        joiner = "&" if urllib.parse.urlsplit(current).query else "?"
        current += joiner + urllib.parse.urlencode({"api_key": api_key})
    for _ in range(_MAX_REDIRECTS + 1):
        status, reason, headers, _ = _exchange(
            "HEAD", current, headers_for(current), None, deadline, ssl_context, hide
        )
        if status not in _REDIRECTS:
            break
        location = headers.get("Location")
        if not location:
            raise FlareUploadError(
                f"the flare backend {shown} answered {status} without a Location to follow"
            )
        following = _without_userinfo(urllib.parse.urljoin(current, location))
        if not _may_follow(current, following):
            raise FlareUploadError(
                f"the flare backend {shown} redirected to {safe_url(following)}, another host: "
                "not sending the API key and the flare there"
            )
        current = following
    else:
        raise FlareUploadError(f"the flare backend {shown} redirected more than 10 times")
    if status not in (200, 404):
        raise FlareUploadError(
            f"We couldn't reach the flare backend {shown} via redirects: {status} "
            f"{safe_excerpt(reason, *hide)}"
        )

    # 2. POST multipart, no redirects. Field order: case_id, email, source, flare_file,
    # agent_version, hostname.
    before: list[tuple[str, str]] = []
    if case_id:
        before.append(("case_id", case_id))
    if email:
        before.append(("email", email))
    before.append(("source", "local"))
    body, content_type = _multipart(
        before, file_name, data, [("agent_version", agent_version), ("hostname", hostname)]
    )
    for attempt in range(POST_RETRIES + 1):
        status, reason, _, raw = _exchange(
            "POST",
            current,
            {**headers_for(current), "Content-Type": content_type},
            body,
            deadline,
            ssl_context,
            hide,
        )
        if not 500 <= status <= 599 or attempt == POST_RETRIES:
            break
        pause = _RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)]
        left = deadline.end - time.monotonic()
        if pause >= left:
            raise FlareUploadError(
                f"HTTP {status} {safe_excerpt(reason, *hide)} from the flare backend "
                f"{safe_url(current)} after {attempt + 1} attempt(s); no time left for another "
                f"within {deadline.seconds:g} s"
            )
        log.info(
            "the flare backend answered HTTP %d; retrying in %g s (%d/%d)",
            status,
            pause,
            attempt + 1,
            POST_RETRIES,
        )
        time.sleep(pause)
    return _parse_response(
        status, reason, raw, api_key=api_key, hide=hide, url=safe_url(current), sha256=sha256
    )


def _parse_response(
    status: int,
    reason: str,
    raw: bytes,
    *,
    api_key: str,
    hide: tuple[str, ...],
    url: str,
    sha256: str,
) -> FlareUpload:
    if status == 403:
        if not api_key:
            raise FlareUploadError("HTTP 403 Forbidden: API key is missing")
        raise FlareUploadError(
            "HTTP 403 Forbidden: Make sure your API key is valid. "
            f"API Key ending with: {api_key[-5:]}"
        )
    if status != 200:
        raise FlareUploadError(f"HTTP {status} {safe_excerpt(reason, *hide)}")
    text = raw.decode("utf-8", errors="replace")
    try:
        answer = json.loads(text)
        if not isinstance(answer, dict):
            raise ValueError("not an object")
    except ValueError:
        raise FlareUploadError(
            "Error: could not deserialize response body -- Please contact support by email. "
            f"(body: {safe_excerpt(text[:150], *hide)!r})"
        ) from None
    error = answer.get("error") or ""
    uuid = answer.get("request_uuid") or None
    uuid = safe_excerpt(str(uuid), *hide) if uuid else None
    if error:
        hint = f" and facilitate the request uuid: `{uuid}`" if uuid else ""
        raise FlareUploadError(
            f"An error occurred while uploading the flare: {safe_excerpt(str(error), *hide)}. "
            f"Please contact support by email{hint}."
        )
    raw_case = answer.get("case_id")
    case = raw_case if isinstance(raw_case, int) and not isinstance(raw_case, bool) else None
    message = (
        "Your logs were successfully uploaded. For future reference, your internal case id is "
        f"{case}"
    )
    log.info("flare uploaded to %s (case %s)", url, case)
    return FlareUpload(case, str(uuid) if uuid else None, url, sha256, message)
