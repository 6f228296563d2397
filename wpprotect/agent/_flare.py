"""Flares without a terminal: collect with the right command, copy out, review, then send."""

from __future__ import annotations

import hashlib
import html
import logging
import re
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import attrs

from wpprotect._agentversions import lookup
from wpprotect._deadline import Deadline
from wpprotect.agent._run import (
    AgentBinary,
    binary,
    component_of,
    is_unknown_command,
    str_tuple,
    strip_ansi,
)
from wpprotect.agent._secrets import SecretFinding, scan_zip
from wpprotect.agent._upload import (
    FlareUpload,
    flare_base_url,
    flare_url,
    upload_flare,
)
from wpprotect.agent._validate import validate_api_key, validate_case_id, validate_email
from wpprotect.agent._version import AgentVersion, read_version
from wpprotect.errors import (
    AgentNotFoundError,
    ExecError,
    ExecTimeoutError,
    FlareError,
    FlareUploadError,
    UnsupportedAgentError,
)

if TYPE_CHECKING:
    import ssl

    from wpprotect._contract import Platform

__all__ = ["Flare", "collect_flare", "flare_binaries", "parse_flare_output"]

log = logging.getLogger(__name__)

# "<path> is going to be uploaded to Datadog" / "Aborting. (You can still use <path>)"
# (requestFlare, docs/reference/agent-cli.md#cli-flare-output); the archive name comes from the
# flare builder (docs/reference/agent-cli.md#cli-flare-archive).
_GOING_RE = re.compile(r"^(?P<path>/\S+\.zip) is going to be uploaded to Datadog\s*$", re.M)
_ABORT_RE = re.compile(r"^Aborting\. \(You can still use (?P<path>/\S+\.zip)\)\s*$", re.M)
_SENT_RE = re.compile(
    r"Your logs were successfully uploaded\. For future reference, your internal case id is "
    r"(?P<case>\d+)"
)
# Both archive-name forms (docs/reference/agent-cli.md#cli-flare-archive): the current builder's
# RFC 3339 UTC time with ':' -> '-' and an optional log level, and the older Go layout
# 2006-01-02-15-04-05 of pkg/flare. The release that switched is not pinned, so the name is never
# guessed from the version: the path the agent prints is the authority, and any other plain
# ``.zip`` name it prints is accepted too (with a log line); only a name that is unsafe as a
# local file name is refused.
_NAME_FORMS: dict[str, str] = {
    "rfc3339": r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}Z(?:-[a-z]+)?",
    "legacy": r"[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{2}",
}
# The forms of the version table's ``flare-archive-name`` row (every version: the cut-over is
# not pinned).
_NAME_RE = re.compile(
    "datadog-agent-(?:"
    + "|".join(_NAME_FORMS[f] for f in lookup("flare-archive-name", None))
    + r")\.zip"
)
_SAFE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,200}\.zip")
_ERROR_RE = re.compile(r"^Error: (?P<msg>.*)$", re.M)


def flare_binaries(version: AgentVersion | None) -> tuple[AgentBinary, ...]:
    """The binaries to try for ``flare``, best first (the version table's ``flare-binaries``).

    ``security-agent flare`` is the documented command; from 7.77 the documentation moves the
    flare to the core ``agent flare``, which then comes first
    (docs/reference/deployments.md#deploy-troubleshooting-page); both are safe to try on every
    version.

    >>> flare_binaries(None)
    ('security-agent', 'agent')
    """
    return tuple(lookup("flare-binaries", version) or ("security-agent", "agent"))


def parse_flare_output(stdout: str, stderr: str = "") -> tuple[str | None, str | None, str | None]:
    """``(archive path, case id the upload returned, error)`` from a flare command's output."""
    out = strip_ansi(stdout)
    err = strip_ansi(stderr)
    match = _GOING_RE.search(out) or _ABORT_RE.search(out)
    path = match["path"] if match else None
    sent = _SENT_RE.search(out)
    error_match = _ERROR_RE.search(err) or _ERROR_RE.search(out)
    if error_match is None:
        return path, sent["case"] if sent else None, None
    from wpprotect.agent._upload import safe_excerpt  # the agent's text may quote its key

    return path, sent["case"] if sent else None, safe_excerpt(error_match["msg"].strip())


