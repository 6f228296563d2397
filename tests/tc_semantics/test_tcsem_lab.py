"""The lab against the real kernel: scenes are what iproute2 sees, the assessment of the vendor
scene (documented and probed verdicts), and that nothing is left behind, whatever happens."""

from __future__ import annotations

import ast
import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

import wpprotect
from wpprotect.errors import BPFError, InvalidArgumentError, TCError
from wpprotect.tc import _bpf
from wpprotect.tc._assess import annotate_programs, assess
from wpprotect.tc._lab import FilterSpec, Lab
from wpprotect.tc._model import TCProgram, protocol_classes

pytestmark = pytest.mark.root


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def tc_filters(netns: str, dev: str, direction: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["tc", "-j", "-n", netns, "filter", "show", "dev", dev, direction],
        capture_output=True,
        text=True,
        check=True,
    )
    rows: list[dict[str, Any]] = json.loads(out.stdout or "[]")
    return [r for r in rows if "options" in r]  # skip the per-priority header rows


def link_exists(link_id: int) -> bool:
    try:
        fd = _bpf.link_get_fd_by_id(link_id)
    except BPFError as exc:
        if exc.errno != errno.ENOENT:
            raise
        return False
    os.close(fd)
    return True


def assert_all_gone(
    lab: Lab, names: set[str], prog_ids: tuple[int, ...], link_ids: tuple[int, ...] = ()
) -> None:
    assert lab.closed
    assert not (names & netns_names())
    assert all(not os.path.exists(f"/var/run/netns/{n}") for n in names)
    assert not any(link_exists(i) for i in link_ids)  # link fds closed: detached at once
    assert Lab.wait_programs_released(prog_ids, timeout=15) == []


def test_vendor_scene_is_what_tc_shows() -> None:
    with Lab("wptc3") as lab:
        scene = lab.scene_mimic_vendors()
        assert scene.netns in netns_names()
        cil = tc_filters(scene.netns, "w3cil0", "ingress")
        assert [(r["pref"], r["options"]["bpf_name"]) for r in cil] == [
            (1, "cil_from_container-w3cil0"),
            (10, cil[1]["options"]["bpf_name"]),
        ]
        assert cil[0]["options"]["prog"]["name"] == "cil_from_contai"
        assert cil[0]["options"]["prog"]["tag"] == "59f4a931744dcdc6"
        assert cil[0]["options"]["direct-action"] is True
        assert cil[1]["options"]["bpf_name"].startswith("classifier_ingress_security_")
        cal = tc_filters(scene.netns, "w3cal0", "ingress")
        calico = [r for r in cal if r["pref"] == 49152]
        assert calico[0]["options"]["bpf_name"] == f"cali_tc_preambl:[{scene.prog_ids['calico']}]"
        ns = lab.namespaces[0]
        q = ns.prog_query("w3tcx0", "ingress")
        assert q is not None
        assert q.prog_ids[-1] == scene.prog_ids["tcx"]
        assert len(q.prog_ids) == 2


def _scene_programs(lab: Lab, devices: dict[str, str]) -> list[TCProgram]:
    """The scene's programs as TCProgram rows, read from tc and BPF_PROG_QUERY (not from the
    scanner, so this test stands on its own)."""
    ns = lab.namespaces[0]
    rows: list[TCProgram] = []
    for dev in devices.values():
        for direction in ("ingress", "egress"):
            for r in tc_filters(ns.name, dev, direction):
                o = r["options"]
                rows.append(
                    TCProgram(
                        netns=ns.name,
                        ifname=dev,
                        ifindex=ns.ifindex[dev],
                        direction=direction,
                        attach="clsact",
                        priority=r["pref"],
                        handle=int(o["handle"], 16),
                        name=o["bpf_name"],
                        prog_id=o["prog"]["id"],
                        prog_name=o["prog"]["name"],
                        prog_tag=o["prog"]["tag"],
                        direct_action=o.get("direct-action", False),
                    )
                )
            q = ns.prog_query(dev, direction)
            assert q is not None
            for pos, (pid, lid) in enumerate(zip(q.prog_ids, q.link_ids, strict=True)):
                info = _bpf.prog_info(pid)
                rows.append(
                    TCProgram(
                        netns=ns.name,
                        ifname=dev,
                        ifindex=ns.ifindex[dev],
                        direction=direction,
                        attach="tcx",
                        name=info.name,
                        prog_id=pid,
                        prog_name=info.name,
                        link_id=lid,
                        position=pos,
                    )
                )
    return rows


