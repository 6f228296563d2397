"""A lean rtnetlink reader: links, clsact qdiscs and tc filters, decoded with ``struct`` only.

Why not pyroute2's decoder: on 1000 links it spends ~290 ms decoding whole link messages and
~170 µs per filter request against ~4 µs of kernel time (``docs/reference/kernel-tc.md#tc-speed``).
This module
decodes only the fields the inspector reports, straight from the receive buffer:

- ``RTM_GETLINK`` dump, with ``RTEXT_FILTER_SKIP_STATS`` so the kernel leaves the counters out:
  ifindex, ``IFLA_IFNAME`` and the ``IFLA_INFO_KIND`` (to spot netkit devices).
- "qdisc-first": one ``RTM_GETQDISC`` dump finds the devices owning a clsact (or ingress) qdisc,
  so filter dumps are sent only for those.
- ``RTM_GETTFILTER`` dumps per (ifindex, direction): the kernel returns nothing for ifindex 0
  and only the root qdisc's filters for parent 0 (``docs/reference/kernel-tc.md#tc-dump``).

The kernel allows one dump in flight per socket, and sizes each dump's skb from the largest read
seen on the socket, so the per-device filter dumps use their own socket with page-sized reads.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from collections.abc import Callable

from wpprotect.errors import CapabilityError, TCError

__all__ = [
    "EGRESS_PARENT",
    "INGRESS_PARENT",
    "Action",
    "FilterRecord",
    "LinkGoneError",
    "LinkRecord",
    "LinkStats",
    "RecordedReader",
    "RtnlReader",
    "parse_filter",
    "protocol_name",
]

# include/uapi/linux/netlink.h
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLM_F_DUMP_INTR = 0x10
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # errors do not echo the request back
# include/uapi/linux/rtnetlink.h
RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_NEWQDISC = 36
RTM_GETQDISC = 38
RTM_NEWTFILTER = 44
RTM_GETTFILTER = 46
RTEXT_FILTER_SKIP_STATS = 1 << 3
# include/uapi/linux/if_link.h
IFLA_IFNAME = 3
IFLA_LINKINFO = 18
IFLA_EXT_MASK = 29
IFLA_STATS64 = 23  # struct rtnl_link_stats64: rx_packets @0, tx_packets @8 (u64)
IFLA_INFO_KIND = 1
# TCA_* (rtnetlink.h) and TCA_BPF_* (pkt_cls.h)
TCA_KIND = 1
TCA_OPTIONS = 2
TCA_CHAIN = 11
TCA_INGRESS_BLOCK = 13
TCA_EGRESS_BLOCK = 14
#: ``tcm_ifindex`` of a filter dumped from a shared block (``TCM_IFINDEX_MAGIC_BLOCK``).
TCM_IFINDEX_MAGIC_BLOCK = 0xFFFFFFFF
TCA_BPF_ACT = 1
TCA_BPF_OPS_LEN = 4
TCA_BPF_NAME = 7
TCA_BPF_FLAGS = 8
TCA_BPF_FLAGS_GEN = 9
TCA_BPF_TAG = 10
TCA_BPF_ID = 11
NLA_TYPE_MASK = 0x3FFF  # strips NLA_F_NESTED / NLA_F_NET_BYTEORDER
# pkt_sched.h: TC_H_CLSACT = TC_H_INGRESS = 0xFFFFFFF1; clsact's own handle is ffff:0000.
TC_H_INGRESS = 0xFFFFFFF1
#: ``TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)``: the parent of ingress filters (``ffff:fff2``).
INGRESS_PARENT = 0xFFFFFFF2
#: ``TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS)``: the parent of egress filters (``ffff:fff3``).
EGRESS_PARENT = 0xFFFFFFF3

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_NLA = struct.Struct("=HH")
_U32 = struct.Struct("=I")
_ERRNO = struct.Struct("=i")
_TCMSG_BODY = struct.Struct("=iIII")  # ifindex, handle, parent, info (after family/pads)
_IFI_INDEX = struct.Struct("=i")
_RX_TX = struct.Struct("=QQ")  # rtnl_link_stats64.rx_packets, .tx_packets
_unpack_hdr = _NLMSGHDR.unpack_from
_unpack_nla = _NLA.unpack_from
_unpack_u32 = _U32.unpack_from
_unpack_body = _TCMSG_BODY.unpack_from
_ntohs = socket.ntohs
_BPF_KIND = struct.pack("=HH4s", 8, 1, b"bpf")  # the TCA_KIND attribute holding "bpf\0"
# nlmsghdr + ifinfomsg{family, pad, type, index, flags, change} + IFLA_EXT_MASK u32
_LINK_REQ = struct.Struct("=IHHII BBHiII HHI")
# nlmsghdr + tcmsg{family, pad1, pad2, ifindex, handle, parent, info}
_TC_REQ = struct.Struct("=IHHII BBHiIII")

# if_ether.h protocol numbers, as tc prints them.
_PROTOCOLS = {
    0x0003: "all",
    0x0800: "ip",
    0x86DD: "ipv6",
    0x0806: "arp",
    0x8100: "802.1Q",
    0x88A8: "802.1ad",
    0x8847: "mpls_uc",
}

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# With 4 KiB pages NLMSG_GOODSIZE is below 4096, so a 4096-byte read never truncates and keeps
# the kernel's dump skbs small; larger pages raise NLMSG_GOODSIZE to ~8 KiB (netlink.h).
SMALL_READ = 4096 if _PAGE <= 4096 else 8192
BIG_READ = 32768  # the kernel caps dump skbs at 32 KiB (SKB_WITH_OVERHEAD(32768))


def protocol_name(proto: int) -> str:
    """tc's name for an ethertype (``all``, ``ip``, ``ipv6``...), else ``0x%04x``."""
    return _PROTOCOLS.get(proto) or f"0x{proto:04x}"


