"""Upload a flare archive with the agent's own protocol (``comp/core/flare/helpers/send_flare.go``,
docs/reference/agent-cli.md#cli-flare-upload), using only the standard library."""

from __future__ import annotations

import http.client
import json
import logging
import re
import secrets
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import attrs

from wpprotect.agent._validate import validate_site
from wpprotect.errors import FlareUploadError, InvalidArgumentError

__all__ = ["FlareUpload", "flare_base_url", "flare_url", "upload_flare"]

log = logging.getLogger(__name__)

SUPPORT_PATH = "/support/flare"
# AddAgentVersionToDomain's test for a Datadog host (pkg/config/utils/endpoints.go).
_DD_HOST_RE = re.compile(
    r"^app(\.mrf)?(\.[a-z]{2}\d)?\.(datad(oghq|0g)\.(com|eu)|ddog-gov\.com)(\.)?$"
)


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
            raise InvalidArgumentError(f"flare URL must be http(s)://host[:port], got {url[:80]!r}")
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


def _redact(text: str, api_key: str) -> str:
    return text.replace(api_key, "********") if api_key else text


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


def _same_site(a: str, b: str) -> bool:
    """True when URL ``b`` may receive the API key meant for URL ``a``: same scheme or an upgrade
    to https, and the same host or the same parent domain (``app.datadoghq.com`` →
    ``7-59-0-flare.agent.datadoghq.com``)."""
    pa, pb = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    if pb.scheme not in ("http", "https") or (pa.scheme == "https" and pb.scheme != "https"):
        return False
    ha, hb = (pa.hostname or "").rstrip("."), (pb.hostname or "").rstrip(".")
    if ha == hb:
        return True
    if not re.search(r"[a-z]", ha) or not re.search(r"[a-z]", hb):  # IP addresses: exact only
        return False
    return ha.split(".")[-2:] == hb.split(".")[-2:] and ha.count(".") >= 1


class _KeySafeRedirect(urllib.request.HTTPRedirectHandler):
    # urllib copies every header onto the redirected request; never hand the API key to
    # another site (or over plain http after https).
    def redirect_request(  # noqa: PLR0917 - urllib's signature
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and req.get_method() == "HEAD":
            new.method = "HEAD"  # Python < 3.12 turns a redirected HEAD into a GET
        if new is not None and not _same_site(req.full_url, new.full_url):
            for key in [k for k in new.headers if k.lower() == "dd-api-key"]:
                del new.headers[key]
        return new


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


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
) -> FlareUpload:
    """HEAD then POST ``data`` to ``url`` the way the agent does; see :meth:`Flare.send`.

    :raises FlareUploadError: the backend could not be reached or refused the archive.
    """
    headers = {"DD-API-KEY": api_key, "User-Agent": "wpprotect"}
    # 1. HEAD, following redirects; 200 or 404 are fine (the agent's getFlareURL).
    try:
        # The scheme was checked to be http(s) by flare_base_url.
        head = urllib.request.Request(url, method="HEAD", headers=headers)  # noqa: S310
        follow = urllib.request.build_opener(
            _KeySafeRedirect, urllib.request.HTTPSHandler(context=ssl_context)
        )
        with follow.open(head, timeout=timeout) as resp:
            final_url = resp.geturl()
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise FlareUploadError(
                f"We couldn't reach the flare backend {url} via redirects: {exc.code} {exc.reason}"
            ) from None
        final_url = exc.geturl() or url
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise FlareUploadError(
            f"We couldn't reach the flare backend {url}: {_redact(str(exc), api_key)}"
        ) from None

    if not _same_site(url, final_url):
        raise FlareUploadError(
            f"the flare backend {url} redirected to {final_url}, another site: "
            "not sending the API key and the flare there"
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
    post = urllib.request.Request(  # noqa: S310 - http(s) only, see above
        final_url,
        data=body,
        method="POST",
        headers={**headers, "Content-Type": content_type},
    )
    opener = urllib.request.build_opener(
        _NoRedirect, urllib.request.HTTPSHandler(context=ssl_context)
    )
    try:
        with opener.open(post, timeout=timeout) as resp:
            status, reason, raw = resp.status, resp.reason, resp.read()
    except urllib.error.HTTPError as exc:
        status, reason, raw = exc.code, exc.reason, exc.read()
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise FlareUploadError(
            f"could not upload the flare to {final_url}: {_redact(str(exc), api_key)}"
        ) from None
    return _parse_response(status, str(reason), raw, api_key=api_key, url=final_url, sha256=sha256)


def _parse_response(
    status: int, reason: str, raw: bytes, *, api_key: str, url: str, sha256: str
) -> FlareUpload:
    if status == 403:
        if not api_key:
            raise FlareUploadError("HTTP 403 Forbidden: API key is missing")
        raise FlareUploadError(
            "HTTP 403 Forbidden: Make sure your API key is valid. "
            f"API Key ending with: {api_key[-5:]}"
        )
    if status != 200:
        raise FlareUploadError(f"HTTP {status} {_redact(reason, api_key)}")
    text = raw.decode("utf-8", errors="replace")
    try:
        answer = json.loads(text)
        if not isinstance(answer, dict):
            raise ValueError("not an object")
    except ValueError:
        raise FlareUploadError(
            "Error: could not deserialize response body -- Please contact support by email. "
            f"(body: {_redact(text[:150], api_key)!r})"
        ) from None
    error = answer.get("error") or ""
    uuid = answer.get("request_uuid") or None
    if error:
        hint = f" and facilitate the request uuid: `{uuid}`" if uuid else ""
        raise FlareUploadError(
            f"An error occurred while uploading the flare: {_redact(str(error), api_key)}. "
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
