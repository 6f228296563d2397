"""Find secrets the agent's flare scrubber missed, without ever keeping the secret itself.

The rules mirror the scrubber's (``pkg/util/scrubber/default.go``,
docs/reference/agent-cli.md#cli-flare-scrubbing) plus
common cloud and chat credentials. A value the scrubber already replaced (``********`` or a run
of ``*``) is not reported.
"""

from __future__ import annotations

import html
import re
import zipfile
from bisect import bisect_right
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

__all__ = ["SecretFinding", "redact", "scan_text", "scan_zip"]

#: Members larger than this are read only up to it (flares hold kallsyms and logs).
MAX_MEMBER_BYTES = 32 * 1024 * 1024


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


# The rules run over a whole file at once (bytes, so zip members need no decoding) and each
# finding is then placed on its line; separators never cross a line ([ \t], not \s). Each rule
# has gate words: it runs only on files that contain one (lower-cased), which keeps multi-megabyte
# members such as kallsyms fast.
_NEWLINE = re.compile(b"\n")
_SEP = rb"['\"]?[ \t]*[:=][ \t]*['\"]?"
_RULE_SPECS: tuple[tuple[str, bytes, tuple[bytes, ...]], ...] = (
    # PEM private keys and GCP service-account JSON keys (the scrubber removes PEM blocks).
    (
        "gcp-service-account-key",
        rb'"private_key"[ \t]*:[ \t]*"(?P<s>-----BEGIN [A-Z ]*PRIVATE KEY-----[^"\n]{8,})',
        (b"private_key",),
    ),
    ("private-key", rb"(?P<s>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----)", (b"private key",)),
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
    ("slack-token", rb"(?<![A-Za-z0-9])(?P<s>xox[abposr]-[A-Za-z0-9-]{10,})", (b"xox",)),
    (
        "slack-webhook",
        rb"hooks\.slack\.com/services/(?P<s>T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+)",
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
    ("app-key", rb"(?<![A-Za-z0-9_])(?P<s>ddapp_[A-Za-z0-9]{20,})", (b"ddapp_",)),
    ("remote-config-key", rb"(?P<s>DDRCM_[A-Z0-9]{10,})", (b"ddrcm_",)),
    # Tokens and passwords (the key's own prefix does not matter: `db_password`, `pwd`).
    ("bearer-token", rb"(?i)\bBearer[ \t]+(?P<s>[A-Za-z0-9\-._~+/]{8,}=*)", (b"bearer",)),
    ("uri-password", rb"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]+:(?P<s>[^\s@/]+)@", (b"://",)),
    (
        "password",
        rb"(?i)(?:pass(?:word|wd)?|pswd|pwd)[\w.\-]*" + _SEP + rb"(?P<s>[^\s'\"]{3,})",
        (b"pass", b"pwd", b"pswd"),
    ),
    ("token", rb"(?i)token" + _SEP + rb"(?P<s>[^\s'\",}]{8,})", (b"token",)),
    (
        "snmp-secret",
        rb"(?i)\b(?:community_string|authKey|privKey|auth_key|priv_key|authentication_key"
        rb"|privacy_key)" + _SEP + rb"(?P<s>[^\s'\"]{3,})",
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

# Bare API (32 hex) and APP (40 hex) keys: whole runs of hex digits, found with a translate
# table and find() rather than a regex, which is ~10x faster on large files.
_HEX = b"0123456789abcdefABCDEF"
_HEX_TABLE = bytes((0x78 if c in _HEX else (0x5F if c == 0x78 else c)) for c in range(256))
_HEX_KINDS = {32: "api-key", 40: "app-key"}


def _hex_runs(data: bytes) -> list[tuple[int, int, str]]:
    marked = data.translate(_HEX_TABLE)
    runs: list[tuple[int, int, str]] = []
    needle = b"x" * 32
    start = marked.find(needle)
    while start != -1:
        end = start + 32
        while end < len(marked) and marked[end] == 0x78:
            end += 1
        kind = _HEX_KINDS.get(end - start)
        if kind is not None:
            runs.append((start, end, kind))
        start = marked.find(needle, end)
    return runs


def _already_scrubbed(value: str) -> bool:
    return "***" in value or set(value) <= {"*", '"', "'"}


def scan_text(name: str, text: str | bytes | Iterable[str]) -> list[SecretFinding]:
    """Findings in the file ``name`` (its content, or its lines), in line order.

    The secret values are not kept: only :func:`redact` of each.
    """
    if isinstance(text, str):
        data = text.encode("utf-8", errors="replace")
    elif isinstance(text, bytes):
        data = text
    else:
        data = "\n".join(text).encode("utf-8", errors="replace")
    lowered = data.lower()
    spans: list[tuple[int, int]] = []
    hits: list[tuple[int, str, str]] = []

    def add(start: int, end: int, kind: str) -> None:
        value = data[start:end].decode("utf-8", errors="replace")
        # One value is reported once, by the first (most specific) rule that finds it.
        if _already_scrubbed(value) or any(s <= start < e for s, e in spans):
            return
        spans.append((start, end))
        hits.append((start, kind, redact(value)))

    for kind, pattern, gates in _RULES:
        if any(g in lowered for g in gates):
            for match in pattern.finditer(data):
                add(*match.span("s"), kind)
    for start, end, hex_kind in _hex_runs(data):
        add(start, end, hex_kind)
    if not hits:
        return []
    line_starts = [0, *(m.end() for m in _NEWLINE.finditer(data))]
    hits.sort()
    return [
        SecretFinding(name, bisect_right(line_starts, pos), kind, red) for pos, kind, red in hits
    ]


def scan_zip(archive: Path) -> list[SecretFinding]:
    """Every finding in every file of a flare archive, in archive order."""
    findings: list[SecretFinding] = []
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            with zf.open(info) as fh:
                data = fh.read(MAX_MEMBER_BYTES)
            findings.extend(scan_text(info.filename, data))
    return findings
