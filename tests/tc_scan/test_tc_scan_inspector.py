"""TCInspector.scan() on real scenes: several namespaces, vendors, tcx, probing, vanishing."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.tc_scan._scene import Scene, run
from wpprotect.errors import BPFError, InvalidArgumentError, NetnsNotFoundError
from wpprotect.tc import TCInspector, TCProgram, TCReport, _bpf, _bpfsys, _netns


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, object]]:
    """Two named namespaces and one reachable only through /proc/<pid>/ns/net."""
    sc = Scene()
    try:
        a = sc.netns("wptc4a")
        b = sc.netns("wptc4b")
        hidden = sc.unnamed()
        sc.veth(a, "w4a0", "w4b0")
        a1 = sc.veth(a, "w4a1", "w4b1")
        sc.veth(b, "w4c0", "w4c1")
        sc.veth(hidden, "w4d0", "w4d1")
        ok = sc.prog(_bpf.TC_ACT_OK, "cil_from_contai")
        dd = sc.prog(_bpf.TC_ACT_UNSPEC, "classifier_ingr")
        cali = sc.prog(_bpf.TC_ACT_UNSPEC, "cali_tc_preambl")
        mystery = sc.prog(_bpf.TC_ACT_UNSPEC, "mystery")
        aws = sc.prog(_bpf.TC_ACT_OK, "handle_ingress")
        netdev = sc.prog(_bpf.TCX_PASS, "cil_from_netdev")
        ids = {
            "cilium": sc.bpf_filter(
                a, "w4a0", "ingress", prio=1, handle=1, name="cil_from_container-w4a0", fd=ok
            ),
            "datadog": sc.bpf_filter(
                a, "w4a0", "ingress", prio=10, handle=2,
                name="classifier_ingress_security380_4026531992_2115", fd=dd,
            ),
            "calico": sc.bpf_filter(
                a, "w4a1", "egress", prio=49152, handle=1, name="cali_tc_preambl:[61]", fd=cali
            ),
            "mystery": sc.bpf_filter(b, "w4c0", "ingress", prio=3, handle=1, name="m", fd=mystery),
            "aws": sc.bpf_filter(
                hidden, "w4d0", "ingress", prio=1, handle=1, name="handle_ingress", fd=aws
            ),
        }  # fmt: skip
        link_id = sc.tcx(a, a1, "ingress", netdev)
        yield {
            "scene": sc, "hidden": hidden, "a": a, "b": b, "ids": ids, "link_id": link_id,
            "tcx_prog": sc.prog_ids[netdev], "a1": a1,
        }  # fmt: skip
    finally:
        sc.close()


def _only(report: TCReport, **match: object) -> TCProgram:
    found = [p for p in report.programs if all(getattr(p, k) == v for k, v in match.items())]
    assert len(found) == 1, (match, report.programs)
    return found[0]


@pytest.mark.root
def test_scan_all_sees_every_namespace(world: dict[str, object]) -> None:
    report = TCInspector(netns="all").scan()
    ids = world["ids"]
    assert isinstance(ids, dict)
    hidden = str(world["hidden"])
    pid = hidden.split("/")[2]

    a, b = str(world["a"]), str(world["b"])
    cil = _only(report, prog_id=ids["cilium"], attach="clsact")
    assert (cil.netns, cil.ifname, cil.direction, cil.priority, cil.handle) == (
        a, "w4a0", "ingress", 1, 1,
    )  # fmt: skip
    assert (cil.vendor, cil.verdict, cil.verdict_source) == ("cilium", "ok", "documented")
    assert (cil.prog_name, cil.prog_tag, cil.direct_action) == (
        "cil_from_contai", "59f4a931744dcdc6", True,
    )  # fmt: skip
    assert cil.hw_flags == ("not_in_hw",)
    assert cil.netns_id is not None
    assert cil.netns_id.endswith(f":{_netns.resolve_netns(a).ino}")

    dd = _only(report, prog_id=ids["datadog"])
    assert (dd.vendor, dd.verdict, dd.priority) == ("datadog-cws", "unspec", 10)
    cali = _only(report, prog_id=ids["calico"])
    assert (cali.vendor, cali.direction, cali.priority) == ("calico", "egress", 49152)
    mystery = _only(report, prog_id=ids["mystery"])
    assert (mystery.netns, mystery.vendor, mystery.verdict, mystery.verdict_source) == (
        b, "unknown", None, "assumed",
    )  # fmt: skip
    aws = _only(report, prog_id=ids["aws"])
    assert aws.netns.startswith(f"pid {pid} (")
    assert aws.vendor == "aws-network-policy"

    tcx = _only(report, prog_id=world["tcx_prog"])
    assert (tcx.attach, tcx.netns, tcx.ifindex, tcx.direction) == (
        "tcx", a, world["a1"], "ingress",
    )  # fmt: skip
    assert (tcx.priority, tcx.handle, tcx.position, tcx.link_id) == (
        None, None, 0, world["link_id"],
    )  # fmt: skip
    assert (tcx.name, tcx.vendor, tcx.verdict) == ("cil_from_netdev", "cilium", "pass")
    assert report.tcx_supported is True
    # Other test runs' namespaces may vanish during an "all" scan; ours must not warn.
    assert not [w for w in report.warnings if a in w or b in w or f"pid {pid} " in w]
    labels = {n.label for n in report.namespaces}
    assert {a, b, "host"} <= labels
    assert any(label.startswith(f"pid {pid} (") for label in labels)


@pytest.mark.root
def test_scan_one_name_or_path(world: dict[str, object]) -> None:
    ids = world["ids"]
    assert isinstance(ids, dict)
    b = str(world["b"])
    report = TCInspector(netns=b).scan()
    assert [p.prog_id for p in report.programs] == [ids["mystery"]]
    assert [n.label for n in report.namespaces] == [b]
    by_path = TCInspector(netns=str(world["hidden"])).scan()
    assert [p.prog_id for p in by_path.programs] == [ids["aws"]]


@pytest.mark.root
def test_probe_learns_every_verdict_but_datadogs(world: dict[str, object]) -> None:
    ids = world["ids"]
    assert isinstance(ids, dict)
    report = TCInspector(netns="all", probe=True).scan()
    mystery = _only(report, prog_id=ids["mystery"])
    assert (mystery.verdict, mystery.verdict_source) == ("unspec", "probed")
    # Documented vendors are probed too (the scene's Cilium-named program returns OK).
    cilium = _only(report, prog_id=ids["cilium"], attach="clsact")
    assert (cilium.verdict, cilium.verdict_source) == ("ok", "probed")
    assert cilium.probes is not None
    assert set(cilium.probes.values()) == {"ok"}
    for p in report.programs:
        if p.vendor == "datadog-cws":
            assert (p.verdict_source, p.probes) == ("documented", None)
    assert report.probe is True


@pytest.mark.root
def test_namespace_deleted_during_scan_is_skipped_with_warning(world: dict[str, object]) -> None:
    sc = world["scene"]
    assert isinstance(sc, Scene)
    gone = sc.netns("wptc4del")
    sc.veth(gone, "w4e0", "w4e1")

    def delete_it(ref: _netns.NetnsRef) -> None:
        if ref.label == gone:
            subprocess.run(["ip", "netns", "del", gone], check=True)

    inspector = TCInspector(netns="all")
    inspector._before_read = delete_it
    report = inspector.scan()
    assert any(gone in w and "vanished" in w for w in report.warnings)
    assert gone not in {n.label for n in report.namespaces}
    assert any(p.netns == world["a"] for p in report.programs)  # the others were still read


@pytest.mark.root
def test_clsact_programs_match_bpftool(world: dict[str, object]) -> None:
    a = str(world["a"])
    report = TCInspector(netns=a, tcx=False).scan()
    (dump,) = json.loads(run("ip", "netns", "exec", a, "bpftool", "net", "-j"))
    theirs = {(t["ifindex"], t["kind"], t["name"], t["id"]) for t in dump["tc"]}
    ours = {(p.ifindex, f"clsact/{p.direction}", p.name, p.prog_id) for p in report.programs}
    assert ours == theirs
    assert report.tcx_supported is None  # not asked


@pytest.mark.root
def test_unknown_namespace_raises_and_creates_nothing() -> None:
    with pytest.raises(NetnsNotFoundError, match="wptc4-nope"):
        TCInspector(netns="wptc4-nope").scan()
    assert not any("nope" in n for n in os.listdir("/var/run/netns"))


def test_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="classifier_priority"):
        TCInspector(classifier_priority=0)
    assert repr(TCInspector(netns=None)) == "<TCInspector netns=None probe=False>"


@pytest.mark.root
def test_lab_vendor_scene_end_to_end() -> None:
    """The lab's scene of every vendor as deployed: scan, then judge at priority 10."""
    from wpprotect.tc._lab import Lab

    with Lab("wptc4") as lab:
        scene = lab.scene_mimic_vendors(dev_prefix="w4")
        report = TCInspector(netns=scene.netns).scan()
        assessment = report.assess(10)
    by_id = {p.prog_id: p for p in report.programs}
    assert by_id[scene.prog_ids["cilium"]].vendor == "cilium"
    assert by_id[scene.prog_ids["calico"]].priority == 49152
    assert by_id[scene.prog_ids["aws"]].vendor == "aws-network-policy"
    assert by_id[scene.prog_ids["unknown"]].verdict_source == "assumed"
    assert by_id[scene.prog_ids["tcx"]].attach == "tcx"
    assert by_id[scene.prog_ids["tcx"]].position == 1  # behind netobserv's NEXT program
    assert by_id[scene.prog_ids["datadog"]].vendor == "datadog-cws"
    got = {(f.code, f.ifname, f.direction) for f in assessment.findings if f.needs_action}
    assert got == set(scene.expected)
    assert assessment.recommended_classifier_priority == scene.recommended_classifier_priority


