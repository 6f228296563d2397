"""The capabilities TC inspection needs, read from ``/proc/self/status`` (no ctypes, no attrs:
checked before a scan forks its reader).

:mod:`wpprotect.tc._bpf` re-exports :data:`CAPABILITIES`, :func:`capabilities` and
:func:`require`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from wpprotect.errors import CapabilityError, InvalidArgumentError

if TYPE_CHECKING:
    from typing import Final

__all__ = ["CAPABILITIES", "capabilities", "require"]

CAPABILITIES: Final = {
    "CAP_NET_ADMIN": 12,
    "CAP_SYS_ADMIN": 21,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
}
"""The capabilities TC inspection cares about, by bit number (include/uapi/linux/capability.h)."""


def capabilities(status_text: str | None = None) -> set[str]:
    """The effective capabilities (among :data:`CAPABILITIES`) of this process.

    :param status_text: the text of a ``/proc/<pid>/status`` file; read from ``/proc/self``
        when None.
    :returns: the names held, e.g. ``{"CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_BPF", ...}``.
    :raises CapabilityError: the ``CapEff`` line is missing or malformed.
    """
    if status_text is None:
        # open(), not pathlib: the scan path never imports pathlib (start-up time).
        with open("/proc/self/status", encoding="utf-8") as f:
            status_text = f.read()
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            try:
                mask = int(line.split(":", 1)[1].strip(), 16)
            except ValueError as exc:
                raise CapabilityError(f"unreadable CapEff line {line!r}") from exc
            return {name for name, bit in CAPABILITIES.items() if mask >> bit & 1}
    raise CapabilityError("no CapEff line in the process status")


def require(*caps: str, held: Iterable[str] | None = None) -> None:
    """Raise unless every named capability is held.

    ``CAP_BPF`` is also satisfied by ``CAP_SYS_ADMIN`` (kernels before 5.8 know only the latter).

    :param caps: names from :data:`CAPABILITIES`.
    :param held: the capabilities to check against (default: :func:`capabilities`).
    :raises InvalidArgumentError: a name is not in :data:`CAPABILITIES`.
    :raises CapabilityError: naming the first missing capability.
    """
    for cap in caps:
        if cap not in CAPABILITIES:
            raise InvalidArgumentError(f"unknown capability {cap!r}; known: {sorted(CAPABILITIES)}")
    have = capabilities() if held is None else set(held)
    for cap in caps:
        if cap in have or (cap in ("CAP_BPF", "CAP_PERFMON") and "CAP_SYS_ADMIN" in have):
            continue
        raise CapabilityError(f"{cap} is missing (run as root or grant {cap})")
