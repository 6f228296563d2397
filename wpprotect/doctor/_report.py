"""What doctor reports: one :class:`Check` per thing looked at, gathered in a
:class:`DoctorReport`."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from wpprotect._jsonable import jsonable
from wpprotect._version import __version__

__all__ = ["CHECK_STATUSES", "Check", "CheckStatus", "DoctorReport"]

#: A check's outcome: ``ok``; ``problem`` (needs action, see the fix); ``skipped`` (could not or
#: was asked not to run, the detail says why); ``error`` (the check itself could not complete).
CheckStatus = Literal["ok", "problem", "skipped", "error"]
#: Every status a :class:`Check` can have, from best to worst for sorting and summaries.
CHECK_STATUSES: tuple[CheckStatus, ...] = ("ok", "skipped", "problem", "error")


def _to_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(value)


@attrs.frozen(repr=False)
class Check:
    """One thing doctor looked at, and what it found.

    :ivar name: a stable identifier (``host.install``, ``config.classifier_priority``,
        ``docker``, ``tc``, ``self-test:docker:datadog-agent``...).
    :ivar status: ``ok``, ``problem`` (something needs action: see :attr:`fix`), ``skipped``
        (could not or was asked not to run: :attr:`detail` says why) or ``error`` (the check
        itself failed: a daemon did not answer, a file could not be read).
    :ivar detail: what was found, in one or two sentences.
    :ivar fix: for a problem, the command or wpprotect call that fixes it; else ``None``.
    :ivar data: structured details (settings, findings, versions) for ``--json`` and notebooks.
    """

    name: str
    status: CheckStatus
    detail: str
    fix: str | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict, converter=_to_dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``name``, ``status``, ``detail``, ``fix``, ``data``."""
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
            "data": jsonable(self.data),
        }

    def __repr__(self) -> str:
        return f"<Check {self.name} {self.status}: {_shorten(self.detail, 60)}>"

    def _repr_html_(self) -> str:
        return _html_checks([self])


def _to_checks(value: Iterable[Check]) -> tuple[Check, ...]:
    return tuple(value)


@attrs.frozen(repr=False)
class DoctorReport:
    """Everything :func:`~wpprotect.doctor.diagnose` found, as a list of :class:`Check`.

    :ivar checks: in the order they were made (host, config, Docker, Kubernetes, TC, self-test).
    """

    checks: tuple[Check, ...] = attrs.field(converter=_to_checks)

    @property
    def problems(self) -> tuple[Check, ...]:
        """The checks that need action."""
        return tuple(c for c in self.checks if c.status == "problem")

    @property
    def errors(self) -> tuple[Check, ...]:
        """The checks that could not be completed."""
        return tuple(c for c in self.checks if c.status == "error")

    @property
    def ok(self) -> bool:
        """True when no check found a problem or failed."""
        return not self.problems and not self.errors

    @property
    def exit_status(self) -> int:
        """The CLI's exit status: 1 when a problem needs action, else 2 when a check could not
        be completed (an environment error), else 0."""
        if self.problems:
            return 1
        if self.errors:
            return 2
        return 0

    def counts(self) -> dict[str, int]:
        """How many checks have each status, e.g. ``{"ok": 5, "skipped": 2, ...}``."""
        return {s: sum(c.status == s for c in self.checks) for s in CHECK_STATUSES}

    def get(self, name: str) -> Check | None:
        """The check called ``name``, or ``None``."""
        return next((c for c in self.checks if c.name == name), None)

    def summary(self) -> str:
        """One line: the counts and the verdict."""
        n = self.counts()
        agents = self.get("agents")
        if self.problems:
            verdict = f"{len(self.problems)} problem(s) need action"
        elif self.errors:
            verdict = f"{len(self.errors)} check(s) could not be completed"
        elif agents is not None and agents.status == "skipped":
            verdict = "no Datadog Agent found, nothing wrong with what was checked"
        else:
            verdict = "nothing to do"
        return (
            f"{n['ok']} ok, {n['problem']} problem, {n['error']} error, {n['skipped']} skipped: "
            f"{verdict}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``wpprotect doctor --json`` document.

        Keys: ``schema`` (1), ``wpprotect_version``, ``exit_status``, ``summary`` (counts per
        status), ``checks`` (each ``name``/``status``/``detail``/``fix``/``data``).
        """
        return {
            "schema": 1,
            "wpprotect_version": __version__,
            "exit_status": self.exit_status,
            "summary": self.counts(),
            "checks": [c.to_dict() for c in self.checks],
        }

    def __repr__(self) -> str:
        return f"<DoctorReport {len(self.checks)} checks: {self.summary()}>"

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self.summary())}</p>" + _html_checks(self.checks)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _html_checks(checks: Iterable[Check]) -> str:
    colours = {"ok": "#2e7d32", "problem": "#b26a00", "error": "#c62828", "skipped": "#757575"}
    rows = "".join(
        f"<tr><td><code>{html.escape(c.name)}</code></td>"
        f"<td style='color:{colours[c.status]}'><b>{c.status}</b></td>"
        f"<td>{html.escape(c.detail)}</td>"
        f"<td>{'<code>' + html.escape(c.fix) + '</code>' if c.fix else ''}</td></tr>"
        for c in checks
    )
    return (
        "<table><thead><tr><th>check</th><th>status</th><th>detail</th><th>fix</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )
