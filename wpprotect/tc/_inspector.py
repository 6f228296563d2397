"""``TCInspector``: read every clsact filter and tcx/netkit program, in one or all namespaces.

The scan, per namespace (a worker thread that ``setns()``-ed into it; no process is forked):

1. one ``RTM_GETQDISC`` dump finds the devices that own a clsact qdisc;
2. one ``RTM_GETLINK`` dump names every device and spots netkit devices;
3. one ``RTM_GETTFILTER`` dump per (clsact device, direction);
4. ``BPF_PROG_QUERY`` per device for tcx (and netkit) programs, in run order; its ifindex is
   resolved in the calling thread's namespace, which is why it runs in the same worker.

Then, in the calling thread, each program id is joined once with ``bpf_prog_info`` and given a
vendor and a verdict. Reading is read-only; ``probe=True`` (opt-in) test-runs every program
but Datadog's own with ``BPF_PROG_TEST_RUN`` on one packet per traffic class
(:data:`~wpprotect.tc._model.PACKET_CLASSES`), from the worker inside its namespace, with the skb
on the device and in the direction of the hook it is attached to.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import struct
from collections.abc import Callable, Iterable
from typing import Any, Literal

import attrs

from wpprotect.errors import BPFError, CapabilityError, InvalidArgumentError, TCError
from wpprotect.tc import _bpf, _bpfsys, _caps, _measure, _netlink, _netns
from wpprotect.tc._model import DeviceInfo, NamespaceInfo, TCProgram, protocol_classes
from wpprotect.tc._report import TCReport
from wpprotect.tc._vendors import DATADOG, identify, resolve_verdict, signatures
from wpprotect.tc._verdicts import action_list_verdict, action_name, probe_summary

__all__ = ["TCInspector"]

log = logging.getLogger(__name__)


# include/uapi/linux/bpf.h
BPF_TCX_INGRESS = _bpf.BPF_TCX_INGRESS
BPF_TCX_EGRESS = _bpf.BPF_TCX_EGRESS
BPF_NETKIT_PRIMARY = _bpf.BPF_NETKIT_PRIMARY
BPF_NETKIT_PEER = _bpf.BPF_NETKIT_PEER
# tcx: ingress/egress as named. netkit (drivers/net/netkit.c): each device runs its own
# programs when it transmits; PEER programs are the peer's (what the pod sends), so they run
# before the primary's ingress hooks; PRIMARY programs run when the primary transmits, after its
# egress hooks, on the way into the pod. _model's docstring and _assess's walk place them so.
_HOOKS: dict[int, tuple[Literal["tcx", "netkit"], Literal["ingress", "egress"]]] = {
    BPF_TCX_INGRESS: ("tcx", "ingress"),
    BPF_TCX_EGRESS: ("tcx", "egress"),
    BPF_NETKIT_PEER: ("netkit", "ingress"),
    BPF_NETKIT_PRIMARY: ("netkit", "egress"),
}
_NETKIT_TYPES = (BPF_NETKIT_PRIMARY, BPF_NETKIT_PEER)
_ATTACH_NAMES = {
    BPF_TCX_INGRESS: "tcx ingress",
    BPF_TCX_EGRESS: "tcx egress",
    BPF_NETKIT_PRIMARY: "netkit primary",
    BPF_NETKIT_PEER: "netkit peer",
}
# What the join learns per (program, filter name, hook): prog_name, prog_tag, vendor, verdict,
# verdict_source, run_cnt, run_time_ns, load_time_ns.
_Details = tuple[str | None, str | None, str, str | None, Any, int | None, int | None, int | None]
_GEN_FLAGS = ((1, "skip_hw"), (2, "skip_sw"), (4, "in_hw"), (8, "not_in_hw"), (16, "verbose"))
# What a probe learned per (prog id, ifindex, attach, direction, protocol): class -> return code
# (None: the test run failed, a warning says why).
_ProbeKey = tuple[int, int, str, str, str]
_Probes = dict[_ProbeKey, "dict[str, int] | None"]


@attrs.define(eq=False)
class _HookProg:
    """A tcx/netkit program as ``BPF_PROG_QUERY`` listed it."""

    ifindex: int
    attach_type: int
    position: int
    prog_id: int
    link_id: int
    revision: int


@attrs.define(eq=False)
class _RawNetns:
    """What one worker read in one namespace, before the program join."""

    ref: _netns.NetnsRef
    names: dict[int, str]
    filters: list[_netlink.FilterRecord]
    hooks: list[_HookProg]
    warnings: list[str]
    tcx_supported: bool | None
    #: bpf_prog_info of every program id seen (None: it vanished before it was read).
    progs: dict[int, _bpfsys.ProgFields | None] = attrs.Factory(dict)
    #: ifindex → ``clsact`` / ``ingress``; ifindex → (ingress block, egress block).
    qdiscs: dict[int, str] = attrs.Factory(dict)
    blocks: dict[int, tuple[int, int]] = attrs.Factory(dict)
    #: with probe=True: what each program returned per traffic class, per hook.
    probes: _Probes = attrs.Factory(dict)


def _hw_flags(flags_gen: int) -> tuple[str, ...]:
    return tuple(name for bit, name in _GEN_FLAGS if flags_gen & bit)


def _device_mac(ifname: str) -> bytes | None:
    """The device's MAC address (``SIOCGIFHWADDR`` on a socket of the calling thread's
    namespace), so probe frames are addressed as the device's own traffic; None if unreadable."""
    import fcntl  # only when probing
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            got = fcntl.ioctl(sock, 0x8927, struct.pack("16s16x", ifname.encode()[:15]))
    except OSError:
        return None
    return bytes(got[18:24])


