"""Measured, not inferred: did Datadog's classifier run for the traffic each device carried?

:func:`measure` (behind :meth:`TCInspector.measure() <wpprotect.tc.TCInspector.measure>` and
``wpprotect tc watch``) holds a ``BPF_ENABLE_STATS`` descriptor for a window, so that the kernel
counts every run of every BPF program (``bpf_prog_info.run_cnt``), and reads each device's packet
counters (``IFLA_STATS64``) at both ends of the window (docs/reference/kernel-tc.md#tc-measure).
Per hook that carries Datadog's classifier (vendor ``datadog-cws`` as the scan identifies it):

========  ========================================================================================
state     when
========  ========================================================================================
blind     the device carried packets in that direction (ingress: ``rx_packets``, egress:
          ``tx_packets``) and Datadog's classifier there did not run once: ``measured-blind``
seen      Datadog's classifier ran
idle      no packets in that direction during the window: nothing to judge (not "fine")
unknown   the counts cannot be told apart: the classifier's program also runs on other hooks and
          ran there, or it (or the device) changed during the window
========  ========================================================================================

Only zero runs is a finding: packet counters and run counts need not agree one to one (GRO and
GSO merge packets before the hooks see them, a device counts what a filter dropped on ingress),
so a lower ratio is shown but not judged. A packet an egress filter drops before Datadog's is not
transmitted, so not counted either.

Read-only: nothing is attached, sent or changed; statistics are on only while the descriptor is
open, and it is closed on every exit path (Ctrl-C included). Namespaces are entered from a worker
thread, never from the calling one (:func:`wpprotect.tc._netns.run_in_thread`).
"""

from __future__ import annotations

import html
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs

from wpprotect.tc import _bpfsys, _netlink, _netns
from wpprotect.tc._model import (
    Direction,
    Finding,
    NamespaceInfo,
    TCProgram,
    dumps,
    fields_dict,
    html_table,
    render_table,
)
from wpprotect.tc._report import TCReport

__all__ = [
    "DATADOG_VENDOR",
    "HookMeasurement",
    "MeasuredFinding",
    "TCMeasurement",
    "measure",
    "measure_recorded",
]

DATADOG_VENDOR = "datadog-cws"
"""The vendor label the scan gives Datadog's classifiers."""
_DEFAULT_PRIORITY = 10  # the agent's default classifier priority (used when none is attached)

HookState = Literal["blind", "seen", "idle", "unknown"]
HOOK_COLUMNS = ("state", "netns", "ifname", "dir", "packets", "classifier runs", "prog", "prio")


