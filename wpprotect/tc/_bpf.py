"""The few ``bpf(2)`` commands the TC inspector needs, through ctypes (no libbpf, no clang).

Everything here is a thin, typed wrapper over one syscall command, with the ``union bpf_attr``
offsets taken from the kernel UAPI header (``include/uapi/linux/bpf.h``, as listed in
``docs/reference/kernel-tc.md#tc-bpf-syscall`` and checked on Linux 6.18):

- reading: :func:`prog_get_fd_by_id`, :func:`prog_info`,
  :func:`prog_query` (tcx / netkit attachments of one device);
- probing: :func:`prog_test_run`, :func:`test_packet`, :func:`probe_verdict`,
  :func:`probe_packets`, :func:`probe_classes`;
- writing (used by the lab and tests only; the inspector never calls them):
  :func:`prog_load_return`, :func:`link_create`, :func:`prog_attach`, :func:`prog_detach`,
  :func:`enable_stats`;
- privileges: :func:`capabilities`, :func:`require`;
- verdicts: the ``TC_ACT_*`` / ``TCX_*`` constants, :func:`verdict_name`, :func:`stops_chain`.

Errors: a failing call raises :class:`~wpprotect.errors.BPFError` with ``errno`` set; ``EPERM``
raises :class:`~wpprotect.errors.CapabilityError` naming CAP_BPF / CAP_SYS_ADMIN instead.

.. note::
   ``BPF_PROG_QUERY`` and ``BPF_LINK_CREATE`` resolve ``target_ifindex`` in the network namespace
   of the **calling thread**. To query a device of another namespace, call them from a thread that
   did ``setns()`` into it.

Name notes: :func:`prog_info` takes a program id positionally and an fd with ``fd=``;
:func:`prog_query` returns ``None`` (instead of raising) when the kernel has no tcx/netkit
support for the asked attach type (``EINVAL``, kernels before 6.6).
"""

from __future__ import annotations

import ctypes
import os
import struct
from typing import TYPE_CHECKING, Final

import attrs

