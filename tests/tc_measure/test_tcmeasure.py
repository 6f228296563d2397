"""``measure()`` and ``wpprotect tc watch`` on real traffic: the kernel is the oracle.

Each scene puts a Datadog-like direct-action classifier (filter ``classifier_<dir>_…``, returning
``TC_ACT_UNSPEC``) at priority 10 on a veth, sends frames from the peer (or out of the device for
egress) while the window is open, and checks with our own ``BPF_ENABLE_STATS`` descriptor whether
that classifier ran; wpprotect's verdict must agree: blind => ``measured-blind`` on that device,
seen => none, idle => reported idle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tc_truth._kernel import quiet
from wpprotect.cli import main
from wpprotect.errors import InvalidArgumentError
from wpprotect.tc import TCInspector, TCMeasurement, _bpf, _measure
from wpprotect.tc._lab import Lab, LabNetns, LabProgram

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
OK, UNSPEC = _bpf.TC_ACT_OK, _bpf.TC_ACT_UNSPEC


def stats_fds() -> int:
    """Open ``BPF_ENABLE_STATS`` descriptors of this process."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:bpf-stats"
        except OSError:
            continue
    return n


class World:
    """blind: vendor OK at prio 1 ahead of Datadog's at 10; seen: Datadog's alone; egress
    blind: the same on egress; idle: Datadog's on a device that is down."""

    def __init__(self, lab: Lab) -> None:
        self.ns: LabNetns = lab.netns("m")
        ns = self.ns
        ns.add_veths([("wmb0", "wmb0p"), ("wms0", "wms0p"), ("wme0", "wme0p")], up=True)
        ns.add_veths([("wmi0", "wmi0p")], up=False)
        ns.add_filter("wmb0", "ingress", OK, prog_name="wptcm_vendor", priority=1, handle=1)
        ns.add_filter("wme0", "egress", OK, prog_name="wptcm_vendor", priority=1, handle=1)
        self.dd: dict[tuple[str, str], LabProgram] = {}
        for dev, direction in (
            ("wmb0", "ingress"), ("wms0", "ingress"), ("wme0", "egress"), ("wmi0", "ingress"),
        ):  # fmt: skip
            # One program per device (as the agent loads them), so runs are per device.
            self.dd[(dev, direction)] = ns.add_filter(
                dev, direction, UNSPEC, prog_name=f"wptcm_dd_{dev}", priority=10, handle=2,
                name=f"classifier_{direction}_{dev}",
            )  # fmt: skip

        # One Datadog-like program on two devices, blind on one: runs cannot be told apart.
        ns.add_veths([("wmx0", "wmx0p"), ("wmy0", "wmy0p")], up=True)
        ns.add_filter("wmx0", "ingress", OK, prog_name="wptcm_vendor", priority=1, handle=1)
        for dev in ("wmx0", "wmy0"):
            ns.add_filter(dev, "ingress", UNSPEC, prog_name="wptcm_dd_shared", priority=10,
                          handle=2, name=f"classifier_ingress_{dev}")  # fmt: skip

    def send(self) -> None:
        self.ns.send("wmx0p", count=5)
        self.ns.send("wmy0p", count=5)
        self.ns.send("wmb0p", count=5)  # arrives on wmb0 ingress
        self.ns.send("wms0p", count=5)
        self.ns.send("wme0", count=5)  # leaves through wme0 egress

    def runs(self) -> dict[str, int]:
        return {dev: _bpf.prog_info(p.id).run_cnt for (dev, _), p in self.dd.items()}


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with Lab("wptcm") as lab:
        yield World(lab)


def _measure_sending(world: World, seconds: float = 0.5) -> tuple[TCMeasurement, dict[str, int]]:
    """Measure with the window's wait replaced by sending 5 frames per scene (deterministic),
    and count, with our own statistics descriptor, how often each Datadog-like filter ran."""
    ours = _bpf.enable_stats()
    try:
        before = world.runs()
        m = _measure.measure(
            TCInspector(netns=world.ns.path).scan, seconds, sleep=lambda _s: world.send()
        )
        after = world.runs()
    finally:
        os.close(ours)
    return m, {d: after[d] - before[d] for d in after}


