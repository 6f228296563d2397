"""wpprotect's read-only kernel reader, run inside an agent container by its embedded Python.

This file is a standalone script: it is sent over stdin to ``python3 -`` (the agent image's
``/opt/datadog-agent/embedded/bin/python3``) and imports nothing but the standard library
(``socket``, ``struct``, ``ctypes``, ``os``, ``json``, ``zlib``). It must run on Python 3.8 (the
oldest embedded Python of a supported agent): ``nox -s lint`` checks it with
``vermin --target=3.8-``. It never writes a file, loads a program or attaches anything.

It reads, in every network namespace it can see, the same raw kernel records the local
inspector reads (``docs/reference/kernel-tc.md#tc-dump``): the ``RTM_GETQDISC``,
``RTM_GETLINK`` and per-device ``RTM_GETTFILTER`` dump messages as the kernel sent them,
``BPF_PROG_QUERY`` of each device's tcx/netkit hooks, and ``bpf_prog_info`` of each program.
Decoding and assessment happen on the caller's side (:mod:`wpprotect.tc._remote`), with the
same code as a local scan.

Its one line of output is ``{"wire": 1, "zlib": "<base64 of zlib'd JSON>"}``, or
``{"wire": 1, "error": {"kind": ..., "message": ...}}`` when it cannot read at all.
Its options come as one JSON argument: ``python3 - '{"netns": "all", "measure": 0}'``.
"""

from __future__ import annotations

import base64
import ctypes
import errno
import json
import os
import socket
import struct
import sys
import time
import zlib
from collections.abc import Iterator
from typing import Any

WIRE = 1
CLONE_NEWNET = 0x40000000
PROC_PID_INIT_INO = 0xEFFFFFFC
NAMED_DIRS = ("/var/run/netns", "/var/run/docker/netns")
RTM_GETLINK, RTM_NEWLINK = 18, 16
RTM_GETQDISC, RTM_NEWQDISC = 38, 36
RTM_GETTFILTER, RTM_NEWTFILTER = 46, 44
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP, NLM_F_DUMP_INTR = 0x1, 0x300, 0x10
IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS = 29, 1 << 3
TC_H_INGRESS = 0xFFFFFFF1
INGRESS_PARENT, EGRESS_PARENT = 0xFFFFFFF2, 0xFFFFFFF3
TCX_TYPES = (46, 47)
NETKIT_TYPES = (54, 55)
BPF_PROG_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD, BPF_PROG_QUERY, BPF_ENABLE_STATS = 13, 15, 16, 32
PROG_INFO_LEN = 232
NR_BPF = {"x86_64": 321, "amd64": 321, "aarch64": 280, "arm64": 280, "riscv64": 280,
          "s390x": 351, "ppc64le": 361, "ppc64": 361}  # fmt: skip
