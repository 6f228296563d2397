"""Helpers of the ground-truth suite: frames of each traffic class, BPF run counts, ``tc``.

A scene is a veth pair in a lab namespace: frames go out of the peer end and arrive on the host
end's ingress hooks (or out of the host end, through its egress hooks). A Datadog-like
classifier (``classifier_ingress``, direct action, returning ``TC_ACT_UNSPEC``) sits on the host
end; with BPF run statistics on, its ``run_cnt`` says whether the kernel ran it for the frames.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import socket
import struct
import subprocess
import tempfile
from collections.abc import Iterator

from wpprotect.tc import _bpf, _bpfsys
from wpprotect.tc._lab import LabNetns, LabProgram
from wpprotect.tc._model import Finding, PacketClass

FRAMES_PER_CLASS = 5
_SRC_MAC = bytes.fromhex("020000000001")
_DST_MAC = bytes.fromhex("020000000002")


_csum = _bpf._csum  # the library's own Internet checksum (its test packet uses it too)


def _ipv4(proto: int, payload: bytes) -> bytes:
    src, dst = socket.inet_aton("10.0.0.1"), socket.inet_aton("10.0.0.2")
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0x4000, 64, proto, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    return _DST_MAC + _SRC_MAC + b"\x08\x00" + ip + payload


def ipv4_udp(dport: int = 53) -> bytes:
    """An Ethernet / IPv4 / UDP datagram to ``dport`` (DNS by default)."""
    return _ipv4(socket.IPPROTO_UDP, struct.pack("!HHHH", 40000, dport, 8 + 4, 0) + b"wpwk")


def ipv6_tcp() -> bytes:
    """An Ethernet / IPv6 / TCP SYN to port 80."""
    tcp = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
    src = socket.inet_pton(socket.AF_INET6, "fd00::1")
    dst = socket.inet_pton(socket.AF_INET6, "fd00::2")
    ip6 = struct.pack("!IHBB", 6 << 28, len(tcp), socket.IPPROTO_TCP, 64) + src + dst
    return _DST_MAC + _SRC_MAC + b"\x86\xdd" + ip6 + tcp


def arp() -> bytes:
    """An Ethernet / ARP who-has 10.0.0.2."""
    body = struct.pack(
        "!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, _SRC_MAC, socket.inet_aton("10.0.0.1"),
        b"\0" * 6, socket.inet_aton("10.0.0.2"),
    )  # fmt: skip
    return b"\xff" * 6 + _SRC_MAC + b"\x08\x06" + body


#: Traffic class → (frame, the ``protocols`` name a finding uses for it).
CLASSES: dict[str, tuple[bytes, str]] = {
    "ipv4-tcp": (_bpf.test_packet(), "ipv4"),
    "ipv4-udp": (ipv4_udp(), "ipv4"),
    "ipv6": (ipv6_tcp(), "ipv6"),
    "arp": (arp(), "arp"),
}


def run_count(prog_id: int) -> int:
    """The program's ``run_cnt`` (statistics must be on)."""
    return _bpf.prog_info(prog_id).run_cnt


@contextlib.contextmanager
def stats() -> Iterator[None]:
    """BPF run statistics on for the block (``BPF_ENABLE_STATS``)."""
    fd = _bpf.enable_stats()
    try:
        yield
    finally:
        os.close(fd)


def ran(ns: LabNetns, prog: LabProgram, send_on: str, frame: bytes) -> int:
    """How many of :data:`FRAMES_PER_CLASS` copies of ``frame`` sent on ``send_on`` ran
    ``prog``."""
    with stats():
        before = run_count(prog.id)
        ns.send(send_on, frame, count=FRAMES_PER_CLASS)
        return run_count(prog.id) - before


def tc(ns: LabNetns, *args: str) -> None:
    """Run ``tc -n NS ARGS`` (iproute2 writes what the lab cannot: u32, mirred, blocks)."""
    proc = subprocess.run(["tc", "-n", ns.name, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"tc {' '.join(args)}: {proc.stderr.strip()}")


def quiet(ns: LabNetns) -> None:
    """No IPv6 autoconfiguration in the namespace: only the frames a test sends are counted."""
    for key in ("all", "default"):
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                ns.name,
                "sysctl",
                "-qw",
                f"net.ipv6.conf.{key}.disable_ipv6=1",
            ],
            check=True,
        )


