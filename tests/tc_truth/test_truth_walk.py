"""Ground truth: for each scene, the kernel (BPF run counts of a Datadog-like classifier) and
wpprotect's verdict agree.

Each scene is built for real (veths, qdiscs, filters, programs) in a lab namespace; frames of each
traffic class are sent from the veth peer; a traffic class is *blind* when the Datadog-like
classifier at priority 10 ran for none of them. wpprotect must then report a warning or an error
on that device and direction covering that traffic (``protocols``), and none otherwise (a finding
about "matching traffic" only is allowed where the kernel's answer depends on the packet).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest

from wpprotect.tc import _bpf
from wpprotect.tc._inspector import TCInspector
from wpprotect.tc._lab import Lab, LabProgram
from wpprotect.tc._model import Assessment

from ._kernel import CLASSES, Pins, covers, on_hook, quiet, ran, tc

pytestmark = pytest.mark.root

OK, UNSPEC = _bpf.TC_ACT_OK, _bpf.TC_ACT_UNSPEC
_pairs = itertools.count()


class World:
    """One lab namespace shared by the module's scenes, one veth pair per scene."""

    def __init__(self, lab: Lab, pins: Pins) -> None:
        self.lab = lab
        self.pins = pins
        self.ns = lab.netns("truth")
        quiet(self.ns)
        self.ns.add_veth("wmir0", "wmir1", up=True, clsact=False)  # where mirrors send copies

    def pair(self, *, clsact: bool = True) -> tuple[str, str]:
        n = next(_pairs)
        host, peer = f"wt{n}h", f"wt{n}p"
        self.ns.add_veth(host, peer, up=True, clsact=clsact)
        return host, peer

    def datadog(self, dev: str, prio: int = 10, direction: str = "ingress") -> LabProgram:
        name = f"classifier_{direction}"
        return self.ns.add_filter(
            dev, direction, UNSPEC, prog_name=name[:15], priority=prio, handle=2,
            name=f"{name}_security_{self.ns.inode}_{os.getpid()}",
        )  # fmt: skip

    def datadog_prog(self, direction: str = "ingress") -> LabProgram:
        return self.lab.program(UNSPEC, f"classifier_{direction}"[:15])

    def assess(self, prio: int = 10) -> Assessment:
        # probe=True: the scenes' unknown programs are test-run (they return a constant), so
        # no verdict is assumed; what is left to judge is the walk itself.
        report = TCInspector(netns=self.ns.path, probe=True).scan()
        return report.assess(prio)


@pytest.fixture
def world() -> Iterator[World]:
    # One namespace per test: node-wide results (the recommended priority) must not depend on
    # what earlier tests left in a shared namespace.
    pins = Pins()
    try:
        with Lab("wpwalk") as lab:
            yield World(lab, pins)
    finally:
        pins.close()


def agree(
    world: World, host: str, peer: str, a: Assessment, prog: LabProgram | None = None
) -> dict[str, bool]:
    """Send every traffic class; assert the verdict agrees; return class → blind."""
    prog = prog or world.datadog_prog()
    found = on_hook(a.findings, host, "ingress")
    blind: dict[str, bool] = {}
    for cls, (frame, traffic) in CLASSES.items():
        n = ran(world.ns, prog, peer, frame)
        blind[cls] = n == 0
        said = [f for f in found if covers(f, traffic)]
        if blind[cls]:
            assert said, f"{cls}: the kernel never ran Datadog's filter; wpprotect said nothing"
        else:
            loud = [f for f in said if "matching traffic" not in f.message]
            assert not loud, f"{cls}: Datadog's filter ran {n} times; wpprotect said {loud}"
    return blind


ALL = dict.fromkeys(CLASSES, True)
NONE = dict.fromkeys(CLASSES, False)
MIRROR = ("action", "mirred", "egress", "mirror", "dev", "wmir0")
Build = Callable[[World, str], None]