LINK_REQ = struct.Struct("=IHHII BBHiII HHI")
TC_REQ = struct.Struct("=IHHII BBHiIII")
HDR = struct.Struct("=IHHII")
BODY = struct.Struct("=iIII")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class Refused(Exception):
    """The kernel refused for lack of a capability."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def bpf(cmd: int, attr: Any) -> int:
    nr = NR_BPF.get(os.uname().machine)
    if nr is None:
        raise OSError(errno.ENOSYS, "bpf(2) number unknown for " + os.uname().machine)
    ret = _libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), ctypes.byref(attr),
                        ctypes.c_uint(len(attr)))  # fmt: skip
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(ret)


def dump(sock: socket.socket, seq: int, request: bytes, want: int) -> tuple[bytes, bool]:
    """Send a dump; return (the wanted messages as the kernel sent them, interrupted)."""
    sock.send(request[:8] + struct.pack("=I", seq) + request[12:])
    out: list[bytes] = []
    interrupted = False
    buf = bytearray(32768)
    while True:
        # MSG_TRUNC gives the datagram's real length: a short buffer is grown, never truncated.
        n = sock.recv_into(buf, len(buf), socket.MSG_PEEK | socket.MSG_TRUNC)
        if n > len(buf):
            buf = bytearray(n)
        n = sock.recv_into(buf, len(buf))
        data = bytes(buf[:n])
        off = 0
        while off + 16 <= n:
            length, mtype, flags, mseq, _pid = HDR.unpack_from(data, off)
            if length < 16:
                raise OSError(errno.EBADMSG, "malformed netlink message")
            if mseq == seq:
                if mtype == NLMSG_DONE:
                    return b"".join(out), interrupted
                if mtype == NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", data, off + 16)
                    if err == 0:
                        return b"".join(out), interrupted
                    raise OSError(-err, os.strerror(-err))
                if flags & NLM_F_DUMP_INTR:
                    interrupted = True
                if mtype == want:
                    out.append(data[off : off + ((length + 3) & ~3)])
            off += (length + 3) & ~3


def messages(blob: bytes) -> Iterator[tuple[int, int]]:
    off = 0
    while off + 16 <= len(blob):
        (length,) = struct.unpack_from("=I", blob, off)
        if length < 16:
            return
        yield off, off + length
        off += (length + 3) & ~3


def nla(buf: bytes, off: int, end: int, want: int) -> tuple[int, int] | None:
    while off + 4 <= end:
        alen, atype = struct.unpack_from("=HH", buf, off)
        if alen < 4:
            return None
        if atype & 0x3FFF == want:
            return off + 4, off + alen
        off += (alen + 3) & ~3
    return None


def cstr(buf: bytes, span: tuple[int, int]) -> str:
    raw = buf[span[0] : span[1]]
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def query(ifindex: int, attach_type: int) -> list[Any] | int:
    """[prog_ids, link_ids, flags, revision] of one hook, or an errno."""
    for _ in range(8):
        attr = ctypes.create_string_buffer(64)
        struct.pack_into("<II", attr, 0, ifindex, attach_type)
        try:
            bpf(BPF_PROG_QUERY, attr)
        except OSError as exc:
            if exc.errno == errno.EPERM:
                raise Refused("BPF_PROG_QUERY was refused (EPERM): CAP_NET_ADMIN and CAP_BPF "
                              "(or CAP_SYS_ADMIN) are needed") from None  # fmt: skip
            return exc.errno or errno.EIO
        (count,) = struct.unpack_from("<I", attr, 24)
        (revision,) = struct.unpack_from("<Q", attr, 56)
        (flags,) = struct.unpack_from("<I", attr, 12)
        if count == 0:
            return [[], [], flags, revision]
        cap = count + 4
        progs = (ctypes.c_uint32 * cap)()
        links = (ctypes.c_uint32 * cap)()
        attr = ctypes.create_string_buffer(64)
        struct.pack_into("<II", attr, 0, ifindex, attach_type)
        struct.pack_into("<Q", attr, 16, ctypes.addressof(progs))
        struct.pack_into("<I", attr, 24, cap)
        struct.pack_into("<Q", attr, 40, ctypes.addressof(links))
        try:
            bpf(BPF_PROG_QUERY, attr)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                continue
            return exc.errno or errno.EIO or errno.EIO
        (count,) = struct.unpack_from("<I", attr, 24)
        (revision,) = struct.unpack_from("<Q", attr, 56)
        (flags,) = struct.unpack_from("<I", attr, 12)
        return [list(progs[:count]), list(links[:count]), flags, revision]
    return errno.ENOSPC


def prog_info(prog_id: int) -> str | int | None:
    """base64 of the program's raw bpf_prog_info, None when it is gone, or an errno."""
    attr = ctypes.create_string_buffer(12)
    struct.pack_into("<I", attr, 0, prog_id)
    try:
        fd = bpf(BPF_PROG_GET_FD_BY_ID, attr)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        if exc.errno == errno.EPERM:
            raise Refused("BPF_PROG_GET_FD_BY_ID was refused (EPERM): CAP_SYS_ADMIN (or CAP_BPF) "
                          "is needed") from None  # fmt: skip
        return exc.errno
    try:
        info = ctypes.create_string_buffer(PROG_INFO_LEN)
        attr = ctypes.create_string_buffer(16)
        struct.pack_into("<IIQ", attr, 0, fd, PROG_INFO_LEN, ctypes.addressof(info))
        try:
            bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
        except OSError as exc:
            return exc.errno
        return b64(info.raw)
    finally:
        os.close(fd)