@pytest.mark.root
def test_device_deleted_mid_scan_is_a_warning(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = scene.netns("wptc4mid")
    victim = scene.veth(ns, "w4h0", "w4h1")
    scene.veth(ns, "w4i0", "w4i1")
    fd = scene.prog(_bpf.TC_ACT_UNSPEC, "classifier_ingr")
    kept = scene.bpf_filter(ns, "w4i0", "ingress", prio=10, handle=1, name="dd", fd=fd)
    real_query = _bpfsys.query

    def query_after_deleting(ifindex: int, attach_type: int) -> _bpfsys.QueryTuple | None:
        if ifindex == victim and attach_type == _bpf.BPF_TCX_INGRESS:
            run("ip", "-n", ns, "link", "del", "w4h0")  # the kernel now answers ENODEV
        return real_query(ifindex, attach_type)

    monkeypatch.setattr(_bpfsys, "query", query_after_deleting)
    report = TCInspector(netns=ns).scan()
    assert [w for w in report.warnings if "w4h0" in w and "vanished" in w]
    assert [p.prog_id for p in report.programs] == [kept]


@pytest.mark.root
def test_kernel_without_tcx_is_not_an_error(
    world: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before Linux 6.6 BPF_PROG_QUERY answers EINVAL for attach types 46/47, which
    # _bpfsys.query reports as None; this kernel has tcx, so that answer is simulated.
    monkeypatch.setattr(_bpfsys, "query", lambda ifindex, attach_type: None)
    report = TCInspector(netns=str(world["a"])).scan()
    assert report.tcx_supported is False
    assert report.warnings == ()
    assert {p.attach for p in report.programs} == {"clsact"}


@pytest.mark.root
def test_one_unreadable_namespace_does_not_hide_the_others(
    world: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    b_ino = _netns.resolve_netns(str(world["b"])).ino
    real_query = _bpfsys.query

    def failing_in_b(ifindex: int, attach_type: int) -> _bpfsys.QueryTuple | None:
        if os.stat("/proc/thread-self/ns/net").st_ino == b_ino:
            raise BPFError("BPF_PROG_QUERY failed: Input/output error", errno=5)
        return real_query(ifindex, attach_type)

    monkeypatch.setattr(_bpfsys, "query", failing_in_b)
    report = TCInspector(netns="all").scan()
    assert [w for w in report.warnings if str(world["b"]) in w and "could not be read" in w]
    assert any(p.netns == world["a"] for p in report.programs)
    # One device's failed query is a warning about that device, never a lost namespace.
    alone = TCInspector(netns=str(world["b"])).scan()
    assert [n.label for n in alone.namespaces] == [world["b"]]
    assert any("Input/output error" in w and "device" in w for w in alone.warnings)


@pytest.mark.root
def test_program_info_is_read_once_per_scan_and_again_at_the_next(
    world: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    real = _bpfsys.prog_fields

    def counting(prog_id: int) -> _bpfsys.ProgFields | None:
        reads.append(prog_id)
        return real(prog_id)

    monkeypatch.setattr(_bpfsys, "prog_fields", counting)
    inspector = TCInspector(netns="all")
    inspector.scan()
    first = list(reads)
    assert first
    assert len(first) == len(set(first))  # one lookup per program, whatever its devices
    inspector.scan()
    assert sorted(reads[len(first) :]) == sorted(first)  # run counters move: read again
