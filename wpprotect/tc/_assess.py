"""The priority assessment: the finding table of ``docs/reference/contract.md#contract-findings``
applied to a list of :class:`TCProgram`.

Pure functions (no kernel access) except :func:`annotate_programs` with ``probe=True``.

Kernel facts relied on (``docs/reference/kernel-tc.md#tc-walk`` and ``#tc-tcx``, checked with
real packets by ``tests/tc_truth``):

- clsact filters run in ascending priority (chain 0 first; the dump order is the run order within
  one priority). A direct-action ``bpf`` filter ends the walk with OK, SHOT, STOLEN, TRAP or
  REDIRECT, anything else continues. Any other filter (or a ``bpf`` filter not in direct-action
  mode that matches: it returns something other than 0) runs its actions: the first that is not
  PIPE decides (none: OK); UNSPEC (tc's ``continue``) goes on, ``goto chain`` leaves chain 0,
  anything else ends the walk. A u32 key without flowid or actions is not terminal.
- A filter's protocol limits the traffic it sees; a u32/flower match, the packets it decides;
  ``skip_sw`` filters are not on the software path.
- tcx programs run before every clsact filter; the tcx walk stops at the first program that does
  not return NEXT, and only PASS, DROP and REDIRECT then skip clsact (``include/net/tcx.h``).
- netkit: each device runs its own programs when it transmits (``drivers/net/netkit.c``): PEER
  programs (the pod's transmit) run before the primary's ingress hooks and only PASS/NEXT hand the
  packet on; PRIMARY programs run after the primary's egress hooks.

Finding codes and when they are raised, per ``(netns, ifname, direction)``, with ``P`` Datadog's
priority on that hook: its filter as attached there, else the configured one (default 10,
``runtime_security_config.network.classifier_priority``):

================================  ========  =======================================================
code                              severity  when
================================  ========  =======================================================
``network-blind``                 error     a non-Datadog filter that ends the walk sits at
                                            priority 1 (no Datadog priority can run before it)
``lower-classifier-priority``     error     such a filter sits at priority 2..P-1
``priority-collision``            warning   such a filter sits at priority P, ahead of Datadog's
``tcx-bypass``                    error     a tcx program returning PASS/DROP/REDIRECT (or a netkit
                                            peer program not passing the packet on) runs first
``datadog-classifier-missing``    warning   Datadog's classifiers are elsewhere in the namespace
                                            (or network detection is on) but not on this hook
``priority-unavailable``          warning   Datadog is not attached on this hook and P is held by
                                            a filter of another kind or protocol
``datadog-classifier-leftover``   warning   the caller says network detection (or Workload
                                            Protection) is off, yet Datadog's classifier is here
                                            (then no walk finding is raised: nothing to blind)
``netns-held-by-agent``           warning   only a Datadog agent's open descriptor keeps a
                                            namespace alive (from the report's holders)
``cilium-race``                   warning   Cilium <= 1.9 with Agent 7.36 - 7.39.1 (both versions)
``classifier-priority-mismatch``  info      Datadog's own filter was seen at another priority than
                                            the configured one
``tcx-unsupported``               info      the kernel rejected tcx queries (before Linux 6.6)
================================  ========  =======================================================

A verdict that is not known (no vendor documentation, no probe, an action that cannot be read
statically) counts as ending the walk; the finding is then a ``warning`` (so is one that holds for
matching traffic only, or a protocol). Errors and warnings covering all traffic of a hook end its
walk: filters after them are not reported (the kernel never runs them).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable

import attrs

from wpprotect.errors import BPFError, InvalidArgumentError
from wpprotect.tc._model import (
    Assessment,
    Basis,
    DeviceInfo,
    Finding,
    NamespaceInfo,
    Severity,
    TCProgram,
    protocol_classes,
)
from wpprotect.tc._vendors import (
    DATADOG,
    VendorSignature,
    identify,
    resolve_verdict,
    signatures,
)
from wpprotect.tc._verdicts import probe_summary, stops_chain, verdict_name

log = logging.getLogger(__name__)

__all__ = [
    "AGENT_HOLDER_MARK",
    "CLASSIFIER_PRIORITY_ENV",
    "CLASSIFIER_PRIORITY_KEY",
    "DEFAULT_CLASSIFIER_PRIORITY",
    "annotate_programs",
    "assess",
    "check_priority",
    "cilium_race",
    "group_hooks",
    "held_by_agent_findings",
    "leftover_findings",
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
    # The run order on one hook: netkit PEER programs (the peer's transmit, before the primary's
    # receive hooks), tcx, clsact by priority, then netkit PRIMARY programs (the primary's own
    # transmit, after its egress hooks). Same priority: the dump order is the run order (cls_bpf
    # runs the newest first and dumps it first), and Python's sort is stable.
    if p.attach == "netkit":
        return (-1 if p.direction == "ingress" else 2, p.position or 0, 0)
    if p.attach != "clsact":
        return (0, p.position if p.position is not None else 0, 0)
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
    vendor is filled in). With ``probe=True``, each ``bpf`` program but Datadog's own, documented
    vendors' too, is test-run once per traffic class it sees
    (:func:`~wpprotect.tc._bpf.probe_classes`, in its direction, on no particular device: a
    :class:`~wpprotect.tc.TCInspector` scan gives the device too); the probe wins over a
    documented verdict and fills ``probes``. If the run fails the verdict stays as documented,
    or ``assumed``.

    :param programs: programs as read from the kernel.
    :param probe: test-run the programs (this runs them).
    :returns: the annotated programs, same order.
    :raises CapabilityError: probing needs CAP_BPF / CAP_SYS_ADMIN.
    """
    probed: dict[tuple[int, str, str, str], dict[str, int] | None] = {}
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
        verdict, source = resolve_verdict(sig, p.attach, None)
        classes = protocol_classes(p.protocol)
        if probe and sig is not DATADOG and p.prog_id and p.kind == "bpf" and classes:
            pkey = (p.prog_id, p.attach, p.direction, p.protocol)
            if pkey not in probed:
                from wpprotect.tc._bpf import probe_classes  # ctypes: only when probing

                direction = "egress" if p.attach == "netkit" else p.direction
                try:
                    probed[pkey] = dict(
                        probe_classes(p.prog_id, direction=direction, classes=classes)
                    )
                except BPFError as exc:
                    log.info("cannot test-run prog %s: %s", p.prog_id, exc)
                    probed[pkey] = None
            codes = probed[pkey]
            if codes:
                probes, verdict = probe_summary(codes, p.attach, p.direct_action)
                out.append(
                    attrs.evolve(
                        p, vendor=vendor, verdict=verdict, verdict_source="probed", probes=probes
                    )
                )
                continue
        out.append(attrs.evolve(p, vendor=vendor, verdict=verdict, verdict_source=source))
    return tuple(out)


