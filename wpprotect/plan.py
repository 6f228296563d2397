"""Plans: every write wpprotect makes is first a :class:`Plan` of :class:`Change` objects.

A plan can be shown (``diff()``), applied all-or-nothing (``apply()``), and undone (``undo()``).
Applying a plan whose changes are already satisfied changes nothing, so plans are idempotent.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from wpprotect.errors import PlanApplyError, PlanUndoError, PlanVerifyError, WPProtectError

__all__ = ["Change", "Plan", "PlanState"]

log = logging.getLogger(__name__)

PlanState = Literal["planned", "applied", "undone", "rolled-back"]


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
        """Put the target back as it was before :meth:`apply`."""
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

    @property
    def state(self) -> PlanState:
        """``planned``, ``applied``, ``undone`` or ``rolled-back`` (a failed apply)."""
        return self._state

    @property
    def applied_changes(self) -> tuple[Change, ...]:
        """The changes the last :meth:`apply` actually made (satisfied ones are skipped)."""
        return tuple(self._applied)

    def pending(self) -> list[Change]:
        """The changes that would do something if applied now."""
        return [c for c in self.changes if not c.is_satisfied()]

    def is_satisfied(self) -> bool:
        """True when applying the plan would change nothing."""
        return not self.pending()

    def diff(self) -> str:
        """The diffs of every change, in order, secrets redacted."""
        return "".join(_ensure_newline(c.diff()) for c in self.changes if c.diff())

    def apply(self) -> Plan:
        """Apply every pending change, verifying each; on any failure undo what was done.

        :raises PlanApplyError: a change failed; every change made before it was undone.
        :returns: this plan, for chaining.
        """
        self._applied = []
        for change in self.changes:
            try:
                if change.is_satisfied():
                    log.debug("already satisfied: %s", change.description)
                    continue
                log.info("applying: %s", change.description)
                change.apply()  # leaves the target as it was when it raises
                self._applied.append(change)
                change.verify()
            except Exception as exc:
                rollback_errors = self._rollback()
                self._state = "rolled-back"
                detail = f": {exc}" if isinstance(exc, WPProtectError) else f": {exc!r}"
                msg = f"could not apply {change.description!r}{detail}; rolled back"
                if rollback_errors:
                    msg += f" (rollback incomplete: {'; '.join(rollback_errors)})"
                raise PlanApplyError(msg, target=change.target) from exc
        self._state = "applied"
        return self

    def undo(self) -> Plan:
        """Undo the changes the last :meth:`apply` made, newest first.

        :raises PlanUndoError: the plan was not applied, or a change could not be undone.
        """
        if self._state != "applied":
            raise PlanUndoError(f"plan {self.title!r} is {self._state}, not applied")
        errors = self._rollback()
        if errors:
            raise PlanUndoError(f"undo incomplete: {'; '.join(errors)}")
        self._state = "undone"
        return self

    def _rollback(self) -> list[str]:
        errors: list[str] = []
        for change in reversed(self._applied):
            try:
                change.undo()
            except Exception as exc:  # keep undoing the rest, report them all
                log.error("could not undo %s: %s", change.description, exc)
                errors.append(f"{change.target}: {exc}")
        self._applied = []
        return errors

    def verify(self) -> None:
        """Check every change reads back as planned.

        :raises PlanVerifyError: some target is not in its planned state.
        """
        bad = [c.target for c in self.changes if not c.is_satisfied()]
        if bad:
            raise PlanVerifyError(f"not in the planned state: {', '.join(bad)}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: title, state, notes and each change with its diff."""
        return {
            "title": self.title,
            "state": self._state,
            "notes": list(self.notes),
            "changes": [
                {
                    "target": c.target,
                    "description": c.description,
                    "satisfied": c.is_satisfied(),
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


def _ensure_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
