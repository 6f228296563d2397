"""The TC inspector's results as data: programs, findings, the assessment, the report.

All classes are frozen attrs classes with a short ``repr``, a JSON-ready ``to_dict()`` and a
``_repr_html_`` for notebooks. The JSON shape of :meth:`TCReport.to_dict` is the public contract
of ``wpprotect tc scan --json`` (``docs/reference/contract.md#contract-scan-json``): the documented
keys come first, with those exact
names, and extra keys follow.

Netkit programs: the kernel runs a netkit program on the *transmit* path of the device it belongs
to. wpprotect lists both on the primary device (where ``BPF_PROG_QUERY`` finds them) and maps
``BPF_NETKIT_PEER`` (packets the pod sends, arriving on the host side, before the primary's
ingress hooks) to ``direction="ingress"`` and ``BPF_NETKIT_PRIMARY`` (packets the host sends to
the pod, after the primary's egress hooks) to ``direction="egress"``; the assessment places them
in that run order.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

__all__ = [
    "PACKET_CLASSES",
    "Assessment",
    "DeviceInfo",
    "Direction",
    "Finding",
    "NamespaceInfo",
    "PacketClass",
    "Severity",
    "TCProgram",
    "render_table",
]


_SCALARS = frozenset({str, int, bool, float, type(None)})


def _plain(value: Any) -> Any:
    # One JSON-ready form for every field value: tuples become lists, nested results their dicts.
    if type(value) in _SCALARS:  # nearly every value: the scan's rows are flat
        return value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if attrs.has(type(value)):
        return value.to_dict()
    return value


def fields_dict(obj: Any) -> dict[str, Any]:
    """Every attrs field of ``obj``, in declaration order, as JSON-ready values.

    The one serialisation of the TC results: a field added to a class appears in ``to_dict()``
    and the JSON without being written again.
    """
    cls = type(obj)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in attrs.fields(cls))
    return {name: _plain(getattr(obj, name)) for name in names}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def dumps(doc: Any) -> str:
    """The JSON text of a ``to_dict()`` result, as ``wpprotect tc scan --json`` prints it."""
    return json.dumps(doc, ensure_ascii=False)


Direction = Literal["ingress", "egress"]
Attach = Literal["clsact", "tcx", "netkit"]
VerdictSource = Literal["documented", "probed", "assumed", "decoded"]
Severity = Literal["error", "warning", "info"]
Basis = Literal["documented", "probed", "assumed", "measured", "decoded"]
PacketClass = Literal["tcp/ipv4", "udp/ipv4", "icmp/ipv4", "tcp/ipv6", "udp/ipv6", "arp"]
"""A traffic class a probe test-runs programs on: one packet each (a TCP SYN, a DNS query, an
ICMP echo request, an ARP request)."""

PACKET_CLASSES: tuple[PacketClass, ...] = (
    "tcp/ipv4",
    "udp/ipv4",
    "icmp/ipv4",
    "tcp/ipv6",
    "udp/ipv6",
    "arp",
)
"""Every :data:`PacketClass`, in the order probes run and reports list them."""

_PROTOCOL_CLASSES: dict[str, tuple[PacketClass, ...]] = {
    "all": PACKET_CLASSES,
    "ip": ("tcp/ipv4", "udp/ipv4", "icmp/ipv4"),
    "ipv6": ("tcp/ipv6", "udp/ipv6"),
    "arp": ("arp",),
}


def protocol_classes(protocol: str) -> tuple[PacketClass, ...]:
    """The packet classes a filter of this ``protocol`` (``all``, ``ip``, ``ipv6``, ``arp``, an
    EtherType) is run on by the kernel: none of them for other EtherTypes (e.g. ``0x8100``)."""
    return _PROTOCOL_CLASSES.get(protocol, ())


def _probes(
    value: Mapping[PacketClass, str] | Mapping[str, str] | None,
) -> dict[str, str] | None:
    return None if value is None else {str(k): v for k, v in value.items()}


def _strs(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _opt_strs(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _printable(text: str) -> str:
    # Filter names come from whoever attached the filter (up to 256 bytes): never let them put
    # terminal control sequences on a person's screen.
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def render_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Render rows as a plain-text table with aligned columns (None shown as ``-``).

    :param headers: column titles.
    :param rows: one sequence of cells per row.
    :returns: the table, lines joined by ``\\n`` (no trailing newline); control characters in
        cells are shown as ``\\xNN``.
    """
    text_rows = [["-" if c is None else _printable(str(c)) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in text_rows
    )
    return "\n".join(lines)


def html_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('-' if c is None else str(c))}</td>" for c in r)
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