def _stops(p: TCProgram) -> bool:
    """Whether a tcx/netkit program, or a clsact filter, ends the walk for what it matches."""
    if p.attach in ("tcx", "netkit"):
        return _linked_effect(p) != "continue"
    return _clsact_effect(p)[0] != "continue"


_TRAFFIC = {"all": None, "ip": "ipv4", "ipv6": "ipv6", "arp": "arp"}
_RACING_VENDORS = frozenset({"cilium", "aws-network-policy"})


def _traffic(protocol: str) -> str | None:
    """The traffic class a filter's protocol limits it to (None: all traffic)."""
    return _TRAFFIC.get(protocol, protocol)


def _linked_effect(p: TCProgram) -> str:
    """What a tcx or netkit program does to the hooks after it.

    ``continue`` (NEXT: the next program runs), ``handover`` (the program walk ends, the clsact
    filters still run), ``bypass`` (nothing after it on the device runs) or ``assumed`` (verdict
    unknown: counted as bypass). docs/reference/kernel-tc.md#tc-tcx
    """
    return _verdict_effect(p.attach, p.verdict)


def _verdict_effect(attach: str, v: str | None) -> str:
    """:func:`_linked_effect` of one verdict on a tcx or netkit hook."""
    if v is None:
        return "assumed"
    if v == "next":
        return "continue"
    if attach == "tcx":
        # tcx_action_code(): only PASS, DROP and REDIRECT are kept; any other value ends the
        # tcx walk and then acts as NEXT (include/net/tcx.h).
        return "bypass" if v in ("pass", "drop", "redirect") else "handover"
    # netkit_xmit(): NEXT and PASS hand the packet to the other device's receive path (its
    # hooks run); REDIRECT, DROP and any other value take it away (drivers/net/netkit.c).
    return "handover" if v == "pass" else "bypass"


def _continues(verdict: str | None) -> bool:
    return verdict == "unspec"


