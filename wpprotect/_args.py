"""Checking a public call's arguments where the call starts.

A value of the wrong type becomes an :class:`~wpprotect.errors.InvalidArgumentError` (a
:class:`ValueError` under :class:`~wpprotect.errors.WPProtectError`) that names the parameter,
rather than a ``TypeError`` or ``AttributeError`` from deep inside the library.
"""

from __future__ import annotations

import os
from pathlib import Path

from wpprotect.errors import InvalidArgumentError

__all__ = ["path_arg", "text_arg"]


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__


def path_arg(value: object, name: str) -> Path:
    """``value`` as a :class:`~pathlib.Path`.

    :param value: a ``str`` or ``os.PathLike[str]``, not empty.
    :param name: the parameter's name, for the message.
    :raises InvalidArgumentError: anything else (``None``, bytes, a number, ``""``, a NUL).
    """
    if isinstance(value, Path):
        text = str(value)
    elif isinstance(value, str):
        text = value
    elif isinstance(value, os.PathLike) and isinstance(os.fspath(value), str):
        text = os.fspath(value)
    else:
        raise InvalidArgumentError(
            f"{name} must be a path (str or os.PathLike), not {_kind(value)}"
        )
    if not text or "\x00" in text:
        raise InvalidArgumentError(f"{name} must be a non-empty path without NUL bytes")
    return Path(text)


def text_arg(value: object, name: str) -> str:
    """``value``, checked to be a ``str``.

    :raises InvalidArgumentError: anything else.
    """
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be a str, not {_kind(value)}")
    return value
