"""The ``bpf(2)`` syscall itself and the tcx/netkit query, with no attrs classes, so that a
scan's reader can run before (or without) the result model.

:mod:`wpprotect.tc._bpf` builds on this module; its :func:`~wpprotect.tc._bpf.prog_query` wraps
:func:`query` into a ``QueryResult``.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
import struct
import threading
from typing import TYPE_CHECKING

from wpprotect.errors import BPFError, CapabilityError

if TYPE_CHECKING:
    from typing import Final, NoReturn

__all__ = [
    "ProgFields",
    "QueryTuple",
    "call",
    "decode_prog_info",
    "enable_stats",
    "info_fields_by_fd",
    "prog_fields",
    "query",
]

# bpf(2) commands (include/uapi/linux/bpf.h).
BPF_PROG_LOAD: Final = 5
BPF_PROG_ATTACH: Final = 8
BPF_PROG_DETACH: Final = 9
BPF_PROG_TEST_RUN: Final = 10
BPF_PROG_GET_FD_BY_ID: Final = 13
BPF_OBJ_GET_INFO_BY_FD: Final = 15
BPF_PROG_QUERY: Final = 16
BPF_LINK_CREATE: Final = 28
BPF_LINK_GET_FD_BY_ID: Final = 30
BPF_ENABLE_STATS: Final = 32

# asm/unistd_64.h (x86_64) and asm-generic/unistd.h (aarch64, riscv64).
_NR_BPF: Final = {
    "x86_64": 321,
    "amd64": 321,
    "aarch64": 280,
    "arm64": 280,
    "riscv64": 280,
    "i386": 357,
    "i686": 357,
    "s390x": 351,
    "ppc64le": 361,
    "ppc64": 361,
}

_libc: ctypes.CDLL | None = None


def syscall_fn() -> tuple[ctypes.CDLL, int]:
    """libc (loaded once, on first use) and this machine's ``bpf(2)`` number."""
    global _libc  # noqa: PLW0603 - loaded once, on first use, so importing stays cheap
    machine = os.uname().machine  # what platform.machine() returns, without importing platform
    nr = _NR_BPF.get(machine)
    if nr is None:
        raise BPFError(f"bpf(2) syscall number unknown for machine {machine!r}")
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc, nr


def cmd_name(cmd: int) -> str:
    """``BPF_PROG_QUERY`` for 16, and so on."""
    return {
        BPF_PROG_LOAD: "BPF_PROG_LOAD",
        BPF_PROG_ATTACH: "BPF_PROG_ATTACH",
        BPF_PROG_DETACH: "BPF_PROG_DETACH",
        BPF_PROG_TEST_RUN: "BPF_PROG_TEST_RUN",
        BPF_PROG_GET_FD_BY_ID: "BPF_PROG_GET_FD_BY_ID",
        BPF_OBJ_GET_INFO_BY_FD: "BPF_OBJ_GET_INFO_BY_FD",
        BPF_PROG_QUERY: "BPF_PROG_QUERY",
        BPF_LINK_CREATE: "BPF_LINK_CREATE",
        BPF_LINK_GET_FD_BY_ID: "BPF_LINK_GET_FD_BY_ID",
        BPF_ENABLE_STATS: "BPF_ENABLE_STATS",
    }.get(cmd, f"bpf cmd {cmd}")


def raise_error(err: int, cmd: int, target: str | None) -> NoReturn:
    """Raise the error of a failed bpf(2) command (EPERM names the missing capability)."""
    name = cmd_name(cmd)
    if err == _errno.EPERM:
        raise CapabilityError(
            f"{name} was refused (EPERM): it needs CAP_BPF (or CAP_SYS_ADMIN)"
            + (
                " and CAP_NET_ADMIN"
                if cmd in (BPF_LINK_CREATE, BPF_PROG_ATTACH, BPF_PROG_DETACH, BPF_PROG_QUERY)
                else ""
            ),
            target=target,
        )
    raise BPFError(f"{name} failed: {os.strerror(err)}", errno=err, target=target)


def call(cmd: int, attr: ctypes.Array[ctypes.c_char], target: str | None = None) -> int:
    """Run one bpf(2) command; raise on failure, return the (non-negative) result."""
    libc, nr = syscall_fn()
    ret = libc.syscall(
        ctypes.c_long(nr), ctypes.c_int(cmd), ctypes.byref(attr), ctypes.c_uint(len(attr))
    )
    if ret < 0:
        raise_error(ctypes.get_errno(), cmd, target)
    return int(ret)