def _clsact_effect(p: TCProgram) -> tuple[str, str]:
    """What a clsact filter does to the filters after it, for the traffic it matches.

    :returns: ``(effect, why)``: effect ``continue``, ``stop``, ``leave`` (a goto chain leaves
        chain 0) or ``assumed`` (not known statically: counted as stop).
        docs/reference/kernel-tc.md#tc-walk
    """
    if "skip_sw" in p.hw_flags:
        return "continue", "it is offloaded only (skip_sw): not on the software path"
    av = p.action_verdict
    if p.kind == "bpf" and p.direct_action is not False:
        if p.verdict is None:
            return "assumed", _verdict_words(p)
        if stops_chain(p.verdict, "clsact"):
            return "stop", _verdict_words(p)
        return "continue", _verdict_words(p)
    if p.kind == "bpf":
        # Classic (not direct-action) mode (cls_bpf_classify): 0 is "no match", continue; any
        # other return is a match, and then the action list decides; none means TC_ACT_OK.
        if _continues(av):
            return "continue", "its actions continue"
        if p.verdict == "ok" and p.verdict_source != "assumed":
            return "continue", "it returns 0 (no match)"
        if p.verdict is None:
            return "assumed", (
                "it is not in direct-action mode and what it returns is unknown; on a match its "
                + (f"actions return {av.upper()}" if av else "actions decide")
            )
        what = "it matches (returns a class) and " + (
            "has no actions, which ends the walk" if not p.actions else f"its actions return {av}"
        )
        if av is None:
            return "assumed", what
        return ("leave" if av.startswith("goto_chain") else "stop"), what
    # Every other kind: a match runs the actions (none: TC_ACT_OK); a u32 key without flowid or
    # actions is not terminal and never ends anything.
    if _continues(p.verdict) or (p.verdict is None and _continues(av)):
        return "continue", "its actions continue" if p.actions else "it is not terminal"
    if av is None:
        return "assumed", "an action's verdict cannot be read statically"
    if not p.actions:
        return "stop", f"a matching {p.kind} filter with no actions ends the walk"
    return ("leave" if av.startswith("goto_chain") else "stop"), (
        f"its actions ({'; '.join(p.actions)}) return {av.upper()}"
    )


def _stopping_classes(p: TCProgram) -> tuple[str, ...] | None:
    """The traffic classes a probed program ends the walk for, when that is some of the classes
    it sees but not all (None: not probed per class, or every class alike: ``verdict`` says)."""
    probes = p.probes
    if not probes or len(set(probes.values())) < 2 or p.verdict_source != "probed":
        return None
    if p.attach in ("tcx", "netkit"):
        found = tuple(c for c, v in probes.items() if _verdict_effect(p.attach, v) == "bypass")
    elif p.direct_action is False:
        # Classic mode: 0 is "no match"; a match runs the actions, which decide.
        if _continues(p.action_verdict):
            return ()
        found = tuple(c for c, v in probes.items() if v != "ok")
    else:
        found = tuple(c for c, v in probes.items() if stops_chain(v, "clsact"))
    return None if len(found) == len(probes) else found


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
    words = f"it returns {p.verdict.upper()} ({p.verdict_source})"
    if p.probes and len(set(p.probes.values())) > 1:
        by_verdict: dict[str, list[str]] = {p.verdict: []}  # the one that ends the walk first
        for cls, v in p.probes.items():
            by_verdict.setdefault(v, []).append(cls)
        words = (
            "it returns "
            + " and ".join(
                f"{v.upper()} for {', '.join(classes)}" for v, classes in by_verdict.items()
            )
            + f" ({p.verdict_source})"
        )
    if p.verdict_source == "probed":
        documented = _documented(p)
        if documented is not None and documented != p.verdict:
            words += f", although {p.vendor} documents {documented.upper()}: the test run wins"
    return words


def _documented(p: TCProgram) -> str | None:
    """The verdict the vendor table documents for this program's vendor on its hook."""
    for sig in signatures():
        if sig.name == p.vendor:
            code = sig.documented_verdict
            return None if code is None else verdict_name(code, p.attach)
    return None


def _vendor_fix(vendor: str, sigs: tuple[VendorSignature, ...]) -> str:
    for sig in sigs:
        if sig.name == vendor and sig.fix:
            return sig.fix
    return ""


@attrs.define(eq=False)
class _Raw:
    """A finding before the node-wide recommendation is known (one per blocking program)."""

    code: str
    severity: Severity
    program: TCProgram | None
    message: str
    fix: str = ""
    fixable: bool = False  # a lower classifier priority resolves it
    judged: int | None = None  # Datadog's priority on that hook (as attached, else configured)
    protocols: tuple[str, ...] | None = None


def _datadog_on(programs: tuple[TCProgram, ...]) -> TCProgram | None:
    """Datadog's first classifier in chain 0 of one hook, in run order (None: not attached)."""
    for p in programs:
        if (
            p.attach == "clsact"
            and _is_datadog(p)
            and p.chain in (None, 0)
            and "skip_sw" not in p.hw_flags
        ):
            return p
    return None


