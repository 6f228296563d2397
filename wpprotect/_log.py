"""Loggers for the modules on the ``wpprotect tc scan`` path, with :mod:`logging` imported on
first use, and the CLI's logging set-up applied at that moment.

``import logging`` (with traceback, string, weakref...) costs ~4 ms, a few percent of a cold
whole-process ``tc scan`` that logs nothing. Those modules get their logger through :func:`get`;
the CLI calls :func:`defer_config` instead of ``logging.basicConfig`` for such commands, and the
set-up runs when (if ever) the first logger is asked for. Everything else uses ``logging``
directly.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import logging

__all__ = ["defer_config", "get"]

# (level, format) for logging.basicConfig, waiting for the first logger.
_pending: tuple[int, str] | None = None


def defer_config(level: int | None, fmt: str = "") -> None:
    """Run ``logging.basicConfig(level=level, format=fmt)`` when the first logger is got through
    :func:`get` (at once if :mod:`logging` is already imported). ``None`` cancels a pending one.
    """
    global _pending  # noqa: PLW0603 - one set-up per process, as basicConfig's own
    _pending = None if level is None else (level, fmt)
    if _pending is not None and "logging" in sys.modules:
        _apply()


def _apply() -> None:
    global _pending
    pending, _pending = _pending, None
    if pending is not None:
        import logging

        logging.basicConfig(level=pending[0], format=pending[1])


def get(name: str) -> logging.Logger:
    """``logging.getLogger(name)``, importing logging and applying a deferred set-up first."""
    import logging

    if _pending is not None:
        _apply()
    return logging.getLogger(name)
