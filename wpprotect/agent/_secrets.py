"""Find secrets the agent's flare scrubber missed, without ever keeping the secret itself.

The rules mirror the scrubber's (``pkg/util/scrubber/default.go`` in DataDog/datadog-agent,
``docs/reference/agent-cli.md#cli-flare-scrubbing``) plus
common cloud and chat credentials. A value the scrubber already replaced (``********`` or a run
of ``*``) is not reported.

A flare comes from a node someone else may control, so the scan is bounded in every dimension:
each member is streamed in chunks (every byte is read, none is kept longer than a window), no rule
can backtrack more than a fixed number of bytes (every quantifier is bounded), and the archive as
a whole may hold at most ``max_total_bytes`` uncompressed bytes in at most ``max_members``
members. Passing a bound raises :class:`~wpprotect.errors.FlareError`: the scan never reports
"no secrets" for bytes it did not read.
"""

from __future__ import annotations

import html
import itertools
import lzma
import re
import zipfile
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from wpprotect.errors import FlareError, InvalidArgumentError

__all__ = ["MAX_MEMBERS", "MAX_TOTAL_BYTES", "SecretFinding", "redact", "scan_text", "scan_zip"]

#: Uncompressed bytes a flare may hold in all, by default (real flares hold tens of megabytes).
MAX_TOTAL_BYTES = 1 << 30
#: Members a flare may hold, by default (real flares hold a few hundred).
MAX_MEMBERS = 20_000
#: Findings kept before the scan gives up: an archive with more is not a flare to report on.
MAX_FINDINGS = 100_000


def redact(secret: str) -> str:
    """A safe stand-in for ``secret``: ``********`` plus its last 4 characters when it is long
    enough (16+) that those do not give it away, as the agent's scrubber does."""
    if len(secret) >= 16:
        return "********" + secret[-4:]
    return "********"


@attrs.frozen
class SecretFinding:
    """A secret found in a flare file. ``redacted`` is all that is kept of the value."""

    file: str
    line: int
    kind: str
    redacted: str

    def to_dict(self) -> dict[str, Any]:
        """``{"file", "line", "kind", "redacted"}``."""
        return {"file": self.file, "line": self.line, "kind": self.kind, "redacted": self.redacted}

    def __repr__(self) -> str:
        return f"<SecretFinding {self.kind} at {self.file}:{self.line} {self.redacted}>"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.kind} ({self.redacted})"

    def _repr_html_(self) -> str:
        return (
            f"<code>{html.escape(self.file)}:{self.line}</code> {html.escape(self.kind)} "
            f"<code>{html.escape(self.redacted)}</code>"
        )


