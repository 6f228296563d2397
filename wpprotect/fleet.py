"""Run one operation on many agents at once: bounded concurrency, one result per agent.

>>> from wpprotect.testing import FakePlatform
>>> agents = [FakePlatform(target=f"fake:{i}") for i in range(3)]
>>> result = run_fleet(agents, lambda p: p.target.upper(), max_workers=2)
>>> result.ok, result.values()
(True, ['FAKE:0', 'FAKE:1', 'FAKE:2'])
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Generic, TypeVar

import attrs

from wpprotect._deadline import Deadline, ambient
from wpprotect._jsonable import jsonable
from wpprotect.errors import InvalidArgumentError, WPProtectError

__all__ = ["FleetItem", "FleetResult", "run_fleet"]

log = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P")


#: Seconds a target may run past the fleet's deadline before it is abandoned (its own operation
#: normally stops at the deadline and reports why).
_ABANDON_GRACE = 2.0


def _target_of(item: object) -> str:
    target = getattr(item, "target", None)
    return target if isinstance(target, str) else str(item)


def _value_ok(value: object) -> bool:
    # A result that says it failed (e.g. SelfTestResult.ok is False) counts as failed.
    ok = getattr(value, "ok", True)
    return ok if isinstance(ok, bool) else True


@attrs.frozen
class FleetItem(Generic[T]):
    """The outcome on one target: its value, or the error it raised."""

    target: str
    value: T | None = None
    error: BaseException | None = attrs.field(default=None, eq=False)
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the operation returned and its value does not report a failure."""
        return self.error is None and _value_ok(self.value)

    @property
    def error_message(self) -> str | None:
        """``str(error)`` prefixed with its class name, or None."""
        if self.error is None:
            return None
        return f"{type(self.error).__name__}: {self.error}"

    def to_dict(self) -> dict[str, Any]:
        """``{"target", "ok", "value", "error", "duration"}`` (``value`` via its ``to_dict``)."""
        return {
            "target": self.target,
            "ok": self.ok,
            "value": jsonable(self.value, fallback=repr),
            "error": self.error_message,
            "duration": round(self.duration, 3),
        }