from wpprotect.errors import InvalidArgumentError
from wpprotect.tc import _bpfsys, _caps
from wpprotect.tc._verdicts import (  # re-exported
    TC_ACT_OK,
    TC_ACT_PIPE,
    TC_ACT_QUEUED,
    TC_ACT_RECLASSIFY,
    TC_ACT_REDIRECT,
    TC_ACT_REPEAT,
    TC_ACT_SHOT,
    TC_ACT_STOLEN,
    TC_ACT_TRAP,
    TC_ACT_UNSPEC,
    TCX_DROP,
    TCX_NEXT,
    TCX_PASS,
    TCX_REDIRECT,
    stops_chain,
    verdict_name,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from wpprotect.tc._model import PacketClass

__all__ = [
    "BPF_F_AFTER",
    "BPF_F_BEFORE",
    "BPF_F_ID",
    "BPF_F_LINK",
    "BPF_F_REPLACE",
    "BPF_NETKIT_PEER",
    "BPF_NETKIT_PRIMARY",
    "BPF_PROG_TYPE_SCHED_ACT",
    "BPF_PROG_TYPE_SCHED_CLS",
    "BPF_TCX_EGRESS",
    "BPF_TCX_INGRESS",
    "CAPABILITIES",
    "TCX_DROP",
    "TCX_NEXT",
    "TCX_PASS",
    "TCX_REDIRECT",
    "TC_ACT_OK",
    "TC_ACT_PIPE",
    "TC_ACT_QUEUED",
    "TC_ACT_RECLASSIFY",
    "TC_ACT_REDIRECT",
    "TC_ACT_REPEAT",
    "TC_ACT_SHOT",
    "TC_ACT_STOLEN",
    "TC_ACT_TRAP",
    "TC_ACT_UNSPEC",
    "LinkInfo",
    "ProgInfo",
    "QueryResult",
    "capabilities",
    "enable_stats",
    "link_create",
    "link_get_fd_by_id",
    "link_info",
    "probe_classes",
    "probe_packets",
    "probe_verdict",
    "prog_attach",
    "prog_detach",
    "prog_get_fd_by_id",
    "prog_info",
    "prog_load_return",
    "prog_query",
    "prog_test_run",
    "require",
    "stops_chain",
    "test_packet",
    "verdict_name",
]

# --- constants (include/uapi/linux/bpf.h, pkt_cls.h) ------------------------------------------

_BPF_PROG_LOAD: Final = _bpfsys.BPF_PROG_LOAD
_BPF_PROG_ATTACH: Final = _bpfsys.BPF_PROG_ATTACH
_BPF_PROG_DETACH: Final = _bpfsys.BPF_PROG_DETACH
_BPF_PROG_TEST_RUN: Final = _bpfsys.BPF_PROG_TEST_RUN
_BPF_PROG_GET_FD_BY_ID: Final = _bpfsys.BPF_PROG_GET_FD_BY_ID
_BPF_OBJ_GET_INFO_BY_FD: Final = _bpfsys.BPF_OBJ_GET_INFO_BY_FD
_BPF_PROG_QUERY: Final = _bpfsys.BPF_PROG_QUERY
_BPF_LINK_CREATE: Final = _bpfsys.BPF_LINK_CREATE
_BPF_LINK_GET_FD_BY_ID: Final = _bpfsys.BPF_LINK_GET_FD_BY_ID
_BPF_ENABLE_STATS: Final = _bpfsys.BPF_ENABLE_STATS

BPF_PROG_TYPE_SCHED_CLS: Final = 3
"""``BPF_PROG_TYPE_SCHED_CLS``: tc classifiers (clsact filters, tcx and netkit programs)."""
BPF_PROG_TYPE_SCHED_ACT: Final = 4
"""``BPF_PROG_TYPE_SCHED_ACT``: tc actions."""

BPF_TCX_INGRESS: Final = 46
"""Attach type of tcx ingress programs (kernel 6.6+)."""
BPF_TCX_EGRESS: Final = 47
"""Attach type of tcx egress programs (kernel 6.6+)."""
BPF_NETKIT_PRIMARY: Final = 54
"""Attach type of netkit programs run on the primary device's transmit path."""
BPF_NETKIT_PEER: Final = 55
"""Attach type of netkit programs run on the peer device's transmit path."""

BPF_F_REPLACE: Final = 1 << 2
"""``BPF_F_REPLACE`` attach flag."""
BPF_F_BEFORE: Final = 1 << 3
"""``BPF_F_BEFORE``: attach before the relative program/link (or first, without one)."""
BPF_F_AFTER: Final = 1 << 4
"""``BPF_F_AFTER``: attach after the relative program/link (or last, without one)."""
BPF_F_ID: Final = 1 << 5
"""``BPF_F_ID``: the relative object is given by id, not fd."""
BPF_F_LINK: Final = 1 << 13
"""``BPF_F_LINK``: the relative object is a link, not a program."""

# --- the syscall (wpprotect.tc._bpfsys) -------------------------------------------------------

_syscall_fn = _bpfsys.syscall_fn
_raise = _bpfsys.raise_error


def _bpf(cmd: int, attr: ctypes.Array[ctypes.c_char], *, target: str | None = None) -> int:
    """Run one bpf(2) command; raise on failure, return the (non-negative) result."""
    return _bpfsys.call(cmd, attr, target)


def _attr(size: int) -> ctypes.Array[ctypes.c_char]:
    return ctypes.create_string_buffer(size)


def _addr(buf: ctypes.Array[ctypes.c_char] | None) -> int:
    return 0 if buf is None else ctypes.addressof(buf)


# --- loading (lab and tests) ------------------------------------------------------------------

_NAME_OK: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.")


def _check_prog_name(name: str) -> bytes:
    # kernel/bpf/syscall.c bpf_obj_name_cpy: [A-Za-z0-9_.], at most BPF_OBJ_NAME_LEN-1 = 15 chars.
    if len(name) > 15 or not set(name) <= _NAME_OK:
        raise InvalidArgumentError(
            f"invalid BPF program name {name!r}: at most 15 characters from [A-Za-z0-9_.]"
        )
    return name.encode()


def prog_load_return(retcode: int, name: str, prog_type: int = BPF_PROG_TYPE_SCHED_CLS) -> int:
    """Load the two-instruction program ``r0 = retcode; exit`` (license GPL).

    Used to build test scenes: a classifier that always returns the same verdict.

    :param retcode: the signed 32-bit value the program returns (e.g. ``TC_ACT_OK``).
    :param name: the program name (at most 15 characters from ``[A-Za-z0-9_.]``).
    :param prog_type: the program type; SCHED_CLS by default.
    :returns: an fd owning the program (close it to release it).
    :raises InvalidArgumentError: the name or code is not acceptable.
    :raises CapabilityError: CAP_BPF / CAP_SYS_ADMIN is missing.
    :raises BPFError: the kernel refused the program.
    """
    if not -(2**31) <= retcode < 2**31:
        raise InvalidArgumentError(f"return code {retcode} does not fit in a signed 32-bit imm")
    bname = _check_prog_name(name)
    # BPF_ALU64|BPF_MOV|BPF_K (0xb7) r0 = imm; BPF_JMP|BPF_EXIT (0x95).
    insns = ctypes.create_string_buffer(
        struct.pack("<BBhi", 0xB7, 0, 0, retcode) + struct.pack("<BBhi", 0x95, 0, 0, 0), 16
    )
    lic = ctypes.create_string_buffer(b"GPL")
    attr = _attr(128)
    struct.pack_into("<IIQQ", attr, 0, prog_type, 2, _addr(insns), _addr(lic))
    struct.pack_into("16s", attr, 48, bname)
    return _bpf(_BPF_PROG_LOAD, attr, target=name)


# --- reading ----------------------------------------------------------------------------------


def prog_get_fd_by_id(prog_id: int) -> int:
    """Open a program by id.

    :param prog_id: the kernel's program id.
    :returns: a new fd (the caller closes it).
    :raises BPFError: ``errno == ENOENT`` when the program no longer exists.
    :raises CapabilityError: CAP_SYS_ADMIN (or CAP_BPF) is missing.
    """
    return _bpfsys.prog_fd(prog_id)


@attrs.frozen
class ProgInfo:
    """What the kernel says about one BPF program (``struct bpf_prog_info``).

    :ivar id: the program id.
    :ivar type: the program type (3 = SCHED_CLS).
    :ivar tag: the program tag as 16 hex digits (same as ``bpftool`` and ``tc`` print).
    :ivar name: the program name (at most 15 characters; empty when none was given).
    :ivar load_time_ns: load time, nanoseconds since boot.
    :ivar run_cnt: times run while BPF stats were enabled.
    :ivar run_time_ns: total run time while BPF stats were enabled.
    :ivar xlated_prog_len: size of the translated program, bytes.
    :ivar jited_prog_len: size of the JIT-compiled program, bytes (0 when not JIT-compiled).
    :ivar created_by_uid: the uid that loaded it.
    """

    id: int
    type: int
    tag: str
    name: str
    load_time_ns: int
    run_cnt: int
    run_time_ns: int
    xlated_prog_len: int
    jited_prog_len: int
    created_by_uid: int

    def to_dict(self) -> dict[str, int | str]:
        """:returns: the fields as a JSON-ready dict."""
        return attrs.asdict(self)


def _info_by_fd(fd: int, target: str) -> ProgInfo:
    return ProgInfo(*_bpfsys.info_fields_by_fd(fd, target))


def prog_info(prog_id: int | None = None, *, fd: int | None = None) -> ProgInfo:
    """Read a program's ``bpf_prog_info``, by id (positional) or by an open fd.

    :param prog_id: the program id (opened and closed here).
    :param fd: an fd the caller owns (left open).
    :returns: the program's info.
    :raises InvalidArgumentError: neither or both of ``prog_id`` and ``fd`` were given.
    :raises BPFError: ``errno == ENOENT`` when the program no longer exists.
    :raises CapabilityError: CAP_SYS_ADMIN / CAP_BPF is missing.
    """
    if (prog_id is None) == (fd is None):
        raise InvalidArgumentError("prog_info() takes exactly one of prog_id or fd=")
    if fd is not None:
        return _info_by_fd(fd, f"fd {fd}")
    assert prog_id is not None  # noqa: S101 - narrowed by the check above
    pfd = prog_get_fd_by_id(prog_id)
    try:
        return _info_by_fd(pfd, f"prog {prog_id}")
    finally:
        os.close(pfd)


@attrs.frozen
class QueryResult:
    """The programs attached to one device hook by tcx or netkit, in run order.

    :ivar prog_ids: program ids, first to run first.
    :ivar link_ids: the matching link ids (0 for a program attached without a link).
    :ivar attach_flags: the hook's attach flags.
    :ivar revision: the hook's revision (1 when nothing was ever attached; +1 per change).
    """

    prog_ids: tuple[int, ...]
    link_ids: tuple[int, ...]
    attach_flags: int
    revision: int

    def to_dict(self) -> dict[str, object]:
        """:returns: the fields as a JSON-ready dict."""
        return {
            "prog_ids": list(self.prog_ids),
            "link_ids": list(self.link_ids),
            "attach_flags": self.attach_flags,
            "revision": self.revision,
        }


def prog_query(ifindex: int, attach_type: int) -> QueryResult | None:
    """List the tcx (46/47) or netkit (54/55) programs of a device with ``BPF_PROG_QUERY``.

    The ifindex is resolved in the **calling thread's** network namespace.

    :param ifindex: the device's index.
    :param attach_type: ``BPF_TCX_INGRESS``, ``BPF_TCX_EGRESS``, ``BPF_NETKIT_PRIMARY`` or
        ``BPF_NETKIT_PEER``.
    :returns: the programs in run order, or ``None`` when the kernel does not support that attach
        type here (``EINVAL``: no tcx before Linux 6.6; a netkit type on a non-netkit device).
    :raises BPFError: ``errno == ENODEV`` when the device vanished; other kernel errors.
    :raises CapabilityError: CAP_NET_ADMIN / CAP_BPF is missing.
    """
    found = _bpfsys.query(ifindex, attach_type)
    return None if found is None else QueryResult(*found)


# --- attaching (lab and tests) ----------------------------------------------------------------


def link_create(
    prog_fd: int,
    ifindex: int,
    attach_type: int,
    flags: int = 0,
    *,
    relative_fd_or_id: int = 0,
    expected_revision: int = 0,
) -> int:
    """Create a tcx/netkit link (``BPF_LINK_CREATE``); the link lives as long as the fd.

    The ifindex is resolved in the **calling thread's** network namespace.

    :param prog_fd: the program to attach.
    :param ifindex: the device.
    :param attach_type: ``BPF_TCX_INGRESS``/``EGRESS`` or ``BPF_NETKIT_PRIMARY``/``PEER``.
    :param flags: ``BPF_F_BEFORE``/``BPF_F_AFTER`` (+ ``BPF_F_ID``/``BPF_F_LINK``); 0 appends.
    :param relative_fd_or_id: the anchor for BEFORE/AFTER (0: head/tail).
    :param expected_revision: fail with ESTALE unless the hook is at this revision (0: any).
    :returns: the link fd (close it to detach).
    :raises BPFError: ``EINVAL`` when tcx is not supported; other kernel errors.
    :raises CapabilityError: CAP_NET_ADMIN / CAP_BPF is missing.
    """
    attr = _attr(64)
    struct.pack_into(
        "<IIIIIIQ",
        attr,
        0,
        prog_fd,
        ifindex,
        attach_type,
        flags,
        relative_fd_or_id,
        0,
        expected_revision,
    )
    return _bpf(_BPF_LINK_CREATE, attr, target=f"ifindex {ifindex}")


@attrs.frozen
class LinkInfo:
    """What the kernel says about a bpf link (``struct bpf_link_info``).

    :ivar id: the link id.
    :ivar type: the link type (11 = tcx, 13 = netkit).
    :ivar prog_id: the attached program.
    :ivar ifindex: the device, for tcx/netkit links.
    :ivar attach_type: the attach type, for tcx/netkit links.
    """

    id: int
    type: int
    prog_id: int
    ifindex: int
    attach_type: int


def link_get_fd_by_id(link_id: int) -> int:
    """Open a bpf link by id.

    :param link_id: the link id (as listed by :func:`prog_query`).
    :returns: a new fd (the caller closes it; closing it does not detach the link).
    :raises BPFError: ``errno == ENOENT`` when the link no longer exists.
    :raises CapabilityError: CAP_SYS_ADMIN is missing.
    """
    attr = _attr(12)
    struct.pack_into("<I", attr, 0, link_id)
    return _bpf(_BPF_LINK_GET_FD_BY_ID, attr, target=f"link {link_id}")


def link_info(fd: int) -> LinkInfo:
    """Read a link's ``bpf_link_info`` from an fd the caller owns.

    :param fd: the link fd.
    :returns: its info (``ifindex``/``attach_type`` are meaningful for tcx and netkit links).
    :raises BPFError: not a link, or the kernel refused.
    """
    info = _attr(64)
    attr = _attr(16)
    struct.pack_into("<IIQ", attr, 0, fd, 64, _addr(info))
    _bpf(_BPF_OBJ_GET_INFO_BY_FD, attr, target=f"link fd {fd}")
    ltype, lid, prog_id = struct.unpack_from("<III", info, 0)
    ifindex, attach_type = struct.unpack_from("<II", info, 16)
    return LinkInfo(lid, ltype, prog_id, ifindex, attach_type)


def prog_attach(
    prog_fd: int,
    ifindex: int,
    attach_type: int,
    flags: int = 0,
    *,
    relative_fd_or_id: int = 0,
    expected_revision: int = 0,
) -> None:
    """Attach a program to a tcx/netkit hook without a link (``BPF_PROG_ATTACH``).

    It stays attached after the fd is closed, until :func:`prog_detach` (or the device goes).

    :param prog_fd: the program.
    :param ifindex: the device (resolved in the calling thread's network namespace).
    :param attach_type: ``BPF_TCX_INGRESS``/``EGRESS``.
    :param flags: as for :func:`link_create`.
    :param relative_fd_or_id: as for :func:`link_create`.
    :param expected_revision: as for :func:`link_create`.
    :raises BPFError: the kernel refused.
    :raises CapabilityError: CAP_NET_ADMIN / CAP_BPF is missing.
    """
    attr = _attr(32)
    struct.pack_into(
        "<IIIIIIQ",
        attr,
        0,
        ifindex,
        prog_fd,
        attach_type,
        flags,
        0,
        relative_fd_or_id,
        expected_revision,
    )
    _bpf(_BPF_PROG_ATTACH, attr, target=f"ifindex {ifindex}")


def prog_detach(prog_fd: int, ifindex: int, attach_type: int) -> None:
    """Detach a program attached with :func:`prog_attach` (``BPF_PROG_DETACH``).

    :param prog_fd: the program.
    :param ifindex: the device (resolved in the calling thread's network namespace).
    :param attach_type: ``BPF_TCX_INGRESS``/``EGRESS``.
    :raises BPFError: the kernel refused (``ENOENT``: not attached).
    :raises CapabilityError: CAP_NET_ADMIN / CAP_BPF is missing.
    """
    attr = _attr(32)
    struct.pack_into("<III", attr, 0, ifindex, prog_fd, attach_type)
    _bpf(_BPF_PROG_DETACH, attr, target=f"ifindex {ifindex}")


def enable_stats() -> int:
    """Turn on run-time statistics (``run_cnt``/``run_time_ns``) while the returned fd is open.

    :returns: an fd; close it to turn statistics back off (unless ``kernel.bpf_stats_enabled``).
    :raises CapabilityError: CAP_SYS_ADMIN is missing.
    :raises BPFError: the kernel refused.
    """
    attr = _attr(8)
    struct.pack_into("<I", attr, 0, 0)  # BPF_STATS_RUN_TIME
    return _bpf(_BPF_ENABLE_STATS, attr)


# --- probing ----------------------------------------------------------------------------------


_SKB_CTX_SIZE: Final = 192  # sizeof(struct __sk_buff) on 6.x; older kernels take a zero tail
_CTX_INGRESS_IFINDEX: Final = 36  # struct __sk_buff.ingress_ifindex (skb->skb_iif)
_CTX_IFINDEX: Final = 40  # struct __sk_buff.ifindex (the device test-run looks up)


def prog_test_run(
    fd: int, data: bytes, repeat: int = 1, *, ifindex: int = 0, ingress: bool = False
) -> int:
    """Run a program on a packet with ``BPF_PROG_TEST_RUN`` and return what it returned.

    For SCHED_CLS the kernel builds the skb as a tc hook would see it
    (``net/bpf/test_run.c``): ``skb->protocol`` from the Ethernet type, the device from
    ``ifindex`` (looked up in the **calling thread's** network namespace; 0: its loopback).

    :param fd: the program.
    :param data: the packet, at least 14 bytes (an Ethernet header) for SCHED_CLS.
    :param repeat: how many runs (the result of the last one is returned).
    :param ifindex: the device the packet is on (``skb->ifindex``); 0 for none.
    :param ingress: the packet was received on that device (``skb->ingress_ifindex`` set, as on
        an ingress hook); False leaves it 0, as on an egress hook.
    :returns: the program's return value, signed (``-1`` = TC_ACT_UNSPEC / TCX_NEXT).
    :raises InvalidArgumentError: the packet is shorter than an Ethernet header.
    :raises BPFError: the kernel refused (e.g. a program type without test-run support;
        ``ENODEV``: no such device in this namespace).
    """
    if len(data) < 14:
        raise InvalidArgumentError(f"test packet of {len(data)} bytes: SCHED_CLS needs >= 14")
    buf = ctypes.create_string_buffer(data, len(data))
    out = ctypes.create_string_buffer(len(data) + 256)
    attr = _attr(80)
    struct.pack_into(
        "<IIIIQQI", attr, 0, fd, 0, len(data), len(out), _addr(buf), _addr(out), repeat
    )
    ctx = None
    if ifindex:
        ctx = _attr(_SKB_CTX_SIZE)
        struct.pack_into("<I", ctx, _CTX_IFINDEX, ifindex)
        if ingress:
            struct.pack_into("<I", ctx, _CTX_INGRESS_IFINDEX, ifindex)
        struct.pack_into("<I", attr, 40, _SKB_CTX_SIZE)  # ctx_size_in
        struct.pack_into("<Q", attr, 48, _addr(ctx))  # ctx_in
    _bpf(_BPF_PROG_TEST_RUN, attr, target=f"fd {fd}")
    (retval,) = struct.unpack_from("<i", attr, 4)
    return int(retval)


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def test_packet() -> bytes:
    """A well-formed Ethernet / IPv4 / TCP SYN (10.0.0.1:40000 → 10.0.0.2:80), checksums set.

    :returns: 54 bytes, ready for :func:`prog_test_run`.
    """
    import socket  # only here: the scan path never needs socket.py (see _netlink)

    src, dst = socket.inet_aton("10.0.0.1"), socket.inet_aton("10.0.0.2")
    tcp = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", _csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    eth = bytes.fromhex("020000000002") + bytes.fromhex("020000000001") + b"\x08\x00"
    return eth + ip + tcp


test_packet.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name


def probe_verdict(prog_id: int) -> int:
    """Run a live program once on :func:`test_packet` and return its return code.

    Caveats: the program really runs once (its maps may change, e.g. counters or conntrack
    entries); the answer is for *that* packet only (a program may treat others differently);
    programs that read metadata a test run does not set may answer differently than in the data
    path.

    :param prog_id: the program's id.
    :returns: the signed return value (name it with :func:`verdict_name`).
    :raises BPFError: the program vanished (``ENOENT``) or cannot be test-run.
    :raises CapabilityError: CAP_SYS_ADMIN / CAP_BPF is missing.
    """
    fd = prog_get_fd_by_id(prog_id)
    try:
        return prog_test_run(fd, test_packet())
    finally:
        os.close(fd)


_PEER_MAC: Final = bytes.fromhex("020000000001")
_LOCAL_MAC: Final = bytes.fromhex("020000000002")


def _l4_csum(pseudo: bytes, segment: bytes, at: int) -> bytes:
    return segment[:at] + struct.pack("!H", _csum(pseudo + segment) or 0xFFFF) + segment[at + 2 :]


def probe_packets(direction: str = "ingress", mac: bytes | None = None) -> dict[PacketClass, bytes]:
    """One well-formed frame per traffic class (:data:`~wpprotect.tc._model.PACKET_CLASSES`),
    as a device sees it in ``direction``, checksums set.

    Ingress frames come from a peer (``10.0.0.1`` / ``fd00::1``) to the device (``10.0.0.2`` /
    ``fd00::2``) and are addressed to the device's MAC; egress frames go the other way, from
    the device's MAC. The UDP frames are DNS queries (port 53) for ``probe.wpprotect.invalid``.

    :param direction: ``ingress`` or ``egress``.
    :param mac: the device's MAC address (6 bytes; default ``02:00:00:00:00:02``).
    :returns: class → frame, in :data:`~wpprotect.tc._model.PACKET_CLASSES` order.
    :raises InvalidArgumentError: a bad direction or MAC.
    """
    import socket  # only here: the scan path never needs socket.py (see _netlink)

    if direction not in ("ingress", "egress"):
        raise InvalidArgumentError(f"direction must be ingress or egress, got {direction!r}")
    local = _LOCAL_MAC if mac is None else bytes(mac)
    if len(local) != 6:
        raise InvalidArgumentError(f"a MAC address has 6 bytes, got {len(local)}")
    inward = direction == "ingress"
    eth_dst, eth_src = (local, _PEER_MAC) if inward else (_PEER_MAC, local)
    v4 = [socket.inet_aton("10.0.0.1"), socket.inet_aton("10.0.0.2")]
    v6 = [socket.inet_pton(socket.AF_INET6, a) for a in ("fd00::1", "fd00::2")]
    if not inward:
        v4.reverse()
        v6.reverse()
    src4, dst4 = v4
    src6, dst6 = v6
    syn = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
    qname = b"".join(bytes([len(p)]) + p for p in (b"probe", b"wpprotect", b"invalid")) + b"\0"
    dns = struct.pack("!HHHHHH", 0x5770, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)
    udp = struct.pack("!HHHH", 40000, 53, 8 + len(dns), 0) + dns
    echo = struct.pack("!BBHHH", 8, 0, 0, 0x5770, 1) + b"wpprotect probe."
    echo = echo[:2] + struct.pack("!H", _csum(echo)) + echo[4:]

    def ipv4(proto: int, payload: bytes) -> bytes:
        if proto != socket.IPPROTO_ICMP:
            pseudo = src4 + dst4 + struct.pack("!BBH", 0, proto, len(payload))
            payload = _l4_csum(pseudo, payload, 16 if proto == socket.IPPROTO_TCP else 6)
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0x4000, 64, proto, 0, src4, dst4
        )
        ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
        return eth_dst + eth_src + b"\x08\x00" + ip + payload

    def ipv6(proto: int, payload: bytes) -> bytes:
        pseudo = src6 + dst6 + struct.pack("!IxxxB", len(payload), proto)
        payload = _l4_csum(pseudo, payload, 16 if proto == socket.IPPROTO_TCP else 6)
        ip6 = struct.pack("!IHBB", 6 << 28, len(payload), proto, 64) + src6 + dst6
        return eth_dst + eth_src + b"\x86\xdd" + ip6 + payload

    arp_src_mac = _PEER_MAC if inward else local
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, arp_src_mac, src4, b"\0" * 6, dst4)
    return {
        "tcp/ipv4": ipv4(socket.IPPROTO_TCP, syn),
        "udp/ipv4": ipv4(socket.IPPROTO_UDP, udp),
        "icmp/ipv4": ipv4(socket.IPPROTO_ICMP, echo),
        "tcp/ipv6": ipv6(socket.IPPROTO_TCP, syn),
        "udp/ipv6": ipv6(socket.IPPROTO_UDP, udp),
        "arp": b"\xff" * 6 + eth_src + b"\x08\x06" + arp,
    }