# The rules run over bytes (zip members need no decoding), a block of whole lines at a time, and
# each finding is then placed on its line; no rule matches a newline ([ \t], not \s), so a block
# boundary at a newline never splits a match. Each rule has gate words, one of which every match
# contains: the rule runs only on blocks that contain one (lower-cased), which keeps
# multi-megabyte members such as kallsyms fast.
#
# Every quantifier is bounded, so a match is at most _MAX_MATCH bytes long and the engine never
# walks further than that from where it tries a match: the scan is linear in the input, whatever
# the input (an unbounded `[\w.\-]*` before a separator made a line of 100,000 "pass" quadratic).
# The bounds are far above real values; a longer value is still reported, cut at the bound.
_SEP = rb"['\"]?[ \t]{0,64}+[:=][ \t]{0,64}+['\"]?"
_VALUE = rb"{3,4096}"
_RULE_SPECS: tuple[tuple[str, bytes, tuple[bytes, ...]], ...] = (
    # PEM private keys and GCP service-account JSON keys (the scrubber removes PEM blocks).
    (
        "gcp-service-account-key",
        rb'"private_key"[ \t]{0,64}+:[ \t]{0,64}+"'
        rb'(?P<s>-----BEGIN [A-Z ]{0,64}PRIVATE KEY-----[^"\n]{8,8192})',
        (b"private_key",),
    ),
    (
        "private-key",
        rb"(?P<s>-----BEGIN (?:[A-Z0-9]{1,32} ){0,8}PRIVATE KEY-----)",
        (b"private key",),
    ),
    # Cloud and chat credentials.
    (
        "aws-access-key",
        rb"(?<![A-Z0-9])(?P<s>(?:AKIA|ASIA)[0-9A-Z]{16})(?![A-Z0-9])",
        (b"akia", b"asia"),
    ),
    (
        "aws-secret-key",
        rb"(?i)aws_?secret_?(?:access_?)?key"
        + _SEP
        + rb"(?P<s>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
        (b"secret",),
    ),
    (
        "github-token",
        rb"(?<![A-Za-z0-9_])(?P<s>gh[pousr]_[A-Za-z0-9]{36,255})",
        (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"),
    ),
    (
        "github-token",
        rb"(?<![A-Za-z0-9_])(?P<s>github_pat_[A-Za-z0-9_]{22,255})",
        (b"github_pat_",),
    ),
    ("slack-token", rb"(?<![A-Za-z0-9])(?P<s>xox[abposr]-[A-Za-z0-9-]{10,1024})", (b"xox",)),
    (
        "slack-webhook",
        rb"hooks\.slack\.com/services/"
        rb"(?P<s>T[A-Za-z0-9]{1,64}+/B[A-Za-z0-9]{1,64}+/[A-Za-z0-9]{1,256})",
        (b"hooks.slack.com",),
    ),
    # Datadog keys, hinted (bare 32/40 hex runs are found by _hex_runs, as the scrubber does).
    (
        "api-key",
        rb"(?i)api_?key" + _SEP + rb"(?P<s>[A-Za-z0-9]{32})(?![A-Za-z0-9])",
        (b"apikey", b"api_key"),
    ),
    (
        "app-key",
        rb"(?i)(?:app_?key|application_key)" + _SEP + rb"(?P<s>[A-Za-z0-9]{40})(?![A-Za-z0-9])",
        (b"appkey", b"app_key", b"application_key"),
    ),
    ("app-key", rb"(?<![A-Za-z0-9_])(?P<s>ddapp_[A-Za-z0-9]{20,1024})", (b"ddapp_",)),
    ("remote-config-key", rb"(?P<s>DDRCM_[A-Z0-9]{10,1024})", (b"ddrcm_",)),
    # Tokens and passwords (the key's own prefix does not matter: `db_password`, `pwd`).
    (
        "bearer-token",
        rb"(?i)\bBearer[ \t]{1,64}+(?P<s>[A-Za-z0-9\-._~+/]{8,4096}={0,8})",
        (b"bearer",),
    ),
    (
        "uri-password",
        # Literal first, so the engine jumps from "://" to "://"; a scheme character
        # before it (checked after) is the scheme's last.
        rb"://(?<=[A-Za-z0-9+.\-]://)[^\s:/@]{1,256}+:(?P<s>[^\s@/]{1,256}+)@",
        (b"://",),
    ),
    (
        "password",
        rb"(?i)(?:pass(?:word|wd)?|pswd|pwd)[\w.\-]{0,64}+"
        + _SEP
        + rb"(?P<s>[^\s'\"]"
        + _VALUE
        + b")",
        (b"pass", b"pwd", b"pswd"),
    ),
    ("token", rb"(?i)token" + _SEP + rb"(?P<s>[^\s'\",}]{8,4096})", (b"token",)),
    (
        "snmp-secret",
        rb"(?i)\b(?:community_string|authKey|privKey|auth_key|priv_key|authentication_key"
        rb"|privacy_key)" + _SEP + rb"(?P<s>[^\s'\"]" + _VALUE + b")",
        (
            b"community_string",
            b"authkey",
            b"privkey",
            b"auth_key",
            b"priv_key",
            b"authentication_key",
            b"privacy_key",
        ),
    ),
)
_RULES: tuple[tuple[str, re.Pattern[bytes], tuple[bytes, ...]], ...] = tuple(
    (kind, re.compile(pattern), gates) for kind, pattern, gates in _RULE_SPECS
)

# One search for any gate word first: most of a binary or padded member has none, and one
# pass over it is several times cheaper than a search per gate word.
_ANY_GATE = re.compile(b"|".join(sorted({re.escape(g) for _, _, gates in _RULES for g in gates})))

#: The longest match any rule can make (the GCP key: its prefix plus 8192 bytes of value).
_MAX_MATCH = 9 * 1024
#: A line longer than this is scanned in windows of about this size, each overlapping the next
#: by more than the longest match, so a secret across a window boundary is still found.
_WINDOW = 1 << 20
_OVERLAP = 2 * _MAX_MATCH
#: Bytes kept before a window so look-behinds (one byte) and word boundaries see real neighbours.
_CONTEXT = 16
#: How much of a member is decompressed at a time.
_CHUNK = 1 << 20

# Bare API (32 hex) and APP (40 hex) keys: whole runs of hex digits, found by marking every hex
# digit "x" with a translate table, then finding 32 "x" and matching the rest of the run, which
# is ~10x faster on large files than a regex over the digits.
_HEX = b"0123456789abcdefABCDEF"
_HEX_TABLE = bytes((0x78 if c in _HEX else (0x5F if c == 0x78 else c)) for c in range(256))
_HEX_KINDS = {32: "api-key", 40: "app-key"}
_HEX_NEEDLE = b"x" * 32
_X_RUN = re.compile(b"x+")


def _hex_runs(data: bytes, pos: int, endpos: int) -> list[tuple[int, int, str]]:
    """Maximal runs of exactly 32 or 40 hex digits starting in ``data[pos:endpos]`` (a run that
    began before ``pos`` is not one)."""
    lo = pos - 1 if pos > 0 else 0
    marked = data[lo:endpos].translate(_HEX_TABLE)
    runs: list[tuple[int, int, str]] = []
    start = marked.find(_HEX_NEEDLE)  # a substring search: fast on any input
    while start != -1:
        run = _X_RUN.match(marked, start)
        end = run.end() if run else start
        kind = _HEX_KINDS.get(end - start)
        if kind is not None and lo + start >= pos:
            runs.append((lo + start, lo + end, kind))
        start = marked.find(_HEX_NEEDLE, end)
    return runs


def _already_scrubbed(value: str) -> bool:
    return "***" in value or set(value) <= {"*", '"', "'"}


class _Taken:
    """Byte ranges already reported (absolute offsets in a member), merged and sorted, so "is
    this position inside one" is a binary search, not a walk over every finding."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def covers(self, pos: int) -> bool:
        i = bisect_right(self.starts, pos) - 1
        return i >= 0 and pos < self.ends[i]

    def add(self, spans: list[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for start, end in sorted([*zip(self.starts, self.ends, strict=True), *spans]):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.starts = [s for s, _ in merged]
        self.ends = [e for _, e in merged]

    def forget_before(self, pos: int) -> None:
        """Drop ranges ending at or before ``pos``: no later match can start inside them."""
        i = bisect_left(self.ends, pos + 1)
        del self.starts[:i], self.ends[:i]


class _MemberScan:
    """One file's bytes, fed in chunks: whole lines are scanned a block at a time; a line longer
    than ``_WINDOW`` is scanned in overlapping windows. Memory stays under two windows."""

    def __init__(self, name: str, found: list[SecretFinding]) -> None:
        self.name = name
        self.found = found
        self.buf = b""
        self.base = 0  # offset of buf[0] in the member
        self.skip = 0  # matches start at buf[skip] or later; the bytes before are context
        self.line = 1  # line number of buf[skip]
        self.taken = _Taken()

    def feed(self, chunk: bytes) -> None:
        self.buf = self.buf[self.skip - _CONTEXT if self.skip > _CONTEXT else 0 :] + chunk
        if self.skip > _CONTEXT:
            self.base += self.skip - _CONTEXT
            self.skip = _CONTEXT
        cut = self.buf.rfind(b"\n", self.skip) + 1
        if cut:
            self._scan(cut, cut)
            self.line += self.buf.count(b"\n", self.skip, cut)
            self.skip = cut
        if len(self.buf) - self.skip > _WINDOW:
            # A long line: report what starts before the last _OVERLAP bytes (such a match ends
            # before the buffer does), and rescan those bytes with the next chunk.
            accept = len(self.buf) - _OVERLAP
            self._scan(accept, len(self.buf))
            self.skip = accept

    def close(self) -> None:
        self._scan(len(self.buf), len(self.buf))
        self.buf = b""

    def _scan(self, accept: int, endpos: int) -> None:
        """Report matches starting in ``buf[skip:accept]``, reading up to ``buf[endpos]``."""
        buf, skip, base = self.buf, self.skip, self.base
        if accept <= skip:
            return
        self.taken.forget_before(base + skip)
        lowered = buf[skip:endpos].lower()
        hits: list[tuple[int, str, str]] = []
        # (kind, (match start, value start, value end)...) per rule in order, then the bare hex
        # runs (kind "": by length); a value inside one already reported is not reported again.
        # Whether a match belongs to this window goes by where the match starts: the next
        # window starts its search there.
        sources: list[tuple[str, Iterable[tuple[int, int, int]]]] = (
            [
                (kind, ((m.start(), *m.span("s")) for m in pattern.finditer(buf, skip, endpos)))
                for kind, pattern, gates in _RULES
                if any(g in lowered for g in gates)
            ]
            if _ANY_GATE.search(lowered)
            else []
        )
        sources.append(("", ((s, s, e) for s, e, _ in _hex_runs(buf, skip, endpos))))
        for kind, spans in sources:
            new: list[tuple[int, int]] = []
            for first, start, end in spans:
                if first >= accept:
                    break
                if self.taken.covers(base + start):
                    continue
                value = buf[start:end].decode("utf-8", errors="replace")
                if _already_scrubbed(value):
                    continue
                new.append((base + start, base + end))
                hits.append((start, kind or _HEX_KINDS[end - start], redact(value)))
            if new:
                self.taken.add(new)
        if not hits:
            return
        if len(self.found) + len(hits) > MAX_FINDINGS:
            raise FlareError(
                f"more than {MAX_FINDINGS} secrets found (the last in {self.name!r}): this is not "
                "a flare the scan can report on; inspect the archive by hand"
            )
        hits.sort()
        line, at = self.line, skip
        for pos, kind, red in hits:
            line += buf.count(b"\n", at, pos)
            at = pos
            self.found.append(SecretFinding(self.name, line, kind, red))


def _scan_bytes(name: str, data: bytes, found: list[SecretFinding]) -> None:
    scan = _MemberScan(name, found)
    for at in range(0, len(data), _CHUNK):
        scan.feed(data[at : at + _CHUNK])
    scan.close()


def scan_text(name: str, text: str | bytes | Iterable[str]) -> list[SecretFinding]:
    """Findings in the file ``name`` (its content, or its lines), in line order.

    The secret values are not kept: only :func:`redact` of each.

    :raises FlareError: more than ``MAX_FINDINGS`` findings.
    """
    if isinstance(text, str):
        data = text.encode("utf-8", errors="replace")
    elif isinstance(text, bytes):
        data = text
    else:
        data = "\n".join(text).encode("utf-8", errors="replace")
    found: list[SecretFinding] = []
    _scan_bytes(name, data, found)
    return found


# What zipfile and its decompressors raise on a damaged, hostile or unsupported archive:
# BadZipFile (bad structure, CRC), zlib.error / lzma.LZMAError / EOFError / OSError (corrupt or
# cut streams), RuntimeError (an encrypted member), NotImplementedError (an unknown compression
# method), ValueError (bad field values).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    RuntimeError,
    NotImplementedError,
    ValueError,
)


def _refuse_overlaps(infos: list[zipfile.ZipInfo], archive: Path) -> None:
    """Refuse entries whose data overlap: a flare's writer (Go's ``archive/zip``) never makes
    them, and thousands of records over one small compressed entry is the classic zip bomb.

    Each entry takes at least its 30-byte local header, its name and its compressed data; a
    smaller gap to the next entry's header means the two share bytes."""
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for one, after in itertools.pairwise(ordered):
        least_end = one.header_offset + 30 + len(one.orig_filename.encode()) + one.compress_size
        if after.header_offset < least_end:
            raise FlareError(
                f"the flare's entries {one.filename!r} and {after.filename!r} overlap (a zip "
                "bomb, not a flare); nothing was scanned",
                path=archive,
            )