class LinkRecord:
    """A device: its index, its name, and whether it is a netkit device (whose programs live
    on the device itself and are listed with the netkit attach types)."""

    # Plain slotted classes, not NamedTuple/attrs: creating those classes at import costs more
    # than the whole parse of a small namespace, and `wpprotect tc scan` is a short process.
    __slots__ = ("ifindex", "name", "netkit")

    def __init__(self, ifindex: int, name: str, netkit: bool) -> None:
        self.ifindex = ifindex
        self.name = name
        self.netkit = netkit

    def __repr__(self) -> str:
        return f"LinkRecord({self.ifindex}, {self.name!r}, netkit={self.netkit})"


class LinkStats:
    """A device's packet counters (``IFLA_STATS64``), as :meth:`RtnlReader.link_stats` read them.

    :ivar ifindex: the device index.
    :ivar name: the device name.
    :ivar rx_packets: packets received (what the ingress hooks see).
    :ivar tx_packets: packets transmitted (what went through the egress hooks).
    """

    __slots__ = ("ifindex", "name", "rx_packets", "tx_packets")

    def __init__(self, ifindex: int, name: str, rx_packets: int, tx_packets: int) -> None:
        self.ifindex = ifindex
        self.name = name
        self.rx_packets = rx_packets
        self.tx_packets = tx_packets

    def __repr__(self) -> str:
        return (
            f"LinkStats({self.ifindex}, {self.name!r}, rx={self.rx_packets}, tx={self.tx_packets})"
        )


class FilterRecord:
    """One tc filter as the kernel dumped it; the bpf fields are None/0 for other kinds.

    :ivar ifindex: the device.
    :ivar parent: ``INGRESS_PARENT`` or ``EGRESS_PARENT``.
    :ivar priority: ``tcm_info >> 16``.
    :ivar protocol: the EtherType, host byte order (3 = ETH_P_ALL).
    :ivar handle: the filter handle.
    :ivar chain: ``TCA_CHAIN``.
    :ivar kind: ``TCA_KIND`` (``bpf``, ``u32``...).
    :ivar name: ``TCA_BPF_NAME``, if set.
    :ivar prog_id: ``TCA_BPF_ID``.
    :ivar tag: ``TCA_BPF_TAG`` as 16 hex digits.
    :ivar flags: ``TCA_BPF_FLAGS`` (bit 0: direct-action).
    :ivar flags_gen: ``TCA_BPF_FLAGS_GEN`` or the kind's own flags attribute (skip_hw 1,
        skip_sw 2, in_hw 4, not_in_hw 8).
    :ivar actions: the filter's action list (``TCA_<KIND>_ACT``), in the order they run.
    :ivar match: None when the filter matches every packet of its protocol; else what it
        matches, as text (``u32 00000050/0000ffff at 20``...).
    :ivar terminal: False for a u32 key without flowid or actions (it never ends the walk).
    :ivar classic: a ``bpf`` filter running classic BPF bytecode (no program id).
    :ivar block: the shared block index the filter lives in (0: the device's own).
    """

    __slots__ = (
        "actions", "block", "chain", "classic", "flags", "flags_gen", "handle", "ifindex", "kind",
        "match", "name", "parent", "priority", "prog_id", "protocol", "tag", "terminal",
    )  # fmt: skip

    def __init__(  # noqa: PLR0917 - a record, built positionally on the hot path
        self, ifindex: int, parent: int, priority: int, protocol: int, handle: int, chain: int,
        kind: str, name: str | None, prog_id: int | None, tag: str | None, flags: int,
        flags_gen: int,
    ) -> None:  # fmt: skip
        self.ifindex = ifindex
        self.parent = parent
        self.priority = priority
        self.protocol = protocol
        self.handle = handle
        self.chain = chain
        self.kind = kind
        self.name = name
        self.prog_id = prog_id
        self.tag = tag
        self.flags = flags
        self.flags_gen = flags_gen
        self.actions: tuple[Action, ...] = ()
        self.match: str | None = None
        self.terminal = True
        self.classic = False
        self.block = 0

    @property
    def direction(self) -> str:
        """``ingress`` or ``egress``, from the parent (``ffff:fff2`` / ``ffff:fff3``)."""
        return "egress" if self.parent == EGRESS_PARENT else "ingress"

    def __repr__(self) -> str:
        return (
            f"FilterRecord(ifindex={self.ifindex}, {self.direction}, prio={self.priority}, "
            f"handle={self.handle:#x}, kind={self.kind!r}, name={self.name!r}, "
            f"prog_id={self.prog_id})"
        )