def probe_classes(
    prog_id: int,
    *,
    direction: str = "ingress",
    ifindex: int = 0,
    mac: bytes | None = None,
    classes: Iterable[PacketClass] | None = None,
) -> dict[str, int]:
    """Test-run a live program once per traffic class and return what it returned for each.

    The frames are :func:`probe_packets` for ``direction``; with ``ifindex`` the skb is on that
    device (looked up in the **calling thread's** namespace), received on it for ``ingress``.
    The same caveats as :func:`probe_verdict` hold: each run is real (maps may change), and a
    verdict holds for that packet only.

    :param prog_id: the program's id.
    :param direction: the hook's direction (``ingress`` or ``egress``).
    :param ifindex: the device (0: none, the namespace's loopback).
    :param mac: the device's MAC address, for the frames' addresses.
    :param classes: the classes to run (default: every one).
    :returns: class → signed return value, in the order asked.
    :raises BPFError: the program vanished (``ENOENT``) or cannot be test-run.
    :raises CapabilityError: CAP_SYS_ADMIN / CAP_BPF is missing.
    """
    frames = probe_packets(direction, mac)
    wanted = tuple(frames) if classes is None else tuple(classes)
    fd = prog_get_fd_by_id(prog_id)
    try:
        ingress = direction == "ingress"
        return {
            cls: prog_test_run(fd, frames[cls], ifindex=ifindex, ingress=ingress) for cls in wanted
        }
    finally:
        os.close(fd)


# --- capabilities (wpprotect.tc._caps) -----------------------------------------------------

CAPABILITIES: Final = _caps.CAPABILITIES
"""The capabilities TC inspection cares about, by bit number (include/uapi/linux/capability.h)."""
capabilities = _caps.capabilities
require = _caps.require