def _probe_hooks(
    label: str,
    *,
    names: dict[int, str],
    filters: list[_netlink.FilterRecord],
    hooks: list[_HookProg],
    progs: dict[int, _bpfsys.ProgFields | None],
    warnings: list[str],
) -> _Probes:
    """Test-run every program of this namespace's hooks (not Datadog's own) on one packet per
    traffic class, with the skb on its device, received for ingress hooks.

    Runs in the thread that entered the namespace: test runs look the device up there.
    """
    table = signatures()
    probes: _Probes = {}
    macs: dict[int, bytes | None] = {}
    egress = _netlink.EGRESS_PARENT
    targets: list[tuple[_ProbeKey, str]] = []  # key, filter name
    for f in filters:
        if f.kind != "bpf" or f.prog_id is None or f.flags_gen & 2:  # skip_sw: not run
            continue
        direction = "egress" if f.parent == egress else "ingress"
        key = (f.prog_id, f.ifindex, "clsact", direction, _netlink.protocol_name(f.protocol))
        targets.append((key, f.name or ""))
    for h in hooks:
        kind, way = _HOOKS[h.attach_type]
        targets.append(((h.prog_id, h.ifindex, kind, way, "all"), ""))
    for key, filter_name in targets:
        prog_id, ifindex, attach, direction, protocol = key
        if key in probes:
            continue
        info = progs.get(prog_id)
        if info is None:
            continue  # vanished: nothing to run
        if identify(filter_name or info[3], info[3], table=table).name == DATADOG.name:
            continue  # Datadog's own: its verdict is documented, and a run could raise events
        classes = protocol_classes(protocol)
        if not classes:
            continue  # an EtherType none of the probe packets has
        if attach == "netkit":
            # Both netkit hooks run on a transmit path (drivers/net/netkit.c); a PEER program
            # runs on the peer, whose index is another namespace's: no device is given.
            ctx_direction, ctx_ifindex = "egress", (ifindex if direction == "egress" else 0)
        else:
            ctx_direction, ctx_ifindex = direction, ifindex
        if ctx_ifindex and ctx_ifindex not in macs:
            macs[ctx_ifindex] = _device_mac(names.get(ctx_ifindex, ""))
        try:
            probes[key] = _bpf.probe_classes(
                prog_id,
                direction=ctx_direction,
                ifindex=ctx_ifindex,
                mac=macs.get(ctx_ifindex),
                classes=classes,
            )
        except BPFError as exc:
            probes[key] = None
            if exc.errno == errno.ENODEV and ctx_ifindex:
                detail = f"device {names.get(ifindex, ifindex)} vanished"
            else:
                detail = str(exc)
            warnings.append(
                f"{label}: program {prog_id} could not be test-run ({detail}); its verdict is "
                "not probed"
            )
    return probes