@pytest.mark.parametrize("probe", [False, True])
def test_vendor_scene_assessment(probe: bool) -> None:
    with Lab("wptc3") as lab:
        scene = lab.scene_mimic_vendors()
        progs = annotate_programs(_scene_programs(lab, scene.devices), probe=probe)
        unknown = next(p for p in progs if p.name == "mystery_fw")
        if probe:
            assert (unknown.verdict, unknown.verdict_source) == ("ok", "probed")
        else:
            assert (unknown.verdict, unknown.verdict_source) == (None, "assumed")
        cilium = next(p for p in progs if p.vendor == "cilium" and p.attach == "clsact")
        # A documented vendor is probed too with probe=True: the test run is what it does.
        assert (cilium.verdict, cilium.verdict_source) == (
            "ok",
            "probed" if probe else "documented",
        )
        if probe:
            assert cilium.probes == dict.fromkeys(protocol_classes(cilium.protocol), "ok")
        datadog = next(p for p in progs if p.vendor == "datadog-cws")
        assert (datadog.verdict_source, datadog.probes) == ("documented", None)  # never run
        a = assess(progs, 10)
        found = {(f.code, f.ifname, f.direction) for f in a.findings}
        assert found == set(scene.expected)
        assert a.recommended_classifier_priority == scene.recommended_classifier_priority
        lower = next(f for f in a.findings if f.code == "lower-classifier-priority")
        assert lower.severity == ("error" if probe else "warning")
        # Datadog's filters moved to priority 4 (the agent restarted with it) fix the unknown
        # program; Cilium/AWS at 1 and the tcx program remain.
        moved = [attrs.evolve(p, priority=4) if p.vendor == "datadog-cws" else p for p in progs]
        assert assess(progs, 4).recommended_classifier_priority == 4  # judged as attached: 10
        after = assess(moved, 4)
        assert {f.code for f in after.findings if f.needs_action} == {
            "network-blind",
            "tcx-bypass",
        }
        # Judged at 10 (the lab's filters as attached) against a configured 4: said, as info.
        assert {f.code for f in assess(progs, 4).findings if not f.needs_action} == {
            "classifier-priority-mismatch"
        }


def test_probing_a_live_program_agrees_with_its_code() -> None:
    with Lab("wptc3") as lab:
        for code in (_bpf.TC_ACT_OK, _bpf.TC_ACT_UNSPEC, _bpf.TC_ACT_SHOT):
            assert _bpf.probe_verdict(lab.program(code, f"wptc3_p{code + 1}").id) == code


def kernel_links(netns: str) -> dict[str, tuple[int, bool]]:
    """ifname -> (ifindex, administratively up), as ``ip -j link`` reports them."""
    out = subprocess.run(
        ["ip", "-j", "-n", netns, "link", "show"], capture_output=True, text=True, check=True
    )
    return {r["ifname"]: (r["ifindex"], "UP" in r["flags"]) for r in json.loads(out.stdout)}