# --- BPF_PROG_QUERY -----------------------------------------------------------------------------

#: ``(prog_ids, link_ids, attach_flags, revision)``.
QueryTuple = tuple[tuple[int, ...], tuple[int, ...], int, int]

_query_local = threading.local()
_pack_ii = struct.Struct("<II").pack_into
_unpack_q = struct.Struct("<Q").unpack_from
# query.attach_flags @12, query.prog_cnt @24 (with prog_ids @16 between them).
_unpack_flags_count = struct.Struct("<I8xI").unpack_from
_memset = ctypes.memset


def _query_attr() -> tuple[ctypes.Array[ctypes.c_char], ctypes.CDLL, ctypes.c_long]:
    found: tuple[ctypes.Array[ctypes.c_char], ctypes.CDLL, ctypes.c_long] | None = getattr(
        _query_local, "attr", None
    )
    if found is None:
        libc, nr = syscall_fn()
        # syscall(2) takes the number as a long: passed as one, not as a C int.
        found = _query_local.attr = (ctypes.create_string_buffer(64), libc, ctypes.c_long(nr))
    return found


def query(ifindex: int, attach_type: int) -> QueryTuple | None:
    """``BPF_PROG_QUERY`` of one device hook (tcx 46/47, netkit 54/55), in the calling thread's
    network namespace.

    :returns: ``(prog_ids, link_ids, attach_flags, revision)``, programs in run order; None when
        the kernel does not support that attach type there (``EINVAL``).
    :raises BPFError: ``errno == ENODEV`` when the device vanished; other kernel errors.
    :raises CapabilityError: CAP_NET_ADMIN / CAP_BPF is missing.
    """
    # Count-only first, in one attr buffer reused by every call of this thread (a scan asks
    # twice per device: allocating and formatting per call was half the cost); the ids are
    # read only for a hook that has programs.
    attr, libc, nr = _query_attr()
    _memset(attr, 0, 64)
    _pack_ii(attr, 0, ifindex, attach_type)
    if libc.syscall(nr, BPF_PROG_QUERY, attr, 64) >= 0:
        flags, count = _unpack_flags_count(attr, 12)
        if count == 0:
            return ((), (), flags, _unpack_q(attr, 56)[0])
        return _query_ids(ifindex, attach_type)
    err = ctypes.get_errno()
    if err == _errno.EINVAL:
        return None
    raise_error(err, BPF_PROG_QUERY, f"ifindex {ifindex} attach_type {attach_type}")


def _counts(attr: ctypes.Array[ctypes.c_char]) -> tuple[int, int, int]:
    """query.prog_cnt @24, query.revision @56, query.attach_flags @12 of a BPF_PROG_QUERY."""
    (count,) = struct.unpack_from("<I", attr, 24)
    (revision,) = struct.unpack_from("<Q", attr, 56)
    (flags,) = struct.unpack_from("<I", attr, 12)
    return count, revision, flags


def _query_ids(ifindex: int, attach_type: int) -> QueryTuple | None:
    target = f"ifindex {ifindex} attach_type {attach_type}"
    # Two calls: the count, then the ids; retry if programs were added in between (ENOSPC).
    for _ in range(8):
        attr = ctypes.create_string_buffer(64)
        struct.pack_into("<II", attr, 0, ifindex, attach_type)
        try:
            call(BPF_PROG_QUERY, attr, target)
        except BPFError as exc:
            if exc.errno == _errno.EINVAL:
                return None
            raise
        count, revision, flags = _counts(attr)
        if count == 0:
            return ((), (), flags, revision)
        cap = count + 4
        progs = (ctypes.c_uint32 * cap)()
        links = (ctypes.c_uint32 * cap)()
        attr = ctypes.create_string_buffer(64)
        struct.pack_into("<II", attr, 0, ifindex, attach_type)
        struct.pack_into("<Q", attr, 16, ctypes.addressof(progs))
        struct.pack_into("<I", attr, 24, cap)
        struct.pack_into("<Q", attr, 40, ctypes.addressof(links))
        try:
            call(BPF_PROG_QUERY, attr, target)
        except BPFError as exc:
            if exc.errno == _errno.ENOSPC:
                continue
            if exc.errno == _errno.EINVAL:
                return None
            raise
        count, revision, flags = _counts(attr)
        return (tuple(progs[:count]), tuple(links[:count]), flags, revision)
    raise BPFError("BPF_PROG_QUERY kept changing under us", errno=_errno.ENOSPC, target=target)


