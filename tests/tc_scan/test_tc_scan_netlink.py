"""The lean netlink reader against the kernel, pyroute2's decoder and ``tc -j filter show``."""

from __future__ import annotations

import json
import socket
import struct

import pytest

from tests.tc_scan._scene import ETH_P_IP, Scene, run
from wpprotect.errors import BPFError
from wpprotect.tc import _bpf, _netlink, _netns

NS = ""  # set by _build()


def _build(scene: Scene) -> dict[str, int]:
    global NS  # noqa: PLW0603 - one scene per test, named per run
    NS = scene.netns("wptc4nl")
    a0 = scene.veth(NS, "w4a0", "w4b0")
    a1 = scene.veth(NS, "w4a1", "w4b1")
    scene.veth(NS, "w4a2", "w4b2", clsact=False)
    ok = scene.prog(_bpf.TC_ACT_OK, "cil_from_contai")
    unspec = scene.prog(_bpf.TC_ACT_UNSPEC, "classifier_ingr")
    scene.bpf_filter(NS, "w4a0", "ingress", prio=1, handle=1, name="cil_from_container-w4a0", fd=ok)
    # Same priority, second handle: cls_bpf lists it (and runs it) first.
    scene.bpf_filter(
        NS, "w4a0", "ingress", prio=1, handle=2, name="classifier_ingress_x", fd=unspec
    )
    scene.bpf_filter(NS, "w4a0", "ingress", prio=10, handle=3, name="dd10", fd=unspec)
    scene.bpf_filter(
        NS, "w4a0", "egress", prio=5, handle=7, name="nonda", fd=ok,
        direct_action=False, protocol=ETH_P_IP,
    )  # fmt: skip
    scene.bpf_filter(NS, "w4a1", "egress", prio=49152, handle=1, name="x" * 200, fd=unspec)
    return {"w4a0": a0, "w4a1": a1}


def _read() -> tuple[
    list[_netlink.LinkRecord],
    dict[int, tuple[int, ...]],
    dict[tuple[int, int], list[_netlink.FilterRecord]],
]:
    with _netns.entered(_netns.resolve_netns(NS)), _netlink.RtnlReader() as reader:
        devices = reader.clsact_devices()
        links = reader.links()
        filters = {(i, p): reader.filters(i, p) for i in devices for p in devices[i]}
    return links, devices, filters


@pytest.mark.root
def test_links_and_clsact_devices(scene: Scene) -> None:
    idx = _build(scene)
    links, devices, _ = _read()
    shown = json.loads(run("ip", "-n", NS, "-d", "-j", "link", "show"))
    expected = {
        (d["ifindex"], d["ifname"], d.get("linkinfo", {}).get("info_kind") == "netkit")
        for d in shown
    }
    assert {(r.ifindex, r.name, r.netkit) for r in links} == expected
    assert {d.get("linkinfo", {}).get("info_kind") for d in shown} == {None, "veth"}
    assert devices == {
        idx["w4a0"]: (_netlink.INGRESS_PARENT, _netlink.EGRESS_PARENT),
        idx["w4a1"]: (_netlink.INGRESS_PARENT, _netlink.EGRESS_PARENT),
    }


@pytest.mark.root
def test_filters_match_tc_json(scene: Scene) -> None:
    idx = _build(scene)
    _, _, filters = _read()
    for dev in ("w4a0", "w4a1"):
        for direction, parent in (
            ("ingress", _netlink.INGRESS_PARENT),
            ("egress", _netlink.EGRESS_PARENT),
        ):
            shown = json.loads(run("tc", "-n", NS, "-j", "filter", "show", "dev", dev, direction))
            expected = [
                (
                    f["pref"], f["protocol"], int(f["options"]["handle"], 16), f["kind"],
                    f["chain"], f["options"].get("bpf_name"), f["options"]["prog"]["id"],
                    f["options"]["prog"]["tag"], bool(f["options"].get("direct-action")),
                    bool(f["options"].get("not_in_hw")),
                )
                for f in shown
                if "options" in f  # tc also prints the per-priority header line
            ]  # fmt: skip
            got = [
                (
                    r.priority, _netlink.protocol_name(r.protocol), r.handle, r.kind, r.chain,
                    r.name, r.prog_id, r.tag, bool(r.flags & 1), bool(r.flags_gen & 8),
                )
                for r in filters[(idx[dev], parent)]
            ]  # fmt: skip
            assert got == expected, (dev, direction)
    w4a0_in = [r.handle for r in filters[(idx["w4a0"], _netlink.INGRESS_PARENT)]]
    assert w4a0_in == [2, 1, 3]  # run order: prio 1 (newest handle first), then prio 10
    (long,) = filters[(idx["w4a1"], _netlink.EGRESS_PARENT)]
    assert long.name == "x" * 200
    assert filters[(idx["w4a1"], _netlink.INGRESS_PARENT)] == []