def _bpf_filter(retcode: int, **kw: object) -> Build:
    def build(w: World, dev: str) -> None:
        w.ns.add_filter(dev, "ingress", retcode, prog_name="vendor_prog", **kw)  # type: ignore[arg-type]

    return build


def _tc(*args: str) -> Build:
    def build(w: World, dev: str) -> None:
        tc(w.ns, "filter", "add", "dev", dev, "ingress", "prio", "1", *args)

    return build


# Every row of docs/reference/kernel-tc.md#tc-walk, and the known false alarms and silences of
# the walk.
SCENES: dict[str, tuple[Build, dict[str, bool]]] = {
    "da-ok": (_bpf_filter(OK), ALL),
    "da-unspec": (_bpf_filter(UNSPEC), NONE),
    "not-da-returns-0": (_bpf_filter(0, direct_action=False), NONE),
    "not-da-returns-minus-1": (_bpf_filter(-1, direct_action=False), ALL),
    "u32-match-all-flowid": (_tc("u32", "match", "u32", "0", "0", "flowid", "1:1"), ALL),
    "u32-mirror-pipe": (_tc("u32", "match", "u32", "0", "0", *MIRROR), ALL),
    "u32-mirror-continue": (_tc("u32", "match", "u32", "0", "0", *MIRROR, "continue"), NONE),
    "u32-goto-chain": (
        _tc("u32", "match", "u32", "0", "0", *MIRROR, "goto", "chain", "1"),
        ALL,
    ),
    "classic-bpf-continue": (
        _tc("bpf", "bytecode", "1,6 0 0 4294967295,", *MIRROR, "continue"),
        NONE,
    ),
    "protocol-ip-ok": (
        _bpf_filter(OK, protocol="ip"),
        {"ipv4-tcp": True, "ipv4-udp": True, "ipv6": False, "arp": False},
    ),
    "protocol-arp-ok": (
        _bpf_filter(OK, protocol="arp"),
        {"ipv4-tcp": False, "ipv4-udp": False, "ipv6": False, "arp": True},
    ),
    "u32-tcp-port-80-only": (
        _tc("protocol", "ip", "u32", "match", "ip", "dport", "80", "0xffff", *MIRROR),
        {"ipv4-tcp": True, "ipv4-udp": False, "ipv6": False, "arp": False},
    ),
}


@pytest.mark.parametrize("scene", sorted(SCENES))
def test_walk_scene(world: World, scene: str) -> None:
    build, expected = SCENES[scene]
    host, peer = world.pair()
    world.datadog(host)
    world.datadog(host, direction="egress")
    build(world, host)
    blind = agree(world, host, peer, world.assess(10))
    assert blind == expected  # the scene is what docs/reference/kernel-tc.md#tc-walk measured


def test_partial_match_names_the_match(world: World) -> None:
    host, _peer = world.pair()
    world.datadog(host)
    world.datadog(host, direction="egress")
    _tc("protocol", "ip", "u32", "match", "ip", "dport", "80", "0xffff", *MIRROR)(world, host)
    (f,) = on_hook(world.assess().findings, host, "ingress")
    assert f.protocols == ("ipv4",)
    assert "for matching traffic (u32 00000050/0000ffff at 20)" in f.message
    assert f.severity == "warning"


def test_u32_hash_tables_are_not_classifiers(world: World) -> None:
    host, _peer = world.pair()
    world.datadog(host)
    _tc("u32", "match", "u32", "0", "0", "flowid", "1:1")(world, host)
    report = TCInspector(netns=world.ns.path).scan()
    u32 = [p for p in report.programs if p.ifname == host and p.kind == "u32"]
    assert len(u32) == 1  # `tc` also prints the hash table "fh 800: ht divisor 1"
    assert (u32[0].verdict, u32[0].verdict_source, u32[0].match) == ("ok", "decoded", None)


# --- Datadog's filter as attached -------------------------------------------------------------