def _tcx_bypass(p: TCProgram, severity: Severity, classes: tuple[str, ...] | None) -> _Raw:
    """``tcx-bypass`` for a tcx/netkit program that keeps packets (of ``classes``, None: all)
    from every later hook."""
    if p.vendor == "cilium":
        vfix = (
            "run Cilium with enable-tcx=false (Helm bpf.enableTCX=false) and "
            "--bpf-filter-priority above Datadog's"
        )
    else:
        vfix = f"make {p.vendor} return NEXT or stop attaching with {p.attach}"
    where = (
        "on the pod's side of the netkit pair, before every hook of this device"
        if p.attach == "netkit"
        else "before every clsact filter"
    )
    these = "these packets" if classes is None else f"{', '.join(classes)} packets"
    return _Raw(
        "tcx-bypass",
        severity,
        p,
        f"{_describe(p)} at position {p.position} on {p.where} runs {where} and "
        f"{_verdict_words(p)}: Datadog's classifier never sees {these}, whatever its priority.",
        f"{vfix}; or {_DISABLE_FIX}",
        protocols=classes,
    )


def _hook_findings(
    programs: tuple[TCProgram, ...], prio: int, sigs: tuple[VendorSignature, ...]
) -> list[_Raw]:
    """Walk one hook as the kernel does and report what runs before Datadog's classifier.

    :param programs: the hook's programs in run order (:func:`group_hooks`).
    :param prio: the configured priority, used only when Datadog's filter is not attached here.
    """
    raws: list[_Raw] = []
    # Traffic classes (or EtherTypes) whose walk has already ended before Datadog's filter.
    blinded: set[str] = set()
    for p in programs:
        if p.attach == "clsact" or (p.attach == "netkit" and p.direction == "egress"):
            continue  # netkit PRIMARY programs run after this device's egress hooks
        if _is_datadog(p):
            continue
        bypassed = _stopping_classes(p)
        if bypassed is not None:
            # Probed per class: it bypasses some classes only (the others go on).
            if bypassed and not set(bypassed) <= blinded:
                raws.append(_tcx_bypass(p, "error", bypassed))
                blinded.update(bypassed)
            continue
        effect = _linked_effect(p)
        if effect == "continue":
            continue
        if effect == "handover":
            break  # later tcx/netkit programs never run; the clsact filters do
        raws.append(_tcx_bypass(p, "warning" if effect == "assumed" else "error", None))
        return raws  # nothing after it on this hook runs

    dd = _datadog_on(programs)
    judged = prio if dd is None else (dd.priority or prio)
    as_attached = (
        f"Datadog's classifier (priority {judged}, as attached)"
        if dd is not None
        else f"Datadog's classifier (priority {judged}, configured; not attached here)"
    )
    for p in programs:
        if p.attach != "clsact" or p.priority is None:
            continue
        if p is dd:
            break
        if _is_datadog(p) or p.chain not in (None, 0):
            continue  # other chains are reached only through a goto chain
        if p.priority > judged:
            break
        effect, why = _clsact_effect(p)
        if effect == "continue":
            continue
        traffic = _traffic(p.protocol)
        probed_classes = _stopping_classes(p)
        if probed_classes is not None and not probed_classes:
            continue  # probed per class: it ends the walk for none of them
        covered = set(probed_classes or protocol_classes(p.protocol) or (p.protocol,))
        if covered <= blinded:
            continue  # the kernel never runs it for that traffic: reported already
        assumed = effect == "assumed"
        partial = p.match is not None
        protocols = probed_classes or (None if traffic is None else (traffic,))
        label = (
            f"{_describe(p)}" if p.kind == "bpf" else f"{p.kind} filter (handle {p.handle:#x})"
            if p.handle is not None else f"{p.kind} filter"
        )  # fmt: skip
        scope = "" if traffic is None else f" (protocol {p.protocol}: {traffic} traffic only)"
        if probed_classes:
            scope += f" (for {', '.join(probed_classes)} traffic only, as probed)"
        if partial:
            scope += f", for matching traffic ({p.match})"
        block = f" from shared block {p.block}" if p.block else ""
        qdisc = " on the legacy ingress qdisc" if p.qdisc == "ingress" else ""
        head = f"{label} at priority {p.priority}{scope}{block}{qdisc} on {p.where}: {why}"
        if effect == "leave":
            head += " (it leaves chain 0, where Datadog's classifier is)"
        vfix = _vendor_fix(p.vendor, sigs)
        weak = assumed or partial
        if p.priority == judged:
            raws.append(
                _Raw(
                    "priority-collision",
                    "warning",
                    p,
                    f"{head}; it shares the priority of {as_attached} and runs first now: "
                    "which one runs first is not stable.",
                    fixable=True,
                    judged=judged,
                    protocols=protocols,
                )
            )
        elif p.priority == 1:
            raws.append(
                _Raw(
                    "network-blind",
                    "warning" if weak else "error",
                    p,
                    f"{head}, so classification ends before {as_attached}; no Datadog priority "
                    "can run before priority 1: network detection is blind there"
                    + (" for that traffic." if protocols or partial else "."),
                    (f"{vfix}; or " if vfix else "change the filter's priority; or ")
                    + _DISABLE_FIX,
                    judged=judged,
                    protocols=protocols,
                )
            )
        else:
            raws.append(
                _Raw(
                    "lower-classifier-priority",
                    "warning" if weak else "error",
                    p,
                    f"{head}, so classification ends before {as_attached}"
                    + (" for that traffic." if protocols or partial else "."),
                    fixable=True,
                    judged=judged,
                    protocols=protocols,
                )
            )
        if not weak:
            blinded.update(covered)
            if protocols is None:
                break
    return raws