class Pins:
    """A private bpffs mount where programs are pinned for ``tc ... bpf object-pinned``."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="wpwalk-bpffs-")
        subprocess.run(["mount", "-t", "bpf", "bpf", self.dir], check=True)

    def pin(self, prog: LabProgram | Loaded) -> str:
        """Pin ``prog`` (``BPF_OBJ_PIN``) and return the path."""
        path = os.path.join(self.dir, f"p{secrets.token_hex(4)}")
        raw = ctypes.create_string_buffer(path.encode() + b"\0")
        attr = ctypes.create_string_buffer(16)
        struct.pack_into("<QI", attr, 0, ctypes.addressof(raw), prog.fd)
        _bpfsys.call(6, attr, path)  # BPF_OBJ_PIN
        return path

    def close(self) -> None:
        """Unmount (dropping the pins) and remove the directory."""
        subprocess.run(["umount", self.dir], check=True)
        os.rmdir(self.dir)


def covers(finding: Finding, traffic: str) -> bool:
    """Whether a finding says this traffic is hidden (all traffic, or its protocol)."""
    return finding.protocols is None or traffic in finding.protocols


def on_hook(findings: tuple[Finding, ...], ifname: str, direction: str) -> list[Finding]:
    """The findings that need action on one device and direction."""
    return [
        f for f in findings if f.needs_action and f.ifname == ifname and f.direction == direction
    ]


# --- programs that look at the packet (for probes) --------------------------------------------

#: Every traffic class a probe uses → a frame of it, as the veth peer sends it (ingress).
PROBE_FRAMES: dict[PacketClass, bytes] = _bpf.probe_packets("ingress")


class Loaded:
    """A program loaded from raw instructions (closed by :meth:`close`)."""

    def __init__(self, insns: list[tuple[int, int, int, int]], name: str) -> None:
        code = b"".join(struct.pack("<BBhi", *insn) for insn in insns)
        buf = ctypes.create_string_buffer(code, len(code))
        lic = ctypes.create_string_buffer(b"GPL")
        attr = ctypes.create_string_buffer(128)
        struct.pack_into(
            "<IIQQ", attr, 0, _bpf.BPF_PROG_TYPE_SCHED_CLS, len(insns), ctypes.addressof(buf),
            ctypes.addressof(lic),
        )  # fmt: skip
        struct.pack_into("16s", attr, 48, name.encode())
        self.fd = _bpfsys.call(_bpfsys.BPF_PROG_LOAD, attr, name)
        self.id = _bpf.prog_info(fd=self.fd).id

    def close(self) -> None:
        """Close the fd (the program lives on while a filter holds it)."""
        os.close(self.fd)


def ok_for_ipv4_udp_only() -> list[tuple[int, int, int, int]]:
    """``TC_ACT_OK`` for IPv4 UDP (EtherType 0x0800, IP protocol 17), ``TC_ACT_UNSPEC`` for the
    rest: a filter that blinds DNS and nothing else."""
    return [
        (0x61, 0x12, 76, 0),  # r2 = skb->data
        (0x61, 0x13, 80, 0),  # r3 = skb->data_end
        (0xB7, 0x00, 0, -1),  # r0 = TC_ACT_UNSPEC
        (0xBF, 0x24, 0, 0),  # r4 = r2
        (0x07, 0x04, 0, 24),  # r4 += 24 (Ethernet + IPv4 up to the protocol byte)
        (0x2D, 0x34, 5, 0),  # if r4 > r3 goto exit
        (0x69, 0x25, 12, 0),  # r5 = EtherType (loaded little-endian: 0x0008 for IPv4)
        (0x55, 0x05, 3, 0x0008),  # if r5 != 0x0008 goto exit
        (0x71, 0x25, 23, 0),  # r5 = IP protocol
        (0x55, 0x05, 1, 17),  # if r5 != UDP goto exit
        (0xB7, 0x00, 0, 0),  # r0 = TC_ACT_OK
        (0x95, 0x00, 0, 0),  # exit
    ]


def ok_when_received() -> list[tuple[int, int, int, int]]:
    """``TC_ACT_OK`` when ``skb->ingress_ifindex`` is set (the packet was received: an ingress
    hook), ``TC_ACT_UNSPEC`` otherwise: its verdict depends on the hook's direction."""
    return [
        (0xB7, 0x00, 0, -1),  # r0 = TC_ACT_UNSPEC
        (0x61, 0x12, 36, 0),  # r2 = skb->ingress_ifindex
        (0x15, 0x02, 1, 0),  # if r2 == 0 goto exit
        (0xB7, 0x00, 0, 0),  # r0 = TC_ACT_OK
        (0x95, 0x00, 0, 0),  # exit
    ]


def covers_class(finding: Finding, cls: str) -> bool:
    """Whether a finding says this traffic class is hidden: all traffic, its IP version, or the
    class itself (``udp/ipv4``...)."""
    if finding.protocols is None:
        return True
    return cls in finding.protocols or cls.rpartition("/")[2] in finding.protocols