class LinkGoneError(TCError):
    """The device was removed while it was being read (``ENODEV``)."""


class _Truncated(Exception):
    pass


def _str(buf: bytearray | bytes, start: int, end: int) -> str:
    nul = buf.find(b"\0", start, end)
    return buf[start : end if nul < 0 else nul].decode("utf-8", "replace")


def _nla(buf: bytearray, off: int, end: int, want: int) -> tuple[int, int] | None:
    """The payload ``(start, end)`` of the first attribute of type ``want`` in ``buf[off:end]``."""
    while off + 4 <= end:
        alen, atype = _unpack_nla(buf, off)
        if alen < 4:
            return None
        if atype & NLA_TYPE_MASK == want:
            return off + 4, off + alen
        off += (alen + 3) & ~3
    return None


def _link_attr(buf: bytearray, start: int, end: int, want: int) -> str:
    """A string attribute of one link message (after nlmsghdr and ifinfomsg), or ``""``."""
    found = _nla(buf, start + 32, end, want)
    return "" if found is None else _str(buf, *found)


def _link_kind(buf: bytearray, start: int, end: int) -> str:
    """``IFLA_LINKINFO`` → ``IFLA_INFO_KIND`` of one link message, or ``""``."""
    info = _nla(buf, start + 32, end, IFLA_LINKINFO)
    kind = None if info is None else _nla(buf, *info, IFLA_INFO_KIND)
    return "" if kind is None else _str(buf, *kind)


class Action:
    """One action of a filter's action list, as the kernel dumped it.

    :ivar order: its place in the list (1 runs first).
    :ivar kind: ``mirred``, ``gact``...
    :ivar code: the control verdict it returns (``TC_ACT_*``, or ``TC_ACT_GOTO_CHAIN | n``);
        None when the kind's verdict cannot be read statically (``police``, ``bpf``...).
    :ivar detail: how ``tc`` would describe it (``mirred egress mirror dev 5``...).
    """

    __slots__ = ("code", "detail", "kind", "order")

    def __init__(self, order: int, kind: str, code: int | None, detail: str) -> None:
        self.order = order
        self.kind = kind
        self.code = code
        self.detail = detail

    def __repr__(self) -> str:
        return f"Action({self.order}, {self.kind!r}, code={self.code}, {self.detail!r})"


# TCA_ACT_* (pkt_cls.h) inside each numbered action nest.
TCA_ACT_KIND = 1
TCA_ACT_OPTIONS = 2
# The attribute holding each action kind's parameters, which start with ``tc_gen`` (index,
# capab, action, refcnt, bindcnt): the control verdict is the int at offset 8.
# include/uapi/linux/tc_act/tc_*.h.
_ACT_PARMS = {
    "gact": 2, "mirred": 2, "pedit": 2, "skbedit": 2, "vlan": 2, "tunnel_key": 2, "skbmod": 2,
    "sample": 2, "mpls": 2, "gate": 2, "simple": 2, "csum": 1, "nat": 1, "connmark": 1,
    "ct": 1, "ife": 1, "ctinfo": 3,
}  # fmt: skip
_MIRRED = {1: "egress redirect", 2: "egress mirror", 3: "ingress redirect", 4: "ingress mirror"}
# TCA_<KIND>_ACT and TCA_<KIND>_FLAGS per classifier kind (pkt_cls.h).
_KIND_ACT = {"bpf": 1, "u32": 7, "matchall": 2, "flower": 3, "basic": 3, "fw": 4, "route": 6,
             "flow": 9, "cgroup": 1}  # fmt: skip
_KIND_FLAGS = {"bpf": 9, "u32": 11, "matchall": 3, "flower": 22}
TCA_U32_SEL = 5
TCA_U32_LINK = 3
TCA_U32_DIVISOR = 4
TCA_U32_INDEV = 8
TCA_U32_MARK = 10
TC_U32_TERMINAL = 1
TCA_BASIC_EMATCHES = 2
# flower attributes that are not match keys: CLASSID 1, ACT 3, KEY_ETH_TYPE 8 (the filter's
# own protocol), FLAGS 22, IN_HW_COUNT.
_FLOWER_NOT_KEYS = frozenset({0, 1, 3, 8, 22, 92})
_FLOWER_KEYS = {2: "indev", 9: "ip_proto", 10: "src_ip", 12: "dst_ip", 14: "src_ip6",
                16: "dst_ip6", 18: "tcp src_port", 19: "tcp dst_port", 20: "udp src_port",
                21: "udp dst_port", 23: "vlan_id"}  # fmt: skip
_i32 = struct.Struct("=i").unpack_from
_be32 = struct.Struct("!I").unpack_from


