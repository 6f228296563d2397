"""The traffic-control check: classifiers that blind Workload Protection's network detection."""

from __future__ import annotations

import os

from wpprotect.config import CLASSIFIER_PRIORITY
from wpprotect.doctor._context import Context, restart_hint
from wpprotect.doctor._report import Check
from wpprotect.errors import WPProtectError
from wpprotect.tc import Assessment, TCInspector

__all__ = ["check_tc"]

_DISABLE_NETWORK = "`wpprotect disable --platform host --scope network --dry-run`"


def check_tc(ctx: Context) -> list[Check]:
    """``tc``: scan every network namespace and judge the programs against the classifier
    priority the agent uses (found by the settings checks; else the agent's default)."""
    if not ctx.options.tc:
        return [Check("tc", "skipped", "not checked (--no-tc)")]
    if os.geteuid() != 0:
        return [
            Check(
                "tc",
                "skipped",
                "reading traffic-control filters and BPF program info needs root "
                "(CAP_NET_ADMIN, CAP_BPF): run `sudo wpprotect doctor`",
            )
        ]
    # The priority the settings checks found (the host's, or the node's containerised
    # system-probe's), else the agent's default: assess() reads no file itself.
    priority = ctx.classifier_priority
    source = ctx.classifier_priority_source
    if priority is None:
        priority, source = int(CLASSIFIER_PRIORITY.default), "default"
    try:
        report = TCInspector(netns="all").scan()
        assessment = report.assess(priority, agent_version=ctx.host_version_text, source=source)
    except WPProtectError as exc:
        return [Check("tc", "error", f"the TC scan failed: {exc}")]
    findings = [f for f in assessment.findings if f.needs_action]
    data = {
        "programs": len(report.programs),
        "namespaces": len(report.namespaces),
        "assessment": assessment.to_dict(),
    }
    prio = f"classifier priority {assessment.classifier_priority}"
    if ctx.classifier_priority_source:
        prio += f" (from {ctx.classifier_priority_source})"
    if not findings:
        return [
            Check(
                "tc",
                "ok",
                f"{len(report.programs)} TC program(s) in {len(report.namespaces)} namespace(s); "
                f"nothing blinds network detection at {prio}",
                data=data,
            )
        ]
    codes: dict[str, int] = {}
    for f in findings:
        codes[f.code] = codes.get(f.code, 0) + 1
    detail = (
        f"{len(findings)} finding(s) at {prio}: "
        + ", ".join(f"{n} {c}" for c, n in codes.items())
        + f"; first: {findings[0].message} (all of them: `sudo wpprotect tc scan --netns all`)"
    )
    return [Check("tc", "problem", detail, fix=_tc_fix(ctx, assessment), data=data)]


def _tc_fix(ctx: Context, assessment: Assessment) -> str:
    rec = assessment.recommended_classifier_priority
    if rec is not None:
        target = (
            str(ctx.options.config_dir)
            if ctx.host_present
            else "<system-probe.yaml or values.yaml>"
        )
        how = (
            f"set the classifier priority to {rec}: python3 -c 'import wpprotect as wp; "
            f'wp.plan_classifier_priority("{target}", {rec}).apply()\' then {restart_hint}'
        )
        if assessment.fixable_by_priority:
            return how
        return how + f"; the other findings need network detection off: {_DISABLE_NETWORK}"
    fixes = [str(f.fix) for f in assessment.findings if f.needs_action and f.fix]
    if fixes:
        return fixes[0]
    return f"turn off network detection: {_DISABLE_NETWORK}"
