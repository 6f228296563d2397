"""Plans: every write wpprotect makes is first a :class:`Plan` of :class:`Change` objects.

A plan can be shown (``diff()``), applied all-or-nothing (``apply()``), and undone (``undo()``).
Applying a plan whose changes are already satisfied changes nothing, so plans are idempotent;
applying an applied plan again is a no-op.

Interrupts: while a plan is applied in the main thread, SIGTERM (if it would otherwise kill the
process outright) raises an exception like SIGINT does, so both roll the plan back before the
process goes on to stop; the rollback itself runs with SIGINT and SIGTERM deferred.
"""

from __future__ import annotations

import contextlib
import html
import inspect
import logging
import signal
import threading
from collections.abc import Iterable, Iterator, Sequence
from types import FrameType
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from wpprotect.errors import PlanApplyError, PlanUndoError, PlanVerifyError, WPProtectError

__all__ = ["Change", "Plan", "PlanState", "Terminated", "deferred_signals"]

log = logging.getLogger(__name__)

PlanState = Literal["planned", "applied", "undone", "rolled-back", "partially-applied"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(SystemExit):
    """SIGTERM arrived while a plan was being applied: raised so the plan can roll back, then
    left to end the process with status 143 (128 + SIGTERM), as the signal would have."""


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the duration of the block, then deliver them.

    A write and the record of that write (or a rollback) are kept together this way. Outside
    the main thread (where Python runs signal handlers) this does nothing.
    """
    if not _main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        caught.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


@contextlib.contextmanager
def _terminate_raises() -> Iterator[bool]:
    """Make SIGTERM raise :class:`Terminated` while the block runs, if its handler is the
    default (kill at once); yields whether it did."""
    if not _main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield False
        return

    def terminated(_signum: int, _frame: FrameType | None) -> None:
        raise Terminated(128 + signal.SIGTERM)

    signal.signal(signal.SIGTERM, terminated)
    try:
        yield True
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _change_list(items: Iterable[Change]) -> list[Change]:
    return list(items)


def _str_list(items: Iterable[str]) -> list[str]:
    return list(items)


@runtime_checkable
class Change(Protocol):
    """One write a plan makes: a file, a remote object, a container, a restart.

    Implementations keep whatever they need to undo themselves once applied.
    """

    @property
    def target(self) -> str:
        """What is changed: a file path, ``daemonset/datadog/datadog-agent``, a container name."""
        ...

    @property
    def description(self) -> str:
        """One line saying what the change does."""
        ...

    def diff(self) -> str:
        """A unified diff (or a readable description) of the change, secrets redacted."""
        ...

    def is_satisfied(self) -> bool:
        """True when the target is already in the planned state (applying would change nothing)."""
        ...

    def apply(self) -> None:
        """Make the change. Raise a :class:`~wpprotect.WPProtectError` and leave the target as
        it was if it cannot be made."""
        ...

    def verify(self) -> None:
        """Read the target back; raise :class:`~wpprotect.PlanVerifyError` if it is not in the
        planned state."""
        ...

    def undo(self) -> None:
        """Put the target back as it was before :meth:`apply`.

        Changes that can tell an edit made after :meth:`apply` also accept ``force=True`` and
        refuse to overwrite such an edit without it.
        """
        ...


@attrs.define(eq=False)
class Plan:
    """An ordered set of changes, applied all-or-nothing.

    >>> plan = Plan("nothing to do", [])
    >>> plan.diff()
    ''
    >>> plan.apply().state
    'applied'
    """

    title: str
    changes: Sequence[Change] = attrs.field(factory=list, converter=_change_list)
    notes: Sequence[str] = attrs.field(factory=list, converter=_str_list)
    _state: PlanState = attrs.field(default="planned", init=False)
    _applied: list[Change] = attrs.field(factory=list, init=False)
    # What each change's is_satisfied() last said (by id), so that data methods such as
    # to_dict() report it without reading a file or calling an API again.
    _checked: dict[int, bool] = attrs.field(factory=dict, init=False, repr=False)

    @property
    def state(self) -> PlanState:
        """``planned``, ``applied``, ``undone``, ``rolled-back`` (a failed or interrupted apply,
        every change undone) or ``partially-applied`` (the rollback or an undo could not undo
        everything: :attr:`applied_changes` lists what is still applied)."""
        return self._state

    @property
    def applied_changes(self) -> tuple[Change, ...]:
        """The changes applied and not undone (satisfied ones are skipped by :meth:`apply`)."""
        return tuple(self._applied)

    def pending(self) -> list[Change]:
        """The changes that would do something if applied now."""
        return [c for c in self.changes if not self._check(c)]

    def _check(self, change: Change) -> bool:
        found = self._checked[id(change)] = change.is_satisfied()
        return found

    def is_satisfied(self) -> bool:
        """True when applying the plan would change nothing."""
        return not self.pending()

    def diff(self) -> str:
        """The diffs of every change, in order, secrets redacted."""
        return "".join(_ensure_newline(c.diff()) for c in self.changes if c.diff())

    def apply(self) -> Plan:
        """Apply every pending change, verifying each; on any failure undo what was done.

        An interrupt (SIGINT, SIGTERM, any ``BaseException``) rolls back too and is then raised
        again. Applying an ``applied`` plan again does nothing.

        :raises PlanApplyError: a change failed; every change made before it was undone (else
            the state is ``partially-applied`` and the message lists what is left), or the plan
            is ``partially-applied`` (undo it first).
        :returns: this plan, for chaining.
        """
        if self._state == "applied":
            log.info("plan %r is already applied: nothing to do", self.title)
            return self
        if self._state == "partially-applied":
            raise PlanApplyError(
                f"plan {self.title!r} is partially applied "
                f"({', '.join(c.target for c in self._applied)}): undo() it first"
            )
        self._applied = []
        change: Change | None = None
        in_flight: Change | None = None
        with _terminate_raises():
            try:  # the loop itself is inside: an interrupt between two changes rolls back too
                for change in self.changes:
                    if self._check(change):
                        log.debug("already satisfied: %s", change.description)
                        continue
                    log.info("applying: %s", change.description)
                    in_flight = change
                    change.apply()  # leaves the target as it was when it raises
                    self._applied.append(change)
                    in_flight = None
                    change.verify()
                    self._checked[id(change)] = True
                self._state = "applied"
            except BaseException as exc:
                # No call before the inner try: a second interrupt arriving now (Python runs
                # signal handlers at calls and loops) is caught there and the rollback resumes.
                again: BaseException | None = None
                while True:
                    try:
                        errors = self._recover(None if isinstance(exc, Exception) else in_flight)
                        break
                    except (KeyboardInterrupt, SystemExit) as late:
                        again = late
                if again is not None:
                    raise again from exc
                if not isinstance(exc, Exception):
                    if errors:
                        log.error("rollback after an interrupt incomplete: %s", "; ".join(errors))
                    raise
                what = "the plan" if change is None else repr(change.description)
                detail = f": {exc}" if isinstance(exc, WPProtectError) else f": {exc!r}"
                msg = f"could not apply {what}{detail}; rolled back"
                if errors:
                    msg += f" (rollback incomplete: {'; '.join(errors)})"
                raise PlanApplyError(msg, target=None if change is None else change.target) from exc
        return self

    def undo(self, *, force: bool = False) -> Plan:
        """Undo the changes still applied, newest first.

        A file change refuses to overwrite a file that is no longer exactly what it wrote (an
        edit made since, or a link put in its place) unless ``force`` is true; what is
        overwritten then is kept as a backup.

        :param force: overwrite later edits (keeping a backup of them).
        :raises PlanUndoError: the plan is not applied, or a change could not be undone (the
            state is then ``partially-applied`` and :attr:`applied_changes` lists what is left).
        """
        if self._state not in ("applied", "partially-applied"):
            raise PlanUndoError(f"plan {self.title!r} is {self._state}, not applied")
        with deferred_signals():
            errors = self._rollback(force=force)
            if errors:
                self._state = "partially-applied"
                raise PlanUndoError(f"undo incomplete: {'; '.join(errors)}")
            self._state = "undone"
        return self

    def _recover(self, in_flight: Change | None) -> list[str]:
        """Roll back what was applied (and ``in_flight``, if it says it was made) with the
        signals held, and set the state; safe to call again if an interrupt cuts it short."""
        with deferred_signals():
            if (
                in_flight is not None
                and in_flight not in self._applied
                and _reports_applied(in_flight)
            ):
                self._applied.append(in_flight)
            errors = self._rollback()
            self._state = "partially-applied" if self._applied else "rolled-back"
        return errors

    def _rollback(self, *, force: bool = False) -> list[str]:
        self._checked.clear()  # what was satisfied may no longer be
        errors: list[str] = []
        for change in reversed(list(self._applied)):
            try:
                if force and "force" in inspect.signature(change.undo).parameters:
                    change.undo(force=True)  # type: ignore[call-arg]
                else:
                    change.undo()
            except Exception as exc:  # keep undoing the rest, report them all
                log.error("could not undo %s: %s", change.description, exc)
                errors.append(f"{change.target}: {exc}")
            else:
                self._applied.remove(change)
        return errors

    def verify(self) -> None:
        """Check every change reads back as planned.

        :raises PlanVerifyError: some target is not in its planned state.
        """
        bad = [c.target for c in self.changes if not self._check(c)]
        if bad:
            raise PlanVerifyError(f"not in the planned state: {', '.join(bad)}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: title, state, the targets still applied, notes and each
        change with its diff.

        Nothing is read to build it: each change's ``satisfied`` is what :meth:`is_satisfied`,
        :meth:`pending`, :meth:`apply` or :meth:`verify` last found, and null when the plan has
        not checked that change yet (or an undo or rollback made the last answer stale).
        """
        return {
            "title": self.title,
            "state": self._state,
            "applied_changes": [c.target for c in self._applied],
            "notes": list(self.notes),
            "changes": [
                {
                    "target": c.target,
                    "description": c.description,
                    "satisfied": self._checked.get(id(c)),
                    "diff": c.diff(),
                }
                for c in self.changes
            ],
        }

    def __repr__(self) -> str:
        return (
            f"<Plan {self.title!r} {self._state}: {len(self.changes)} change(s) on "
            f"{', '.join(sorted({c.target for c in self.changes})) or 'nothing'}>"
        )

    def _repr_html_(self) -> str:
        parts = [f"<h4>{html.escape(self.title)} <small>({self._state})</small></h4>"]
        for c in self.changes:
            parts.append(f"<p><b>{html.escape(c.target)}</b>: {html.escape(c.description)}</p>")
            diff = c.diff()
            if diff:
                parts.append(f"<pre>{html.escape(diff)}</pre>")
        if self.notes:
            items = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
            parts.append(f"<ul>{items}</ul>")
        return "".join(parts)


def _reports_applied(change: Change) -> bool:
    """Whether an interrupted change says it was made (``applied``); assumed so if it cannot
    tell, so the rollback tries to undo it."""
    applied = getattr(change, "applied", None)
    return True if applied is None else bool(applied)


def _ensure_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
