"""One TC report for a whole cluster: a row per node, what is blind where, and one fix for all.

:class:`TCFleetReport` is built from the per-node scans (``wp.run_fleet(k8s.agents(), lambda p:
p.tc_scan())``, or ``wpprotect tc scan --platform kubernetes``). Each node's report is judged
on its own (:meth:`TCReport.assess`); the fleet adds:

- a summary: targets, failed, with findings, and per finding code and per vendor the number of
  nodes concerned (``by_code``, ``by_vendor``);
- **one recommended classifier_priority for the whole cluster**: the lowest priority some node
  needs (each node's recommendation is its lowest blocking vendor priority minus one), so every
  node can take it; None when no node needs a change or when no priority >= 1 would do;
- the plan that applies it, as the call and the command to run.

A node that could not be scanned is a row with its error; it never hides the others. The JSON
shape is ``docs/reference/contract.md``'s fleet document.
"""

from __future__ import annotations

import html
import re
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from wpprotect.tc._model import Assessment, dumps, render_table
from wpprotect.tc._report import TCReport

__all__ = ["TCFleetReport", "TCFleetRow"]

_NODE_IN_TARGET = re.compile(r"\(([^()]+)\)$")


def _node_of(target: str) -> str | None:
    found = _NODE_IN_TARGET.search(target)
    return found.group(1) if found else None


@attrs.frozen
class TCFleetRow:
    """One target's outcome: its report and assessment, or the error that stopped it.

    :ivar target: the agent (``pod datadog/datadog-agent-x (node-1)``...).
    :ivar node: its node, when known.
    :ivar report: the scan (None when it failed).
    :ivar assessment: the report judged (None when it failed).
    :ivar error: what went wrong, as ``ErrorClass: message`` (None when it worked).
    """

    target: str
    node: str | None
    report: TCReport | None = None
    assessment: Assessment | None = None
    error: str | None = None

    @property
    def needs_action(self) -> bool:
        """True when the scan failed or a finding needs action."""
        return self.error is not None or (self.assessment is not None and not self.assessment.ok)

    def to_dict(self) -> dict[str, Any]:
        """``{"target", "node", "error", "report"}`` (a report as ``tc scan --json`` prints)."""
        return {
            "target": self.target,
            "node": self.node,
            "error": self.error,
            "report": None
            if self.report is None
            else self.report.to_dict(assessment=self.assessment),
        }


def _str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


