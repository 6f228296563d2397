"""The traffic-control check: classifiers that blind Workload Protection's network detection."""

from __future__ import annotations

import os
from typing import Any

from wpprotect.config import CLASSIFIER_PRIORITY
from wpprotect.doctor._context import Context, restart_hint
from wpprotect.doctor._report import Check
from wpprotect.errors import WPProtectError
from wpprotect.tc import Assessment, TCInspector

__all__ = ["check_tc"]

_DISABLE_NETWORK = "`wpprotect disable --platform host --scope network --dry-run`"
_WATCH = "`sudo wpprotect tc watch --seconds 10`"


def _detection(ctx: Context) -> dict[str, Any]:
    """What the host's configuration says about network detection, as ``assess()`` takes it:
    only a value turned off explicitly (not the default), and only when no containerised
    system-probe (with its own configuration) shares the kernel."""
    if not ctx.host_present or ctx.container_priorities:
        return {}
    out: dict[str, Any] = {}
    sources: list[str] = []
    for key, value, source in (
        ("network_detection", ctx.network_enabled, ctx.network_enabled_source),
        ("workload_protection", ctx.cws_enabled, ctx.cws_enabled_source),
    ):
        if value is False and source and not source.startswith("default"):
            out[key] = False
            sources.append(source)
    if sources:
        out["detection_source"] = "; ".join(sources)
    return out


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
        assessment = report.assess(
            priority, agent_version=ctx.host_version_text, source=source, **_detection(ctx)
        )
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
                f"nothing blinds network detection at {prio} (statically: {_WATCH} measures "
                "whether Datadog's classifiers see the traffic)",
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


# Findings a classifier priority or disabling network detection does not address: each keeps
# its own fix, named by code.
_OWN_FIX = frozenset({"datadog-classifier-leftover", "netns-held-by-agent", "measured-blind"})


def _tc_fix(ctx: Context, assessment: Assessment) -> str:
    """The priority fix (or the disable) for the walk findings, then each other code's fix."""
    acting = [f for f in assessment.findings if f.needs_action]
    own: dict[str, str] = {}
    for f in acting:
        if f.code in _OWN_FIX and f.fix:
            own.setdefault(f.code, f"{f.code}: {f.fix}")
    rest = [f for f in acting if f.code not in _OWN_FIX]
    parts: list[str] = []
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
        if not all(f.recommended_classifier_priority is not None for f in rest):
            how += f"; the other findings need network detection off: {_DISABLE_NETWORK}"
        parts.append(how)
    elif rest:
        fixes = [str(f.fix) for f in rest if f.fix]
        parts.append(fixes[0] if fixes else f"turn off network detection: {_DISABLE_NETWORK}")
    parts += own.values()
    if not parts:
        return f"turn off network detection: {_DISABLE_NETWORK}"
    return "; ".join(parts)