def test_batched_scenes_build_every_filter() -> None:
    with Lab("wptc3") as lab:
        ns = lab.scene_veths(40, dev_prefix="w3v", up=True)
        assert len(ns.ifindex) == 81  # lo + 40 pairs
        # The lab picks both ends' ifindexes and never reads them back: the kernel agrees.
        links = kernel_links(ns.name)
        assert {n: i for n, (i, _) in links.items()} == ns.ifindex
        assert all(up for n, (_, up) in links.items() if n != "lo")
        for dev in ("w3v1", "w3v40"):
            ingress = tc_filters(ns.name, dev, "ingress")
            assert [r["pref"] for r in ingress] == [1, 10]
            assert [r["pref"] for r in tc_filters(ns.name, dev, "egress")] == [1]
        many = lab.scene_namespaces(3, 4, dev_prefix="w3m")
        assert len({n.name for n in many}) == 3
        assert all(n.name in netns_names() for n in many)
        assert len(lab.prog_ids) == 2  # two programs shared by every filter


def test_every_filter_spec_field_reaches_the_kernel() -> None:
    with Lab("wptc3") as lab:
        ns = lab.netns("spec")
        ns.add_veth("w3f0", "w3f0p", clsact=False)  # add_filters adds the missing clsact
        assert kernel_links(ns.name)["w3f0"][1] is False
        prog = ns.add_filter(
            "w3f0",
            "egress",
            _bpf.TC_ACT_SHOT,
            prog_name="wptc3_spec",
            priority=None,
            handle=7,
            name="spec:[{id}]",
            protocol="ip",
            direct_action=False,
            chain=5,
        )
        (row,) = tc_filters(ns.name, "w3f0", "egress")
        assert (row["pref"], row["protocol"]) == (49152, "ip")  # the kernel's first auto prio
        assert row["chain"] == 5
        opts = row["options"]
        assert (opts["handle"], opts["bpf_name"]) == ("0x7", f"spec:[{prog.id}]")
        assert opts["prog"]["id"] == prog.id
        assert "direct-action" not in opts
        ns.add_filter("w3f0", "ingress", 0, prog_name="wptc3_spec2", protocol=0x86DD)
        (row,) = tc_filters(ns.name, "w3f0", "ingress")
        assert (row["pref"], row["protocol"], row["options"]["direct-action"]) == (1, "ipv6", True)


def test_without_pyroute2_the_lab_names_the_extra_and_makes_nothing() -> None:
    code = (
        "import sys\n"
        "sys.modules['pyroute2'] = None  # as if the tc extra were not installed\n"
        "from wpprotect.errors import BackendUnavailableError\n"
        "from wpprotect.tc._lab import Lab\n"
        "with Lab('wptc3') as lab:\n"
        "    try:\n"
        "        lab.netns('nopr2')\n"
        "    except BackendUnavailableError as exc:\n"
        "        print(exc)\n"
        "        print(isinstance(exc.__cause__, ImportError), len(lab.namespaces))\n"
    )
    before = netns_names()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "pip install 'wpprotect[tc]'" in out[0]
    assert out[1] == "True 0"
    assert not {n for n in netns_names() - before if "nopr2" in n}


def test_without_pyroute2_the_demo_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['pyroute2'] = None  # as if the tc extra were not installed\n"
        "from wpprotect.cli import main\n"
        "sys.exit(main(['demo', '--prefix', 'wptc3nopr2']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "pip install 'wpprotect[tc]'" in proc.stderr
    assert proc.stdout == ""
    assert not any(n.startswith("wptc3nopr2") for n in netns_names())


def test_pyroute2_is_imported_by_the_lab_only() -> None:
    """The lab is pyroute2's one home: the scan path reads with its own lean decoder."""
    pkg = Path(wpprotect.__file__).parent
    importers = set()
    for path in pkg.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            if any(n.split(".")[0] == "pyroute2" for n in names):
                importers.add(path.relative_to(pkg).as_posix())
    assert importers == {"tc/_lab.py"}