def _takeable(programs: tuple[TCProgram, ...], value: int) -> str | None:
    """Why Datadog's ``protocol all`` bpf filter cannot take ``value`` on this hook (None: it
    can). The kernel refuses a second kind or protocol at one priority; a stopping filter there
    would collide. docs/reference/kernel-tc.md#tc-walk"""
    for p in programs:
        if p.attach != "clsact" or p.priority != value or _is_datadog(p):
            continue
        if p.kind != "bpf":
            return f"a {p.kind} filter holds priority {value} on {p.where}"
        if p.protocol != "all":
            return f"a protocol {p.protocol} filter holds priority {value} on {p.where}"
        if p.chain in (None, 0) and _clsact_effect(p)[0] != "continue":
            return f"{_describe(p)} ends the walk at priority {value} on {p.where}"
    return None


def _pick_priority(
    start: int, hooks: dict[HookKey, tuple[TCProgram, ...]], racing: bool
) -> tuple[int | None, list[str]]:
    """The highest priority <= ``start`` Datadog's filter can take on every hook of ``hooks``.

    :returns: the priority (None: none) and why the ones above it were refused.
    """
    refused: list[str] = []
    # Wherever Datadog's filter would go, no filter that ends the walk may run before it: the
    # new priority stays below the first such filter of every hook (those behind a definite
    # priority-1 stop excepted: no priority helps there).
    for progs in hooks.values():
        for p in progs:
            if p.attach != "clsact" or p.priority is None or _is_datadog(p):
                continue
            if p.chain not in (None, 0):
                continue
            effect = _clsact_effect(p)[0]
            if effect == "continue":
                continue
            if p.priority == 1:
                if effect != "assumed" and p.match is None and _traffic(p.protocol) is None:
                    break
                continue
            if p.priority <= start:
                start = p.priority - 1
                refused.append(
                    f"{_describe(p)} ends the walk at priority {p.priority} on {p.where}"
                )
            break
    for value in range(start, 0, -1):
        if value == 1 and racing:
            refused.append(
                "priority 1 is where Cilium / the AWS network policy agent attach (handle 1, "
                "replace): sharing it races (DataDog/datadog-agent#13692)"
            )
            continue
        why = next((w for w in (_takeable(h, value) for h in hooks.values()) if w), None)
        if why is None:
            return value, refused
        refused.append(why)
    return None, refused