@pytest.mark.root
def test_filters_match_pyroute2_decoder(scene: Scene) -> None:
    from pyroute2 import IPRoute

    idx = _build(scene)
    _, _, filters = _read()
    with IPRoute(netns=NS, flags=0) as ipr:
        for (ifindex, parent), ours in filters.items():
            theirs = []
            for msg in ipr.get_filters(index=ifindex, parent=parent):
                opts = msg.get_attr("TCA_OPTIONS")
                if opts is None:
                    continue  # the per-priority header message
                raw = {}
                for slot in opts["attrs"]:
                    if slot.cell[0] == "UNKNOWN":  # FLAGS_GEN/TAG/ID: beyond pyroute2's nla_map
                        nla = slot.cell[1]
                        (atype,) = struct.unpack_from("<H", nla.data, nla.offset + 2)
                        raw[atype & 0x3FFF] = nla.data[nla.offset + 4 : nla.offset + nla.length]
                theirs.append(
                    (
                        msg["info"] >> 16, socket.ntohs(msg["info"] & 0xFFFF), msg["handle"],
                        msg.get_attr("TCA_KIND"), opts.get_attr("TCA_BPF_NAME"),
                        struct.unpack("<I", raw[11])[0], raw[10].hex(),
                        opts.get_attr("TCA_BPF_FLAGS") or 0,
                    )
                )  # fmt: skip
            assert [
                (r.priority, r.protocol, r.handle, r.kind, r.name, r.prog_id, r.tag, r.flags)
                for r in ours
            ] == theirs, (ifindex, parent)
    assert idx  # the scene had devices with filters to compare


def _nla(atype: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), atype) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _filter_msg(handle: int, attrs: bytes, info: int = (3 << 16) | 0x0300) -> bytes:
    body = struct.pack("=BBHiIII", 0, 0, 0, 5, handle, _netlink.INGRESS_PARENT, info) + attrs
    return struct.pack("=IHHII", 16 + len(body), _netlink.RTM_NEWTFILTER, 2, 1, 0) + body


def test_parse_filter_other_kinds_and_header() -> None:
    u32 = _filter_msg(0x800, _nla(1, b"u32\0") + _nla(11, struct.pack("=I", 4)) + _nla(2, b""))
    rec = _netlink.parse_filter(u32, 0, len(u32))
    assert rec is not None
    assert (rec.kind, rec.chain, rec.priority, rec.protocol, rec.handle) == ("u32", 4, 3, 3, 0x800)
    assert (rec.name, rec.prog_id, rec.tag, rec.direction) == (None, None, None, "ingress")
    header = _filter_msg(0, _nla(1, b"bpf\0") + _nla(11, struct.pack("=I", 0)))
    assert _netlink.parse_filter(header, 0, len(header)) is None


def test_protocol_names() -> None:
    assert _netlink.protocol_name(0x0003) == "all"
    assert _netlink.protocol_name(0x86DD) == "ipv6"
    assert _netlink.protocol_name(0x1234) == "0x1234"


@pytest.mark.root
def test_vanished_device_reads_empty_and_query_says_enodev() -> None:
    with _netlink.RtnlReader() as reader:
        assert reader.filters(999_999, _netlink.INGRESS_PARENT) == []
    with pytest.raises(BPFError) as info:
        _bpf.prog_query(999_999, _bpf.BPF_TCX_INGRESS)
    assert info.value.errno == 19  # ENODEV: the inspector turns it into a warning


class _FakeKernel:
    """Answers one RTM_GETLINK dump with prepared messages: this kernel has no netkit driver
    (EOPNOTSUPP), so a netkit device's link message is built by hand from if_link.h."""

    def __init__(self, messages: list[bytes]) -> None:
        self.messages = messages
        self.seq = 0

    def send(self, data: bytes) -> int:
        (self.seq,) = struct.unpack_from("=I", data, 8)
        return len(data)

    def recv_into(self, buf: bytearray, size: int, flags: int) -> int:
        out = b"".join(
            struct.pack("=IHHII", len(m), t, 2, self.seq, 0) + m[16:]
            for m, t in ((m, struct.unpack_from("=H", m, 4)[0]) for m in self.messages)
        ) + struct.pack("=IHHIIi", 20, _netlink.NLMSG_DONE, 2, self.seq, 0, 0)
        buf[: len(out)] = out
        return len(out)

    def close(self) -> None:
        pass


def _link_msg(ifindex: int, name: str, kind: str | None, filler: int = 0) -> bytes:
    attrs = _nla(3, name.encode() + b"\0")  # IFLA_IFNAME first, as the kernel puts it
    attrs += b"".join(_nla(4, struct.pack("=I", 1500)) for _ in range(filler))  # IFLA_MTU...
    if kind is not None:
        attrs += _nla(18 | 0x8000, _nla(1, kind.encode() + b"\0"))  # IFLA_LINKINFO/INFO_KIND
    body = struct.pack("=BBHiII", 0, 0, 1, ifindex, 0, 0) + attrs
    return struct.pack("=IHHII", 16 + len(body), _netlink.RTM_NEWLINK, 2, 0, 0) + body


def test_links_spot_netkit_devices() -> None:
    reader = _netlink.RtnlReader()
    try:
        reader._big.close()
        reader._big = _FakeKernel(  # type: ignore[assignment]
            [
                _link_msg(1, "lo", None),
                _link_msg(7, "nk0", "netkit", filler=30),
                _link_msg(8, "netkit", "veth"),  # the name alone must not count
                _link_msg(9, "w4v0", "veth", filler=3),
            ]
        )
        links = reader.links()
    finally:
        reader.close()
    assert [(r.ifindex, r.name, r.netkit) for r in links] == [
        (1, "lo", False),
        (7, "nk0", True),
        (8, "netkit", False),
        (9, "w4v0", False),
    ]