def _tuple_ints(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


def _tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


@attrs.frozen(repr=False, kw_only=True)
class HookMeasurement:
    """One device hook carrying Datadog's classifier, over one measurement window.

    :ivar state: ``blind``, ``seen``, ``idle`` or ``unknown`` (the module's table).
    :ivar netns: the namespace label.
    :ivar netns_id: the namespace's ``dev:inode``.
    :ivar ifname: the device.
    :ivar ifindex: its index in that namespace.
    :ivar direction: ``ingress`` (compared with ``rx_packets``) or ``egress`` (``tx_packets``).
    :ivar packets: packets the device carried in that direction during the window (None: the
        device vanished).
    :ivar classifier_runs: runs of Datadog's classifier programs on this hook during the window
        (None: a program vanished).
    :ivar prog_ids: Datadog's programs on this hook.
    :ivar classifier_priority: the priority of Datadog's filter there (None for tcx).
    :ivar shared: a program here also sits on other hooks (its runs are their sum).
    :ivar note: why the state is ``unknown``, when it is.
    """

    state: HookState
    netns: str
    netns_id: str | None
    ifname: str
    ifindex: int
    direction: Direction
    packets: int | None
    classifier_runs: int | None
    prog_ids: tuple[int, ...] = attrs.field(converter=_tuple_ints)
    classifier_priority: int | None = None
    shared: bool = False
    note: str = ""

    @property
    def where(self) -> str:
        """``netns/ifname/direction``."""
        return f"{self.netns}/{self.ifname}/{self.direction}"

    def to_dict(self) -> dict[str, Any]:
        """Every field, in declaration order, JSON-ready."""
        return fields_dict(self)

    def __repr__(self) -> str:
        return (
            f"<HookMeasurement {self.state} {self.where} packets={self.packets} "
            f"runs={self.classifier_runs}>"
        )

    def _row(self) -> tuple[object, ...]:
        return (
            self.state,
            self.netns,
            self.ifname,
            self.direction,
            self.packets,
            self.classifier_runs,
            " ".join(map(str, self.prog_ids)),
            self.classifier_priority,
        )


@attrs.frozen(repr=False, kw_only=True)
class MeasuredFinding(Finding):
    """A :class:`~wpprotect.tc.Finding` with the two counts it was judged on (``basis`` is
    ``measured``); the counts follow the finding's other keys in ``to_dict()``.

    :ivar packets: packets the device carried in that direction during the window.
    :ivar classifier_runs: runs of Datadog's classifier there during the window.
    :ivar seconds: the window, in seconds.
    """

    packets: int
    classifier_runs: int
    seconds: float


@attrs.frozen(repr=False, kw_only=True)
class TCMeasurement:
    """What one measurement window showed: per hook carrying Datadog's classifier, the packets
    the device carried against the runs of that classifier.

    :ivar seconds: the window asked for.
    :ivar elapsed: the window measured (between the two readings).
    :ivar hooks: one row per hook carrying Datadog's classifier, blind ones first.
    :ivar findings: ``measured-blind`` (error) per blind hook.
    :ivar warnings: what could not be measured, and why.
    :ivar namespaces: the namespaces scanned.
    :ivar stats_already_on: whether ``kernel.bpf_stats_enabled`` was set before (statistics
        then stay on afterwards; None: not readable).
    """

    seconds: float
    elapsed: float
    hooks: tuple[HookMeasurement, ...] = attrs.field(converter=_tuple, default=())
    findings: tuple[Finding, ...] = attrs.field(converter=_tuple, default=())
    warnings: tuple[str, ...] = attrs.field(converter=_tuple, default=())
    namespaces: tuple[NamespaceInfo, ...] = attrs.field(converter=_tuple, default=())
    stats_already_on: bool | None = None

    @property
    def ok(self) -> bool:
        """True when no finding is an error or a warning (idle hooks are not judged)."""
        return not any(f.needs_action for f in self.findings)

    def count(self, state: HookState) -> int:
        """:returns: how many hooks are in ``state``."""
        return sum(h.state == state for h in self.hooks)

    def to_dict(self) -> dict[str, Any]:
        """Every field in declaration order, then ``ok``: the ``wpprotect tc watch --json``
        object."""
        return {**fields_dict(self), "ok": self.ok}

    def to_json(self) -> str:
        """:returns: ``json.dumps(self.to_dict(), ensure_ascii=False)``."""
        return dumps(self.to_dict())

    def summary(self) -> str:
        """:returns: one sentence: what the window showed."""
        if not self.hooks:
            return (
                f"no Datadog classifier attached in the {len(self.namespaces)} namespace(s) "
                "measured: nothing to compare."
            )
        counts = ", ".join(
            f"{n} {state}"
            for state in ("blind", "seen", "idle", "unknown")
            if (n := self.count(state))
        )
        head = (
            f"{len(self.hooks)} hooks with Datadog's classifier over {self.elapsed:.1f} s: {counts}"
        )
        if not self.ok:
            return head + "; Datadog's classifier missed all the traffic of the blind ones."
        if self.count("idle") == len(self.hooks):
            return head + "; no traffic: nothing was judged."
        return head + "; nothing blind."

    def table(self) -> str:
        """The hooks as a plain-text table, the findings' messages, the warnings and the
        summary."""
        lines: list[str] = []
        if self.hooks:
            lines += [render_table(HOOK_COLUMNS, (h._row() for h in self.hooks)), ""]
        notes: dict[str, list[str]] = {}
        for h in self.hooks:
            if h.note:
                notes.setdefault(h.note, []).append(f"{h.ifname}/{h.direction}")
        for note, where in notes.items():
            more = f" and {len(where) - 6} more" if len(where) > 6 else ""
            lines.append(f"note: {note} ({', '.join(where[:6])}{more})")
        lines += [f"{f.severity}: {f.code}: {f.message}" for f in self.findings]
        lines += [f"warning: {w}" for w in self.warnings]
        lines.append(self.summary())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<TCMeasurement ok={self.ok} {len(self.hooks)} hooks over {self.elapsed:.1f}s "
            f"blind={self.count('blind')} idle={self.count('idle')}>"
        )

    def _repr_html_(self) -> str:
        out = f"<p>{html.escape(self.summary())}</p>"
        if self.hooks:
            out += html_table(HOOK_COLUMNS, (h._row() for h in self.hooks))
        if self.findings:
            out += (
                "<ul>"
                + "".join(
                    f"<li>{html.escape(f'{f.severity} {f.code}: {f.message}')}</li>"
                    for f in self.findings
                )
                + "</ul>"
            )
        if self.warnings:
            out += "<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in self.warnings) + "</ul>"
        return out


