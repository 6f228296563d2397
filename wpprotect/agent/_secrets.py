"""Find secrets the agent's flare scrubber missed, without ever keeping the secret itself.

The rules mirror the scrubber's (``pkg/util/scrubber/default.go``, reference section 1.6) plus
common cloud and chat credentials. A value the scrubber already replaced (``********`` or a run
of ``*``) is not reported.
"""

from __future__ import annotations

import html
import re
import zipfile
from collections.abc import Iterable, Iterator
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


# (kind, pattern); group "s" is the secret value. Order matters only for readability: every
# rule runs on every line, and a value reported once per line is not reported again.
_HEX_EDGE = r"(?<![A-Fa-f0-9])"
_HEX_END = r"(?![A-Fa-f0-9])"
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        # PEM private keys and GCP service-account JSON keys (the scrubber removes PEM blocks).
        (
            "gcp-service-account-key",
            r'"private_key"\s*:\s*"(?P<s>-----BEGIN [A-Z ]*PRIVATE KEY-----[^"]{8,})',
        ),
        ("private-key", r"(?P<s>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----)"),
        # Cloud and chat credentials.
        ("aws-access-key", r"(?<![A-Z0-9])(?P<s>(?:AKIA|ASIA)[0-9A-Z]{16})(?![A-Z0-9])"),
        (
            "aws-secret-key",
            r"(?i)aws_?secret_?(?:access_?)?key['\"]?\s*[:=]\s*['\"]?(?P<s>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
        ),
        ("github-token", r"(?<![A-Za-z0-9_])(?P<s>gh[pousr]_[A-Za-z0-9]{36,255})"),
        ("github-token", r"(?<![A-Za-z0-9_])(?P<s>github_pat_[A-Za-z0-9_]{22,255})"),
        ("slack-token", r"(?<![A-Za-z0-9])(?P<s>xox[abposr]-[A-Za-z0-9-]{10,})"),
        (
            "slack-webhook",
            r"hooks\.slack\.com/services/(?P<s>T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+)",
        ),
        # Datadog keys (hinted, then bare 32/40 hex as the scrubber matches them).
        ("api-key", r"(?i)\b(?:dd_)?api_?key['\"]?\s*[:=]\s*['\"]?(?P<s>[A-Za-z0-9]{32})\b"),
        (
            "app-key",
            r"(?i)\b(?:dd_)?(?:app_?key|application_key)['\"]?\s*[:=]\s*['\"]?(?P<s>[A-Za-z0-9]{40})\b",
        ),
        ("api-key", _HEX_EDGE + r"(?P<s>[a-fA-F0-9]{32})" + _HEX_END),
        ("app-key", _HEX_EDGE + r"(?P<s>[a-fA-F0-9]{40})" + _HEX_END),
        ("app-key", r"(?<![A-Za-z0-9_])(?P<s>ddapp_[A-Za-z0-9]{20,})"),
        ("remote-config-key", r"(?P<s>DDRCM_[A-Z0-9]{10,})"),
        # Tokens and passwords.
        ("bearer-token", r"(?i)\bBearer\s+(?P<s>[A-Za-z0-9\-._~+/]{8,}=*)"),
        ("uri-password", r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]+:(?P<s>[^\s@/]+)@"),
        (
            "password",
            r"(?i)(?<![A-Za-z0-9])[\w.\-]*(?:pass|password|passwd|pswd|pwd)['\"]?\s*[:=]\s*['\"]?(?P<s>[^\s'\"]{3,})",
        ),
        ("token", r"(?i)(?<![A-Za-z0-9])[\w.\-]*token['\"]?\s*[:=]\s*['\"]?(?P<s>[^\s'\",}]{8,})"),
        (
            "snmp-secret",
            r"(?i)\b(?:community_string|authKey|privKey|auth_key|priv_key|authentication_key|privacy_key)"
            r"['\"]?\s*[:=]\s*['\"]?(?P<s>[^\s'\"]{3,})",
        ),
    )
)


def _already_scrubbed(value: str) -> bool:
    return "***" in value or set(value) <= {"*", '"', "'"}


def scan_text(name: str, lines: Iterable[str]) -> Iterator[SecretFinding]:
    """Findings in ``lines`` of the file ``name``; the secret values are not kept."""
    for number, line in enumerate(lines, start=1):
        seen: set[tuple[int, int]] = set()
        for kind, pattern in _RULES:
            for match in pattern.finditer(line):
                start, end = match.span("s")
                value = match["s"]
                if _already_scrubbed(value) or any(s <= start < e for s, e in seen):
                    continue
                seen.add((start, end))
                yield SecretFinding(name, number, kind, redact(value))


def scan_zip(archive: Path) -> list[SecretFinding]:
    """Every finding in every file of a flare archive, in archive order."""
    findings: list[SecretFinding] = []
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            with zf.open(info) as fh:
                data = fh.read(MAX_MEMBER_BYTES)
            text = data.decode("utf-8", errors="replace")
            findings.extend(scan_text(info.filename, text.splitlines()))
    return findings
