"""Ground truth for probes: a program's verdict is learned per traffic class, in its hook's
direction, and the kernel agrees.

Each scene puts a program at priority 1 (or on tcx) ahead of a Datadog-like classifier at
priority 10, sends 5 frames of each traffic class from the veth peer, and counts with BPF run
statistics whether the Datadog-like classifier ran. A class it never ran for must be covered by a
warning or error on that device (``protocols`` naming it, or all traffic); a class it ran for
must not be.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from wpprotect.tc import _bpf
from wpprotect.tc._inspector import TCInspector
from wpprotect.tc._lab import Lab, LabNetns, LabProgram
from wpprotect.tc._model import PACKET_CLASSES, Assessment, TCProgram

from ._kernel import (
    FRAMES_PER_CLASS,
    PROBE_FRAMES,
    Loaded,
    Pins,
    covers_class,
    ok_for_ipv4_udp_only,
    ok_when_received,
    on_hook,
    quiet,
    ran,
    tc,
)

pytestmark = pytest.mark.root

UNSPEC = _bpf.TC_ACT_UNSPEC
_pairs = itertools.count()


class Scene:
    """A lab namespace; one veth pair per test with Datadog-like classifiers at priority 10."""

    def __init__(self, lab: Lab, pins: Pins) -> None:
        self.lab = lab
        self.pins = pins
        self.ns: LabNetns = lab.netns("probe")
        quiet(self.ns)
        self.loaded: list[Loaded] = []
        n = next(_pairs)
        self.host, self.peer = f"wq{n}h", f"wq{n}p"
        self.ns.add_veth(self.host, self.peer, up=True, clsact=True)
        self.datadog = self.ns.add_filter(
            self.host, "ingress", UNSPEC, prog_name="classifier_ingr", priority=10, handle=2,
            name=f"classifier_ingress_security_{self.ns.inode}_{os.getpid()}",
        )  # fmt: skip
        self.datadog_egress = self.ns.add_filter(
            self.host, "egress", UNSPEC, prog_name="classifier_egre", priority=10, handle=2,
            name=f"classifier_egress_security_{self.ns.inode}_{os.getpid()}",
        )  # fmt: skip

    def filter(self, prog: Loaded | LabProgram, prio: int = 1) -> None:
        """Attach ``prog`` as a direct-action filter on the host end's ingress."""
        tc(self.ns, "filter", "add", "dev", self.host, "ingress", "prio", str(prio), "bpf",
           "object-pinned", self.pins.pin(prog), "da")  # fmt: skip

    def load(self, insns: list[tuple[int, int, int, int]], name: str) -> Loaded:
        prog = Loaded(insns, name)
        self.loaded.append(prog)
        return prog

    def assess(self, *, probe: bool = True) -> Assessment:
        return TCInspector(netns=self.ns.path, probe=probe).scan().assess(10)

    def row(self, prog_id: int, probe: bool = True) -> TCProgram:
        report = TCInspector(netns=self.ns.path, probe=probe).scan()
        (row,) = (p for p in report.programs if p.prog_id == prog_id and p.ifname == self.host)
        return row

    def blind(self, a: Assessment) -> dict[str, bool]:
        """Send every class; assert wpprotect agrees with the kernel; return class → blind."""
        found = on_hook(a.findings, self.host, "ingress")
        blind: dict[str, bool] = {}
        for cls, frame in PROBE_FRAMES.items():
            n = ran(self.ns, self.datadog, self.peer, frame)
            blind[cls] = n == 0
            said = [f for f in found if covers_class(f, cls)]
            if blind[cls]:
                assert said, f"{cls}: the kernel never ran Datadog's filter; wpprotect said nothing"
            else:
                assert not said, f"{cls}: Datadog's filter ran {n} times; wpprotect said {said}"
        return blind


@pytest.fixture
def scene() -> Iterator[Scene]:
    pins = Pins()
    try:
        with Lab("wpprobe") as lab:
            sc = Scene(lab, pins)
            try:
                yield sc
            finally:
                for prog in sc.loaded:
                    prog.close()
    finally:
        pins.close()


def test_a_program_that_blinds_only_dns_is_reported_for_ipv4_udp(scene: Scene) -> None:
    prog = scene.load(ok_for_ipv4_udp_only(), "dns_only")
    scene.filter(prog)
    a = scene.assess()
    blind = scene.blind(a)
    assert blind == {cls: cls == "udp/ipv4" for cls in PACKET_CLASSES}  # the kernel's answer
    (f,) = on_hook(a.findings, scene.host, "ingress")
    assert (f.code, f.protocols, f.basis, f.prog_id) == (
        "network-blind",
        ("udp/ipv4",),
        "probed",
        prog.id,
    )
    assert "OK for udp/ipv4" in f.message
    row = scene.row(prog.id)
    assert row.probes == {cls: "ok" if cls == "udp/ipv4" else "unspec" for cls in PACKET_CLASSES}
    assert (row.verdict, row.verdict_source) == ("ok", "probed")
    # The JSON shows the per-class verdicts.
    assert row.to_dict()["probes"]["udp/ipv4"] == "ok"


