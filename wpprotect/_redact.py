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

import bisect
import re
from collections.abc import Callable

__all__ = ["MASK", "is_secret_key", "redact_text", "redact_value", "secret_values"]

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
# Every pattern below runs in time linear in the line: a run of name characters is read once
# (each match starts only where such a run starts, and possessive quantifiers never backtrack
# into it); the spelling rules are then checked in Python on the run.
_NAME_RUN = re.compile(r"(?<![A-Za-z0-9_.\-])[A-Za-z0-9_.\-]++(?==)")
_ASSIGN_VALUE = re.compile(r"""="[^"]*+"|='[^']*+'|=[^\s,;&"']++""")
_WORD = re.compile(r"\w++")
_PASS_WORD = re.compile(r"pass|pswd|pwd", re.IGNORECASE)
_PASS_VALUE = re.compile(r"""(?P<sep>\s*+[=:]\s*+)(?P<v>[^\s,;"']++)""")
_WORD_CHARS = re.compile(r"\w")
_PEM_BEGIN_KIND = re.compile(r"-----BEGIN (?P<kind>[A-Z0-9 ]++)-----")
_PEM_END_KIND = re.compile(r"-----END (?P<kind>[A-Z0-9 ]++)-----")
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]+-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]+-----")
_BEARER_HEX = re.compile(r"\bBearer\s+[A-Fa-f0-9]{59}(?P<tail>[A-Fa-f0-9]{5})(?![A-Fa-f0-9])")
_BEARER = re.compile(r"\bBearer\s+(?!\*)[^\s\"']+")
_SCHEME_RUN = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z0-9+.\-]++(?=://)")
_USERINFO = re.compile(r"://[^:@/\s]++:(?P<pw>[^@/\s]++)@")
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


def _name_start(run: str, first: str) -> int:
    """Where a name starting with a ``first`` character (and at a word boundary) starts in
    ``run``, or -1: the leftmost start the former regexes' ``\\b[first][...]*`` would take."""
    for i, ch in enumerate(run):
        if ch in first and (i == 0 or not _WORD_CHARS.match(run[i - 1])):
            return i
    return -1


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


_Edit = Callable[[str, re.Match[str]], tuple[int, str, int] | None]


def _rewrite(line: str, runs: re.Pattern[str], edit: _Edit) -> str:
    """Rewrite ``line`` left to right in one pass (linear time: no backtracking pattern).

    For each match of ``runs`` that starts after the last rewrite, ``edit(line, match)`` gives
    ``(keep, text, resume)``: the line is kept up to ``keep``, ``text`` is put in, and the scan
    goes on from ``resume``; None leaves that match alone.
    """
    out: list[str] = []
    pos = 0
    for m in runs.finditer(line):
        if m.start() < pos:
            continue
        found = edit(line, m)
        if found is None:
            continue
        keep, text, resume = found
        out.append(line[pos:keep] + text)
        pos = resume
    return "".join(out) + line[pos:] if out else line


def _sub_pem(line: str) -> str:
    if "-----END " not in line:
        return line
    ends: dict[str, list[int]] = {}
    for m in _PEM_END_KIND.finditer(line):
        ends.setdefault(m["kind"], []).append(m.start())

    def edit(_line: str, m: re.Match[str]) -> tuple[int, str, int] | None:
        kind = m["kind"]
        at = bisect.bisect_left(ends.get(kind, []), m.end())
        if at == len(ends.get(kind, [])):
            return None
        end = ends[kind][at] + len(f"-----END {kind}-----")
        return m.start(), f"-----BEGIN {kind}-----{MASK}-----END {kind}-----", end

    return _rewrite(line, _PEM_BEGIN_KIND, edit)


def _uri_pass(line: str, m: re.Match[str]) -> tuple[int, str, int] | None:
    u = _USERINFO.match(line, m.end())
    if _name_start(m.group(0), _LETTERS) < 0 or u is None:
        return None
    return u.start("pw"), MASK + "@", u.end()


def _assign(line: str, m: re.Match[str]) -> tuple[int, str, int] | None:
    start = _name_start(m.group(0), _LETTERS + "_")
    v = _ASSIGN_VALUE.match(line, m.end())
    if start < 0 or v is None or not is_secret_key(m.group(0)[start:]):
        return None
    return m.end(), "=" + MASK, v.end()


def _generic_pass(line: str, m: re.Match[str]) -> tuple[int, str, int] | None:
    if not _PASS_WORD.search(m.group(0)):
        return None
    v = _PASS_VALUE.match(line, m.end())
    if v is None or v["v"] == MASK:
        return None
    return m.end(), v["sep"] + MASK, v.end()


def _redact_patterns(line: str) -> str:
    line = _sub_pem(line)
    line = _BEARER_HEX.sub(lambda m: "Bearer " + "*" * 59 + m["tail"], line)
    line = _BEARER.sub("Bearer " + MASK, line)
    line = _rewrite(line, _SCHEME_RUN, _uri_pass)
    line = _rewrite(line, _NAME_RUN, _assign)
    line = _rewrite(line, _WORD, _generic_pass)
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

    def __init__(self, *, pair_env: bool = True) -> None:
        self.pair_env = pair_env  # off when the document's structure already named its secrets
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
        n = _NAME_LINE.match(body) if self.pair_env else None
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


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def secret_values(data: object) -> frozenset[str]:
    """The secret values a parsed document holds, found from its structure, whatever its layout
    or format (JSON, block or flow YAML, keys in any order).

    A value is secret when its key is (see :func:`is_secret_key`), when it is the ``value`` of
    an env entry whose ``name`` is (``{name: DD_API_KEY, value: ...}``), or when it follows
    ``NAME=`` in a list item with a secret ``NAME``. Each container is visited once, so a
    document whose aliases repeat a node is walked in time linear in its text.

    >>> sorted(secret_values({"env": [{"value": "abc123", "name": "DD_AUTH_TOKEN"}]}))
    ['abc123']

    :param data: parsed JSON or YAML (dicts, lists, scalars).
    :returns: the secret values as strings.
    """
    found: set[str] = set()
    seen: set[int] = set()
    stack: list[object] = [data]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        if isinstance(node, dict):
            seen.add(id(node))
            name = node.get("name")
            if isinstance(name, str) and is_secret_key(name) and _is_scalar(node.get("value")):
                found.add(str(node["value"]))
            for key, value in node.items():
                if isinstance(key, str) and is_secret_key(key) and _is_scalar(value):
                    found.add(str(value))
                if isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            seen.add(id(node))
            for item in node:
                if isinstance(item, dict | list):
                    stack.append(item)
                elif isinstance(item, str) and "=" in item:
                    name, _, value = item.partition("=")
                    if is_secret_key(name):
                        found.add(value)
    found.discard("")
    found.discard(MASK)
    return frozenset(found)


def _secret_pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    """One pattern matching every secret as it may be written in a text: as is, JSON-escaped,
    and each line of a multi-line value."""
    import json

    forms: set[str] = set()
    for secret in secrets:
        forms.add(secret)
        forms.add(json.dumps(secret)[1:-1])
        forms.update(part.strip() for part in secret.splitlines())
    forms.discard("")
    if not forms:
        return None
    alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_])(?:{alternatives})(?![A-Za-z0-9_])")


