"""Package attributes imported on first use (PEP 562), for wpprotect's packages.

Each package lists ``name -> defining module`` and takes its ``__getattr__`` and ``__dir__``
from :func:`attach`; so ``import wpprotect`` (or ``wpprotect.config``...) loads no backend, and
a name costs its import only when it is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

__all__ = ["attach"]


def attach(
    package: str,
    namespace: dict[str, Any],
    names: Mapping[str, str],
    public: Iterable[str],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose ``names`` load on first access.

    :param package: the package's ``__name__``, for the error message.
    :param namespace: the package's ``globals()``: a loaded name is stored there, so later
        lookups do not come back to ``__getattr__``.
    :param names: each lazy name and the module that defines it.
    :param public: the package's ``__all__``, listed by ``dir()`` before it is loaded.
    """
    listed = set(public)

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | listed)

    return __getattr__, __dir__