def stat_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def pid_label(pid: int) -> str:
    label = f"pid {pid}"
    try:
        with open(f"/proc/{pid}/comm") as fh:
            label += f" ({fh.read().strip()})"
        with open(f"/proc/{pid}/cgroup") as fh:
            text = fh.read(4096)
        for word in text.replace("/", " ").replace("-", " ").replace(".", " ").split():
            if len(word) == 64 and all(c in "0123456789abcdef" for c in word):
                label += " container " + word[:12]
                break
    except OSError:
        pass
    return label


def namespaces(spec: str | None) -> list[tuple[str, str, tuple[int, int]]]:
    """[(label, path, (dev, ino))] of the namespaces to read."""
    found: dict[tuple[int, int], tuple[str, str]] = {}
    order: list[tuple[int, int]] = []

    def add(key: tuple[int, int] | None, label: str, path: str) -> None:
        if key is not None and key not in found:
            found[key] = (label, path)
            order.append(key)

    # The initial namespace: PID 1's if it is the real init, else kthreadd's (PID 1 may be
    # unreadable); inside a PID namespace neither is in the initial PID namespace.
    for pid in (1, 2):
        pidns = stat_key(f"/proc/{pid}/ns/pid")
        if pidns is not None and pidns[1] == PROC_PID_INIT_INO:
            if spec in ("all", "host"):
                add(stat_key(f"/proc/{pid}/ns/net"), "host", f"/proc/{pid}/ns/net")
            break
    if spec is None:
        own = stat_key("/proc/self/ns/net")
        path = f"/proc/{os.getpid()}/ns/net"
        if own is None:
            raise OSError(errno.ENOENT, "cannot read /proc/self/ns/net: is /proc mounted?")
        label = found.get(own, (pid_label(os.getpid()), path))[0]
        return [(label, path, own)]
    for directory in NAMED_DIRS:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            label = ("docker:" + name) if directory.endswith("docker/netns") else name
            if spec in ("all", name, label, path):
                add(stat_key(path), label, path)
    if spec != "all":
        if not order and spec.startswith("/"):
            add(stat_key(spec), spec, spec)
        return [(found[k][0], found[k][1], k) for k in order]
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    for pid in pids:
        path = f"/proc/{pid}/ns/net"
        key = stat_key(path)
        if key is not None and key not in found:
            add(key, pid_label(pid), path)
    return [(found[k][0], found[k][1], k) for k in order]


def setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            if err == errno.EPERM:
                raise Refused(f"setns() into {path} was refused (EPERM): CAP_SYS_ADMIN is needed")
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


