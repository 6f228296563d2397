"""``tc:cluster``: the TC scan of every agent container's or agent pod's node, within a time
budget, reported per node and grouped by what was found.

Each node is read by wpprotect's read-only kernel reader run inside its agent's
``system-probe`` container (:meth:`BasePlatform.tc_scan`), and judged with the agent's own
version read on that node (the known Cilium race depends on it).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from wpprotect.doctor._context import Context
from wpprotect.doctor._report import Check
from wpprotect.errors import ExecTimeoutError, WPProtectError
from wpprotect.platforms import BasePlatform

__all__ = ["TC_CLUSTER_BUDGET", "check_tc_cluster"]

log = logging.getLogger(__name__)

#: Seconds the whole cluster scan may take in doctor (each node's read gets the same bound).
TC_CLUSTER_BUDGET = 60.0
_MAX_WORKERS = 64


def _scan_one(agent: BasePlatform, seconds: float) -> tuple[Any, str | None]:
    """The node's report and its agent's version (None when it cannot be read)."""
    report = agent.tc_scan(timeout=seconds)
    try:
        version: str | None = str(agent.version())
    except WPProtectError as exc:
        log.debug("agent version on %s: %s", agent.target, exc)
        version = None
    return report, version


def check_tc_cluster(ctx: Context) -> list[Check]:
    """``tc:cluster`` plus one ``tc:cluster:<group>`` per kind of outcome, listing its nodes."""
    agents = [a for a in ctx.agents if a.kind in ("docker", "kubernetes")]
    if not ctx.options.tc or not agents:
        return []
    from wpprotect.fleet import run_fleet
    from wpprotect.tc import TCFleetReport

    budget = max(TC_CLUSTER_BUDGET, ctx.options.timeout)

    def scan() -> Any:
        return run_fleet(agents, lambda a: _scan_one(a, budget), max_workers=_MAX_WORKERS)

    try:
        result = ctx.within(scan, "the TC scan of every node", seconds=budget + 5.0)
    except ExecTimeoutError as exc:
        return [Check("tc:cluster", "error", f"{exc} (nodes: {len(agents)})")]
    triples: list[tuple[str, str | None, Any]] = []
    versions: dict[str, str | None] = {}
    for agent, item in zip(agents, result.items, strict=True):
        if item.error is not None:
            triples.append((item.target, agent.node, item.error))
            continue
        report, version = item.value
        versions[item.target] = version
        triples.append((item.target, agent.node, report))
    kind = "kubernetes" if any(a.kind == "kubernetes" for a in agents) else "docker"
    fleet = TCFleetReport.from_results(triples, platform=kind, versions=versions)
    summary = fleet.summary()
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in fleet.rows:
        where = row.node or row.target
        if row.error is not None:
            groups[("error", row.error.split(":", 1)[0])].append(where)
        elif row.assessment is not None and not row.assessment.ok:
            codes = sorted({f.code for f in row.assessment.findings if f.needs_action})
            groups[("problem", ", ".join(codes))].append(where)
        else:
            groups[("ok", "clean")].append(where)
    hint = fleet.plan_hint()
    head_status = "ok" if fleet.ok else ("error" if not summary["with_findings"] else "problem")
    detail = (
        f"{summary['targets']} nodes scanned through their agents: "
        f"{summary['with_findings']} with findings, {summary['failed']} failed"
    )
    if fleet.recommended_classifier_priority is not None:
        detail += (
            f"; one classifier_priority for every node: {fleet.recommended_classifier_priority}"
        )
    checks = [
        Check(
            "tc:cluster",
            head_status,  # type: ignore[arg-type]
            detail,
            fix=hint if summary["with_findings"] and hint else None,
            data={"summary": summary},
        )
    ]
    for (status, what), nodes in sorted(groups.items()):
        checks.append(
            Check(
                f"tc:cluster:{what}",
                status,  # type: ignore[arg-type]
                f"{len(nodes)} node(s): {', '.join(sorted(nodes))}",
                data={"nodes": sorted(nodes)},
            )
        )
    return checks
