"""The priority assessment: the finding table of ``docs/reference/contract.md#contract-findings``
applied to a list of :class:`TCProgram`.

Pure functions (no kernel access) except :func:`annotate_programs` with ``probe=True``.

Kernel facts relied on (``docs/reference/kernel-tc.md#tc-actions``, ``#tc-tcx``, ``#tc-vendors``;
checked on
Linux 6.18):

- clsact filters run in ascending priority; in direct-action mode ``TC_ACT_OK``, ``SHOT``,
  ``STOLEN``, ``TRAP`` and ``REDIRECT`` end classification, anything else continues
  (``net/sched/cls_bpf.c``, ``net/sched/cls_api.c``).
- tcx programs run before every clsact filter, which runs only if tcx answers ``TCX_NEXT``
  (``net/core/dev.c`` ``sch_handle_ingress``; ``include/net/tcx.h``).
- netkit programs run on the transmit path; ``NETKIT_PASS`` hands the packet to the other
  device's receive path (where its clsact ingress still runs), while ``DROP`` and ``REDIRECT``
  take it away (``drivers/net/netkit.c``). So only those (or an unknown verdict) bypass clsact.

Finding codes and when they are raised, per ``(netns, ifname, direction)``, with ``P`` the
Datadog classifier priority (default 10, ``runtime_security_config.network.classifier_priority``):

============================  ========  ===========================================================
code                          severity  when
============================  ========  ===========================================================
``network-blind``             error     a non-Datadog clsact bpf filter that stops the chain sits at
                                        priority 1 (no Datadog priority can run before it)
``lower-classifier-priority`` error     such a filter sits at priority 2..P-1
``priority-collision``        warning   such a filter sits at priority P (order within one priority
                                        is not stable)
``tcx-bypass``                error     a tcx program returning PASS/DROP/REDIRECT (or a netkit
                                        program returning DROP/REDIRECT) runs before every filter
``cilium-race``               warning   Cilium <= 1.9 with Agent 7.36 - 7.39.1 (both versions given)
``classifier-priority-        info      Datadog's own filter was seen at another priority than P
mismatch``
``unassessed-filter``         info      a non-bpf filter (u32, matchall...) at priority <= P
``tcx-unsupported``           info      the kernel rejected tcx queries (before Linux 6.6)
============================  ========  ===========================================================

A verdict that is not known (no vendor documentation, no probe) counts as stopping the chain; the
finding is then a ``warning`` and says it was assumed. No finding for filters that continue
(``TC_ACT_UNSPEC``), sit above ``P`` (e.g. Calico's automatic 49152), or are in a chain other
than 0.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable

import attrs

from wpprotect.errors import BPFError, InvalidArgumentError
from wpprotect.tc._model import Assessment, Basis, Finding, Severity, TCProgram
from wpprotect.tc._vendors import (
    DATADOG,
    VendorSignature,
    identify,
    resolve_verdict,
    signatures,
)
from wpprotect.tc._verdicts import stops_chain

log = logging.getLogger(__name__)

__all__ = [
    "CLASSIFIER_PRIORITY_ENV",
    "CLASSIFIER_PRIORITY_KEY",
    "DEFAULT_CLASSIFIER_PRIORITY",
    "annotate_programs",
    "assess",
    "check_priority",
    "cilium_race",
    "group_hooks",
    "parse_version",
]


DEFAULT_CLASSIFIER_PRIORITY = 10
"""The agent's default since 7.39.2 (DataDog/datadog-agent#13692; setup/system_probe.go)."""
CLASSIFIER_PRIORITY_KEY = "runtime_security_config.network.classifier_priority"
"""The system-probe.yaml key named in Datadog's troubleshooting checklist."""
CLASSIFIER_PRIORITY_ENV = "DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY"
"""The environment variable for the same setting."""

_DISABLE_FIX = (
    "disable network detection (runtime_security_config.network.enabled: false; "
    'wpprotect.plan_disable(target, scope="network") or `wpprotect disable --scope network`)'
)