def _nested(buf: bytearray | bytes, off: int, end: int) -> list[tuple[int, int, int]]:
    """``(type, payload start, payload end)`` of every attribute in ``buf[off:end]``."""
    out = []
    while off + 4 <= end:
        alen, atype = _unpack_nla(buf, off)
        if alen < 4:
            break
        out.append((atype & NLA_TYPE_MASK, off + 4, min(off + alen, end)))
        off += (alen + 3) & ~3
    return out


def parse_actions(buf: bytearray | bytes, start: int, end: int) -> tuple[Action, ...]:
    """Decode a ``TCA_<KIND>_ACT`` nest: one nest per action, numbered by its order.

    :returns: the actions sorted by order.
    """
    out = []
    for order, astart, aend in _nested(buf, start, end):
        kind = ""
        opts: tuple[int, int] | None = None
        for atype, pstart, pend in _nested(buf, astart, aend):
            if atype == TCA_ACT_KIND:
                kind = _str(buf, pstart, pend)
            elif atype == TCA_ACT_OPTIONS:
                opts = (pstart, pend)
        code: int | None = None
        detail = kind
        parms_type = _ACT_PARMS.get(kind)
        if parms_type is not None and opts is not None:
            parms = _nla(bytearray(buf) if isinstance(buf, bytes) else buf, *opts, parms_type)
            if parms is not None and parms[1] - parms[0] >= 12:
                (code,) = _i32(buf, parms[0] + 8)
                if kind == "mirred" and parms[1] - parms[0] >= 28:
                    (eaction,) = _i32(buf, parms[0] + 20)
                    (dev,) = _unpack_u32(buf, parms[0] + 24)
                    detail = f"mirred {_MIRRED.get(eaction, str(eaction))} dev {dev}"
        out.append(Action(order, kind, code, detail))
    out.sort(key=lambda a: a.order)
    return tuple(out)


def _u32_match(
    buf: bytearray | bytes, attrs: list[tuple[int, int, int]]
) -> tuple[str | None, bool]:
    """A u32 knode's match as text (None: every packet) and whether it is terminal."""
    parts: list[str] = []
    terminal = False
    for atype, pstart, pend in attrs:
        if atype == TCA_U32_SEL and pend - pstart >= 16:
            flags = buf[pstart]
            nkeys = buf[pstart + 2]
            terminal = bool(flags & TC_U32_TERMINAL)
            for k in range(nkeys):
                koff = pstart + 16 + 16 * k
                if koff + 16 > pend:
                    break
                (mask,) = _be32(buf, koff)
                (val,) = _be32(buf, koff + 4)
                (at,) = _i32(buf, koff + 8)
                if mask:
                    parts.append(f"u32 {val:08x}/{mask:08x} at {at}")
        elif atype == TCA_U32_LINK:
            (link,) = _unpack_u32(buf, pstart)
            parts.append(f"then hash table {link >> 20:x}:")
        elif atype == TCA_U32_INDEV:
            parts.append(f"indev {_str(buf, pstart, pend)}")
        elif atype == TCA_U32_MARK:
            parts.append("mark")
    return (" ".join(parts) or None), terminal


def _other_options(record: FilterRecord, buf: bytearray | bytes, start: int, end: int) -> bool:
    """Fill a non-bpf filter's actions, match and flags. False for a u32 hash table (not a
    classifier: ``tc`` prints it as ``fh 800: ht divisor 1``)."""
    kind = record.kind
    attrs = _nested(buf, start, end)
    act = _KIND_ACT.get(kind)
    flags = _KIND_FLAGS.get(kind)
    for atype, pstart, pend in attrs:
        if atype == act:
            record.actions = parse_actions(buf, pstart, pend)
        elif atype == flags and pend - pstart >= 4:
            (record.flags_gen,) = _unpack_u32(buf, pstart)
    if kind == "u32":
        if record.handle & 0xFFF == 0 or any(a[0] == TCA_U32_DIVISOR for a in attrs):
            return False
        record.match, record.terminal = _u32_match(buf, attrs)
    elif kind == "flower":
        keys = sorted({_FLOWER_KEYS.get(a[0], f"key {a[0]}") for a in attrs
                       if a[0] not in _FLOWER_NOT_KEYS})  # fmt: skip
        record.match = ("flower " + ", ".join(keys)) if keys else None
    elif kind == "basic":
        if any(a[0] == TCA_BASIC_EMATCHES for a in attrs):
            record.match = "basic ematch"
    elif kind != "matchall":
        record.match = f"{kind} classification"
    return True