@attrs.frozen
class FleetResult(Generic[T]):
    """Every target's outcome, in the order the targets were given."""

    items: tuple[FleetItem[T], ...]
    peak_concurrency: int
    duration: float
    max_workers: int

    @property
    def ok(self) -> bool:
        """True when every target succeeded."""
        return all(i.ok for i in self.items)

    @property
    def succeeded(self) -> list[FleetItem[T]]:
        """The items that succeeded."""
        return [i for i in self.items if i.ok]

    @property
    def failed(self) -> list[FleetItem[T]]:
        """The items that raised or whose value reports a failure."""
        return [i for i in self.items if not i.ok]

    @property
    def errors(self) -> list[FleetItem[T]]:
        """The items whose operation raised."""
        return [i for i in self.items if i.error is not None]

    def values(self) -> list[T | None]:
        """Each target's value (None where it raised), in target order."""
        return [i.value for i in self.items]

    def counts(self) -> dict[str, int]:
        """``{"total", "ok", "failed", "errors"}``."""
        return {
            "total": len(self.items),
            "ok": len(self.succeeded),
            "failed": len(self.failed),
            "errors": len(self.errors),
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary and every item."""
        return {
            "ok": self.ok,
            "counts": self.counts(),
            "peak_concurrency": self.peak_concurrency,
            "max_workers": self.max_workers,
            "duration": round(self.duration, 3),
            "items": [i.to_dict() for i in self.items],
        }

    def table(self) -> str:
        """A plain-text table: target, status, detail."""
        rows = [("TARGET", "STATUS", "DETAIL")]
        for item in self.items:
            if item.error is not None:
                rows.append((item.target, "error", item.error_message or ""))
            elif not item.ok:
                rows.append((item.target, "failed", str(getattr(item.value, "error", "") or "")))
            else:
                rows.append((item.target, "ok", ""))
        widths = [max(len(r[c]) for r in rows) for c in range(2)]
        return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}".rstrip() for r in rows)

    def __repr__(self) -> str:
        c = self.counts()
        return f"<FleetResult {c['ok']}/{c['total']} ok, {c['failed']} failed>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(i.target)}</td>"
            f"<td style='color:{'green' if i.ok else 'red'}'>{'ok' if i.ok else 'failed'}</td>"
            f"<td>{html.escape(i.error_message or str(getattr(i.value, 'error', '') or ''))}</td>"
            "</tr>"
            for i in self.items
        )
        return (
            f"<p>{len(self.succeeded)}/{len(self.items)} ok</p><table><tr><th>target</th>"
            f"<th>status</th><th>detail</th></tr>{rows}</table>"
        )


def run_fleet(
    targets: Iterable[P],
    operation: Callable[[P], T],
    *,
    max_workers: int = 64,
    progress: Callable[[int, int, str], object] | None = None,
    timeout: float | None = None,
) -> FleetResult[T]:
    """Run ``operation`` on every target, at most ``max_workers`` at a time.

    One target's failure never stops the others: an exception becomes that target's ``error``
    (``KeyboardInterrupt`` and ``SystemExit`` still propagate).

    With ``timeout``, the whole run ends within it: wpprotect's operations started by
    ``operation`` (``self_test()``, ``flare()``...) take it as their own deadline (or their own
    ``timeout`` if shorter), a target not started in time is not started, and a target still
    running shortly after the deadline is abandoned with an :class:`~wpprotect.ExecTimeoutError`
    (its thread is left to finish; what it runs may still be running on the target).

    :param targets: platforms (or anything with a ``target`` label).
    :param operation: called once per target in a worker thread, e.g.
        ``lambda p: p.self_test()``.
    :param max_workers: the concurrency bound (threads).
    :param progress: called as ``progress(done, total, target)`` after each target finishes,
        from the calling thread.
    :param timeout: seconds for the whole run (``None``: no limit).
    :returns: one item per target, in the given order, with the peak concurrency reached.
    :raises InvalidArgumentError: ``max_workers`` is below 1, or ``timeout`` is not a positive
        number.
    """
    bound: object = max_workers
    if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1:
        raise InvalidArgumentError(f"max_workers must be a positive integer, got {max_workers!r}")
    limit: object = timeout
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int | float) or not limit > 0
    ):
        raise InvalidArgumentError(f"timeout must be a positive number of seconds, not {timeout!r}")
    deadline = Deadline(timeout, what="fleet operation")
    items: Sequence[P] = list(targets)
    total = len(items)
    results: list[FleetItem[T] | None] = [None] * total
    lock = threading.Lock()
    active = [0, 0]  # current, peak

    def run(index: int) -> FleetItem[T]:
        target = _target_of(items[index])
        with lock:
            active[0] += 1
            active[1] = max(active[1], active[0])
        started = time.monotonic()
        try:
            if deadline.expired:
                raise deadline.error(f"{target} not started")
            with ambient(deadline.remaining()):
                value = operation(items[index])
            return FleetItem(target, value, None, time.monotonic() - started)
        except Exception as exc:  # recorded per target: one failure never aborts the rest
            if not isinstance(exc, WPProtectError):
                log.warning("%s on %s raised %r", getattr(operation, "__name__", "op"), target, exc)
            return FleetItem(target, None, exc, time.monotonic() - started)
        finally:
            with lock:
                active[0] -= 1

    started = time.monotonic()
    workers = max(1, min(max_workers, total))
    done = 0
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wpprotect-fleet")
    abandoned = False
    try:
        futures: dict[Future[FleetItem[T]], int] = {pool.submit(run, i): i for i in range(total)}
        pending = set(futures)
        while pending:
            left = deadline.remaining()
            finished, pending = wait(
                pending,
                timeout=None if left is None else left + _ABANDON_GRACE,
                return_when=FIRST_COMPLETED,
            )
            if not finished:
                abandoned = True
                break
            for future in finished:
                item = future.result()
                results[futures[future]] = item
                done += 1
                if progress is not None:
                    progress(done, total, item.target)
        for future in pending:
            index = futures[future]
            target = _target_of(items[index])
            message = f"{target}: abandoned, still running; it may still run on the target"
            results[index] = FleetItem(
                target, None, deadline.error(message), time.monotonic() - started
            )
            done += 1
            if progress is not None:
                progress(done, total, target)
    finally:
        pool.shutdown(wait=not abandoned, cancel_futures=True)
    final = tuple(r for r in results if r is not None)
    return FleetResult(final, active[1], time.monotonic() - started, max_workers)
