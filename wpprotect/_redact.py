"""Secret redaction shared by the whole library (reprs, diffs, logs, error messages).

The patterns are the facts listed for the agent's own flare scrubber
(``pkg/util/scrubber/default.go`` in DataDog/datadog-agent): YAML keys containing ``pass``,
``password`` or ``pwd``; keys ending in ``token``; API keys (32 hex) and APP keys (40 hex) keeping
their last 5 characters; ``Bearer`` tokens; URI userinfo passwords; SNMP community strings and
auth/privacy keys; ``Authorization``; PEM blocks; ``DDRCM_`` remote-config keys. wpprotect adds the
environment-variable spellings (``DD_API_KEY``, ``DD_APP_KEY``, ``*_TOKEN``, ``*_PASSWORD``) and the
Kubernetes ``- name: DD_API_KEY`` / ``value: ...`` pair, because that is how deployments carry keys.

Redaction never changes the number of lines, so a diff of two redacted texts lines up with the
diff of the originals.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "is_secret_key", "redact_text", "redact_value"]

#: What a secret value is replaced with (the agent's scrubber uses the same mask).
MASK = "********"

# Exact key names (normalised: lower case, "-" -> "_") that are secrets whatever their suffix.
_EXACT = frozenset(
    {
        "authorization",
        "community",
        "community_string",
        "community_strings",
        "authkey",
        "auth_key",
        "privkey",
        "priv_key",
        "authentication_key",
        "privacy_key",
        "access_key",
        "private_key",
        "jwt",
        "consumer_key",
        "token_id",
        "cookie",
        "dd_api_key",
        "dd_app_key",
        "secret",
        "api_key",
        "apikey",
        "app_key",
        "appkey",
        "application_key",
    }
)
_SUFFIXES = (
    "token",  # scrubber: "YAML keys ending in token"
    "_secret",
    "_secret_id",
    "secret_key",
    "api_key",
    "apikey",
    "app_key",
    "appkey",
    "application_key",
    "access_key",
    "private_key",
    "_jwt",
)
_SUBSTRINGS = ("pass", "pwd", "pswd")  # scrubber: keys containing pass/password/pwd
_X_HEADER = re.compile(r"^x_[a-z0-9_]*_(key|token|auth|secret)$")


def _normalise(key: str) -> str:
    return key.strip().strip("\"'").lower().replace("-", "_")


def is_secret_key(key: str) -> bool:
    """Whether a config key or environment variable name holds a secret.

    Matches YAML spellings (``api_key``, ``app_key``, ``auth_token``, ``password``,
    ``community_string``, ``Authorization``) and environment-variable spellings
    (``DD_API_KEY``, ``DD_APP_KEY``, ``DD_CLUSTER_AGENT_AUTH_TOKEN``, ``DB_PASSWORD``).

    >>> is_secret_key("api_key"), is_secret_key("DD_APP_KEY"), is_secret_key("enabled")
    (True, True, False)

    :param key: the key (one path segment) or variable name.
    :returns: True when its value must never be shown.
    """
    k = _normalise(key)
    if not k:
        return False
    if k in _EXACT:
        return True
    if any(s in k for s in _SUBSTRINGS):
        return True
    if k.endswith(_SUFFIXES):
        return True
    return bool(_X_HEADER.match(k))


# A YAML `key: value` line, optionally a sequence item; the key may be quoted.
_KEY_LINE = re.compile(
    r"""^(?P<lead>\s*(?:-\s+)?)(?P<q>["']?)(?P<key>[^\s:"'#][^:"'#]*?)(?P=q)"""
    r"""(?P<sep>\s*:[ \t]+)(?P<value>\S.*)$"""
)
_NAME_LINE = re.compile(
    r"""^(?P<lead>\s*(?:-\s+)?)name\s*:\s*["']?(?P<name>[A-Za-z0-9_.\-]+)["']?\s*$"""
)
_VALUE_LINE = re.compile(r"""^(?P<lead>\s*)value(?P<sep>\s*:[ \t]+)(?P<value>\S.*)$""")
_ASSIGN = re.compile(
    r"""(?P<name>\b[A-Za-z_][A-Za-z0-9_.\-]*)(?P<sep>=)(?P<value>"[^"]*"|'[^']*'|[^\s,;&"']+)"""
)
_GENERIC_PASS = re.compile(
    r"""(?i)(?P<k>\b\w*(?:pass|password|pswd|pwd)\w*)(?P<sep>\s*[=:]\s*)(?P<v>[^\s,;"']+)"""
)
_PEM_INLINE = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]+)-----.*?-----END (?P=kind)-----", re.DOTALL
)
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]+-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]+-----")
_BEARER_HEX = re.compile(r"\bBearer\s+[A-Fa-f0-9]{59}(?P<tail>[A-Fa-f0-9]{5})(?![A-Fa-f0-9])")
_BEARER = re.compile(r"\bBearer\s+(?!\*)[^\s\"']+")
_URI_PASS = re.compile(r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:@/\s]+):(?P<pw>[^@/\s]+)@")
_APP_KEY = re.compile(r"(?<![A-Fa-f0-9*])[A-Fa-f0-9]{35}(?P<tail>[A-Fa-f0-9]{5})(?![A-Fa-f0-9])")
_API_KEY = re.compile(r"(?<![A-Fa-f0-9*])[A-Fa-f0-9]{27}(?P<tail>[A-Fa-f0-9]{5})(?![A-Fa-f0-9])")
_DDRCM = re.compile(r"\bDDRCM_[A-Z0-9]+")
_BLOCK_INDICATOR = re.compile(r"^[|>][0-9+\-]*\s*(#.*)?$")