def parse_filter(buf: bytearray | bytes, start: int, end: int) -> FilterRecord | None:
    """Decode one ``RTM_NEWTFILTER`` message (``buf[start:end]``, netlink header included).

    :returns: the filter, or None for the per-priority header message (handle 0) and for u32
        hash tables (handle ``ht:`` with node 0), which are not classifiers.
    """
    index, handle, fparent, info = _unpack_body(buf, start + 20)
    if handle == 0:
        # The (prio, protocol) header `tc` prints as "pref N bpf chain 0": every classifier
        # gives its filters a nonzero handle (cls_bpf, u32, flower... allocate one when asked
        # for 0), so handle 0 is only ever the header, which carries no TCA_OPTIONS.
        return None
    unpack_nla = _unpack_nla
    unpack_u32 = _unpack_u32
    name: str | None = None
    prog_id: int | None = None
    tag: str | None = None
    flags = flags_gen = chain = 0
    options: tuple[int, int] | None = None
    actions: tuple[Action, ...] = ()
    classic = False
    # tcf_fill_node puts TCA_KIND first; "bpf" is by far the common case, matched in one go.
    if buf[start + 36 : start + 44] == _BPF_KIND:
        kind = "bpf"
        off = start + 44
    else:
        kind = ""
        off = start + 36
    while off + 4 <= end:
        alen, atype = unpack_nla(buf, off)
        if alen < 4:
            break
        atype &= NLA_TYPE_MASK
        if atype == TCA_OPTIONS:
            if kind == "bpf":  # cls_bpf_dump(): NAME, ID, TAG, FLAGS, FLAGS_GEN
                sub = off + 4
                sub_end = off + alen
                while sub + 4 <= sub_end:
                    slen, stype = unpack_nla(buf, sub)
                    if slen < 4:
                        break
                    stype &= NLA_TYPE_MASK
                    if stype == TCA_BPF_NAME:
                        stop = sub + slen
                        if buf[stop - 1] == 0:  # nla_put_string includes the NUL
                            stop -= 1
                        name = buf[sub + 4 : stop].decode("utf-8", "replace")
                    elif stype == TCA_BPF_ID:
                        (prog_id,) = unpack_u32(buf, sub + 4)
                    elif stype == TCA_BPF_TAG:
                        tag = buf[sub + 4 : sub + slen].hex()
                    elif stype == TCA_BPF_FLAGS:
                        (flags,) = unpack_u32(buf, sub + 4)
                    elif stype == TCA_BPF_FLAGS_GEN:
                        (flags_gen,) = unpack_u32(buf, sub + 4)
                    elif stype == TCA_BPF_ACT:  # only on non-direct-action filters
                        actions = parse_actions(buf, sub + 4, sub + slen)
                    elif stype == TCA_BPF_OPS_LEN:  # classic BPF bytecode: no program id
                        classic = True
                    sub += (slen + 3) & ~3
            else:
                options = (off + 4, off + alen)
        elif atype == TCA_CHAIN:
            (chain,) = unpack_u32(buf, off + 4)
        elif atype == TCA_KIND:
            kind = _str(buf, off + 4, off + alen)
        off += (alen + 3) & ~3
    record = FilterRecord(
        index, fparent, info >> 16, _ntohs(info & 0xFFFF), handle, chain,
        kind, name, prog_id, tag, flags, flags_gen,
    )  # fmt: skip
    if kind == "bpf":
        if actions:
            record.actions = actions
        if classic:
            record.classic = True
    elif options is not None and not _other_options(record, buf, *options):
        return None  # a u32 hash table, not a classifier
    elif options is None and kind == "u32":
        return None
    return record