def _placement_findings(
    hooks: dict[HookKey, tuple[TCProgram, ...]],
    devices: Iterable[DeviceInfo],
    prio: int,
    network_detection: bool | None,
) -> list[Finding]:
    """``datadog-classifier-missing`` and ``priority-unavailable``, per device and direction."""
    out: list[Finding] = []
    with_dd = {p.netns for progs in hooks.values() for p in progs if _is_datadog(p)}
    if not with_dd and not network_detection:
        return out  # nothing says Datadog's classifiers are expected anywhere
    # Devices as the scan listed them: both directions are expected. Without that list (programs
    # built by hand), only the hooks that hold clsact filters.
    qdisc: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}
    for d in devices:
        qdisc[(d.netns, d.ifname)] = (d.qdisc, ("ingress", "egress"))
    for (ns, ifname, direction), progs in hooks.items():
        if (ns, ifname) not in qdisc and any(p.attach == "clsact" for p in progs):
            kind = next(p.qdisc or "clsact" for p in progs if p.attach == "clsact")
            qdisc[(ns, ifname)] = (kind, (*qdisc.get((ns, ifname), ("", ()))[1], direction))
    for (ns, ifname), (kind, directions) in sorted(qdisc.items()):
        if ifname == "lo" or not (network_detection or ns in with_dd):
            continue
        for direction in directions:
            progs = hooks.get((ns, ifname, direction), ())
            if any(_is_datadog(p) and p.attach == "clsact" for p in progs):
                continue
            where = f"{ns}/{ifname}/{direction}"
            held = _takeable(progs, prio)
            if held is not None and kind == "clsact" and "holds" in held:
                out.append(
                    _advice(
                        "priority-unavailable",
                        "warning",
                        prio,
                        netns=ns,
                        ifname=ifname,
                        direction=direction,
                        vendor_priority=prio,
                        message=(
                            f"Datadog's classifier is not attached on {where}, and cannot be at "
                            f"priority {prio}: {held} (the kernel refuses a second kind or "
                            "protocol at one priority)."
                        ),
                        fix="set the classifier priority to a free one below the blocking "
                        "filters (see recommended_classifier_priority), or move that filter",
                        basis="decoded",
                    )
                )
                continue
            if kind == "ingress":
                cause = (
                    "the device has a legacy ingress qdisc, which holds the slot clsact needs: "
                    + (
                        "no egress filter can be attached at all"
                        if direction == "egress"
                        else "Datadog's classifier is not among its filters"
                    )
                )
                fix = (
                    "replace the legacy ingress qdisc with clsact (`tc qdisc del dev DEV "
                    "ingress`, then re-add its filters under clsact) and restart the agent"
                )
            elif any(p.attach == "tcx" for p in progs):
                cause = (
                    "tcx programs are attached there; Cilium deletes every clsact filter of a "
                    "direction once it attaches with tcx"
                )
                fix = "run Cilium with enable-tcx=false, or accept no network detection there"
            else:
                cause = (
                    "the device has clsact but no Datadog filter in that direction (the agent "
                    "may not have seen the device, or attaching failed: see system-probe's log)"
                )
                fix = "restart system-probe, then scan again"
            out.append(
                _advice(
                    "datadog-classifier-missing",
                    "warning",
                    prio,
                    netns=ns,
                    ifname=ifname,
                    direction=direction,
                    message=(
                        f"Datadog's classifier is attached elsewhere in {ns}"
                        if ns in with_dd
                        else "Network detection is on"
                    )
                    + f", but not on {where}: {cause}.",
                    fix=fix,
                )
            )
    return out


def _advice(
    code: str,
    severity: Severity,
    classifier_priority: int,
    *,
    message: str,
    netns: str | None = None,
    ifname: str | None = None,
    direction: str | None = None,
    vendor: str | None = None,
    vendor_priority: int | None = None,
    fix: str = "",
    basis: Basis | None = None,
) -> Finding:
    """A finding no classifier priority fixes (node-wide when no device is named)."""
    return Finding(
        code=code,
        severity=severity,
        netns=netns,
        ifname=ifname,
        direction=direction,
        vendor=vendor,
        vendor_priority=vendor_priority,
        classifier_priority=classifier_priority,
        recommended_classifier_priority=None,
        message=message,
        fix=fix,
        basis=basis,
    )


def _priority_fix(value: int) -> str:
    return (
        f"set {CLASSIFIER_PRIORITY_KEY} to {value} (env {CLASSIFIER_PRIORITY_ENV}={value}; "
        f"wpprotect.plan_classifier_priority(target, {value}) or a platform's "
        f"set_classifier_priority({value}))"
    )


AGENT_HOLDER_MARK = " [datadog agent]"
"""How a namespace holder that is a Datadog agent process's descriptor ends (``NamespaceInfo``)."""

_LEFTOVER_FIX = (
    "restart the agent so system-probe detaches its classifiers (sudo systemctl restart "
    "datadog-agent; on Kubernetes or Docker, restart the agent pod or container); an agent "
    "released before DataDog/datadog-agent#46062 attaches them even with network detection off: "
    "turn Workload Protection off (`wpprotect disable --scope workload-protection`) or upgrade"
)