def test_blind_seen_idle_agree_with_the_kernel(world: World) -> None:
    m, ran = _measure_sending(world)
    # The kernel: Datadog's filter never ran behind OK@1, ran for every frame alone.
    assert ran["wmb0"] == 0
    assert ran["wme0"] == 0
    assert ran["wms0"] >= 5
    assert ran["wmi0"] == 0
    state = {(h.ifname, h.direction): h for h in m.hooks}
    assert state[("wmb0", "ingress")].state == "blind"
    assert state[("wme0", "egress")].state == "blind"
    assert state[("wms0", "ingress")].state == "seen"
    assert state[("wmi0", "ingress")].state == "idle"
    shared = [state[("wmx0", "ingress")], state[("wmy0", "ingress")]]
    assert [(h.state, h.shared) for h in shared] == [("unknown", True)] * 2
    assert "one program per device" in m.table()
    assert state[("wmb0", "ingress")].packets >= 5  # type: ignore[operator]
    assert state[("wms0", "ingress")].classifier_runs >= 5  # type: ignore[operator]
    blind = {(f.ifname, f.direction): f for f in m.findings}
    assert set(blind) == {("wmb0", "ingress"), ("wme0", "egress")}
    f = blind[("wmb0", "ingress")]
    assert (f.code, f.severity, f.basis) == ("measured-blind", "error", "measured")
    assert f.to_dict()["packets"] == state[("wmb0", "ingress")].packets
    assert f.to_dict()["classifier_runs"] == 0
    assert f"received {f.to_dict()['packets']} packets" in f.message
    assert "ran 0 times" in f.message
    assert "wptcm_vendor" in f.message or "unknown" in f.message  # what runs ahead is named
    assert f.vendor_priority == 1
    assert f.classifier_priority == 10
    assert not m.ok
    assert stats_fds() == 0


def test_to_dict_json_html_and_repr(world: World) -> None:
    m, _ = _measure_sending(world)
    doc = json.loads(m.to_json())
    assert list(doc)[:4] == ["seconds", "elapsed", "hooks", "findings"]
    assert doc["ok"] is False
    finding = doc["findings"][0]
    # The finding's contract keys come first, in order; the counts follow.
    assert list(finding)[:10] == [
        "code", "severity", "netns", "ifname", "direction", "vendor", "vendor_priority",
        "classifier_priority", "recommended_classifier_priority", "message",
    ]  # fmt: skip
    assert list(finding)[-3:] == ["packets", "classifier_runs", "seconds"]
    assert "blind" in m._repr_html_()
    assert "blind=2" in repr(m)
    assert "idle" in m.table()
    with pytest.raises(AttributeError):
        m.seconds = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        TCMeasurement(1.0, 1.0)  # type: ignore[misc]  # keyword-only


def test_public_measure_over_a_real_window(world: World) -> None:
    """TCInspector.measure() with a real window while a thread keeps frames flowing."""
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            world.send()
            stop.wait(0.02)

    t = threading.Thread(target=traffic)
    t.start()
    try:
        m = TCInspector(netns=world.ns.path).measure(seconds=0.3)
    finally:
        stop.set()
        t.join()
    states = {(h.ifname, h.direction): h.state for h in m.hooks}
    assert states[("wmb0", "ingress")] == "blind"
    assert states[("wms0", "ingress")] == "seen"
    assert states[("wmi0", "ingress")] == "idle"
    assert m.elapsed >= 0.3


def test_ctrl_c_closes_the_stats_descriptor(world: World) -> None:
    assert stats_fds() == 0
    seen: list[int] = []

    def interrupted(_s: float) -> None:
        seen.append(stats_fds())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _measure.measure(TCInspector(netns=world.ns.path).scan, 5, sleep=interrupted)
    assert seen == [1]  # statistics were on during the window...
    assert stats_fds() == 0  # ...and the descriptor is closed after Ctrl-C