PROGRAM_COLUMNS = (
    "netns",
    "ifname",
    "dir",
    "attach",
    "prio",
    "handle",
    "name",
    "prog",
    "vendor",
    "verdict",
)
FINDING_COLUMNS = ("severity", "code", "netns", "ifname", "dir", "vendor", "prio", "message")


@attrs.frozen(repr=False, kw_only=True)
class TCProgram:
    """One eBPF program (or non-BPF filter) seen on a device's traffic-control hooks.

    For ``attach == "clsact"`` it is one filter of the clsact qdisc (``priority``, ``handle``,
    ``protocol`` and ``chain`` set); for ``"tcx"``/``"netkit"`` it is one program of the device's
    link-based hook, and ``position`` is its place in the run order (0 runs first).

    :ivar netns: the namespace label (a name, a path, or e.g. ``pid 1234``).
    :ivar netns_id: the namespace's ``dev:inode``, when known.
    :ivar ifname: the device name.
    :ivar ifindex: the device index (in its namespace).
    :ivar direction: ``ingress`` or ``egress`` (netkit: see the module docstring).
    :ivar attach: ``clsact``, ``tcx`` or ``netkit``.
    :ivar priority: the filter's priority (clsact only; lower runs first).
    :ivar handle: the filter's handle (clsact only).
    :ivar protocol: ``all``, ``ip``, ``ipv6``, ``arp`` or the EtherType in hex.
    :ivar chain: the filter chain (clsact only; 0 is the one packets enter).
    :ivar kind: ``bpf`` or the non-BPF filter kind (``u32``, ``matchall``...).
    :ivar name: the filter name (``TCA_BPF_NAME``) for clsact; the program name for tcx/netkit.
    :ivar prog_id: the program id.
    :ivar prog_name: the program name from ``bpf_prog_info`` (at most 15 characters).
    :ivar prog_tag: the program tag, 16 hex digits.
    :ivar direct_action: whether the filter is in direct-action mode (clsact only).
    :ivar hw_flags: e.g. ``("not_in_hw",)``.
    :ivar link_id: the bpf link id (tcx/netkit; 0 or None without a link).
    :ivar position: run order among tcx/netkit programs of that hook.
    :ivar vendor: ``cilium``, ``calico``, ``aws-network-policy``, ``datadog-cws``, ``retina``,
        ``netobserv``, ``beyla``... or ``unknown``.
    :ivar verdict: what the program returns for traffic it lets through (``ok``, ``unspec``,
        ``shot``, ``redirect``, ``pass``, ``next``...), or None when unknown.
    :ivar verdict_source: ``documented`` (the vendor's source), ``probed`` (a test run) or
        ``assumed`` (unknown: counted as stopping the chain).
    :ivar run_cnt: times run while BPF statistics were on.
    :ivar run_time_ns: run time while BPF statistics were on.
    :ivar load_time_ns: load time, nanoseconds since boot.
    :ivar qdisc: the qdisc holding a filter: ``clsact`` or the legacy ``ingress`` (None for
        tcx/netkit).
    :ivar block: the shared block the filter lives in (None: the device's own); its filters
        run on every device bound to the block and are listed on each.
    :ivar match: None when the filter takes every packet of its protocol; else what it matches
        (``u32 00000050/0000ffff at 20``...): it decides only for matching traffic.
    :ivar actions: the filter's actions in run order, as ``tc`` names them.
    :ivar action_verdict: what the action list returns (``ok`` when there are none, ``unspec``
        for ``continue``, ``pipe``, ``goto_chain 1``...; None: not readable statically).
    :ivar probes: with ``probe=True``, what a test run of the program returned for each packet
        class it sees (:data:`PACKET_CLASSES` limited by ``protocol``), named as ``verdict`` is,
        e.g. ``{"tcp/ipv4": "unspec", "udp/ipv4": "ok", ...}``; None when it was not probed.
        When the classes disagree, ``verdict`` is the first one that ends the walk and the
        assessment names the classes it stops (``Finding.protocols``).
    """

    netns: str
    ifname: str
    ifindex: int
    direction: Direction
    attach: Attach
    priority: int | None = None
    handle: int | None = None
    protocol: str = "all"
    name: str = ""
    prog_id: int | None = None
    prog_name: str | None = None
    prog_tag: str | None = None
    direct_action: bool | None = None
    vendor: str = "unknown"
    netns_id: str | None = None
    chain: int | None = None
    kind: str = "bpf"
    hw_flags: tuple[str, ...] = ()
    link_id: int | None = None
    position: int | None = None
    verdict: str | None = None
    verdict_source: VerdictSource | None = None
    run_cnt: int | None = None
    run_time_ns: int | None = None
    load_time_ns: int | None = None
    qdisc: str | None = None
    block: int | None = None
    match: str | None = None
    actions: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    action_verdict: str | None = None
    probes: dict[str, str] | None = attrs.field(default=None, converter=_probes, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """Every field, in declaration order: the contract's keys first (``netns`` ...
        ``vendor``), then the extra fields."""
        return fields_dict(self)

    def to_json(self) -> str:
        """:returns: ``json.dumps(self.to_dict(), ensure_ascii=False)``."""
        return dumps(self.to_dict())

    @property
    def where(self) -> str:
        """``netns/ifname/direction``, for messages."""
        return f"{self.netns}/{self.ifname}/{self.direction}"

    def __repr__(self) -> str:
        order = f"prio {self.priority}" if self.attach == "clsact" else f"position {self.position}"
        return (
            f"<TCProgram {self.attach} {self.where} {order} {self.name or self.prog_name!r} "
            f"id={self.prog_id} vendor={self.vendor} verdict={self.verdict}>"
        )

    def _row(self) -> tuple[object, ...]:
        prog = None if self.prog_id is None else f"{self.prog_id} {self.prog_name or ''}".strip()
        verdict = self.verdict
        if self.verdict_source is not None:
            verdict = f"{verdict or '?'} ({self.verdict_source})"
        if self.probes and len(set(self.probes.values())) > 1:
            which = [c for c, v in self.probes.items() if v == self.verdict]
            verdict = f"{self.verdict} for {','.join(which)} ({self.verdict_source})"
        prio = (
            self.priority
            if self.attach == "clsact"
            else (None if self.position is None else f"#{self.position}")
        )
        handle = None if self.handle is None else hex(self.handle)
        return (
            self.netns,
            self.ifname,
            self.direction,
            self.attach,
            prio,
            handle,
            self.name,
            prog,
            self.vendor,
            verdict,
        )

    def _repr_html_(self) -> str:
        return html_table(PROGRAM_COLUMNS, [self._row()])


@attrs.frozen(repr=False, kw_only=True)
class Finding:
    """One thing in the TC state that affects Datadog's network detection.

    Codes (``docs/reference/contract.md#contract-findings``): ``network-blind``,
    ``lower-classifier-priority``, ``priority-collision``, ``tcx-bypass``,
    ``datadog-classifier-missing``, ``priority-unavailable``, ``cilium-race``,
    ``measured-blind``, ``netns-held-by-agent``; informational: ``tcx-unsupported``,
    ``classifier-priority-mismatch``.

    :ivar code: the finding code.
    :ivar severity: ``error`` and ``warning`` need action; ``info`` does not.
    :ivar netns: the namespace label (None for node-wide findings).
    :ivar ifname: the device (None for node-wide findings).
    :ivar direction: ``ingress``/``egress`` (None for node-wide findings).
    :ivar vendor: the vendor of the program involved.
    :ivar vendor_priority: its clsact priority (None for tcx/netkit).
    :ivar classifier_priority: Datadog's classifier priority the finding was judged against.
    :ivar recommended_classifier_priority: the priority that fixes it, when one does.
    :ivar message: what is wrong, in a sentence or two.
    :ivar fix: what to do about it.
    :ivar prog_id: the program involved, when one is.
    :ivar protocols: the traffic affected when it is not all of it (e.g. ``("ipv4",)``); None
        for all traffic.
    :ivar basis: how the verdict behind the finding is known: ``documented`` (the vendor's
        source), ``probed`` (a test run), ``assumed`` (unknown, counted as stopping the chain),
        ``measured`` (BPF run counts against packet counters) or ``decoded`` (the filter's own
        actions and match, as the kernel dumped them); None for node-wide findings.
    """

    code: str
    severity: Severity
    netns: str | None
    ifname: str | None
    direction: str | None
    vendor: str | None
    vendor_priority: int | None
    classifier_priority: int
    recommended_classifier_priority: int | None
    message: str
    fix: str = ""
    prog_id: int | None = None
    protocols: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_strs)
    basis: Basis | None = None

    @property
    def needs_action(self) -> bool:
        """True for ``error`` and ``warning`` findings."""
        return self.severity != "info"

    def to_dict(self) -> dict[str, Any]:
        """Every field, in declaration order: the contract's keys first, then ``fix`` and
        ``prog_id``."""
        return fields_dict(self)

    def to_json(self) -> str:
        """:returns: ``json.dumps(self.to_dict(), ensure_ascii=False)``."""
        return dumps(self.to_dict())

    def __repr__(self) -> str:
        where = "/".join(x for x in (self.netns, self.ifname, self.direction) if x) or "node"
        return f"<Finding {self.severity} {self.code} {where} vendor={self.vendor}>"

    def _row(self) -> tuple[object, ...]:
        return (
            self.severity,
            self.code,
            self.netns,
            self.ifname,
            self.direction,
            self.vendor,
            self.vendor_priority,
            self.message,
        )

    def _repr_html_(self) -> str:
        return html_table(FINDING_COLUMNS, [self._row()]) + (
            f"<p>Fix: {html.escape(self.fix)}</p>" if self.fix else ""
        )