def _zip_names(archive: Path) -> tuple[str, ...]:
    try:
        with zipfile.ZipFile(archive) as zf:
            return tuple(i.filename for i in zf.infolist() if not i.is_dir())
    except (OSError, zipfile.BadZipFile) as exc:
        raise FlareError(f"the flare archive is not a readable zip: {exc}", path=archive) from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@attrs.frozen
class Flare:
    """A flare archive collected from an agent and copied out for review.

    Review it (:attr:`files`, :meth:`scan_secrets`), then :meth:`send` exactly that archive, or
    keep it. ``sha256`` is the archive's digest when it was copied out; :meth:`send` refuses an
    archive that no longer matches it.
    """

    archive: Path | None
    files: tuple[str, ...] = attrs.field(converter=str_tuple)
    remote_path: str
    case_id: str | None
    email: str | None
    command: tuple[str, ...] = attrs.field(converter=str_tuple)
    output: str
    target: str
    sent: bool = False
    sha256: str | None = None
    version: AgentVersion | None = None
    component: str = "security-agent"

    @property
    def hostname(self) -> str:
        """The agent's hostname: the archive's root directory (``unknown`` if none)."""
        roots = {PurePosixPath(name).parts[0] for name in self.files if "/" in name}
        return roots.pop() if len(roots) == 1 else "unknown"

    def scan_secrets(
        self, *, max_total_bytes: int | None = None, max_members: int | None = None
    ) -> list[SecretFinding]:
        """Secrets the agent's scrubber missed, one finding per value (the value redacted).

        Every byte of every member is scanned; an archive past a bound is refused, not scanned
        in part.

        :param max_total_bytes: uncompressed bytes allowed in all (None: 1 GiB).
        :param max_members: entries allowed in the archive (None: 20,000).
        :raises FlareError: there is no local archive to scan, it is not a readable zip, or it
            passes a bound.
        """
        if self.archive is None:
            raise FlareError("no local copy of the flare to scan", target=self.target)
        return scan_zip(self.archive, max_total_bytes=max_total_bytes, max_members=max_members)

    def send(
        self,
        api_key: str,
        *,
        site: str = "datadoghq.com",
        url: str | None = None,
        timeout: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> FlareUpload:
        """Upload exactly the reviewed archive to Datadog support, as the agent would.

        ``HEAD`` then a multipart ``POST`` to ``<base>/support/flare[/<case_id>]`` with the
        ``DD-API-KEY`` header; form fields ``case_id``, ``email``, ``source``, ``flare_file``,
        ``agent_version`` (the agent's full version string), ``hostname`` in that order. As the
        agent does, the key goes in the header from 7.57 (and when the version is unknown) and
        in the query string (``?api_key=``) for older agents; either way it is never logged or
        shown, and never sent to another site a redirect points to. A 5xx answer to the POST is
        retried up to 3 times, within ``timeout``.

        :param api_key: the Datadog API key (never logged nor shown; a 403 shows its last 5
            characters, as the agent does).
        :param site: the Datadog site, e.g. ``datadoghq.eu``; the host is
            ``<maj>-<min>-<patch>-flare.agent.<site>``.
        :param url: an explicit base URL (the agent's ``dd_url``, a proxy, a test server).
        :param timeout: seconds for the whole upload: connecting, sending and every read,
            redirects included (the agent allows 60 per request).
        :returns: the backend's answer.
        :raises FlareError: no local archive, or it changed since it was copied out.
        :raises FlareUploadError: the backend refused the archive or could not be reached.
        """
        validate_api_key(api_key)
        if self.archive is None or self.sha256 is None:
            raise FlareError("no local copy of the flare to send", target=self.target)
        try:
            data = self.archive.read_bytes()
        except OSError as exc:
            raise FlareError(f"cannot read the flare: {exc}", path=self.archive) from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.sha256:
            raise FlareError(
                "the flare archive changed since it was reviewed; refusing to send it",
                path=self.archive,
            )
        version = str(self.version) if self.version is not None else None
        base = flare_base_url(site, version=version, url=url)
        # the version table's ``flare-api-key``: the header from 7.57, the query string before;
        # an unknown version: the header
        key_in_query = lookup("flare-api-key", self.version) == "query"
        target_url = flare_url(base, self.case_id)
        log.info("sending flare %s", self.archive.name)  # the URL, redacted, is logged below
        try:
            return upload_flare(
                data,
                file_name=self.archive.name,
                sha256=digest,
                api_key=api_key,
                url=target_url,
                case_id=self.case_id,
                email=self.email,
                agent_version=self.version.full if self.version is not None else "unknown",
                hostname=self.hostname,
                timeout=timeout,
                ssl_context=ssl_context,
                key_in_query=key_in_query,
            )
        except FlareUploadError as exc:
            log.warning("flare upload failed: %s", exc)
            raise

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (no secrets: the flare's content is not included)."""
        return {
            "target": self.target,
            "archive": None if self.archive is None else str(self.archive),
            "remote_path": self.remote_path,
            "files": list(self.files),
            "case_id": self.case_id,
            "email": self.email,
            "command": list(self.command),
            "component": self.component,
            "version": None if self.version is None else str(self.version),
            "sent": self.sent,
            "sha256": self.sha256,
        }

    def __repr__(self) -> str:
        where = self.archive or self.remote_path
        state = "sent" if self.sent else "not sent"
        return f"<Flare {self.target} {where} ({len(self.files)} files, {state})>"

    def _repr_html_(self) -> str:
        items = "".join(f"<li><code>{html.escape(f)}</code></li>" for f in self.files)
        return (
            f"<p><b>Flare</b> from {html.escape(self.target)}: "
            f"<code>{html.escape(str(self.archive or self.remote_path))}</code> "
            f"({'sent' if self.sent else 'not sent'})</p><ul>{items}</ul>"
        )


def collect_flare(
    platform: Platform,
    *,
    case_id: str | int | None = None,
    email: str | None = None,
    send: bool = False,
    dest: str | Path | None = None,
    timeout: float | None = 600.0,
    version: AgentVersion | None = None,
) -> Flare:
    """Collect a flare on ``platform`` without a terminal and copy the archive out.

    The agent's prompts are answered on stdin: the email (only when ``email`` is None: an empty
    answer, which the agent accepts) and the upload confirmation (``n``, so nothing leaves the
    machine). With ``send=True`` the agent itself uploads, with ``-s`` (no confirmation), using
    its own API key; the archive is still copied out when it can be.

    :param case_id: a support case ID (digits only), or None to open a new case.
    :param email: the email tied to the case (``-e``).
    :param send: let the agent upload right away instead of keeping the archive for review.
    :param dest: a local directory (or ``.zip`` path) for the copy; default a new temp dir.
    :param timeout: seconds for the whole operation: the version read (at most 30 s of it) and
        the flare command.
    :param version: the agent version if known (else it is asked for).
    :raises InvalidArgumentError: a bad case ID or email (nothing was run).
    :raises FlareError: no archive was produced or it could not be copied out.
    :raises FlareUploadError: ``send=True`` and the agent's upload failed.
    :raises UnsupportedAgentError: neither ``security-agent flare`` nor ``agent flare`` exists.
    """
    case = validate_case_id(case_id)
    mail = validate_email(email)
    deadline = Deadline(timeout, what="flare", target=platform.target)
    if version is None:
        version = read_version(platform, deadline)

    stdin = b"" if mail is not None else b"\n"  # the email prompt: an empty answer is accepted
    if not send:
        stdin += b"n\n"  # "Are you sure you want to upload a flare? [y/N]" -> abort, keep it
    refused: list[str] = []
    failed: list[str] = []
    exec_errors: list[Exception] = []
    for name in flare_binaries(version):
        argv = [binary(platform, name), "flare"]
        if case is not None:
            argv.append(case)
        if mail is not None:
            argv += ["-e", mail]
        if send:
            argv.append("-s")
        try:
            res = platform.exec(
                argv,
                component=component_of(name),
                stdin=stdin,
                timeout=deadline.budget(step=f"before {name} flare"),
            )
        except ExecTimeoutError:
            raise
        except (ExecError, AgentNotFoundError) as exc:
            # A missing container (e.g. no security-agent container from 7.77) is a refusal; try
            # the other binary, and report the platform failure itself if both fail that way.
            refused.append(f"{name}: {exc.message}")
            exec_errors.append(exc)
            continue
        path, sent_case, error = parse_flare_output(res.stdout, res.stderr)
        if path is None:
            # Refused (unknown command, process not running and no local build): try the other.
            if is_unknown_command(res.output) or res.exit_code in (126, 127):
                refused.append(f"{name}: no flare command")
            else:
                failed.append(f"{name}: {error or f'exit status {res.exit_code}'}")
            from wpprotect.agent._upload import safe_excerpt

            tail = safe_excerpt(res.output, tail=True)  # agent output may quote its key
            log.info("flare with %s failed on %s: %s", name, platform.target, tail)
            continue
        if send and sent_case is None:
            raise FlareUploadError(
                f"the agent could not upload the flare: {error or 'no confirmation printed'}",
                target=platform.target,
            )
        return _copy_out(
            platform,
            name,
            path,
            argv=argv,
            output=res.output,
            case=sent_case or case,
            mail=mail,
            sent=sent_case is not None,
            dest=dest,
            version=version,
            required=not send,
        )
    if failed:
        raise FlareError(
            f"the agent produced no flare archive ({'; '.join(failed + refused)})",
            target=platform.target,
        )
    if exec_errors and len(exec_errors) == len(refused):
        raise ExecError(
            f"no flare command could run ({'; '.join(refused)})", target=platform.target
        ) from exec_errors[-1]
    raise UnsupportedAgentError(
        f"no flare command answered ({'; '.join(refused)})", target=platform.target
    )


def _copy_out(
    platform: Platform,
    name: AgentBinary,
    remote: str,
    *,
    argv: list[str],
    output: str,
    case: str | None,
    mail: str | None,
    sent: bool,
    dest: str | Path | None,
    version: AgentVersion | None,
    required: bool,
) -> Flare:
    base = PurePosixPath(remote).name
    if not _NAME_RE.fullmatch(base):
        if not _SAFE_NAME_RE.fullmatch(base):
            raise FlareError(
                f"unexpected flare archive name {base!r}: not a plain .zip file name",
                target=platform.target,
            )
        log.info("flare archive %s has neither known name form; using the printed path", base)
    if dest is None:
        local = Path(tempfile.mkdtemp(prefix="wpprotect-flare-")) / base
    else:
        dest_path = Path(dest)
        local = dest_path if dest_path.suffix == ".zip" else dest_path / base
        local.parent.mkdir(parents=True, exist_ok=True)
    archive: Path | None = local
    files: tuple[str, ...] = ()
    digest: str | None = None
    try:
        platform.copy_out(remote, local, component=component_of(name))
        files = _zip_names(local)
        digest = _sha256(local)
    except (ExecError, FlareError, OSError) as exc:
        if required:
            if isinstance(exc, FlareError):
                raise
            raise FlareError(
                f"could not copy the flare {remote} out: {exc}", target=platform.target
            ) from exc
        log.warning("flare sent, but not copied out from %s: %s", platform.target, exc)
        archive = None
    return Flare(
        archive=archive,
        files=files,
        remote_path=remote,
        case_id=case,
        email=mail,
        command=argv,
        output=output,
        target=platform.target,
        sent=sent,
        sha256=digest,
        version=version,
        component=name,
    )