def leftover_findings(
    programs: Iterable[TCProgram],
    *,
    network_detection: bool | None = None,
    workload_protection: bool | None = None,
    source: str | None = None,
    classifier_priority: int = DEFAULT_CLASSIFIER_PRIORITY,
) -> list[Finding]:
    """``datadog-classifier-leftover`` (warning): one per hook where Datadog's classifier is
    still attached although the effective configuration turns it off.

    Reads nothing: the caller says what the configuration is (e.g. from
    ``wpprotect.config.effective_value(NETWORK_ENABLED)``) and where it comes from.

    :param programs: the programs of a report (annotated or not).
    :param network_detection: the effective ``runtime_security_config.network.enabled``.
    :param workload_protection: the effective ``runtime_security_config.enabled``.
    :param source: where those values come from, named in the message.
    :param classifier_priority: the priority judged against (the finding's row shape).
    :returns: the findings, in hook order; none unless one of the two is False.
    """
    off = [
        what
        for what, value in (
            ("Workload Protection", workload_protection),
            ("network detection", network_detection),
        )
        if value is False
    ]
    if not off:
        return []
    origin = f" ({source})" if source else ""
    out: list[Finding] = []
    progs = annotate_programs(programs)
    seen: set[tuple[str, str, str, int | None]] = set()
    for p in sorted(progs, key=lambda q: (q.netns, q.ifname, q.direction, q.priority or 0)):
        if not _is_datadog(p) or p.attach != "clsact":
            continue
        key = (p.netns, p.ifname, p.direction, p.priority)
        if key in seen:
            continue
        seen.add(key)
        out.append(
            Finding(
                code="datadog-classifier-leftover",
                severity="warning",
                netns=p.netns,
                ifname=p.ifname,
                direction=p.direction,
                vendor=p.vendor,
                vendor_priority=p.priority,
                classifier_priority=p.priority or classifier_priority,
                recommended_classifier_priority=None,
                message=(
                    f"{off[0][0].upper()}{off[0][1:]} is off in the effective configuration"
                    f"{origin}, yet Datadog's classifier {p.name or p.prog_name!r} is still "
                    f"attached on {p.where} at priority {p.priority}: the agent was not "
                    "restarted since, or it attaches them regardless (agents before "
                    "DataDog/datadog-agent#46062 start the TC loop with network detection off)."
                ),
                fix=_LEFTOVER_FIX,
                prog_id=p.prog_id,
                basis="decoded",
            )
        )
    return out


def held_by_agent_findings(
    namespaces: Iterable[NamespaceInfo], classifier_priority: int = DEFAULT_CLASSIFIER_PRIORITY
) -> list[Finding]:
    """``netns-held-by-agent`` (warning) for each namespace kept alive only by open descriptors
    of Datadog agent processes: no process or thread runs in it and no bind mount names it
    (datadog-agent#41350: on EKS such leaked namespaces keep their ENIs and IP addresses).

    Reads nothing: it judges the ``holders`` a scan recorded (``TCReport.namespaces``).

    :param namespaces: the namespaces of a report.
    :param classifier_priority: the priority the assessment judges against (the finding's row
        shape carries it).
    :returns: one finding per such namespace.
    """
    out: list[Finding] = []
    mark = AGENT_HOLDER_MARK
    for ns in namespaces:
        holders = tuple(getattr(ns, "holders", ()) or ())
        if not holders or not all(h.startswith("fd ") and h.endswith(mark) for h in holders):
            continue
        names = "; ".join(h.removesuffix(mark) for h in holders)
        out.append(
            _advice(
                "netns-held-by-agent",
                "warning",
                classifier_priority,
                netns=ns.label,
                vendor=DATADOG.name,
                message=(
                    f"network namespace {ns.label} ({ns.id}) is kept alive only by a Datadog "
                    f"agent's open descriptor ({names}): no process runs in it and no mount "
                    "names it, so its devices (and on EKS its ENI and IP addresses) stay "
                    "allocated"
                ),
                fix=(
                    "restart the agent process holding it (system-probe) to release the "
                    "namespace; upgrade to an agent release that closes them "
                    "(DataDog/datadog-agent#41350)"
                ),
            )
        )
    return out