def test_datadog_attached_below_the_vendor_while_the_caller_says_3(world: World) -> None:
    # Datadog really at 10, the caller says 3, a vendor returning OK at 5: blind.
    host, peer = world.pair()
    world.datadog(host, prio=10)
    world.datadog(host, prio=10, direction="egress")
    world.ns.add_filter(host, "ingress", OK, prog_name="vendor_prog", priority=5)
    a = world.assess(3)
    assert agree(world, host, peer, a) == ALL
    (f,) = on_hook(a.findings, host, "ingress")
    assert (f.code, f.classifier_priority, f.vendor_priority) == (
        "lower-classifier-priority",
        10,
        5,
    )
    assert a.recommended_classifier_priority == 4


def test_datadog_attached_above_the_vendor_while_the_caller_says_15(world: World) -> None:
    # Datadog at 10, a vendor returning OK at 12, the caller says 15: nothing is blind.
    host, peer = world.pair()
    world.datadog(host, prio=10)
    world.datadog(host, prio=10, direction="egress")
    world.ns.add_filter(host, "ingress", OK, prog_name="vendor_prog", priority=12)
    a = world.assess(15)
    assert agree(world, host, peer, a) == NONE
    assert on_hook(a.findings, host, "ingress") == []


def test_priority_held_by_another_kind_is_not_recommended(world: World) -> None:
    host, peer = world.pair()
    world.datadog(host)
    world.datadog(host, direction="egress")
    world.ns.add_filter(host, "ingress", OK, prog_name="vendor_prog", priority=5)
    # Priority 4 holds a u32 that continues: the kernel would refuse Datadog's bpf filter there.
    tc(world.ns, "filter", "add", "dev", host, "ingress", "prio", "4", "u32", "match", "u32",
       "0", "0", *MIRROR, "continue")  # fmt: skip
    a = world.assess(10)
    assert agree(world, host, peer, a) == ALL
    assert a.recommended_classifier_priority == 3
    with pytest.raises(AssertionError, match=r"mismatch|not match|Exclusivity|Invalid"):
        tc(world.ns, "filter", "add", "dev", host, "ingress", "prio", "4", "bpf",
           "bytecode", "1,6 0 0 4294967295,")  # fmt: skip


def test_datadog_priority_held_by_a_u32_is_unavailable(world: World) -> None:
    host, _peer = world.pair()
    world.datadog(world.pair()[0])  # Datadog elsewhere in the namespace
    tc(world.ns, "filter", "add", "dev", host, "ingress", "prio", "10", "u32", "match", "u32",
       "0", "0", *MIRROR, "continue")  # fmt: skip
    codes = {f.code for f in on_hook(world.assess(10).findings, host, "ingress")}
    assert codes == {"priority-unavailable"}


# --- tcx as it runs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chain", "blind"),
    [
        ((_bpf.TCX_PASS,), True),
        ((_bpf.TCX_NEXT,), False),
        # A value other than NEXT/PASS/DROP/REDIRECT ends the tcx walk (the PASS after it never
        # runs) and then acts as NEXT: the clsact filters run.
        ((_bpf.TC_ACT_PIPE, _bpf.TCX_PASS), False),
    ],
    ids=["pass", "next", "other-then-pass"],
)
def test_tcx(world: World, chain: tuple[int, ...], blind: bool) -> None:
    host, peer = world.pair()
    world.datadog(host)
    world.datadog(host, direction="egress")
    links = [
        world.ns.add_tcx(host, "ingress", code, prog_name=f"tcx_v{code & 0xFF}") for code in chain
    ]
    a = world.assess(10)
    assert agree(world, host, peer, a) == (ALL if blind else NONE)
    if len(links) == 2:
        assert ran(world.ns, links[1].program, peer, CLASSES["ipv4-tcp"][0]) == 0


# --- qdiscs other than clsact, shared blocks ------------------------------------------------------


