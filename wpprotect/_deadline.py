"""One deadline per operation: a caller's ``timeout`` bounds the whole operation (version read,
the command, the status read...), not each call inside it.

>>> d = Deadline(10.0, what="self-test")
>>> 0 < d.budget(cap=30.0) <= 10.0
True
>>> Deadline(None, what="flare").budget(cap=30.0)
30.0

An operation started inside :func:`ambient` (``run_fleet(..., timeout=)`` does this in each
worker) gets the tighter of its own timeout and the ambient deadline.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

from wpprotect.errors import ExecTimeoutError

__all__ = ["Deadline", "ambient"]

_AMBIENT: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "wpprotect_deadline", default=None
)


@contextlib.contextmanager
def ambient(timeout: float | None) -> Iterator[None]:
    """Within the block, every :class:`Deadline` ends no later than ``timeout`` seconds from now
    (an outer ambient deadline that ends sooner still holds)."""
    if timeout is None:
        yield
        return
    end = time.monotonic() + timeout
    outer = _AMBIENT.get()
    token = _AMBIENT.set(end if outer is None else min(outer, end))
    try:
        yield
    finally:
        _AMBIENT.reset(token)


class Deadline:
    """The end of one operation that was given ``timeout`` seconds (``None``: no limit).

    :param timeout: seconds for the whole operation.
    :param what: the operation's name, for error messages (``"self-test"``).
    :param target: the platform target, for error messages.
    """

    def __init__(self, timeout: float | None, *, what: str, target: str | None = None) -> None:
        self.timeout = timeout
        self.what = what
        self.target = target
        now = time.monotonic()
        end = None if timeout is None else now + timeout
        outer = _AMBIENT.get()
        if outer is not None and (end is None or outer < end):
            end = outer
            self.timeout = max(outer - now, 0.0)
        self.end = end

    def remaining(self) -> float | None:
        """Seconds left (``0.0`` once past), or ``None`` without a limit."""
        if self.end is None:
            return None
        return max(self.end - time.monotonic(), 0.0)

    @property
    def expired(self) -> bool:
        """True once the deadline has passed."""
        left = self.remaining()
        return left is not None and left <= 0.0

    def budget(self, *, cap: float | None = None, step: str = "") -> float | None:
        """The timeout to give the next call: what is left, at most ``cap``.

        :raises ExecTimeoutError: nothing is left (``step`` names what was about to run).
        """
        left = self.remaining()
        if left is not None and left <= 0.0:
            raise self.error(step)
        if cap is None:
            return left
        return cap if left is None else min(cap, left)

    def error(self, step: str = "") -> ExecTimeoutError:
        """The error for an operation that ran out of time (``step``: where it was)."""
        limit = f"{self.timeout:g} s " if self.timeout is not None else ""
        where = f" ({step})" if step else ""
        return ExecTimeoutError(
            f"{self.what} ran past its {limit}timeout{where}", target=self.target
        )

    def __repr__(self) -> str:
        left = self.remaining()
        return f"<Deadline {self.what}: {'no limit' if left is None else f'{left:.1f} s left'}>"