def redact_text(text: str, *, secrets: frozenset[str] | None = None) -> str:
    """Redact every secret in a text (a YAML document, a unified diff, a log line, output).

    Values of secret keys (see :func:`is_secret_key`) are masked, including block scalars under
    them and the ``value:`` that follows a ``name: DD_API_KEY`` entry in an env list; bare API and
    APP keys, ``Bearer`` tokens, URI passwords, ``KEY=value`` pairs with a secret name, PEM blocks
    and ``DDRCM_`` keys are masked wherever they appear. A unified diff is recognised by its
    ``@@`` lines and each side is read as its own document. The result has the same number of
    lines. Every pattern runs in time linear in the length of a line.

    >>> redact_text("api_key: 0123456789abcdef0123456789abcdef\\nsite: datadoghq.com\\n")
    'api_key: ***************************bcdef\\nsite: datadoghq.com\\n'

    :param text: any text.
    :param secrets: the secret values of the document the text was made from (see
        :func:`secret_values`): given, each is masked wherever it appears, and env entries are
        known from the structure rather than guessed from the order of their lines.
    :returns: the text with secrets masked.
    """
    pair_env = secrets is None
    out_text = _redact_lines(text, pair_env=pair_env)
    pattern = None if secrets is None else _secret_pattern(secrets)
    if pattern is None:
        return out_text
    return pattern.sub(lambda m: redact_value(m.group(0)), out_text)


def _redact_lines(text: str, *, pair_env: bool) -> str:
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    if not _DIFF_HUNK.search(text):
        r = _Redactor(pair_env=pair_env)
        for raw in lines:
            body = raw.rstrip("\r\n")
            out.append(r.line(body) + raw[len(body) :])
        return "".join(out)
    old, new = _Redactor(pair_env=pair_env), _Redactor(pair_env=pair_env)
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