class RecordedNetns:
    """One namespace's kernel records, read elsewhere (inside an agent container, by
    :mod:`wpprotect.tc._remote_reader`), for :func:`read_netns` to replay through the same
    decoding as a live read.

    :param reader: the recorded netlink dumps.
    :param hooks: ``(ifindex, attach_type)`` → ``BPF_PROG_QUERY``'s answer as
        :data:`~wpprotect.tc._bpfsys.QueryTuple`, or the errno it failed with.
    :param progs: program id → its ``bpf_prog_info`` fields, None when it vanished, or the errno
        reading it failed with.
    """

    __slots__ = ("hooks", "progs", "reader")

    def __init__(
        self,
        reader: _netlink.RecordedReader,
        hooks: dict[tuple[int, int], _bpfsys.QueryTuple | int],
        progs: dict[int, _bpfsys.ProgFields | int | None],
    ) -> None:
        self.reader = reader
        self.hooks = hooks
        self.progs = progs

    def query(self, ifindex: int, attach_type: int) -> _bpfsys.QueryTuple | None:
        """As :func:`wpprotect.tc._bpfsys.query`, from the records."""
        found = self.hooks.get((ifindex, attach_type))
        if found is None or found == errno.EINVAL:
            return None
        if isinstance(found, int):
            _bpfsys.raise_error(found, _bpfsys.BPF_PROG_QUERY, f"ifindex {ifindex}")
        return found

    def prog_fields(self, prog_id: int) -> _bpfsys.ProgFields | None:
        """As :func:`wpprotect.tc._bpfsys.prog_fields`, from the records."""
        found = self.progs.get(prog_id)
        if isinstance(found, int):
            _bpfsys.raise_error(found, _bpfsys.BPF_OBJ_GET_INFO_BY_FD, f"prog {prog_id}")
        return found