_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def assess(
    programs: Iterable[TCProgram],
    classifier_priority: int = DEFAULT_CLASSIFIER_PRIORITY,
    *,
    classifier_priority_source: str = "caller",
    tcx_supported: bool | None = None,
    agent_version: str | None = None,
    cilium_version: str | None = None,
    devices: Iterable[DeviceInfo] = (),
    network_detection: bool | None = None,
    workload_protection: bool | None = None,
    detection_source: str | None = None,
    namespaces: Iterable[NamespaceInfo] = (),
) -> Assessment:
    """Apply the finding table (module docstring) to a node's programs.

    Programs without a ``verdict_source`` are first annotated from the vendor table (no probe).

    :param programs: every program of the node (all namespaces).
    :param classifier_priority: Datadog's classifier priority ``P``.
    :param classifier_priority_source: where ``P`` came from, reported back.
    :param tcx_supported: False adds a ``tcx-unsupported`` info finding.
    :param agent_version: the Datadog Agent version, for ``cilium-race``.
    :param cilium_version: the Cilium version, for ``cilium-race``.
    :param devices: the devices owning a clsact or ``ingress`` qdisc (:attr:`TCReport.devices`),
        for ``datadog-classifier-missing`` and ``priority-unavailable``.
    :param network_detection: the effective ``runtime_security_config.network.enabled`` as the
        caller read it (None: not known). True: every such device should carry Datadog's
        classifiers; False: any that is still attached is ``datadog-classifier-leftover``.
    :param workload_protection: the effective ``runtime_security_config.enabled`` (None: not
        known); False as for ``network_detection``.
    :param detection_source: where those two values come from, named in the findings.
    :param namespaces: the namespaces of the report (:attr:`TCReport.namespaces`), with their
        holders, for ``netns-held-by-agent``.
    :returns: the findings, the node-wide recommended priority and per-namespace ones.
    :raises InvalidArgumentError: ``P`` outside 1..65535 or a malformed version.
    """
    prio = check_priority(classifier_priority, "classifier_priority")
    progs = annotate_programs(programs)
    hooks = group_hooks(progs)
    sigs = signatures()

    # Network detection off: nothing can blind it, and no priority is to be recommended; what
    # is left to say is that Datadog's classifiers are still attached (below).
    detection_off = network_detection is False or workload_protection is False
    raws: list[_Raw] = []
    for key in () if detection_off else sorted(hooks):
        raws.extend(_hook_findings(hooks[key], prio, sigs))

    # Datadog's own filters at another priority than the one judged against.
    seen: set[tuple[str, int]] = set()
    for p in () if detection_off else progs:
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
                    "effect. Each device is judged by the filter as attached there.",
                )
            )

    # The recommendation: the highest priority below every blocking filter that Datadog's
    # filter can take on every hook (not held by another kind or protocol, not a racing
    # vendor's priority-1 slot).
    racing = any(
        p.vendor in _RACING_VENDORS and p.attach == "clsact" and p.priority == 1 for p in progs
    )
    blocking = [r for r in raws if r.fixable and r.program is not None]
    recommended: int | None = None
    refused: list[str] = []
    if blocking:
        start = min(r.program.priority or 1 for r in blocking if r.program is not None) - 1
        recommended, refused = _pick_priority(start, hooks, racing)
    per_ns: dict[str, int | None] = {p.netns: None for p in progs}
    for ns in {r.program.netns for r in blocking if r.program is not None}:
        ns_raws = [r for r in blocking if r.program is not None and r.program.netns == ns]
        ns_hooks = {k: v for k, v in hooks.items() if k[0] == ns}
        first = min(r.program.priority or 1 for r in ns_raws if r.program is not None) - 1
        per_ns[ns] = _pick_priority(first, ns_hooks, racing)[0]

    findings: list[Finding] = []
    if recommended:
        priority_fix = _priority_fix(recommended)
    else:
        why = "; ".join(dict.fromkeys(refused)) or "nothing runs before priority 1"
        priority_fix = (
            "no classifier priority below the blocking filters can be taken on every device "
            f"({why}): {_DISABLE_FIX}"
        )
    for r in raws:
        rp = r.program
        findings.append(
            Finding(
                code=r.code,
                severity=r.severity,
                netns=None if rp is None else rp.netns,
                ifname=None if rp is None else rp.ifname,
                direction=None if rp is None else rp.direction,
                vendor=None if rp is None else rp.vendor,
                vendor_priority=None if rp is None else rp.priority,
                classifier_priority=prio if r.judged is None else r.judged,
                recommended_classifier_priority=recommended if r.fixable else None,
                message=r.message,
                fix=priority_fix if r.fixable else r.fix,
                prog_id=None if rp is None else rp.prog_id,
                protocols=r.protocols,
                basis=None if rp is None else _basis(rp),
            )
        )
    if detection_off:
        # Nothing is expected anywhere: Datadog's classifiers still attached are leftovers.
        findings.extend(
            leftover_findings(
                progs,
                network_detection=network_detection,
                workload_protection=workload_protection,
                source=detection_source,
                classifier_priority=prio,
            )
        )
    else:
        findings.extend(_placement_findings(hooks, devices, prio, network_detection))
    findings.extend(held_by_agent_findings(namespaces, prio))

    for version, what in ((agent_version, "agent_version"), (cilium_version, "cilium_version")):
        if version is not None:
            parse_version(version, what)  # a malformed version is an error even alone
    if (
        agent_version is not None
        and cilium_version is not None
        and cilium_race(agent_version, cilium_version)
    ):
        findings.append(
            _advice(
                "cilium-race",
                "warning",
                prio,
                vendor="cilium",
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
            _advice(
                "tcx-unsupported",
                "info",
                prio,
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