def redact_value(value: str) -> str:
    """Mask one secret value: hex API/APP keys keep their last 5 characters, anything else is
    replaced by :data:`MASK`.

    :param value: the secret.
    :returns: a string safe to show.
    """
    v = value.strip().strip("\"'")
    if re.fullmatch(r"[A-Fa-f0-9]{32}|[A-Fa-f0-9]{40}", v):
        return "*" * (len(v) - 5) + v[-5:]
    return MASK


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _redact_patterns(line: str) -> str:
    line = _PEM_INLINE.sub(
        lambda m: f"-----BEGIN {m['kind']}-----{MASK}-----END {m['kind']}-----", line
    )
    line = _BEARER_HEX.sub(lambda m: "Bearer " + "*" * 59 + m["tail"], line)
    line = _BEARER.sub("Bearer " + MASK, line)
    line = _URI_PASS.sub(lambda m: f"{m['pre']}:{MASK}@", line)
    line = _ASSIGN.sub(
        lambda m: f"{m['name']}={MASK}" if is_secret_key(m["name"]) else m.group(0), line
    )
    line = _GENERIC_PASS.sub(
        lambda m: f"{m['k']}{m['sep']}{MASK}" if m["v"] != MASK else m.group(0), line
    )
    line = _DDRCM.sub(MASK, line)
    line = _APP_KEY.sub(lambda m: "*" * 35 + m["tail"], line)
    return _API_KEY.sub(lambda m: "*" * 27 + m["tail"], line)


_DIFF_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@", re.MULTILINE)
_SECRET_KEY_ONLY = re.compile(
    r"""^(?P<lead>\s*(?:-\s+)?)["']?(?P<key>[^\s:"'#][^:"'#]*?)["']?\s*:\s*$"""
)


class _Redactor:
    """Line-by-line redaction with the little state YAML needs (block scalars, PEM bodies,
    ``name:``/``value:`` env pairs)."""

    def __init__(self) -> None:
        self.block_indent: int | None = None  # masking the lines of a block under a secret key
        self.in_pem = False
        self.pending_env: int | None = None  # column of `name: <SECRET>` awaiting its `value:`
        self.pending_left = 0

    def line(self, body: str) -> str:
        stripped = body.strip()
        if self.in_pem:
            end = _PEM_END.search(body)
            if end:
                self.in_pem = False
                return body[: _indent_of(body)] + end.group(0)
            return body[: _indent_of(body)] + (MASK if stripped else "")
        if self.block_indent is not None:
            if not stripped or _indent_of(body) > self.block_indent:
                return body[: _indent_of(body)] + (MASK if stripped else "")
            self.block_indent = None
        begin = _PEM_BEGIN.search(body)
        if begin and not _PEM_END.search(body, begin.end()):
            self.in_pem = True
            return body[: begin.end()]
        m = _KEY_LINE.match(body)
        if m and is_secret_key(m["key"]):
            value = m["value"]
            if _BLOCK_INDICATOR.match(value):
                self.block_indent = _indent_of(body)
                return body
            return f"{m['lead']}{m['q']}{m['key']}{m['q']}{m['sep']}{redact_value(value)}"
        k = _SECRET_KEY_ONLY.match(body) if m is None else None
        if k and is_secret_key(k["key"]):  # `api_key:` with the value on the following lines
            self.block_indent = _indent_of(body)
            return body
        n = _NAME_LINE.match(body)
        if n and is_secret_key(n["name"]):
            self.pending_env = len(n["lead"])
            self.pending_left = 3
            return body
        if self.pending_env is not None:
            v = _VALUE_LINE.match(body)
            if v and len(v["lead"]) == self.pending_env:
                self.pending_env = None
                return f"{v['lead']}value{v['sep']}{redact_value(v['value'])}"
            self.pending_left -= 1
            if self.pending_left <= 0:
                self.pending_env = None
        return _redact_patterns(body)


def redact_text(text: str) -> str:
    """Redact every secret in a text (a YAML document, a unified diff, a log line, output).

    Values of secret keys (see :func:`is_secret_key`) are masked, including block scalars under
    them and the ``value:`` that follows a ``name: DD_API_KEY`` entry in an env list; bare API and
    APP keys, ``Bearer`` tokens, URI passwords, ``KEY=value`` pairs with a secret name, PEM blocks
    and ``DDRCM_`` keys are masked wherever they appear. A unified diff is recognised by its
    ``@@`` lines and each side is read as its own document. The result has the same number of
    lines.

    >>> redact_text("api_key: 0123456789abcdef0123456789abcdef\\nsite: datadoghq.com\\n")
    'api_key: ***************************bcdef\\nsite: datadoghq.com\\n'

    :param text: any text.
    :returns: the text with secrets masked.
    """
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    if not _DIFF_HUNK.search(text):
        r = _Redactor()
        for raw in lines:
            body = raw.rstrip("\r\n")
            out.append(r.line(body) + raw[len(body) :])
        return "".join(out)
    old, new = _Redactor(), _Redactor()
    for raw in lines:
        body = raw.rstrip("\r\n")
        end = raw[len(body) :]
        marker, content = body[:1], body[1:]
        if body.startswith(("--- ", "+++ ", "@@ ", "\\")) or marker not in ("+", "-", " "):
            out.append(_redact_patterns(body) + end)
        elif marker == "-":
            out.append(marker + old.line(content) + end)
        elif marker == "+":
            out.append(marker + new.line(content) + end)
        else:  # context: both sides see it; show the more redacted reading
            a, b = old.line(content), new.line(content)
            out.append(marker + (a if a != content else b) + end)
    return "".join(out)