# --- the measurement ----------------------------------------------------------------------------

_HookKey = tuple[str, int, Direction]  # (netns id, ifindex, direction)
_Counters = dict[str, dict[int, _netlink.LinkStats] | None]  # netns id -> ifindex -> stats


def _ref(ns: NamespaceInfo) -> _netns.NetnsRef | None:
    if ns.id is None or ns.path is None:
        return None
    dev, _, ino = ns.id.partition(":")
    return _netns.NetnsRef(ns.label, ns.path, int(dev), int(ino))


def _read_counters(refs: Mapping[str, _netns.NetnsRef], warnings: list[str]) -> _Counters:
    """Every device's counters, per namespace; runs in a worker thread (it enters them)."""
    out: _Counters = {}
    for ns_id, ref in refs.items():
        try:
            with _netns.entered(ref), _netlink.RtnlReader() as reader:
                out[ns_id] = reader.link_stats()
        except _netns.NetnsGoneError:
            warnings.append(f"{ref.label}: network namespace vanished during the measurement")
            out[ns_id] = None
    return out


def _read_runs(prog_ids: Iterable[int]) -> dict[int, int | None]:
    """``run_cnt`` per program id (None: it vanished)."""
    out: dict[int, int | None] = {}
    for prog_id in prog_ids:
        fields = _bpfsys.prog_fields(prog_id)
        out[prog_id] = None if fields is None else fields[5]
    return out


def _snapshot(
    refs: Mapping[str, _netns.NetnsRef], prog_ids: Iterable[int], warnings: list[str]
) -> tuple[_Counters, dict[int, int | None]]:
    # Counters, then run counts, at both ends of the window: the same order each time.
    counters = _netns.run_in_thread(_read_counters, refs, warnings)
    return counters, _read_runs(prog_ids)


def _wait(seconds: float) -> None:
    time.sleep(seconds)


def _stats_sysctl() -> bool | None:
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled", encoding="ascii") as fh:
            return fh.read().strip() == "1"
    except OSError:
        return None


def _ahead(programs: Iterable[TCProgram], prio: int | None) -> list[TCProgram]:
    """The non-Datadog programs that run before Datadog's on one hook (tcx/netkit first)."""
    tcx = sorted(
        (p for p in programs if p.attach != "clsact" and p.vendor != DATADOG_VENDOR),
        key=lambda p: p.position or 0,
    )
    cls = sorted(
        (
            p
            for p in programs
            if p.attach == "clsact"
            and p.vendor != DATADOG_VENDOR
            and (prio is None or (p.priority or 0) <= prio)
        ),
        key=lambda p: p.priority or 0,
    )
    return tcx + cls


def _describe(p: TCProgram) -> str:
    where = f"clsact priority {p.priority}" if p.attach == "clsact" else f"{p.attach} #{p.position}"
    what = p.name or p.prog_name or p.kind
    return f"{p.vendor} {what!r} ({where})"