@attrs.frozen
class TCFleetReport:
    """Every node's TC scan, a summary, and one classifier priority for the cluster.

    :ivar rows: one per target, in the order given.
    :ivar recommended_classifier_priority: the one priority that fixes every node whose
        findings a priority can fix (None: none needed, or none possible).
    :ivar platform: ``kubernetes`` or ``docker`` (the kind of the platforms scanned), for the
        printed plan.
    :ivar cli_options: the target options of the command that scanned (``--kubeconfig FILE``,
        ``--namespace NS``...), repeated in the printed ``wpprotect set-priority`` command so
        that it acts on the same cluster.
    """

    rows: tuple[TCFleetRow, ...]
    recommended_classifier_priority: int | None
    platform: str = "kubernetes"
    cli_options: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_str_tuple)

    @classmethod
    def from_results(
        cls,
        results: Iterable[tuple[str, str | None, TCReport | BaseException]],
        *,
        classifier_priority: int | None = None,
        platform: str = "kubernetes",
        assess: Mapping[str, Any] | None = None,
        versions: Mapping[str, str | None] | None = None,
    ) -> TCFleetReport:
        """Build it from ``(target, node, report or the exception raised)`` per target.

        :param classifier_priority: the priority to judge every node against (None: each
            report's own, else the default 10).
        :param assess: extra keywords for :meth:`TCReport.assess` (e.g. ``cilium_version``).
        :param versions: target → the agent's version there, for the known Cilium race
            (:meth:`TCReport.assess`'s ``agent_version``): read per node, as nodes in a
            rolling upgrade run different agents.
        """
        rows: list[TCFleetRow] = []
        for target, node, outcome in results:
            if isinstance(outcome, BaseException):
                rows.append(TCFleetRow(target, node, error=f"{type(outcome).__name__}: {outcome}"))
                continue
            extra = dict(assess or {})
            version = (versions or {}).get(target)
            if version:
                extra["agent_version"] = version
            assessment = outcome.assess(classifier_priority, **extra)
            rows.append(TCFleetRow(target, node, outcome, assessment))
        return cls(tuple(rows), _cluster_priority(rows), platform)

    @classmethod
    def from_fleet(
        cls,
        result: Any,
        *,
        classifier_priority: int | None = None,
        nodes: Mapping[str, str | None] | None = None,
        platform: str = "kubernetes",
    ) -> TCFleetReport:
        """Build it from a :class:`~wpprotect.fleet.FleetResult` of ``tc_scan()`` calls.

        :param nodes: target → node; by default read from the target label's ``(node)``.
        """
        triples: list[tuple[str, str | None, TCReport | BaseException]] = []
        for item in result.items:
            node = (nodes or {}).get(item.target) or _node_of(item.target)
            outcome = item.error if item.error is not None else item.value
            if not isinstance(outcome, TCReport | BaseException):
                outcome = TypeError(f"not a TCReport: {type(outcome).__name__}")
            triples.append((item.target, node, outcome))
        return cls.from_results(triples, classifier_priority=classifier_priority, platform=platform)

    # -- derived ---------------------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        """True when every node was scanned and none needs action."""
        return not any(r.needs_action for r in self.rows)

    @property
    def failed(self) -> list[TCFleetRow]:
        """The rows whose scan failed."""
        return [r for r in self.rows if r.error is not None]

    def summary(self) -> dict[str, Any]:
        """``{"targets", "failed", "with_findings", "by_code", "by_vendor", "blind_nodes"}``:
        counts of nodes (a node counts once per code and once per vendor)."""
        by_code: Counter[str] = Counter()
        by_vendor: Counter[str] = Counter()
        with_findings = 0
        blind: list[str] = []
        for row in self.rows:
            if row.assessment is None:
                continue
            acting = [f for f in row.assessment.findings if f.needs_action]
            if acting:
                with_findings += 1
            by_code.update({f.code for f in acting})
            by_vendor.update({f.vendor or "unknown" for f in acting})
            if any(f.severity == "error" for f in acting):
                blind.append(row.node or row.target)
        return {
            "targets": len(self.rows),
            "failed": len(self.failed),
            "with_findings": with_findings,
            "by_code": dict(sorted(by_code.items())),
            "by_vendor": dict(sorted(by_vendor.items())),
            "blind_nodes": blind,
            "recommended_classifier_priority": self.recommended_classifier_priority,
        }

    def plan_hint(self) -> str | None:
        """How to apply :attr:`recommended_classifier_priority`: the library call and the CLI
        command (``--dry-run`` first); None when there is nothing to apply."""
        n = self.recommended_classifier_priority
        if n is None:
            return None
        platform = "docker" if self.platform == "docker" else "kubernetes"
        command = shlex.join(
            ["wpprotect", "set-priority", str(n), "--platform", platform, *self.cli_options]
        )
        if platform == "docker":
            return f"box.set_classifier_priority({n})  |  {command} --dry-run"
        return (
            f"k8s.set_classifier_priority({n}) or wp.plan_classifier_priority('values.yaml', {n})"
            f"  |  {command} --dry-run"
        )

    def to_dict(self) -> dict[str, Any]:
        """The fleet document of ``tc scan --platform docker|kubernetes --json``."""
        summary = self.summary()
        summary["plan"] = self.plan_hint()
        return {"targets": [r.to_dict() for r in self.rows], "summary": summary}

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON."""
        return dumps(self.to_dict())

    def table(self) -> str:
        """One row per node: status, findings by code, its own recommendation; then the fix."""
        header = ("NODE", "TARGET", "STATUS", "FINDINGS", "RECOMMENDED")
        lines: list[tuple[object, ...]] = []
        for row in self.rows:
            if row.error is not None:
                lines.append((row.node or "-", row.target, "error", row.error, "-"))
                continue
            if row.assessment is None:  # pragma: no cover - a row has one or the other
                continue
            codes = Counter(f.code for f in row.assessment.findings if f.needs_action)
            text = ", ".join(f"{c} x{n}" for c, n in sorted(codes.items())) or "-"
            status = "ok" if row.assessment.ok else "action"
            rec = row.assessment.recommended_classifier_priority
            lines.append((row.node or "-", row.target, status, text, "-" if rec is None else rec))
        s = self.summary()
        out = [render_table(header, lines)]
        out.append(
            f"\n{s['targets']} nodes: {s['with_findings']} with findings, {s['failed']} failed"
        )
        if s["by_code"]:
            out.append("by code: " + ", ".join(f"{k} {v}" for k, v in s["by_code"].items()))
        if s["by_vendor"]:
            out.append("by vendor: " + ", ".join(f"{k} {v}" for k, v in s["by_vendor"].items()))
        hint = self.plan_hint()
        if hint is not None:
            out.append(
                f"one classifier_priority for every node: {self.recommended_classifier_priority}"
                f"\n  apply: {hint}"
            )
        elif s["with_findings"]:
            out.append("no single classifier_priority fixes these nodes (see each finding's fix)")
        return "\n".join(out)

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"<TCFleetReport {s['targets']} nodes, {s['with_findings']} with findings, "
            f"{s['failed']} failed, priority {self.recommended_classifier_priority}>"
        )

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.table())}</pre>"


def _cluster_priority(rows: Iterable[TCFleetRow]) -> int | None:
    """The lowest per-node recommendation: every node can take it (a lower priority runs
    Datadog's classifier earlier still); None when no node has one or it would be below 1."""
    wanted = [
        r.assessment.recommended_classifier_priority
        for r in rows
        if r.assessment is not None and r.assessment.recommended_classifier_priority is not None
    ]
    if not wanted:
        return None
    lowest = min(wanted)
    return lowest if lowest >= 1 else None