def scan_zip(
    archive: Path,
    *,
    max_total_bytes: int | None = None,
    max_members: int | None = None,
) -> list[SecretFinding]:
    """Every finding in every file of a flare archive, in archive order.

    Every byte of every member is read. An archive past a bound, or whose entries overlap (a
    zip can declare thousands of entries over the same compressed data), is refused, never
    scanned in part.

    :param archive: the flare ``.zip``.
    :param max_total_bytes: uncompressed bytes allowed across all members (None:
        :data:`MAX_TOTAL_BYTES`, 1 GiB).
    :param max_members: entries allowed in the archive (None: :data:`MAX_MEMBERS`, 20,000).
    :raises FlareError: the archive cannot be read, its entries overlap, or it passes a bound
        (the message names the bound, the member and the keyword that raises it).
    :raises InvalidArgumentError: a bound is not a positive integer.
    """
    max_total_bytes = MAX_TOTAL_BYTES if max_total_bytes is None else max_total_bytes
    max_members = MAX_MEMBERS if max_members is None else max_members
    bounds: tuple[tuple[str, object], ...] = (
        ("max_total_bytes", max_total_bytes),
        ("max_members", max_members),
    )
    for label, bound in bounds:
        if isinstance(bound, bool) or not isinstance(bound, int) or bound <= 0:
            raise InvalidArgumentError(f"{label} must be a positive integer, got {bound!r}")
    found: list[SecretFinding] = []
    total = 0
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            if len(infos) > max_members:
                raise FlareError(
                    f"the flare has {len(infos)} entries, more than the {max_members} the scan "
                    "accepts; nothing was scanned (pass max_members= to raise the bound)",
                    path=archive,
                )
            _refuse_overlaps(infos, archive)
            for info in infos:
                if info.is_dir():
                    continue
                scan = _MemberScan(info.filename, found)
                with zf.open(info) as fh:
                    while chunk := fh.read(_CHUNK):
                        total += len(chunk)
                        if total > max_total_bytes:
                            raise FlareError(
                                f"the flare expands to more than {max_total_bytes} bytes "
                                f"(passed while reading {info.filename!r}); the scan stopped "
                                "there (pass max_total_bytes= to raise the bound)",
                                path=archive,
                            )
                        scan.feed(chunk)
                scan.close()
    except _ZIP_ERRORS as exc:
        raise FlareError(f"the flare archive could not be read: {exc}", path=archive) from exc
    return found