# --- program info -------------------------------------------------------------------------------

#: ``bpf_prog_info`` as :class:`wpprotect.tc._bpf.ProgInfo`'s fields, in order: id, type, tag,
#: name, load_time_ns, run_cnt, run_time_ns, xlated_prog_len, jited_prog_len, created_by_uid.
ProgFields = tuple[int, int, str, str, int, int, int, int, int, int]

_PROG_INFO_LEN: Final = 232


def info_fields_by_fd(fd: int, target: str) -> ProgFields:
    """``BPF_OBJ_GET_INFO_BY_FD`` of a program fd, as :data:`ProgFields`.

    :raises BPFError: the kernel refused.
    :raises CapabilityError: CAP_SYS_ADMIN / CAP_BPF is missing.
    """
    info = ctypes.create_string_buffer(_PROG_INFO_LEN)
    attr = ctypes.create_string_buffer(16)
    struct.pack_into("<IIQ", attr, 0, fd, _PROG_INFO_LEN, ctypes.addressof(info))
    call(BPF_OBJ_GET_INFO_BY_FD, attr, target)
    return decode_prog_info(info.raw)


def decode_prog_info(raw: bytes) -> ProgFields:
    """A raw ``struct bpf_prog_info`` (at least 208 bytes, as the kernel filled it) as
    :data:`ProgFields`. Shared by the local reader and the replay of records read in an agent
    container (:mod:`wpprotect.tc._remote`).

    :raises BPFError: ``raw`` is too short to be one.
    """
    if len(raw) < 208:
        raise BPFError(f"bpf_prog_info of {len(raw)} bytes is too short")
    ptype, pid = struct.unpack_from("<II", raw, 0)
    jited, xlated = struct.unpack_from("<II", raw, 16)
    (load_time,) = struct.unpack_from("<Q", raw, 40)
    (uid,) = struct.unpack_from("<I", raw, 48)
    name = raw[64:80].split(b"\0", 1)[0].decode("ascii", "replace")
    run_time_ns, run_cnt = struct.unpack_from("<QQ", raw, 192)
    tag = raw[8:16].hex()
    return (pid, ptype, tag, name, load_time, run_cnt, run_time_ns, xlated, jited, uid)


def prog_fd(prog_id: int) -> int:
    """``BPF_PROG_GET_FD_BY_ID``: a new fd for the program (the caller closes it).

    :raises BPFError: ``errno == ENOENT`` when the program no longer exists.
    :raises CapabilityError: CAP_SYS_ADMIN (or CAP_BPF) is missing.
    """
    attr = ctypes.create_string_buffer(12)
    struct.pack_into("<I", attr, 0, prog_id)
    return call(BPF_PROG_GET_FD_BY_ID, attr, f"prog {prog_id}")


def prog_fields(prog_id: int) -> ProgFields | None:
    """A program's ``bpf_prog_info`` by id, or None when it no longer exists (``ENOENT``).

    :raises BPFError: any other failure.
    :raises CapabilityError: CAP_SYS_ADMIN / CAP_BPF is missing.
    """
    try:
        fd = prog_fd(prog_id)
    except BPFError as exc:
        if exc.errno == _errno.ENOENT:
            return None
        raise
    try:
        return info_fields_by_fd(fd, f"prog {prog_id}")
    finally:
        os.close(fd)


# --- run-time statistics ------------------------------------------------------------------------

BPF_STATS_RUN_TIME: Final = 0  # enum bpf_stats_type


def enable_stats() -> int:
    """``BPF_ENABLE_STATS`` (``BPF_STATS_RUN_TIME``): ``run_cnt``/``run_time_ns`` of every
    program count while the returned fd is open (docs/reference/kernel-tc.md#tc-measure).

    :returns: an fd the caller closes (statistics stop when no such fd is open, unless
        ``kernel.bpf_stats_enabled`` is set).
    :raises CapabilityError: CAP_SYS_ADMIN is missing.
    :raises BPFError: the kernel refused (e.g. before Linux 5.8).
    """
    attr = ctypes.create_string_buffer(8)
    struct.pack_into("<I", attr, 0, BPF_STATS_RUN_TIME)
    return call(BPF_ENABLE_STATS, attr, "run-time statistics")