class RtnlReader:
    """Two ``NETLINK_ROUTE`` sockets bound to the namespace the calling thread is in.

    One socket serves the large link and qdisc dumps (32 KiB reads); the other, the many small
    per-device filter dumps (page-sized reads, so the kernel allocates small skbs).

    :raises CapabilityError: the sockets cannot be opened for lack of permission.
    """

    def __init__(self) -> None:
        try:
            self._big = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            self._small = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        except PermissionError as exc:
            raise CapabilityError("opening a netlink socket was refused") from exc
        for sock in (self._big, self._small):
            # Errors then do not echo the request back; older kernels lack the option.
            with contextlib.suppress(OSError):
                sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self._bigbuf = bytearray(BIG_READ)
        self._smallbuf = bytearray(SMALL_READ)
        self._filter_req = bytearray(_TC_REQ.size)
        self._seq = 0
        self.interrupted = False  #: a dump was marked NLM_F_DUMP_INTR (changed while read)
        #: ifindex → the kind of its ingress-slot qdisc (``clsact`` or ``ingress``).
        self.qdiscs: dict[int, str] = {}
        #: ifindex → (ingress block, egress block), for devices bound to shared blocks.
        self.blocks: dict[int, tuple[int, int]] = {}

    def close(self) -> None:
        """Close both sockets."""
        self._big.close()
        self._small.close()

    def __enter__(self) -> RtnlReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the dump loop -----------------------------------------------------------------------

    def _dump(
        self,
        sock: socket.socket,
        buf: bytearray,
        request: bytes,
        want: int,
        handle: Callable[[bytearray, int, int], None],
    ) -> bytearray:
        """Send a dump request and feed each ``want`` message to ``handle(buf, start, end)``.

        Returns the buffer used (it grows if the kernel ever sends more than fits).
        """
        while True:
            seq = self._seq = (self._seq + 1) & 0xFFFFFFFF
            sock.send(request[:8] + _U32.pack(seq) + request[12:])
            try:
                self._read(sock, buf, seq, want, handle)
                return buf
            except _Truncated:
                buf = bytearray(len(buf) * 2)  # then ask again: the partial dump is drained

    def _read(
        self,
        sock: socket.socket,
        buf: bytearray,
        seq: int,
        want: int,
        handle: Callable[[bytearray, int, int], None],
    ) -> None:
        unpack_hdr = _NLMSGHDR.unpack_from
        truncated = False
        size = len(buf)
        while True:
            # MSG_TRUNC makes netlink return the datagram's real length, so a short buffer is
            # noticed instead of silently losing messages.
            n = sock.recv_into(buf, size, socket.MSG_TRUNC)
            if n > size:
                truncated = True
                continue  # keep draining this dump; it is re-sent with a bigger buffer
            off = 0
            while off + 16 <= n:
                length, mtype, flags, mseq, _ = unpack_hdr(buf, off)
                if length < 16:
                    raise TCError("malformed netlink message from the kernel")
                if mseq != seq:
                    off += (length + 3) & ~3
                    continue  # a late reply to an earlier request
                if mtype == NLMSG_DONE:
                    if truncated:
                        raise _Truncated
                    return
                if mtype == NLMSG_ERROR:
                    (err,) = _ERRNO.unpack_from(buf, off + 16)
                    if err == 0:
                        return
                    if truncated:
                        raise _Truncated
                    raise OSError(-err, os.strerror(-err))
                if flags & NLM_F_DUMP_INTR:
                    self.interrupted = True
                if mtype == want and not truncated:
                    handle(buf, off, off + length)
                off += (length + 3) & ~3

    # -- links -------------------------------------------------------------------------------

    def links(self) -> list[LinkRecord]:
        """Every device in this namespace: (ifindex, name, link kind)."""
        out: list[LinkRecord] = []
        request = _LINK_REQ.pack(
            _LINK_REQ.size, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 0, 0,
            socket.AF_UNSPEC, 0, 0, 0, 0, 0,
            8, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS,
        )  # fmt: skip
        self._bigbuf = self._dump(self._big, self._bigbuf, request, RTM_NEWLINK, _on_link(out))
        return out

    def link_stats(self) -> dict[int, LinkStats]:
        """Every device's packet counters (``IFLA_STATS64``), by ifindex.

        A separate dump from :meth:`links`, which asks the kernel to leave the counters out
        (``RTEXT_FILTER_SKIP_STATS``) to keep the scan lean; this one asks for them.
        """
        out: dict[int, LinkStats] = {}
        request = _LINK_REQ.pack(
            _LINK_REQ.size, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 0, 0,
            socket.AF_UNSPEC, 0, 0, 0, 0, 0,
            8, IFLA_EXT_MASK, 0,
        )  # fmt: skip
        self._bigbuf = self._dump(self._big, self._bigbuf, request, RTM_NEWLINK, _on_stats(out))
        return out

    # -- qdiscs ------------------------------------------------------------------------------

    def clsact_devices(self) -> dict[int, tuple[int, ...]]:
        """ifindex → the filter parents to dump: both for clsact, ingress only for ``ingress``.

        Found with one qdisc dump for the whole namespace (the kernel ignores ``tcm_ifindex``
        in qdisc dumps, so asking per device costs O(N²);
        ``docs/reference/kernel-tc.md#tc-speed``). Also sets :attr:`qdiscs` (ifindex → ``clsact``
        or ``ingress``) and :attr:`blocks` (ifindex → ``(ingress block, egress block)`` for
        devices bound to shared blocks; 0: not shared).
        """
        out: dict[int, tuple[int, ...]] = {}
        self.qdiscs = {}
        self.blocks = {}
        on_qdisc = _on_qdisc(out, self.qdiscs, self.blocks)

        request = _TC_REQ.pack(
            _TC_REQ.size, RTM_GETQDISC, NLM_F_REQUEST | NLM_F_DUMP, 0, 0,
            socket.AF_UNSPEC, 0, 0, 0, 0, 0, 0,
        )  # fmt: skip
        self._bigbuf = self._dump(self._big, self._bigbuf, request, RTM_NEWQDISC, on_qdisc)
        return out

    # -- filters -----------------------------------------------------------------------------

    def filters(self, ifindex: int, parent: int) -> list[FilterRecord]:
        """The filters under one clsact direction of one device, in the kernel's run order.

        Per-priority header messages (handle 0, no ``TCA_OPTIONS``) are skipped.

        :raises LinkGoneError: the device no longer exists.
        """
        seq = self._seq = (self._seq + 1) & 0xFFFFFFFF
        req = self._filter_req
        _TC_REQ.pack_into(
            req, 0, _TC_REQ.size, RTM_GETTFILTER, NLM_F_REQUEST | NLM_F_DUMP, seq, 0,
            socket.AF_UNSPEC, 0, 0, ifindex, 0, parent, 0,
        )  # fmt: skip
        # The hot loop of a scan (one dump per clsact device and direction), so the generic
        # _dump() is inlined here: one send, usually one read holding every filter and DONE.
        sock = self._small
        buf = self._smallbuf
        size = len(buf)
        out: list[FilterRecord] = []
        try:
            sock.send(req)
            while True:
                n = sock.recv_into(buf, size, socket.MSG_TRUNC)
                if n > size:  # cannot happen with page-sized reads; take the careful path
                    self._drain(sock, buf, seq)
                    return self._filters_slow(ifindex, parent)
                off = 0
                while off + 16 <= n:
                    length, mtype, flags, mseq, _ = _unpack_hdr(buf, off)
                    if length < 16:
                        raise TCError("malformed netlink message from the kernel")
                    if mseq == seq:
                        if mtype == RTM_NEWTFILTER:
                            record = parse_filter(buf, off, off + length)
                            if record is not None:
                                if record.ifindex == -1:  # TCM_IFINDEX_MAGIC_BLOCK
                                    # A shared block's filter: it runs on this device too.
                                    record.block = record.parent
                                    record.ifindex = ifindex
                                    record.parent = parent
                                out.append(record)
                        elif mtype == NLMSG_DONE:
                            return out
                        elif mtype == NLMSG_ERROR:
                            (err,) = _ERRNO.unpack_from(buf, off + 16)
                            if err == 0:
                                return out
                            raise OSError(-err, os.strerror(-err))
                        if flags & NLM_F_DUMP_INTR:
                            self.interrupted = True
                    off += (length + 3) & ~3
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                raise LinkGoneError(f"device {ifindex} vanished while being read") from exc
            raise TCError(f"filter dump of device {ifindex} failed: {exc.strerror}") from exc

    def _drain(self, sock: socket.socket, buf: bytearray, seq: int) -> None:
        """Read and drop the rest of a dump (after a truncated read)."""
        with contextlib.suppress(_Truncated, OSError):
            self._read(sock, bytearray(BIG_READ), seq, -1, lambda *_: None)

    def _filters_slow(self, ifindex: int, parent: int) -> list[FilterRecord]:
        out: list[FilterRecord] = []
        on_filter = _on_filter(out, ifindex, parent)

        request = _TC_REQ.pack(
            _TC_REQ.size, RTM_GETTFILTER, NLM_F_REQUEST | NLM_F_DUMP, 0, 0,
            socket.AF_UNSPEC, 0, 0, ifindex, 0, parent, 0,
        )  # fmt: skip
        self._smallbuf = self._dump(
            self._small, bytearray(BIG_READ), request, RTM_NEWTFILTER, on_filter
        )
        return out


