"""Validation of user input that goes into agent commands and uploads (before anything runs)."""

from __future__ import annotations

import re

from wpprotect.errors import InvalidArgumentError

__all__ = ["validate_api_key", "validate_case_id", "validate_email", "validate_site"]

_CASE_RE = re.compile(r"[0-9]{1,20}")
# A conservative subset of RFC 5322: what support addresses look like, nothing a flag parser,
# a shell or a header could misread (no leading '-', no spaces, quotes or control characters).
_EMAIL_RE = re.compile(
    r"[A-Za-z0-9_+%][A-Za-z0-9._%+\-]{0,63}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)+"
)
_SITE_RE = re.compile(
    r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?)+"
)
_KEY_RE = re.compile(r"[\x21-\x7e]{1,256}")


def validate_case_id(case_id: str | int | None) -> str | None:
    """A support case ID: digits only (the agent's positional ``caseID``), or None.

    :raises InvalidArgumentError: anything else, e.g. ``"1; rm -rf /"`` or ``"-s"``.
    """
    if case_id is None:
        return None
    value: object = case_id
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidArgumentError(f"case ID must be digits, not a {type(value).__name__}")
    text = str(value)
    if not _CASE_RE.fullmatch(text):
        raise InvalidArgumentError(
            f"case ID must be 1 to 20 digits, got {text[:40]!r}", key="case_id"
        )
    return text


def validate_email(email: str | None) -> str | None:
    """An email address for the flare (``-e``), or None.

    :raises InvalidArgumentError: not a plain ``local@domain.tld`` address.
    """
    if email is None:
        return None
    value: object = email
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL_RE.fullmatch(value):
        shown = value[:60] if isinstance(value, str) else type(value).__name__
        raise InvalidArgumentError(f"not a valid email address: {shown!r}", key="email")
    return email


def validate_site(site: str) -> str:
    """A Datadog site such as ``datadoghq.com`` or ``us3.datadoghq.com``.

    :raises InvalidArgumentError: not a plain lower-case DNS name.
    """
    value: object = site
    if not isinstance(value, str) or not _SITE_RE.fullmatch(value):
        raise InvalidArgumentError(f"not a valid Datadog site: {str(site)[:60]!r}", key="site")
    return site


def validate_api_key(api_key: str) -> str:
    """An API key: 1-256 printable ASCII characters with no spaces (it goes into a header).

    :raises InvalidArgumentError: empty or unusable; the message never shows the key.
    """
    value: object = api_key
    if not isinstance(value, str) or not _KEY_RE.fullmatch(value):
        raise InvalidArgumentError(
            "API key must be 1-256 printable characters without spaces", key="api_key"
        )
    return api_key