def test_lab_cleans_up_on_normal_exit() -> None:
    with Lab("wptc3") as lab:
        scene = lab.scene_mimic_vendors()
        names = {n.name for n in lab.namespaces}
        ids = lab.prog_ids
        links = lab.link_ids
        assert scene.netns in names
        assert len(ids) >= 8
        assert len(links) == 2
        assert all(link_exists(i) for i in links)
    assert_all_gone(lab, names, ids, links)
    with pytest.raises(TCError, match="closed"):
        lab.netns()
    lab.close()  # idempotent


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_lab_cleans_up_on_exceptions(exc_type: type[BaseException]) -> None:
    seen: dict[str, Any] = {}
    lab = Lab("wptc3")

    def build_then_fail() -> None:
        with lab:
            lab.scene_mimic_vendors()
            seen["names"] = {n.name for n in lab.namespaces}
            seen["ids"] = lab.prog_ids
            seen["links"] = lab.link_ids
            raise exc_type("boom")

    with pytest.raises(exc_type, match="boom"):
        build_then_fail()
    names, ids = seen["names"], seen["ids"]
    assert names
    assert_all_gone(lab, names, ids, seen["links"])


def test_kernel_errors_are_reported_and_the_lab_still_cleans_up() -> None:
    with Lab("wptc3", wait_released=True) as lab:
        ns = lab.netns("errors")
        ns.add_veth("w3e0", "w3e0p")
        ns.add_filter("w3e0", "ingress", 0, prog_name="wptc3_e", priority=3, handle=1)
        with pytest.raises(
            TCError, match="ingress filter prio 3 on w3e0 failed: File exists"
        ) as failed:
            ns.add_filter("w3e0", "ingress", 0, prog_name="wptc3_e", priority=3, handle=1)
        assert ns.name in str(failed.value)
        assert type(failed.value.__cause__).__module__.startswith("pyroute2.")
        # A refused request leaves the namespace usable.
        ns.add_veth("w3e1", "w3e1p")
        assert kernel_links(ns.name)["w3e1"][0] == ns.ifindex["w3e1"]
        with pytest.raises(InvalidArgumentError, match="no device 'nope'"):
            ns.add_filter("nope", "ingress", 0)
        with pytest.raises(InvalidArgumentError, match="already exists"):
            ns.add_veth("w3e0", "w3e9")
        with pytest.raises(InvalidArgumentError, match="interface name"):
            ns.add_veth("w3-this-is-far-too-long", "x")
        with pytest.raises(InvalidArgumentError, match="direction"):
            FilterSpec("w3e0", "sideways")
        names = {ns.name}
        ids = lab.prog_ids
    assert_all_gone(lab, names, ids)


def test_bad_prefix_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="prefix"):
        Lab("bad/prefix")


def test_a_name_taken_by_someone_else_is_refused_and_left_alone() -> None:
    lab = Lab("wptc3")
    taken = f"/var/run/netns/wptc3-{lab._token}-1-x"
    os.makedirs("/var/run/netns", exist_ok=True)
    with open(taken, "x"):
        pass
    try:
        with lab, pytest.raises(TCError, match="File exists"):
            lab.netns("x")
        assert lab.closed
        assert os.path.exists(taken)  # not ours: never unlinked by the cleanup
        assert lab.namespaces[0].name == f"wptc3-{lab._token}-1-x"
    finally:
        os.unlink(taken)