@attrs.frozen(kw_only=True)
class DeviceInfo:
    """A device that owns a clsact or legacy ``ingress`` qdisc (where clsact filters can be).

    :ivar netns: the namespace label.
    :ivar ifname: the device name.
    :ivar ifindex: the device index.
    :ivar qdisc: ``clsact`` or ``ingress`` (the legacy qdisc: ingress filters only, and it keeps
        clsact, so Datadog's egress classifier, out).
    :ivar ingress_block: the shared block its ingress filters come from (0: its own).
    :ivar egress_block: the same for egress.
    """

    netns: str
    ifname: str
    ifindex: int
    qdisc: str
    ingress_block: int = 0
    egress_block: int = 0

    def to_dict(self) -> dict[str, Any]:
        """:returns: the fields as a JSON-ready dict."""
        return fields_dict(self)


@attrs.frozen(kw_only=True)
class NamespaceInfo:
    """A network namespace that was scanned.

    :ivar label: how it is named in programs and findings (a name, a path, ``pid N``).
    :ivar id: its ``dev:inode``, when known.
    :ivar path: a path that opens it, when known.
    :ivar holders: what keeps it alive, e.g. ``pid 812 (containerd-shim)``,
        ``tid 90 of pid 88 (python3)``, ``mount /var/run/netns/blue``,
        ``fd 7 of pid 1203 (system-probe) [datadog agent]``: every mount and descriptor, the
        first few processes and threads (then ``and N more processes or threads``); empty when
        not looked up (a namespace given by name or path).
    """

    label: str
    id: str | None = None
    path: str | None = None
    holders: tuple[str, ...] = attrs.field(default=(), converter=_strs)

    def to_dict(self) -> dict[str, Any]:
        """:returns: the fields as a JSON-ready dict."""
        return fields_dict(self)

    def to_json(self) -> str:
        """:returns: ``json.dumps(self.to_dict(), ensure_ascii=False)``."""
        return dumps(self.to_dict())