HookKey = tuple[str, str, str]


def check_priority(value: object, what: str = "classifier_priority") -> int:
    """``value`` if it is a classifier priority (an integer in 1..65535).

    :raises InvalidArgumentError: it is not (callers pass user input: checked at run time too).
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 0xFFFF:
        raise InvalidArgumentError(f"{what} must be an integer in 1..65535, got {value!r}")
    return value


def parse_version(text: str, what: str = "version") -> tuple[int, int, int]:
    """Read ``"7.39.2"``, ``"v1.9"``, ``"7.39.1-rc.2"`` as ``(major, minor, patch)``.

    :param text: the version string.
    :param what: its name, for the error.
    :returns: three integers (missing parts are 0).
    :raises InvalidArgumentError: no leading ``N.N`` is found.
    """
    m = re.match(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if m is None:
        raise InvalidArgumentError(f"{what} {text!r} is not a version like 1.2.3")
    return int(m[1]), int(m[2]), int(m[3] or 0)


def cilium_race(agent_version: str, cilium_version: str) -> bool:
    """Whether the known Cilium/Agent filter race applies.

    Datadog's documentation: "Cilium 1.9 and lower with the Datadog Agent (version 7.36 to
    7.39.1, 7.39.2 excluded)" (DataDog/datadog-agent#13692, #13762).

    :param agent_version: the Datadog Agent version.
    :param cilium_version: the Cilium version.
    :returns: True when both are in the affected ranges.
    :raises InvalidArgumentError: a version is malformed.
    """
    agent = parse_version(agent_version, "agent_version")
    cilium = parse_version(cilium_version, "cilium_version")
    return cilium[:2] <= (1, 9) and (7, 36, 0) <= agent <= (7, 39, 1)


def _order(p: TCProgram) -> tuple[int, int, int]:
    if p.attach != "clsact":
        return (0, p.position if p.position is not None else 0, 0)
    # Same priority: cls_bpf runs the newest handle first; handles are not a reliable age, so
    # keep the dump order (Python's sort is stable).
    return (1, p.priority if p.priority is not None else 0, 0)


def group_hooks(programs: Iterable[TCProgram]) -> dict[HookKey, tuple[TCProgram, ...]]:
    """Group programs by ``(netns, ifname, direction)``, each group in run order.

    :param programs: the programs of a report.
    :returns: tcx/netkit programs first (by position), then clsact filters (by priority).
    """
    groups: dict[HookKey, list[TCProgram]] = defaultdict(list)
    for p in programs:
        groups[(p.netns, p.ifname, p.direction)].append(p)
    return {k: (v[0],) if len(v) == 1 else tuple(sorted(v, key=_order)) for k, v in groups.items()}


def annotate_programs(
    programs: Iterable[TCProgram], *, probe: bool = False
) -> tuple[TCProgram, ...]:
    """Fill ``vendor``, ``verdict`` and ``verdict_source`` from the vendor table (and probes).

    A program that already has a ``verdict_source`` keeps its verdict (only an ``unknown``
    vendor is filled in). With ``probe=True``,
    each program whose vendor has no documented verdict is run once on
    :func:`~wpprotect.tc._bpf.test_packet` (one test run per program id); if the run fails the
    verdict stays ``assumed``.

    :param programs: programs as read from the kernel.
    :param probe: test-run programs whose verdict is not documented (this runs them).
    :returns: the annotated programs, same order.
    :raises CapabilityError: probing needs CAP_BPF / CAP_SYS_ADMIN.
    """
    probed: dict[int, int | None] = {}
    table = signatures()
    sigs: dict[tuple[str, str | None], VendorSignature] = {}  # names repeat across devices
    out: list[TCProgram] = []
    for p in programs:
        if p.verdict_source is not None and p.vendor not in ("", "unknown"):
            out.append(p)  # vendor and verdict already decided (the scanner's rows): as is
            continue
        key = (p.name, p.prog_name)
        sig = sigs.get(key)
        if sig is None:
            sig = sigs[key] = identify(p.name, p.prog_name, table=table)
        vendor = sig.name if p.vendor in ("", "unknown") else p.vendor
        if p.verdict_source is not None:  # already decided (e.g. by the scanner's probe)
            out.append(p if vendor == p.vendor else attrs.evolve(p, vendor=vendor))
            continue
        code: int | None = None
        if probe and sig.documented_verdict is None and p.prog_id and p.kind == "bpf":
            if p.prog_id not in probed:
                from wpprotect.tc._bpf import probe_verdict  # ctypes: only when probing

                try:
                    probed[p.prog_id] = probe_verdict(p.prog_id)
                except BPFError as exc:
                    log.info("cannot test-run prog %s: %s", p.prog_id, exc)
                    probed[p.prog_id] = None
            code = probed[p.prog_id]
        verdict, source = resolve_verdict(sig, p.attach, code)
        out.append(attrs.evolve(p, vendor=vendor, verdict=verdict, verdict_source=source))
    return tuple(out)


def _stops(p: TCProgram) -> bool:
    if p.verdict is None:
        return True  # unknown: assumed to stop (the safe side for Datadog)
    if p.attach == "netkit":
        return p.verdict in ("drop", "redirect")
    if p.attach == "tcx":
        return stops_chain(p.verdict, "tcx")
    if p.direct_action is False:
        # Classic mode (man tc-bpf): 0 = no match, continue; anything else runs the actions,
        # which with none attached accept the packet.
        return p.verdict != "ok"
    return stops_chain(p.verdict, "clsact")


def _basis(p: TCProgram) -> Basis:
    return "assumed" if p.verdict_source is None else p.verdict_source


def _is_datadog(p: TCProgram) -> bool:
    return p.vendor == DATADOG.name


def _describe(p: TCProgram) -> str:
    label = p.name or p.prog_name or "?"
    prog = f" (prog {p.prog_id})" if p.prog_id is not None else ""
    return f"{p.vendor} {p.attach} program {label!r}{prog}"


def _verdict_words(p: TCProgram) -> str:
    if p.verdict is None:
        return (
            "its verdict is unknown and is assumed to stop the chain (scan with probe=True / "
            "--probe to test-run it)"
        )
    return f"it returns {p.verdict.upper()} ({p.verdict_source})"


def _vendor_fix(vendor: str, sigs: tuple[VendorSignature, ...]) -> str:
    for sig in sigs:
        if sig.name == vendor and sig.fix:
            return sig.fix
    return ""


class _Raw:
    """A finding before the node-wide recommendation is known (one per blocking program: a
    plain slotted record, as cheap to build as the assessment needs)."""

    __slots__ = ("code", "fix", "fixable", "message", "program", "severity")

    def __init__(  # noqa: PLR0917 - a record, built positionally
        self, code: str, severity: Severity, program: TCProgram | None, message: str,
        fix: str = "", fixable: bool = False,
    ) -> None:  # fmt: skip
        self.code = code
        self.severity = severity
        self.program = program
        self.message = message
        self.fix = fix
        self.fixable = fixable  # a lower classifier priority resolves it


def _hook_findings(
    programs: tuple[TCProgram, ...], prio: int, sigs: tuple[VendorSignature, ...]
) -> list[_Raw]:
    raws: list[_Raw] = []
    linked = [p for p in programs if p.attach in ("tcx", "netkit")]
    for p in linked:
        if _is_datadog(p) or not _stops(p):
            continue
        severity: Severity = "warning" if p.verdict is None else "error"
        if p.vendor == "cilium":
            vfix = (
                "run Cilium with enable-tcx=false (Helm bpf.enableTCX=false) and "
                "--bpf-filter-priority above Datadog's"
            )
        else:
            vfix = f"make {p.vendor} return NEXT or stop attaching with {p.attach}"
        raws.append(
            _Raw(
                "tcx-bypass",
                severity,
                p,
                f"{_describe(p)} at position {p.position} on {p.where} runs before every clsact "
                f"filter and {_verdict_words(p)}: Datadog's classifier never sees these packets, "
                "whatever its priority.",
                f"{vfix}; or {_DISABLE_FIX}",
            )
        )
        break  # later tcx programs, and every clsact filter, do not run after this one
    for p in programs:
        if p.attach != "clsact" or _is_datadog(p) or p.priority is None:
            continue
        if p.chain not in (None, 0):
            continue  # reached only through goto_chain, not in the path Datadog's filter is on
        if p.kind != "bpf":
            if p.priority <= prio:
                raws.append(
                    _Raw(
                        "unassessed-filter",
                        "info",
                        p,
                        f"{p.kind} filter at priority {p.priority} on {p.where} runs before "
                        "Datadog's classifier; its actions were not assessed.",
                    )
                )
            continue
        if not _stops(p) or p.priority > prio:
            continue
        assumed = p.verdict is None
        proto = "" if p.protocol == "all" else f" (protocol {p.protocol} only)"
        head = f"{_describe(p)} at priority {p.priority}{proto} on {p.where}: {_verdict_words(p)}"
        vfix = _vendor_fix(p.vendor, sigs)
        if p.priority == 1:
            raws.append(
                _Raw(
                    "network-blind",
                    "warning" if assumed else "error",
                    p,
                    f"{head}, so classification ends before Datadog's classifier (priority "
                    f"{prio}); no Datadog priority can run before priority 1: network detection "
                    "is blind there.",
                    (f"{vfix}; or " if vfix else "change the vendor's filter priority; or ")
                    + _DISABLE_FIX,
                )
            )
        elif p.priority < prio:
            raws.append(
                _Raw(
                    "lower-classifier-priority",
                    "warning" if assumed else "error",
                    p,
                    f"{head}, so classification ends before Datadog's classifier (priority "
                    f"{prio}).",
                    fixable=True,
                )
            )
        else:
            raws.append(
                _Raw(
                    "priority-collision",
                    "warning",
                    p,
                    f"{head}, and shares Datadog's priority {prio}: which one runs first is not "
                    "stable.",
                    fixable=True,
                )
            )
    return raws


def _priority_fix(value: int) -> str:
    return (
        f"set {CLASSIFIER_PRIORITY_KEY} to {value} (env {CLASSIFIER_PRIORITY_ENV}={value}; "
        f"wpprotect.plan_classifier_priority(target, {value}) or a platform's "
        f"set_classifier_priority({value}))"
    )


_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def assess(
    programs: Iterable[TCProgram],
    classifier_priority: int = DEFAULT_CLASSIFIER_PRIORITY,
    *,
    classifier_priority_source: str = "caller",
    tcx_supported: bool | None = None,
    agent_version: str | None = None,
    cilium_version: str | None = None,
) -> Assessment:
    """Apply the finding table (module docstring) to a node's programs.

    Programs without a ``verdict_source`` are first annotated from the vendor table (no probe).

    :param programs: every program of the node (all namespaces).
    :param classifier_priority: Datadog's classifier priority ``P``.
    :param classifier_priority_source: where ``P`` came from, reported back.
    :param tcx_supported: False adds a ``tcx-unsupported`` info finding.
    :param agent_version: the Datadog Agent version, for ``cilium-race``.
    :param cilium_version: the Cilium version, for ``cilium-race``.
    :returns: the findings, the node-wide recommended priority and per-namespace ones.
    :raises InvalidArgumentError: ``P`` outside 1..65535 or a malformed version.
    """
    prio = check_priority(classifier_priority, "classifier_priority")
    progs = annotate_programs(programs)
    hooks = group_hooks(progs)
    sigs = signatures()

    raws: list[_Raw] = []
    for key in sorted(hooks):
        raws.extend(_hook_findings(hooks[key], prio, sigs))

    # Datadog's own filters at another priority than the one judged against.
    seen: set[tuple[str, int]] = set()
    for p in progs:
        if _is_datadog(p) and p.attach == "clsact" and p.priority not in (None, prio):
            assert p.priority is not None  # noqa: S101 - narrowed above
            if (p.netns, p.priority) in seen:
                continue
            seen.add((p.netns, p.priority))
            raws.append(
                _Raw(
                    "classifier-priority-mismatch",
                    "info",
                    p,
                    f"Datadog's classifier {p.name!r} runs at priority {p.priority} in "
                    f"{p.netns}, not at {prio} ({classifier_priority_source}): the agent may not "
                    "have been restarted since the setting changed, or another value is in "
                    "effect.",
                )
            )

    # Node-wide and per-namespace recommendation: lowest blocking vendor priority - 1.
    fixable_prios = [
        r.program.priority
        for r in raws
        if r.fixable and r.program is not None and r.program.priority is not None
    ]
    recommended = min(fixable_prios) - 1 if fixable_prios else None
    per_ns: dict[str, int | None] = {p.netns: None for p in progs}
    for r in raws:
        if r.fixable and r.program is not None and r.program.priority is not None:
            cur = per_ns.get(r.program.netns)
            val = r.program.priority - 1
            per_ns[r.program.netns] = val if cur is None else min(cur, val)

    findings: list[Finding] = []
    priority_fix = _priority_fix(recommended) if recommended else ""
    for r in raws:
        rp = r.program
        fixed = r.fixable and bool(recommended)
        findings.append(
            Finding(
                code=r.code,
                severity=r.severity,
                netns=None if rp is None else rp.netns,
                ifname=None if rp is None else rp.ifname,
                direction=None if rp is None else rp.direction,
                vendor=None if rp is None else rp.vendor,
                vendor_priority=None if rp is None else rp.priority,
                classifier_priority=prio,
                recommended_classifier_priority=recommended if r.fixable else None,
                message=r.message,
                fix=priority_fix if fixed else r.fix,
                prog_id=None if rp is None else rp.prog_id,
                basis=None if rp is None else _basis(rp),
            )
        )

    for version, what in ((agent_version, "agent_version"), (cilium_version, "cilium_version")):
        if version is not None:
            parse_version(version, what)  # a malformed version is an error even alone
    if (
        agent_version is not None
        and cilium_version is not None
        and cilium_race(agent_version, cilium_version)
    ):
        findings.append(
            Finding(
                code="cilium-race",
                severity="warning",
                netns=None,
                ifname=None,
                direction=None,
                vendor="cilium",
                vendor_priority=None,
                classifier_priority=prio,
                recommended_classifier_priority=None,
                message=(
                    f"Cilium {cilium_version} with Agent {agent_version}: both may take "
                    "priority 1 / handle 1, and a new pod can lose all connectivity when the "
                    "agent stops its probe (DataDog/datadog-agent#13692)."
                ),
                fix=(
                    "upgrade the Agent to 7.39.2 or later (default classifier priority 10) "
                    f"or {_DISABLE_FIX}"
                ),
            )
        )

    if tcx_supported is False:
        findings.append(
            Finding(
                code="tcx-unsupported",
                severity="info",
                netns=None,
                ifname=None,
                direction=None,
                vendor=None,
                vendor_priority=None,
                classifier_priority=prio,
                recommended_classifier_priority=None,
                message="The kernel has no tcx (Linux < 6.6): only clsact filters were read.",
            )
        )

    findings.sort(key=lambda f: _SEVERITY_ORDER[f.severity])  # stable: hook order kept
    actionable = [f for f in findings if f.needs_action]
    fixable = bool(actionable) and all(
        f.recommended_classifier_priority is not None for f in actionable
    )
    return Assessment(
        findings=findings,
        classifier_priority=prio,
        classifier_priority_source=classifier_priority_source,
        recommended_classifier_priority=recommended,
        fixable_by_priority=fixable,
        recommendations=per_ns,
    )