def test_probe_runs_documented_programs_too_and_survives_vanished_ones() -> None:
    with Lab("wptc3") as lab:
        # A program named like Cilium's but returning UNSPEC: the test run wins over the
        # documented OK.
        cil = lab.program(_bpf.TC_ACT_UNSPEC, "cil_from_contai")
        unk = lab.program(_bpf.TC_ACT_SHOT, "wptc3_mystery")
        gone_fd = _bpf.prog_load_return(0, "wptc3_gone")
        gone = _bpf.prog_info(fd=gone_fd).id
        os.close(gone_fd)
        assert Lab.wait_programs_released([gone]) == []
        rows = [
            TCProgram(
                netns="n",
                ifname="d",
                ifindex=2,
                direction="ingress",
                attach="clsact",
                priority=1,
                handle=1,
                name="cil_x",
                prog_id=cil.id,
            ),
            TCProgram(
                netns="n",
                ifname="d",
                ifindex=2,
                direction="ingress",
                attach="clsact",
                priority=2,
                handle=1,
                name="m",
                prog_id=unk.id,
            ),
            TCProgram(
                netns="n",
                ifname="d",
                ifindex=2,
                direction="ingress",
                attach="clsact",
                priority=3,
                handle=1,
                name="g",
                prog_id=gone,
            ),
        ]
        out = annotate_programs(rows, probe=True)
        assert [(p.verdict, p.verdict_source) for p in out] == [
            ("unspec", "probed"),
            ("shot", "probed"),
            (None, "assumed"),
        ]
        assert out[0].probes == dict.fromkeys(protocol_classes("all"), "unspec")
        assert out[2].probes is None


def test_a_dropped_lab_is_cleaned_up_when_collected() -> None:
    import gc

    lab = Lab("wptc3")
    ns = lab.netns("dropped")
    name, prog = ns.name, lab.program(0, "wptc3_drop").id
    del lab
    gc.collect()
    assert name not in netns_names()
    assert Lab.wait_programs_released([prog]) == []
    with pytest.raises(TCError, match="closed"):
        ns.add_veth("w3d0", "w3d0p")


def _runs(prog_id: int, at_least: int) -> int:
    """run_cnt once it reaches ``at_least`` (packets are handled in softirq: poll, bounded)."""
    import time

    deadline = time.monotonic() + 5
    while True:
        n = _bpf.prog_info(prog_id).run_cnt
        if n >= at_least or time.monotonic() > deadline:
            return n


def test_kernel_chain_semantics_the_assessment_relies_on() -> None:
    """OK at a lower priority starves Datadog's filter, UNSPEC does not; a tcx PASS program
    starves every clsact filter, a tcx NEXT program does not
    (docs/reference/kernel-tc.md#tc-actions, #tc-tcx)."""
    ok, unspec = _bpf.TC_ACT_OK, _bpf.TC_ACT_UNSPEC
    with Lab("wptc3") as lab:
        ns = lab.netns("chain")
        devs = ["w3s0", "w3s1", "w3s2", "w3s3"]
        ns.add_veths([(d, f"{d}p") for d in devs], up=True)
        first = {
            "w3s0": ns.add_filter("w3s0", "ingress", ok, prog_name="wptc3_ok1"),
            "w3s1": ns.add_filter("w3s1", "ingress", unspec, prog_name="wptc3_un1"),
            "w3s2": ns.add_tcx("w3s2", "ingress", _bpf.TCX_PASS, prog_name="wptc3_pass").program,
            "w3s3": ns.add_tcx("w3s3", "ingress", _bpf.TCX_NEXT, prog_name="wptc3_next").program,
        }
        datadog = {
            d: ns.add_filter(d, "ingress", unspec, prog_name=f"wptc3_dd{i}", priority=10, handle=2)
            for i, d in enumerate(devs)
        }
        stats = _bpf.enable_stats()
        try:
            for d in devs:
                ns.send(f"{d}p", count=5)
            for d in devs:
                assert _runs(first[d].id, 5) >= 5
        finally:
            os.close(stats)
        assert _bpf.prog_info(datadog["w3s0"].id).run_cnt == 0  # OK@1 ended classification
        assert _bpf.prog_info(datadog["w3s1"].id).run_cnt >= 5  # UNSPEC@1 handed packets on
        assert _bpf.prog_info(datadog["w3s2"].id).run_cnt == 0  # tcx PASS: no clsact at all
        assert _bpf.prog_info(datadog["w3s3"].id).run_cnt >= 5  # tcx NEXT: clsact still runs
