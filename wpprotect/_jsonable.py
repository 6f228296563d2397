"""Plain JSON values from wpprotect's results (one converter for the library and the CLI)."""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["jsonable"]


def jsonable(value: Any, *, fallback: Callable[[Any], Any] | None = str) -> Any:
    """``value`` converted to JSON types.

    Objects with a ``to_dict()`` (every wpprotect result) go through it; mappings get string
    keys; paths become strings, enums their value; sets are sorted into lists, tuples become
    lists. Anything else is passed to ``fallback`` (``str`` by default).

    >>> jsonable({"a": (1, {2}), "b": None})
    {'a': [1, [2]], 'b': None}

    :param value: what to convert.
    :param fallback: how to render an unknown type; None raises ``TypeError`` instead.
    :raises TypeError: an unknown type and no fallback.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict(), fallback=fallback)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, fallback=fallback) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value, fallback=fallback)
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [jsonable(v, fallback=fallback) for v in items]
    if fallback is None:
        raise TypeError(f"cannot render {type(value).__name__} as JSON")
    return fallback(value)