def test_tc_watch_ctrl_c_exits_130_and_closes_the_descriptor(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[int] = []

    def interrupted(_s: float) -> None:
        seen.append(stats_fds())
        raise KeyboardInterrupt

    monkeypatch.setattr(_measure, "_wait", interrupted)
    status = main(["tc", "watch", "--netns", world.ns.path, "--seconds", "30"])
    assert status == 130
    assert seen == [1]
    assert stats_fds() == 0


def test_tc_watch_json_exit_status(world: World) -> None:
    """The command as a user runs it, while frames flow: exit 1 and the blind hooks in JSON."""
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            world.send()
            stop.wait(0.02)

    t = threading.Thread(target=traffic)
    t.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "wpprotect", "tc", "watch", "--netns", world.ns.path,
             "--seconds", "0.5", "--json"],
            capture_output=True, text=True, check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    finally:
        stop.set()
        t.join()
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    codes = {(f["code"], f["ifname"]) for f in doc["findings"]}
    assert ("measured-blind", "wmb0") in codes
    assert all(f["packets"] > 0 and f["classifier_runs"] == 0 for f in doc["findings"])


def test_tc_watch_idle_only_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with Lab("wptcm") as lab:
        ns = lab.netns("idle")
        ns.add_veths([("wmq0", "wmq0p")], up=False)
        ns.add_filter("wmq0", "ingress", UNSPEC, prog_name="wptcm_dd_q", priority=10,
                      handle=2, name="classifier_ingress_q")  # fmt: skip
        status = main(["tc", "watch", "--netns", ns.path, "--seconds", "0.1"])
    out = capsys.readouterr().out
    assert status == 0
    assert "idle" in out
    assert "no traffic: nothing was judged" in out


def test_bad_window_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["tc", "watch", "--seconds", "0"])
    assert exc.value.code == 2
    assert "--seconds" in capsys.readouterr().err
    with pytest.raises(InvalidArgumentError):
        _measure.measure(lambda: None, 0)  # type: ignore[arg-type,return-value]


def test_demo_scene_tells_blind_seen_and_idle_devices_apart() -> None:
    """The vendor scene `wpprotect demo` shows: Datadog's classifier is one program per device
    and direction, so frames sent into two devices measure blind on one, seen on the other, and
    idle everywhere else (never "unknown")."""
    with Lab("wptcm") as lab:
        scene = lab.scene_mimic_vendors(dev_prefix="wmd", up=True)
        ns = next(n for n in lab.namespaces if n.name == scene.netns)
        quiet(ns)  # no IPv6 autoconfiguration: only the frames sent here are counted
        cil, cal = scene.devices["cilium"], scene.devices["calico"]
        report = TCInspector(netns=scene.path).scan()
        dd = [p for p in report.programs if p.vendor == "datadog-cws"]
        assert len(dd) == 2 * len(scene.devices)
        assert len({p.prog_id for p in dd}) == len(dd)  # one program per hook
        assert {p.prog_id for p in dd} <= set(lab.prog_ids)

        def send(_s: float) -> None:
            ns.send(f"{cil}p", count=5)  # into cil's ingress: Cilium's OK@1 is ahead
            ns.send(f"{cal}p", count=5)  # into cal's ingress: Calico's preamble continues

        m = _measure.measure(TCInspector(netns=scene.path).scan, 0.2, sleep=send)
    state = {(h.ifname, h.direction): h.state for h in m.hooks}
    assert state[(cil, "ingress")] == "blind"
    assert state[(cal, "ingress")] == "seen"
    assert "unknown" not in state.values()
    assert [(f.code, f.ifname) for f in m.findings if f.direction == "ingress"] == [
        ("measured-blind", cil)
    ]