def test_without_probe_the_same_program_is_only_assumed(scene: Scene) -> None:
    prog = scene.load(ok_for_ipv4_udp_only(), "dns_only")
    scene.filter(prog)
    (f,) = on_hook(scene.assess(probe=False).findings, scene.host, "ingress")
    assert (f.severity, f.basis, f.protocols) == ("warning", "assumed", None)
    assert scene.row(prog.id, probe=False).probes is None


def test_a_beyla_named_program_returning_ok_is_caught_by_its_probe(scene: Scene) -> None:
    # Documented as UNSPEC (grafana/beyla#1533), but this one returns OK at priority 1
    # (as grafana/beyla#1541 fixed): the probe wins, and the finding says how it is known.
    beyla = scene.lab.program(_bpf.TC_ACT_OK, "beyla_tc_ingres")
    scene.filter(beyla)
    assert on_hook(scene.assess(probe=False).findings, scene.host, "ingress") == []
    a = scene.assess()
    assert scene.blind(a) == dict.fromkeys(PACKET_CLASSES, True)
    (f,) = on_hook(a.findings, scene.host, "ingress")
    assert (f.code, f.vendor, f.basis, f.protocols) == ("network-blind", "beyla", "probed", None)
    assert "although beyla documents UNSPEC" in f.message


def test_a_program_passing_everything_is_no_finding(scene: Scene) -> None:
    passing = scene.lab.program(UNSPEC, "vendor_pass")
    scene.filter(passing)
    a = scene.assess()
    assert scene.blind(a) == dict.fromkeys(PACKET_CLASSES, False)
    assert on_hook(a.findings, scene.host, "ingress") == []
    assert scene.row(passing.id).probes == dict.fromkeys(PACKET_CLASSES, "unspec")


def test_the_probe_runs_in_the_hooks_direction(scene: Scene) -> None:
    # OK only for received packets: a test run without the ingress context would say UNSPEC.
    prog = scene.load(ok_when_received(), "rx_only")
    scene.filter(prog)
    assert _bpf.probe_classes(prog.id) == dict.fromkeys(PACKET_CLASSES, UNSPEC)  # no context
    a = scene.assess()
    assert scene.blind(a) == dict.fromkeys(PACKET_CLASSES, True)
    (f,) = on_hook(a.findings, scene.host, "ingress")
    assert (f.code, f.basis, f.protocols) == ("network-blind", "probed", None)
    # The same program on egress lets everything through there: no egress finding.
    tc(scene.ns, "filter", "add", "dev", scene.host, "egress", "prio", "1", "bpf",
       "object-pinned", scene.pins.pin(prog), "da")  # fmt: skip
    egress = [p for p in scene.assess().findings if p.direction == "egress" and p.needs_action]
    assert egress == []
    # The kernel agrees: frames sent out of the host end pass the egress filter at priority 1
    # and reach Datadog's egress classifier.
    for cls, frame in _bpf.probe_packets("egress").items():
        assert ran(scene.ns, scene.datadog_egress, scene.host, frame) == FRAMES_PER_CLASS, cls


def test_a_tcx_program_passing_only_dns_bypasses_only_ipv4_udp(scene: Scene) -> None:
    prog = scene.load(ok_for_ipv4_udp_only(), "tcx_dns")  # OK = TCX_PASS, UNSPEC = TCX_NEXT
    idx = scene.ns.run(lambda: _bpf.prog_query(1, _bpf.BPF_TCX_INGRESS))  # tcx is there
    if idx is None:
        pytest.skip("no tcx in this kernel (before Linux 6.6)")
    link = scene.ns.run(
        lambda: _bpf.link_create(prog.fd, scene.ns._index(scene.host), _bpf.BPF_TCX_INGRESS)
    )
    try:
        a = scene.assess()
        assert scene.blind(a) == {cls: cls == "udp/ipv4" for cls in PACKET_CLASSES}
        (f,) = on_hook(a.findings, scene.host, "ingress")
        assert (f.code, f.protocols, f.basis) == ("tcx-bypass", ("udp/ipv4",), "probed")
    finally:
        os.close(link)