def measure(
    scan: Callable[[], TCReport],
    seconds: float = 10.0,
    *,
    sleep: Callable[[float], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> TCMeasurement:
    """Measure, over ``seconds``, whether Datadog's classifiers ran for the traffic their
    devices carried.

    Statistics are turned on (a ``BPF_ENABLE_STATS`` descriptor) before anything is read and
    turned off (the descriptor closed) on every exit, Ctrl-C included.

    :param scan: reads the programs (e.g. ``TCInspector(...).scan``): which hooks carry
        Datadog's classifier, and what runs ahead of it.
    :param seconds: the window (> 0).
    :param sleep: waits out the window (default :func:`time.sleep`; tests pass their own).
    :param clock: a monotonic clock.
    :returns: the measurement.
    :raises CapabilityError: not root (CAP_SYS_ADMIN is needed for statistics).
    :raises InvalidArgumentError: ``seconds`` is not positive.
    """
    from wpprotect.errors import InvalidArgumentError

    if not seconds > 0:
        raise InvalidArgumentError(f"seconds must be positive, got {seconds!r}")
    already = _stats_sysctl()
    stats_fd = _bpfsys.enable_stats()
    try:
        report = scan()
        warnings = list(report.warnings)
        datadog = [p for p in report.programs if p.vendor == DATADOG_VENDOR and p.prog_id]
        if not datadog:
            return TCMeasurement(
                seconds=seconds, elapsed=0.0, warnings=warnings,
                namespaces=report.namespaces, stats_already_on=already,
            )  # fmt: skip
        refs: dict[str, _netns.NetnsRef] = {}
        for ns in report.namespaces:
            ref = _ref(ns)
            if ref is not None and ns.id is not None:
                refs[ns.id] = ref
        hooks: dict[_HookKey, list[TCProgram]] = defaultdict(list)
        for p in datadog:
            hooks[(p.netns_id or "", p.ifindex, p.direction)].append(p)
        prog_ids = {p.prog_id for p in datadog if p.prog_id is not None}
        used = {ns_id for ns_id, _, _ in hooks if ns_id in refs}
        wanted = {k: refs[k] for k in used}
        before = _snapshot(wanted, prog_ids, warnings)
        start = clock()
        (sleep or _wait)(seconds)
        after = _snapshot(wanted, prog_ids, warnings)
        elapsed = clock() - start
    finally:
        os.close(stats_fd)
    return _judge(report, hooks, before, after, seconds, elapsed, warnings, already)


def measure_recorded(  # noqa: PLR0917 - the parts of a measurement read elsewhere
    report: TCReport,
    before: tuple[_Counters, dict[int, int | None]],
    after: tuple[_Counters, dict[int, int | None]],
    seconds: float,
    elapsed: float,
    already: bool | None,
) -> TCMeasurement:
    """Judge a window read elsewhere (by the reader inside an agent container): ``report`` is
    the scan at the start, ``before``/``after`` the counters (namespace id → ifindex → stats)
    and run counts (program id → ``run_cnt``) at both ends; the same judgement as
    :func:`measure`."""
    warnings = list(report.warnings)
    datadog = [p for p in report.programs if p.vendor == DATADOG_VENDOR and p.prog_id]
    if not datadog:
        return TCMeasurement(
            seconds=seconds, elapsed=elapsed, warnings=warnings,
            namespaces=report.namespaces, stats_already_on=already,
        )  # fmt: skip
    hooks: dict[_HookKey, list[TCProgram]] = defaultdict(list)
    for p in datadog:
        hooks[(p.netns_id or "", p.ifindex, p.direction)].append(p)
    return _judge(report, hooks, before, after, seconds, elapsed, warnings, already)


def _judge(  # noqa: PLR0917 - one internal step of measure()
    report: TCReport,
    hooks: Mapping[_HookKey, list[TCProgram]],
    before: tuple[_Counters, dict[int, int | None]],
    after: tuple[_Counters, dict[int, int | None]],
    seconds: float,
    elapsed: float,
    warnings: list[str],
    already: bool | None,
) -> TCMeasurement:
    (c0, r0), (c1, r1) = before, after
    uses: dict[int, int] = defaultdict(int)
    for progs in hooks.values():
        for pid in {p.prog_id for p in progs}:
            if pid is not None:
                uses[pid] += 1
    by_hook: dict[tuple[str, str, str], list[TCProgram]] = defaultdict(list)
    for p in report.programs:
        by_hook[(p.netns_id or "", p.ifname, p.direction)].append(p)
    rows: list[HookMeasurement] = []
    findings: list[Finding] = []
    for (ns_id, ifindex, direction), progs in hooks.items():
        first = progs[0]
        ids = tuple(sorted({p.prog_id for p in progs if p.prog_id is not None}))
        prio = min((p.priority for p in progs if p.priority is not None), default=None)
        s0 = (c0.get(ns_id) or {}).get(ifindex)
        s1 = (c1.get(ns_id) or {}).get(ifindex)
        packets: int | None = None
        note = ""
        if s0 is None or s1 is None:
            note = "the device (or its namespace) vanished during the window"
        elif s0.name != s1.name or s1.rx_packets < s0.rx_packets:
            note = "the device was replaced during the window"
        else:
            packets = (
                s1.rx_packets - s0.rx_packets
                if direction == "ingress"
                else s1.tx_packets - s0.tx_packets
            )
        runs: int | None = 0
        for pid in ids:
            a, b = r0.get(pid), r1.get(pid)
            if a is None or b is None or runs is None:
                runs = None
                note = note or f"Datadog's program {pid} was unloaded during the window"
                continue
            runs += b - a
        shared = any(uses[pid] > 1 for pid in ids)
        state: HookState
        if packets is None or runs is None:
            state = "unknown"
        elif runs == 0 and packets > 0:
            state = "blind"
        elif packets == 0 and runs == 0:
            state = "idle"
        elif shared:
            # The runs may all come from the program's other hooks.
            state = "unknown" if packets > 0 else "idle"
            note = note or (
                "Datadog's program also sits on other hooks and ran there: its runs cannot be "
                "told apart per device (the agent loads one program per device; a shared one "
                "is judged blind only when it did not run at all)"
            )
        elif packets == 0:
            state = "idle"
        else:
            state = "seen"
        row = HookMeasurement(
            state=state, netns=first.netns, netns_id=first.netns_id, ifname=first.ifname,
            ifindex=ifindex, direction=direction, packets=packets, classifier_runs=runs,
            prog_ids=ids, classifier_priority=prio, shared=shared, note=note,
        )  # fmt: skip
        rows.append(row)
        if state == "blind":
            assert packets is not None  # noqa: S101 - narrowed by the state
            findings.append(
                _blind_finding(row, by_hook[(ns_id, first.ifname, direction)], packets, elapsed)
            )
    order = {"blind": 0, "unknown": 1, "seen": 2, "idle": 3}
    rows.sort(key=lambda h: (order[h.state], h.netns, h.ifname, h.direction))
    return TCMeasurement(
        seconds=seconds, elapsed=round(elapsed, 3), hooks=rows, findings=findings,
        warnings=warnings, namespaces=report.namespaces, stats_already_on=already,
    )  # fmt: skip


def _blind_finding(
    row: HookMeasurement, programs: list[TCProgram], packets: int, elapsed: float
) -> MeasuredFinding:
    ahead = _ahead(programs, row.classifier_priority)
    prio = row.classifier_priority
    counter = "received" if row.direction == "ingress" else "sent"
    where = f"priority {prio}" if prio is not None else "tcx"
    message = (
        f"{row.ifname} {counter} {packets} packets in {elapsed:.1f} s while Datadog's "
        f"{row.direction} classifier there (program {', '.join(map(str, row.prog_ids))}, "
        f"{where}) ran {row.classifier_runs} times: network detection saw none of that traffic."
    )
    if ahead:
        message += " Ahead of it: " + "; ".join(_describe(p) for p in ahead[:3]) + "."
    else:
        message += (
            " Nothing visible runs ahead of it on this hook (an XDP program or a filter the "
            "scan cannot read may take the traffic first)."
        )
    return MeasuredFinding(
        code="measured-blind",
        severity="error",
        netns=row.netns,
        ifname=row.ifname,
        direction=row.direction,
        vendor=ahead[0].vendor if ahead else None,
        vendor_priority=ahead[0].priority if ahead else None,
        classifier_priority=prio if prio is not None else _DEFAULT_PRIORITY,
        recommended_classifier_priority=None,
        message=message,
        fix=(
            "run `wpprotect tc scan` for what ends the walk before Datadog's filter on this "
            "device, and apply its fix; then measure again"
        ),
        prog_id=row.prog_ids[0] if row.prog_ids else None,
        basis="measured",
        packets=packets,
        classifier_runs=row.classifier_runs or 0,
        seconds=round(elapsed, 3),
    )