def test_device_whose_only_qdisc_is_ingress(world: World) -> None:
    world.datadog(world.pair()[0])  # Datadog's classifiers are on other devices of the namespace
    host, peer = world.pair(clsact=False)
    tc(world.ns, "qdisc", "add", "dev", host, "ingress")
    a = world.assess(10)
    assert agree(world, host, peer, a) == ALL
    missing = [f for f in a.findings if f.ifname == host and f.code == "datadog-classifier-missing"]
    assert {f.direction for f in missing} == {"ingress", "egress"}
    assert all("legacy ingress qdisc" in f.message for f in missing)


def test_filters_on_the_legacy_ingress_qdisc_are_walked(world: World) -> None:
    host, peer = world.pair(clsact=False)
    tc(world.ns, "qdisc", "add", "dev", host, "ingress")
    dd = world.datadog_prog()
    vendor = world.lab.program(OK, "vendor_prog")
    tc(world.ns, "filter", "add", "dev", host, "ingress", "prio", "1", "bpf", "object-pinned",
       world.pins.pin(vendor), "da")  # fmt: skip
    tc(world.ns, "filter", "add", "dev", host, "ingress", "prio", "10", "bpf", "object-pinned",
       world.pins.pin(dd), "da")  # fmt: skip
    a = world.assess(10)
    assert agree(world, host, peer, a, dd) == ALL
    (f,) = on_hook(a.findings, host, "ingress")
    assert f.code == "network-blind"
    assert "legacy ingress qdisc" in f.message
    (egress,) = on_hook(a.findings, host, "egress")
    assert egress.code == "datadog-classifier-missing"


def test_shared_block_is_attributed_to_every_bound_device(world: World) -> None:
    devices = [world.pair(clsact=False) for _ in range(2)]
    for host, _peer in devices:
        tc(world.ns, "qdisc", "add", "dev", host, "ingress_block", "71", "clsact")
    tc(world.ns, "filter", "add", "block", "71", "prio", "1", "u32", "match", "u32", "0", "0",
       "flowid", "1:1")  # fmt: skip
    dd = world.datadog_prog()
    tc(world.ns, "filter", "add", "block", "71", "prio", "10", "bpf", "object-pinned",
       world.pins.pin(dd), "da")  # fmt: skip
    report = TCInspector(netns=world.ns.path).scan()
    a = report.assess(10)
    for host, peer in devices:
        listed = [p for p in report.programs if p.ifname == host and p.direction == "ingress"]
        assert {(p.kind, p.block) for p in listed} == {("u32", 71), ("bpf", 71)}
        assert agree(world, host, peer, a, dd) == ALL
        (f,) = on_hook(a.findings, host, "ingress")
        assert "shared block 71" in f.message
    assert not any(p.ifname.startswith("ifindex") for p in report.programs)


def test_shared_block_without_a_blocker_is_seen(world: World) -> None:
    devices = [world.pair(clsact=False) for _ in range(2)]
    for host, _peer in devices:
        tc(world.ns, "qdisc", "add", "dev", host, "ingress_block", "72", "egress_block", "73",
           "clsact")  # fmt: skip
    dd = world.datadog_prog()
    tc(world.ns, "filter", "add", "block", "72", "prio", "10", "bpf", "object-pinned",
       world.pins.pin(dd), "da")  # fmt: skip
    # The egress block holds a blocker (and Datadog's egress filter behind it).
    dde = world.datadog_prog("egress")
    tc(world.ns, "filter", "add", "block", "73", "prio", "1", "u32", "match", "u32", "0", "0",
       "flowid", "1:1")  # fmt: skip
    tc(world.ns, "filter", "add", "block", "73", "prio", "10", "bpf", "object-pinned",
       world.pins.pin(dde), "da")  # fmt: skip
    a = world.assess(10)
    for host, peer in devices:
        assert agree(world, host, peer, a, dd) == NONE
        # Egress: frames sent out of the host end go through its egress hooks.
        assert ran(world.ns, dde, host, CLASSES["ipv4-tcp"][0]) == 0
        assert [f.code for f in on_hook(a.findings, host, "egress")] == ["network-blind"]