def read_netns(
    ref: _netns.NetnsRef,
    *,
    tcx: bool = True,
    info_cache: dict[int, _bpfsys.ProgFields | None] | None = None,
    probe: bool = False,
    recorded: RecordedNetns | None = None,
) -> _RawNetns:
    """Read the clsact filters and tcx/netkit programs of one namespace, and the
    ``bpf_prog_info`` of each program they run.

    Runs in the calling thread, which enters ``ref`` for the duration (and comes back).

    :param ref: the namespace.
    :param tcx: also ask ``BPF_PROG_QUERY`` for tcx/netkit programs.
    :param info_cache: program infos already read in this scan (programs are shared across
        namespaces), filled in here.
    :param probe: test-run each program on one packet per traffic class, inside the namespace.
    :param recorded: replay these records instead of reading the kernel (no namespace is
        entered; ``probe`` must be False).
    :raises NetnsGoneError: the namespace vanished before it could be entered.
    """
    warnings: list[str] = []
    filters: list[_netlink.FilterRecord] = []
    hooks: list[_HookProg] = []
    tcx_supported: bool | None = None
    if recorded is not None and probe:
        raise InvalidArgumentError("recorded namespaces cannot be probed")
    entered = contextlib.nullcontext() if recorded is not None else _netns.entered(ref)
    fetch_fields = _bpfsys.prog_fields if recorded is None else recorded.prog_fields
    # The live reader's sockets bind to the namespace they are opened in: opened once inside.
    with entered, recorded.reader if recorded is not None else _netlink.RtnlReader() as reader:
        # qdiscs before links: a device created in between is then still named.
        devices = reader.clsact_devices()
        qdiscs = reader.qdiscs
        blocks = reader.blocks
        links = reader.links()
        names = {link.ifindex: link.name for link in links}
        for ifindex in sorted(devices):
            for parent in devices[ifindex]:
                try:
                    filters.extend(reader.filters(ifindex, parent))
                except _netlink.LinkGoneError:
                    warnings.append(
                        f"{ref.label}: device {names.get(ifindex, ifindex)} vanished during "
                        "the scan; skipped"
                    )
                    break
        if reader.interrupted:
            warnings.append(
                f"{ref.label}: devices changed while they were listed; run the scan again "
                "for a consistent picture"
            )
        if tcx:
            query = _bpfsys.query if recorded is None else recorded.query
            tcx_types: tuple[int, ...] = (BPF_TCX_INGRESS, BPF_TCX_EGRESS)
            netkit_types = (*tcx_types, BPF_NETKIT_PEER, BPF_NETKIT_PRIMARY)
            for link in links:
                for attach_type in netkit_types if link.netkit else tcx_types:
                    try:
                        result = query(link.ifindex, attach_type)
                    except BPFError as exc:
                        if exc.errno == errno.ENODEV:
                            warnings.append(
                                f"{ref.label}: device {link.name} vanished during the scan; "
                                "its tcx programs were not read"
                            )
                            break
                        if attach_type in _NETKIT_TYPES and exc.errno in (
                            errno.EACCES,
                            errno.ENXIO,
                        ):
                            # A netkit peer answers EACCES: its programs are listed (and
                            # attached) through its primary only (drivers/net/netkit.c).
                            break
                        # One device's failure is that device's, never the namespace's.
                        warnings.append(
                            f"{ref.label}: device {link.name}: its "
                            f"{_ATTACH_NAMES.get(attach_type, attach_type)} programs could not "
                            f"be read ({exc}); the rest of the namespace was"
                        )
                        continue
                    if result is None:
                        # EINVAL: no tcx in this kernel (before 6.6), or a netkit type the
                        # device does not take (e.g. its peer side).
                        if attach_type in tcx_types:
                            tcx_supported = False
                            tcx_types = ()  # the kernel will not answer for other devices
                            netkit_types = (BPF_NETKIT_PEER, BPF_NETKIT_PRIMARY)
                        continue
                    if tcx_supported is None and attach_type in tcx_types:
                        tcx_supported = True
                    prog_ids, link_ids, _flags, revision = result
                    if prog_ids:
                        hooks.extend(
                            _HookProg(link.ifindex, attach_type, pos, pid, lid, revision)
                            for pos, (pid, lid) in enumerate(zip(prog_ids, link_ids, strict=False))
                        )
        # Program info needs no namespace: one BPF_OBJ_GET_INFO_BY_FD per program id of the
        # scan. Probes do: test runs look the device up in the calling thread's namespace.
        cache = {} if info_cache is None else info_cache
        progs: dict[int, _bpfsys.ProgFields | None] = {}
        for prog_id in {f.prog_id for f in filters if f.prog_id is not None} | {
            h.prog_id for h in hooks
        }:
            if prog_id not in cache:
                cache[prog_id] = fetch_fields(prog_id)
            progs[prog_id] = cache[prog_id]
        probes = (
            _probe_hooks(
                ref.label,
                names=names,
                filters=filters,
                hooks=hooks,
                progs=progs,
                warnings=warnings,
            )
            if probe
            else {}
        )
    return _RawNetns(
        ref, names, filters, hooks, warnings, tcx_supported, progs, qdiscs, blocks, probes
    )