# -- message handlers, shared by the live reader and the recorded one ----------------------------

_Handler = Callable[[bytearray, int, int], None]


def _on_link(out: list[LinkRecord]) -> _Handler:
    """A handler appending each ``RTM_NEWLINK`` message's device to ``out``."""
    append = out.append
    unpack_nla = _unpack_nla
    unpack_index = _IFI_INDEX.unpack_from
    find = bytearray.find

    def on_link(buf: bytearray, start: int, end: int) -> None:
        (ifindex,) = unpack_index(buf, start + 20)
        alen, atype = unpack_nla(buf, start + 32)  # nlmsghdr (16) + ifinfomsg (16)
        if atype & NLA_TYPE_MASK == IFLA_IFNAME:  # first, as rtnl_fill_ifinfo puts it
            name = _str(buf, start + 36, start + 32 + alen)
        else:
            name = _link_attr(buf, start, end, IFLA_IFNAME)
        # Decoding ~40 attributes per link to find IFLA_LINKINFO costs more than the kernel
        # spends producing them; a C-speed search rules out all but netkit candidates.
        netkit = find(buf, b"netkit\0", start, end) >= 0 and _link_kind(buf, start, end) == (
            "netkit"
        )
        append(LinkRecord(ifindex, name, netkit))

    return on_link


def _on_stats(out: dict[int, LinkStats]) -> _Handler:
    """A handler storing each ``RTM_NEWLINK`` message's packet counters in ``out``."""
    unpack_index = _IFI_INDEX.unpack_from
    unpack_qq = _RX_TX.unpack_from

    def on_link(buf: bytearray, start: int, end: int) -> None:
        (ifindex,) = unpack_index(buf, start + 20)
        name = _link_attr(buf, start, end, IFLA_IFNAME)
        found = _nla(buf, start + 32, end, IFLA_STATS64)
        rx = tx = 0
        if found is not None and found[1] - found[0] >= 16:
            rx, tx = unpack_qq(buf, found[0])
        out[ifindex] = LinkStats(ifindex, name, rx, tx)

    return on_link