def read_netns(
    label: str, path: str, key: tuple[int, int], progs: set[int], stats: bool
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "label": label,
        "path": path,
        "id": f"{key[0]}:{key[1]}",
        "filters": [],
        "hooks": [],
    }
    setns(path)
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    except PermissionError:
        raise Refused("opening a netlink socket was refused") from None
    interrupted = False
    try:
        req = TC_REQ.pack(TC_REQ.size, RTM_GETQDISC, NLM_F_REQUEST | NLM_F_DUMP, 0, 0,
                          0, 0, 0, 0, 0, 0, 0)  # fmt: skip
        qdiscs, intr = dump(sock, 1, req, RTM_NEWQDISC)
        interrupted |= intr
        req = LINK_REQ.pack(LINK_REQ.size, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 0, 0,
                            0, 0, 0, 0, 0, 0, 8, IFLA_EXT_MASK,
                            0 if stats else RTEXT_FILTER_SKIP_STATS)  # fmt: skip
        links, intr = dump(sock, 2, req, RTM_NEWLINK)
        interrupted |= intr
        rec["qdiscs"] = b64(qdiscs)
        rec["links"] = b64(links)
        seq = 3
        for start, end in messages(qdiscs):
            ifindex, _h, parent, _i = BODY.unpack_from(qdiscs, start + 20)
            if parent != TC_H_INGRESS:
                continue
            span = nla(qdiscs, start + 36, end, 1)
            kind = "" if span is None else cstr(qdiscs, span)
            parents = {"clsact": (INGRESS_PARENT, EGRESS_PARENT), "ingress": (INGRESS_PARENT,)}
            for fparent in parents.get(kind, ()):
                req = TC_REQ.pack(TC_REQ.size, RTM_GETTFILTER, NLM_F_REQUEST | NLM_F_DUMP, 0,
                                  0, 0, 0, 0, ifindex, 0, fparent, 0)  # fmt: skip
                seq += 1
                try:
                    msgs, intr = dump(sock, seq, req, RTM_NEWTFILTER)
                except OSError as exc:
                    rec["filters"].append([ifindex, fparent, exc.errno])
                    continue
                interrupted |= intr
                rec["filters"].append([ifindex, fparent, b64(msgs)])
                for fstart, fend in messages(msgs):
                    opts = nla(msgs, fstart + 36, fend, 2)
                    if opts is not None:
                        found = nla(msgs, opts[0], opts[1], 11)  # TCA_BPF_ID
                        if found is not None:
                            progs.add(struct.unpack_from("=I", msgs, found[0])[0])
        for start, end in messages(links):
            (ifindex,) = struct.unpack_from("=i", links, start + 20)
            netkit = links.find(b"netkit\0", start, end) >= 0
            for attach_type in TCX_TYPES + (NETKIT_TYPES if netkit else ()):
                result = query(ifindex, attach_type)
                rec["hooks"].append([ifindex, attach_type, result])
                if isinstance(result, list):
                    progs.update(result[0])
    finally:
        sock.close()
    rec["interrupted"] = interrupted
    return rec


def scan(spec: str | None, stats: bool = False) -> dict[str, Any]:
    """Every namespace's records, and the bpf_prog_info of every program they run."""
    refs = namespaces(spec)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    progs: set[int] = set()
    out: dict[str, Any] = {"namespaces": [], "warnings": []}
    try:
        for label, path, key in refs:
            try:
                out["namespaces"].append(read_netns(label, path, key, progs, stats))
            except Refused:
                raise
            except OSError as exc:
                out["warnings"].append(f"{label}: could not be read ({exc}); skipped")
    finally:
        _libc.setns(home, CLONE_NEWNET)
        os.close(home)
    out["progs"] = {str(p): prog_info(p) for p in sorted(progs)}
    return out


def measure(spec: str | None, seconds: float) -> dict[str, Any]:
    """Two scans (with link counters) around a window with BPF run-time statistics on."""
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled") as fh:
            already = fh.read().strip() == "1"
    except OSError:
        already = None
    attr = ctypes.create_string_buffer(8)
    try:
        fd = bpf(BPF_ENABLE_STATS, attr)
    except OSError as exc:
        if exc.errno == errno.EPERM:
            raise Refused("BPF_ENABLE_STATS was refused (EPERM): CAP_SYS_ADMIN is needed") from None
        raise
    try:
        before = scan(spec, stats=True)
        start = time.monotonic()
        time.sleep(seconds)
        after = scan(spec, stats=True)
        elapsed = time.monotonic() - start
    finally:
        os.close(fd)
    return {"before": before, "after": after, "elapsed": elapsed, "stats_already_on": already}


def main() -> int:
    options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    spec = options.get("netns", "all")
    try:
        if options.get("measure"):
            body: dict[str, Any] = {"measure": measure(spec, float(options["measure"]))}
        else:
            body = {"scan": scan(spec)}
    except Refused as exc:
        print(json.dumps({"wire": WIRE, "error": {"kind": "capability", "message": str(exc)}}))
        return 3
    except OSError as exc:
        print(json.dumps({"wire": WIRE, "error": {"kind": "os", "message": str(exc)}}))
        return 4
    body["python"] = ".".join(str(n) for n in sys.version_info[:3])
    body["executable"] = sys.executable
    body["machine"] = os.uname().machine
    body["pid"] = os.getpid()
    packed = zlib.compress(json.dumps(body, separators=(",", ":")).encode("utf-8"), 6)
    sys.stdout.write(json.dumps({"wire": WIRE, "zlib": b64(packed)}) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