class TCInspector:
    """Finds every eBPF traffic-control program that may run before Datadog's classifier.

    Example::

        report = wpprotect.TCInspector(netns="all").scan()
        for finding in report.assess().findings: ...

    :param netns: ``"all"`` (every namespace on the host), ``None`` (the current one), a name
        (``/var/run/netns`` or ``/var/run/docker/netns``) or a path (``/proc/<pid>/ns/net``, a
        bind mount). A namespace is never created.
    :param probe: test-run every program (``BPF_PROG_TEST_RUN``), documented vendors' too but
        not Datadog's own, on one packet per traffic class (IPv4 TCP SYN, IPv4 UDP/53, ICMP
        echo, IPv6 TCP SYN, IPv6 UDP/53, ARP) as its hook would see them, to learn its verdict
        per class (``TCProgram.probes``); a probe wins over a documented verdict. Off by
        default: scanning is read-only, probing runs the programs (their maps may change).
    :param classifier_priority: Datadog's classifier priority to judge against, stored in the
        report; None lets :meth:`TCReport.assess` use its argument, else the default 10 (no
        file is read: pass the agent's configured value to judge against it).
    :param tcx: also list tcx/netkit programs (``BPF_PROG_QUERY`` per device).
    """

    def __init__(
        self,
        netns: str | os.PathLike[str] | None = "all",
        *,
        probe: bool = False,
        classifier_priority: int | None = None,
        tcx: bool = True,
    ) -> None:
        if classifier_priority is not None and not 1 <= classifier_priority <= 65535:
            raise InvalidArgumentError(
                f"classifier_priority must be in 1..65535, got {classifier_priority}",
                key="runtime_security_config.network.classifier_priority",
            )
        self.netns = netns
        self.probe = probe
        self.classifier_priority = classifier_priority
        self.tcx = tcx
        # Test hook: called with each namespace just before it is read (e.g. to delete it).
        self._before_read: Callable[[_netns.NetnsRef], None] | None = None

    def __repr__(self) -> str:
        return f"<TCInspector netns={self.netns!r} probe={self.probe}>"

    # -- public ------------------------------------------------------------------------------

    def namespaces(self) -> list[_netns.NetnsRef]:
        """The namespaces a scan would read (nothing is opened or created).

        :raises NetnsNotFoundError: a name or path that does not exist.
        """
        if self.netns == "all":
            return _netns.list_netns()
        return [_netns.resolve_netns(self.netns)]

    def scan(self) -> TCReport:
        """Read every clsact filter and tcx/netkit program, with program details and vendor.

        :returns: the report; :meth:`TCReport.assess` judges it.
        :raises CapabilityError: not root: names the missing capability (CAP_NET_ADMIN for
            tcx queries, CAP_SYS_ADMIN to read program details and enter namespaces).
        :raises NetnsNotFoundError: the namespace asked for does not exist (nothing is created).
        """
        # Checked before anything is opened: one clear error instead of a partial report.
        _caps.require("CAP_NET_ADMIN", "CAP_SYS_ADMIN")
        notes: list[_RawNetns | str] = []
        if self.netns == "all":
            # Every namespace with what holds it; what could not be read becomes a warning.
            found = _netns.discover()
            refs, notes = found.refs, [*found.warnings]
        else:
            refs = self.namespaces()
        return self._report([*notes, *self._read_all(refs)])

    def measure(self, seconds: float = 10.0) -> _measure.TCMeasurement:
        """Measure whether Datadog's classifiers ran for the traffic their devices carried.

        Holds BPF run-time statistics on for ``seconds`` and compares, per hook carrying
        Datadog's classifier, its run count with the device's packet counter
        (:mod:`wpprotect.tc._measure`). Read-only: nothing is attached or sent.

        :param seconds: the measurement window.
        :returns: the measurement (``measured-blind`` findings, idle hooks reported as idle).
        :raises CapabilityError: not root.
        :raises NetnsNotFoundError: the namespace asked for does not exist.
        """
        return _measure.measure(self.scan, seconds)

    # -- internals ---------------------------------------------------------------------------

    def _report(self, raws: list[_RawNetns | str]) -> TCReport:
        """The report of what the readers returned (a string: a namespace skipped, and why)."""
        warnings: list[str] = []
        tcx_supported: bool | None = None
        for raw in raws:
            if isinstance(raw, str):
                warnings.append(raw)
                continue
            warnings.extend(raw.warnings)
            if raw.tcx_supported is not None:
                tcx_supported = (
                    raw.tcx_supported
                    if tcx_supported is None
                    else (tcx_supported and raw.tcx_supported)
                )
        done = [r for r in raws if not isinstance(r, str)]
        programs = self._join(done, warnings)
        devices = [
            DeviceInfo(
                netns=r.ref.label,
                ifname=r.names.get(ifindex) or f"ifindex {ifindex}",
                ifindex=ifindex,
                qdisc=kind,
                ingress_block=r.blocks.get(ifindex, (0, 0))[0],
                egress_block=r.blocks.get(ifindex, (0, 0))[1],
            )
            for r in done
            for ifindex, kind in r.qdiscs.items()
        ]
        return TCReport(
            programs=programs,
            namespaces=[
                NamespaceInfo(
                    label=r.ref.label, id=r.ref.id, path=r.ref.path, holders=r.ref.holder_labels()
                )
                for r in done
            ],
            warnings=warnings,
            tcx_supported=tcx_supported,
            probe=self.probe,
            classifier_priority=self.classifier_priority,
            classifier_priority_source=None if self.classifier_priority is None else "caller",
            devices=devices,
        )

    def _read_one(
        self,
        ref: _netns.NetnsRef,
        info_cache: dict[int, _bpfsys.ProgFields | None] | None = None,
    ) -> _RawNetns | str:
        if self._before_read is not None:
            self._before_read(ref)
        try:
            return read_netns(ref, tcx=self.tcx, info_cache=info_cache, probe=self.probe)
        except _netns.NetnsGoneError as exc:
            log.info("skipping %s: %s", ref.label, exc)
            return f"{ref.label}: network namespace vanished during the scan; skipped"
        except CapabilityError:
            raise
        except TCError as exc:
            if self.netns != "all":
                raise
            # One unreadable namespace must not hide what the others hold.
            log.warning("skipping %s: %s", ref.label, exc)
            return f"{ref.label}: could not be read ({exc}); skipped"

    def _read_all(self, refs: list[_netns.NetnsRef]) -> list[_RawNetns | str]:
        # Each program's info is read once per scan (it sits on many devices and namespaces),
        # and afresh at the next scan (its run counters move).
        cache: dict[int, _bpfsys.ProgFields | None] = {}
        # Namespaces are read one after the other: decoding holds the interpreter lock, so
        # reader threads only added switching (100 namespaces: 48 ms with 1 thread, 81 ms with 3).
        # One worker thread, never the calling one (docs: _netns.run_in_thread).
        return _netns.run_in_thread(lambda: [self._read_one(ref, cache) for ref in refs])

    def _join(self, raws: Iterable[_RawNetns], warnings: list[str]) -> list[TCProgram]:
        """Build the programs: program info once per id, vendor, verdict."""
        table = signatures()  # once for the whole join (it takes a lock)
        memo: dict[tuple[int | None, str, str], _Details] = {}
        infos: dict[int | None, tuple[Any, ...]] = {}
        out: list[TCProgram] = []

        def details(prog_id: int | None, filter_name: str, attach: str, ns: str) -> _Details:
            # The same program often sits on hundreds of devices under the same filter name.
            key = (prog_id, filter_name, attach)
            found = memo.get(key)
            if found is None:
                found = memo[key] = _details(prog_id, filter_name, attach, ns)
            return found

        def prog_fields(prog_id: int | None) -> tuple[Any, ...]:
            # Per program, whatever its filter names: the bpf_prog_info fields the reader read.
            found = infos.get(prog_id)
            if found is None:
                info = None if prog_id is None else progs.get(prog_id)
                # id, type, tag, name, load_time_ns, run_cnt, run_time_ns, ... (ProgFields)
                found = infos[prog_id] = (
                    (info, None, None, None, None, None)
                    if info is None
                    else (info, info[3], info[2], info[5], info[6], info[4])
                )  # fmt: skip
            return found

        def _details(prog_id: int | None, filter_name: str, attach: str, ns: str) -> _Details:
            _info, prog_name, tag, run_cnt, run_time_ns, load_time_ns = prog_fields(prog_id)
            sig = identify(filter_name or prog_name, prog_name, table=table)
            verdict, source = resolve_verdict(sig, attach, None)
            return (prog_name, tag, sig.name, verdict, source, run_cnt, run_time_ns, load_time_ns)

        hw_flags: dict[int, tuple[str, ...]] = {}
        egress = _netlink.EGRESS_PARENT
        not_bpf: _Details = (None, None, "unknown", None, None, None, None, None)
        protocols: dict[int, str] = {}
        progs: dict[int, _bpfsys.ProgFields | None] = {}
        for raw in raws:
            progs.update(raw.progs)
        for raw in raws:
            label = raw.ref.label
            ns_id = raw.ref.id
            names = raw.names
            for hook in raw.hooks:
                attach, direction = _HOOKS[hook.attach_type]
                prog_name, tag, vendor, verdict, source, run_cnt, run_time, load_time = details(
                    hook.prog_id, "", attach, label
                )
                probes = None
                found = raw.probes.get((hook.prog_id, hook.ifindex, attach, direction, "all"))
                if found:
                    probes, verdict = probe_summary(found, attach)
                    source = "probed"
                out.append(
                    TCProgram(
                        netns=label,
                        netns_id=ns_id,
                        ifname=names.get(hook.ifindex) or f"ifindex {hook.ifindex}",
                        ifindex=hook.ifindex,
                        direction=direction,
                        attach=attach,
                        protocol="all",
                        name=prog_name if isinstance(prog_name, str) else "",
                        prog_id=hook.prog_id,
                        link_id=hook.link_id or None,
                        position=hook.position,
                        prog_name=prog_name,
                        prog_tag=tag,
                        vendor=vendor,
                        verdict=verdict,
                        verdict_source=source,
                        run_cnt=run_cnt,
                        run_time_ns=run_time,
                        load_time_ns=load_time,
                        probes=probes,
                    )
                )
            qdiscs = raw.qdiscs
            for f in raw.filters:
                is_bpf = f.kind == "bpf"
                prog_name, tag, vendor, verdict, source, run_cnt, run_time, load_time = (
                    details(f.prog_id, f.name or "", "clsact", label) if is_bpf else not_bpf
                )
                actions: tuple[str, ...] = ()
                action_verdict: str | None = None
                if f.actions:
                    actions = tuple(f"{a.detail} {action_name(a.code) or '?'}" for a in f.actions)
                if f.actions or not is_bpf or not f.flags & 1:
                    action_verdict = action_name(action_list_verdict([a.code for a in f.actions]))
                if not is_bpf:
                    # A non-bpf filter's verdict is its configuration, dumped by the kernel.
                    verdict = action_verdict if f.terminal else "unspec"
                    source = "decoded" if verdict is not None else "assumed"

                gen = hw_flags.get(f.flags_gen)
                if gen is None:
                    gen = hw_flags[f.flags_gen] = _hw_flags(f.flags_gen)
                proto = protocols.get(f.protocol)
                if proto is None:
                    proto = protocols[f.protocol] = _netlink.protocol_name(f.protocol)
                direction = "egress" if f.parent == egress else "ingress"
                probes = None
                if raw.probes and f.prog_id is not None:
                    found = raw.probes.get((f.prog_id, f.ifindex, "clsact", direction, proto))
                    if found:
                        probes, verdict = probe_summary(found, "clsact", bool(f.flags & 1))
                        source = "probed"
                out.append(
                    TCProgram(
                        netns=label,
                        ifname=names.get(f.ifindex) or f"ifindex {f.ifindex}",
                        ifindex=f.ifindex,
                        direction=direction,
                        attach="clsact",
                        priority=f.priority,
                        handle=f.handle,
                        protocol=proto,
                        name=f.name or "",
                        prog_id=f.prog_id,
                        prog_name=prog_name,
                        prog_tag=tag,
                        direct_action=bool(f.flags & 1) if is_bpf else None,
                        vendor=vendor,
                        netns_id=ns_id,
                        chain=f.chain,
                        kind=f.kind,
                        hw_flags=gen,
                        verdict=verdict,
                        verdict_source=source,
                        run_cnt=run_cnt,
                        run_time_ns=run_time,
                        load_time_ns=load_time,
                        qdisc=qdiscs.get(f.ifindex, "clsact"),
                        block=f.block or None,
                        match=f.match,
                        actions=actions,
                        action_verdict=action_verdict,
                        probes=probes,
                    )
                )
        return out