def _on_qdisc(
    out: dict[int, tuple[int, ...]], qdiscs: dict[int, str], blocks: dict[int, tuple[int, int]]
) -> _Handler:
    """A handler noting each clsact/ingress qdisc (see :meth:`RtnlReader.clsact_devices`)."""
    unpack_body = _TCMSG_BODY.unpack_from

    def on_qdisc(buf: bytearray, start: int, end: int) -> None:
        ifindex, _handle, parent, _info = unpack_body(buf, start + 20)
        if parent != TC_H_INGRESS:  # cheap test on the fixed header first
            return
        found = _nla(buf, start + 36, end, TCA_KIND)  # after nlmsghdr (16) + tcmsg (20)
        kind = "" if found is None else _str(buf, *found)
        if kind == "clsact":
            out[ifindex] = (INGRESS_PARENT, EGRESS_PARENT)
        elif kind == "ingress":
            out[ifindex] = (INGRESS_PARENT,)
        else:
            return
        qdiscs[ifindex] = kind
        # Shared blocks: only dumped when set (tc_fill_qdisc, net/sched/sch_api.c).
        ing = _nla(buf, start + 36, end, TCA_INGRESS_BLOCK)
        egr = _nla(buf, start + 36, end, TCA_EGRESS_BLOCK)
        if ing is not None or egr is not None:
            blocks[ifindex] = (
                0 if ing is None else _unpack_u32(buf, ing[0])[0],
                0 if egr is None else _unpack_u32(buf, egr[0])[0],
            )

    return on_qdisc


def _on_filter(out: list[FilterRecord], ifindex: int, parent: int) -> _Handler:
    """A handler appending each classifier of one filter dump to ``out``."""

    def on_filter(buf: bytearray, start: int, end: int) -> None:
        record = parse_filter(buf, start, end)
        if record is not None:
            if record.ifindex == -1:  # TCM_IFINDEX_MAGIC_BLOCK, as in RtnlReader.filters()
                record.block = record.parent
                record.ifindex = ifindex
                record.parent = parent
            out.append(record)

    return on_filter


def _replay(blob: bytes, want: int, handle: _Handler) -> None:
    """Feed each ``want`` message of a recorded dump (messages as the kernel sent them)."""
    buf = bytearray(blob)
    off = 0
    n = len(buf)
    while off + 16 <= n:
        length, mtype, _flags, _seq, _pid = _unpack_hdr(buf, off)
        if length < 16 or off + length > n:
            raise TCError("malformed netlink message in the recorded dump")
        if mtype == want:
            handle(buf, off, off + length)
        off += (length + 3) & ~3


class RecordedReader:
    """:class:`RtnlReader`'s reading methods over dumps recorded elsewhere (by the reader that
    runs inside an agent container, :mod:`wpprotect.tc._remote_reader`): the same messages go
    through the same decoding as a live read.

    :param qdiscs: the ``RTM_GETQDISC`` dump's messages, concatenated.
    :param links: the ``RTM_GETLINK`` dump's messages.
    :param filters: ``(ifindex, parent)`` → that filter dump's messages, or the errno it failed
        with.
    :param interrupted: a dump was marked ``NLM_F_DUMP_INTR``.
    """

    def __init__(
        self,
        qdiscs: bytes,
        links: bytes,
        filters: dict[tuple[int, int], bytes | int],
        *,
        interrupted: bool = False,
    ) -> None:
        self._qdisc_blob = qdiscs
        self._link_blob = links
        self._filters = filters
        self.interrupted = interrupted
        self.qdiscs: dict[int, str] = {}
        self.blocks: dict[int, tuple[int, int]] = {}

    def close(self) -> None:
        """Nothing to close (kept for :class:`RtnlReader`'s shape)."""

    def __enter__(self) -> RecordedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def links(self) -> list[LinkRecord]:
        """As :meth:`RtnlReader.links`."""
        out: list[LinkRecord] = []
        _replay(self._link_blob, RTM_NEWLINK, _on_link(out))
        return out

    def link_stats(self) -> dict[int, LinkStats]:
        """As :meth:`RtnlReader.link_stats` (the recording must have kept the counters)."""
        out: dict[int, LinkStats] = {}
        _replay(self._link_blob, RTM_NEWLINK, _on_stats(out))
        return out

    def clsact_devices(self) -> dict[int, tuple[int, ...]]:
        """As :meth:`RtnlReader.clsact_devices`."""
        out: dict[int, tuple[int, ...]] = {}
        self.qdiscs = {}
        self.blocks = {}
        _replay(self._qdisc_blob, RTM_NEWQDISC, _on_qdisc(out, self.qdiscs, self.blocks))
        return out

    def filters(self, ifindex: int, parent: int) -> list[FilterRecord]:
        """As :meth:`RtnlReader.filters`.

        :raises LinkGoneError: the device vanished while it was read (``ENODEV``).
        :raises TCError: the dump failed otherwise, or was not recorded.
        """
        blob = self._filters.get((ifindex, parent))
        if blob is None:
            raise TCError(f"the filter dump of device {ifindex} was not recorded")
        if isinstance(blob, int):
            if blob in (errno.ENODEV, errno.ENXIO):
                raise LinkGoneError(f"device {ifindex} vanished while being read")
            raise TCError(f"filter dump of device {ifindex} failed: {os.strerror(blob)}")
        out: list[FilterRecord] = []
        _replay(blob, RTM_NEWTFILTER, _on_filter(out, ifindex, parent))
        return out