def _coerce_findings(value: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(value)


def _coerce_recs(value: Mapping[str, int | None]) -> dict[str, int | None]:
    return dict(value)


@attrs.frozen(repr=False, kw_only=True)
class Assessment:
    """The verdict on a scan: findings and the classifier priority that would fix them.

    :ivar findings: every finding, errors first.
    :ivar classifier_priority: the Datadog classifier priority judged against.
    :ivar classifier_priority_source: where it came from (``caller``, ``default``, a file...).
    :ivar recommended_classifier_priority: the lowest blocking vendor priority minus one across
        the node; None when nothing needs a new priority or no priority can fix it.
    :ivar fixable_by_priority: True when some finding needs action and setting
        ``recommended_classifier_priority`` resolves every one of them; False when nothing needs
        action (see :attr:`ok`) or some finding cannot be fixed by a priority (``network-blind``,
        ``tcx-bypass``).
    :ivar recommendations: per namespace label, the priority that fixes that namespace's
        priority findings (None: none needed or none possible).
    """

    findings: tuple[Finding, ...] = attrs.field(converter=_coerce_findings)
    classifier_priority: int
    classifier_priority_source: str
    recommended_classifier_priority: int | None
    fixable_by_priority: bool
    recommendations: dict[str, int | None] = attrs.field(
        converter=_coerce_recs, factory=dict, hash=False
    )

    @property
    def ok(self) -> bool:
        """True when no finding is an error or a warning."""
        return not any(f.needs_action for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """:returns: ``findings``, ``classifier_priority`` (the contract's keys), then the rest."""
        return {**fields_dict(self), "ok": self.ok}

    def summary(self) -> str:
        """:returns: one sentence: how many findings and what to do overall."""
        errors = sum(f.severity == "error" for f in self.findings)
        warnings = sum(f.severity == "warning" for f in self.findings)
        head = (
            f"classifier priority {self.classifier_priority} "
            f"({self.classifier_priority_source}): {errors} error{'s' * (errors != 1)}, "
            f"{warnings} warning{'s' * (warnings != 1)}"
        )
        if self.ok:
            return head + "; nothing to do."
        if self.fixable_by_priority:
            return head + (
                f"; set the classifier priority to {self.recommended_classifier_priority}."
            )
        if self.recommended_classifier_priority is not None:
            return head + (
                f"; a classifier priority of {self.recommended_classifier_priority} fixes the "
                "priority findings, the others need network detection disabled or the vendor "
                "changed."
            )
        return head + "; no classifier priority fixes this: see each finding's fix."

    def table(self, max_rows: int = 20) -> str:
        """A report for people: a short table, each row's message by number, the distinct
        fixes, then the summary line.

        Up to ``max_rows`` findings, one row per finding. Beyond that (a node with hundreds of
        pod interfaces), one row per kind of finding (same severity, code, vendor, vendor
        priority and fix) with how many hooks and namespaces it covers, and the first one's
        message; :meth:`to_dict` and ``--json`` still list every finding.

        :param max_rows: the most findings shown one per row.
        :returns: plain text, lines joined by ``\\n``.
        """
        if not self.findings:
            return self.summary()
        if len(self.findings) <= max_rows:
            rows: list[tuple[object, ...]] = [
                (i, *f._row()[:-1]) for i, f in enumerate(self.findings, 1)
            ]
            lines = [render_table(("#", *FINDING_COLUMNS[:-1]), rows), ""]
            lines += [f"[{i}] {_printable(f.message)}" for i, f in enumerate(self.findings, 1)]
            numbered = list(enumerate(self.findings, 1))
        else:
            groups: dict[tuple[object, ...], list[Finding]] = {}
            for f in self.findings:
                key = (f.severity, f.code, f.vendor, f.vendor_priority, f.fix)
                groups.setdefault(key, []).append(f)
            rows = []
            lines = []
            numbered = []
            for i, members in enumerate(groups.values(), 1):
                first = members[0]
                namespaces = {f.netns for f in members if f.netns is not None}
                where = "/".join(x for x in (first.netns, first.ifname, first.direction) if x)
                rows.append(
                    (i, first.severity, first.code, first.vendor, first.vendor_priority,
                     len(members), len(namespaces), where or "node")
                )  # fmt: skip
                more = len(members) - 1
                lines.append(
                    f"[{i}] {_printable(first.message)}"
                    + (f" (and {more} more like it)" if more else "")
                )
                numbered.append((i, first))
            head = ("#", "severity", "code", "vendor", "prio", "hooks", "namespaces", "first at")
            lines = [render_table(head, rows), "", *lines]
        fixes: dict[str, list[int]] = {}
        for i, f in numbered:
            if f.fix:
                fixes.setdefault(f.fix, []).append(i)
        if fixes:
            lines.append("")
            lines += [
                f"fix for {', '.join(f'[{i}]' for i in nums)}: {fix}" for fix, nums in fixes.items()
            ]
        lines += ["", self.summary()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<Assessment ok={self.ok} {len(self.findings)} findings "
            f"classifier_priority={self.classifier_priority} "
            f"recommended={self.recommended_classifier_priority}>"
        )

    def _repr_html_(self) -> str:
        out = f"<p>{html.escape(self.summary())}</p>"
        if self.findings:
            out += html_table(
                (*FINDING_COLUMNS, "fix"), ((*f._row(), f.fix) for f in self.findings)
            )
        return out
