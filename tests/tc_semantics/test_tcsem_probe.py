"""Probes per traffic class: the frames, how verdicts are summed up, and how the assessment names
the traffic a program stops (no kernel needed; tests/tc_truth checks the same against it)."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Mapping

import pytest

from wpprotect.errors import InvalidArgumentError
from wpprotect.tc import _bpf
from wpprotect.tc._assess import assess
from wpprotect.tc._model import PACKET_CLASSES, PacketClass, TCProgram, protocol_classes
from wpprotect.tc._verdicts import probe_summary

MAC = bytes.fromhex("0a0b0c0d0e0f")


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_probe_frames_are_well_formed_and_face_the_hook(direction: str) -> None:
    frames = _bpf.probe_packets(direction, MAC)
    assert tuple(frames) == PACKET_CLASSES
    inward = direction == "ingress"
    for cls, frame in frames.items():
        eth_dst, eth_src, ethertype = frame[:6], frame[6:12], frame[12:14]
        if cls == "arp":
            assert (eth_dst, ethertype) == (b"\xff" * 6, b"\x08\x06")
            assert (eth_src == MAC) is not inward
            continue
        assert (eth_dst if inward else eth_src) == MAC
        if cls.endswith("ipv4"):
            assert ethertype == b"\x08\x00"
            ip = frame[14:34]
            assert _sum16(ip) == 0xFFFF  # the header checksum holds
            proto, src, dst = ip[9], ip[12:16], ip[16:20]
            local = socket.inet_aton("10.0.0.2")
            assert (dst if inward else src) == local
            l4 = frame[34:]
            assert proto == {"tcp": 6, "udp": 17, "icmp": 1}[cls.split("/")[0]]
            if proto == 1:
                assert _sum16(l4) == 0xFFFF
                assert l4[0] == 8  # echo request
            else:
                pseudo = src + dst + struct.pack("!BBH", 0, proto, len(l4))
                assert _sum16(pseudo + l4) == 0xFFFF
        else:
            assert ethertype == b"\x86\xdd"
            ip6, l4 = frame[14:54], frame[54:]
            proto, src, dst = ip6[6], ip6[8:24], ip6[24:40]
            assert proto == {"tcp": 6, "udp": 17}[cls.split("/")[0]]
            pseudo = src + dst + struct.pack("!I3xB", len(l4), proto)
            assert _sum16(pseudo + l4) == 0xFFFF
        if cls.startswith("udp"):
            assert struct.unpack_from("!H", l4, 2)[0] == 53
            assert b"\x05probe\x09wpprotect\x07invalid\x00" in l4  # a DNS query


def test_probe_frames_refuse_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="direction"):
        _bpf.probe_packets("sideways")
    with pytest.raises(InvalidArgumentError, match="6 bytes"):
        _bpf.probe_packets("ingress", b"\x01\x02")


def test_protocol_classes() -> None:
    assert protocol_classes("all") == PACKET_CLASSES
    assert protocol_classes("ip") == ("tcp/ipv4", "udp/ipv4", "icmp/ipv4")
    assert protocol_classes("ipv6") == ("tcp/ipv6", "udp/ipv6")
    assert protocol_classes("arp") == ("arp",)
    assert protocol_classes("0x8100") == ()


def test_probe_summary() -> None:
    codes = {str(c): -1 for c in PACKET_CLASSES} | {"udp/ipv4": 0}
    names, verdict = probe_summary(codes)
    assert verdict == "ok"  # the classes disagree: the one that ends the walk
    assert (names["udp/ipv4"], names["arp"]) == ("ok", "unspec")
    assert probe_summary(dict.fromkeys(PACKET_CLASSES, -1)) == (
        dict.fromkeys(PACKET_CLASSES, "unspec"),
        "unspec",
    )
    assert probe_summary({"tcp/ipv4": -1, "arp": 0}, "tcx")[1] == "pass"
    assert probe_summary({"tcp/ipv4": -1, "arp": 3}, "tcx")[1] == "pipe"  # ends the tcx walk only
    # Not in direct-action mode: 0 is "no match", anything else a match.
    assert probe_summary({"tcp/ipv4": 0, "arp": -1}, "clsact", direct_action=False)[1] == "unspec"


def _prog(
    probes: Mapping[PacketClass, str] | Mapping[str, str] | None, verdict: str, **kw: object
) -> TCProgram:
    fields: dict[str, object] = {
        "netns": "n", "ifname": "eth0", "ifindex": 2, "direction": "ingress",
        "attach": "clsact", "priority": 1, "handle": 1, "name": "vendor", "prog_id": 7,
        "direct_action": True, "vendor": "unknown", "verdict": verdict,
        "verdict_source": "probed", "probes": probes,
    }  # fmt: skip
    fields.update(kw)
    return TCProgram(**fields)  # type: ignore[arg-type]


def _datadog() -> TCProgram:
    return TCProgram(
        netns="n", ifname="eth0", ifindex=2, direction="ingress", attach="clsact", priority=10,
        handle=2, name="classifier_ingress_x", prog_id=9, direct_action=True,
        vendor="datadog-cws", verdict="unspec", verdict_source="documented",
    )  # fmt: skip


DNS_ONLY = dict.fromkeys(PACKET_CLASSES, "unspec") | {"udp/ipv4": "ok"}


def test_a_program_stopping_one_class_is_reported_for_that_class() -> None:
    (f,) = assess([_prog(DNS_ONLY, "ok"), _datadog()], 10).findings
    assert (f.code, f.severity, f.protocols, f.basis) == (
        "network-blind",
        "error",
        ("udp/ipv4",),
        "probed",
    )
    assert "OK for udp/ipv4" in f.message
    assert "for udp/ipv4 traffic only, as probed" in f.message


def test_one_class_reported_lower_down_does_not_hide_the_rest() -> None:
    # DNS stopped at 1, everything at 5: both are said (the second for the other classes).
    found = assess(
        [
            _prog(DNS_ONLY, "ok"),
            _prog(dict.fromkeys(PACKET_CLASSES, "ok"), "ok", priority=5, prog_id=8),
            _datadog(),
        ],
        10,
    ).findings
    assert [(f.code, f.protocols) for f in found] == [
        ("network-blind", ("udp/ipv4",)),
        ("lower-classifier-priority", None),
    ]
    # And one that stops only DNS behind another one that does: nothing new to say.
    again = assess(
        [_prog(DNS_ONLY, "ok"), _prog(DNS_ONLY, "ok", priority=5, prog_id=8), _datadog()], 10
    ).findings
    assert [f.vendor_priority for f in again] == [1]


def test_a_program_passing_every_class_is_no_finding() -> None:
    progs = [_prog(dict.fromkeys(PACKET_CLASSES, "unspec"), "unspec"), _datadog()]
    assert assess(progs, 10).findings == ()


def test_a_probe_contradicting_the_documented_verdict_wins_and_says_so() -> None:
    beyla = _prog(dict.fromkeys(PACKET_CLASSES, "ok"), "ok", name="beyla_tc", vendor="beyla")
    (f,) = assess([beyla, _datadog()], 10).findings
    assert (f.code, f.basis, f.protocols) == ("network-blind", "probed", None)
    assert "although beyla documents UNSPEC: the test run wins" in f.message
    documented = _prog(None, "unspec", name="beyla_tc", vendor="beyla", verdict_source="documented")
    assert assess([documented, _datadog()], 10).findings == ()


def test_a_protocol_filter_probed_alike_keeps_its_protocol() -> None:
    ipv4 = dict.fromkeys(protocol_classes("ip"), "ok")
    (f,) = assess([_prog(ipv4, "ok", protocol="ip"), _datadog()], 10).findings
    assert f.protocols == ("ipv4",)


def test_a_tcx_program_passing_one_class_bypasses_that_class_only() -> None:
    tcx = _prog(
        dict.fromkeys(PACKET_CLASSES, "next") | {"udp/ipv4": "pass"}, "pass", attach="tcx",
        priority=None, handle=None, position=0,
    )  # fmt: skip
    blocker = _prog(dict.fromkeys(PACKET_CLASSES, "ok"), "ok", priority=5, prog_id=8)
    found = assess([tcx, blocker, _datadog()], 10).findings
    assert [(f.code, f.protocols) for f in found] == [
        ("tcx-bypass", ("udp/ipv4",)),
        ("lower-classifier-priority", None),  # the other classes still reach the clsact walk
    ]
    assert "udp/ipv4 packets" in found[0].message


def test_probes_are_in_the_json_and_the_row() -> None:
    p = _prog(DNS_ONLY, "ok")
    assert json.loads(p.to_json())["probes"] == DNS_ONLY
    assert list(p.to_dict())[-1] == "probes"
    assert "ok for udp/ipv4 (probed)" in str(p._row())
    assert hash(p) == hash(_prog(None, "ok"))  # still hashable; probes are not in the hash
    assert _prog(None, "ok").to_dict()["probes"] is None
