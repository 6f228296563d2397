"""Disable, proven in the kernel: Datadog's classifiers left attached while the configuration turns
network detection (or Workload Protection) off, and the host disable plan's ``verify()``.

Scenes are real: a lab namespace, a veth with clsact, and a Datadog-like classifier (a program
named ``classifier_ingress`` in a filter named as ebpf-manager names Datadog's) at priority 10.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wpprotect.errors import CapabilityError, PlanVerifyError
from wpprotect.platforms.host import HostDisablePlan, HostPlatform
from wpprotect.tc import _bpf
from wpprotect.tc._inspector import TCInspector
from wpprotect.tc._lab import Lab, LabNetns
from wpprotect.tc._model import NamespaceInfo
from wpprotect.tc._report import TCReport

from ._kernel import tc

pytestmark = pytest.mark.root

UNSPEC = _bpf.TC_ACT_UNSPEC


@pytest.fixture
def ns() -> Iterator[LabNetns]:
    with Lab("wplft") as lab:
        yield lab.netns("left")


def _datadog(ns: LabNetns, dev: str, direction: str = "ingress") -> None:
    name = f"classifier_{direction}"
    ns.add_filter(
        dev, direction, UNSPEC, prog_name=name[:15], priority=10, handle=2,
        name=f"{name}_security_{ns.inode}_{os.getpid()}",
    )  # fmt: skip


def _scan(ns: LabNetns) -> TCReport:
    return TCInspector(netns=ns.path).scan()


def _leftovers(report: TCReport, **config: object) -> list[tuple[str | None, str | None]]:
    a = report.assess(10, **config)  # type: ignore[arg-type]
    return [(f.ifname, f.direction) for f in a.findings if f.code == "datadog-classifier-leftover"]


def test_network_detection_off_with_classifiers_attached_is_leftover(ns: LabNetns) -> None:
    ns.add_veth("wlft0", "wlft0p")
    ns.add_veth("wlft1", "wlft1p")  # clsact, no Datadog filter
    _datadog(ns, "wlft0")
    _datadog(ns, "wlft0", "egress")
    # A vendor returning OK ahead of Datadog's: it would blind network detection, were it on.
    ns.add_filter("wlft0", "ingress", _bpf.TC_ACT_OK, prog_name="wplft_vendor", priority=1)
    report = _scan(ns)
    source = "/etc/datadog-agent/system-probe.yaml runtime_security_config.network.enabled"
    a = report.assess(10, network_detection=False, detection_source=source)
    left = [f for f in a.findings if f.code == "datadog-classifier-leftover"]
    assert sorted((f.ifname, f.direction) for f in left) == [
        ("wlft0", "egress"),
        ("wlft0", "ingress"),
    ]
    assert all(f.severity == "warning" and f.vendor_priority == 10 for f in left)
    assert source in left[0].message
    assert "restart" in left[0].fix
    assert not a.ok
    # Detection off: nothing to blind and no priority to recommend; only the leftovers.
    assert {f.code for f in a.findings if f.needs_action} == {"datadog-classifier-leftover"}
    assert a.recommended_classifier_priority is None
    on = {f.code for f in report.assess(10).findings}  # detection not said off: as before
    assert "network-blind" in on
    assert "datadog-classifier-leftover" not in on
    # Nothing is expected on wlft1 while detection is off: no "missing" finding there.
    assert not [f for f in a.findings if f.code == "datadog-classifier-missing"]
    # Workload Protection off says the same; on (or unknown), nothing is left over.
    assert len(_leftovers(report, workload_protection=False)) == 2
    assert _leftovers(report, network_detection=True) == []
    assert _leftovers(report) == []
    # The JSON carries it in the finding shape.
    doc = report.to_dict(assessment=a)
    assert {f["code"] for f in doc["findings"]} >= {"datadog-classifier-leftover"}


def test_no_leftover_once_the_classifiers_are_removed(ns: LabNetns) -> None:
    ns.add_veth("wlft2", "wlft2p")
    _datadog(ns, "wlft2")
    assert _leftovers(_scan(ns), network_detection=False) == [("wlft2", "ingress")]
    tc(ns, "filter", "del", "dev", "wlft2", "ingress", "prio", "10")
    report = _scan(ns)
    assert _leftovers(report, network_detection=False) == []
    assert report.assess(10, network_detection=False).ok


def _host(tmp_path: Path) -> tuple[HostPlatform, Path]:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "system-probe.yaml").write_text(
        "runtime_security_config:\n  enabled: true\n  network:\n    enabled: true\n"
    )
    log = tmp_path / "restarts"
    restart = (sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write('r\\n')", str(log))
    return HostPlatform(tmp_path / "opt", etc, sudo=False, restart_command=restart), log


def test_host_disable_verify_reads_the_kernel_after_the_restart(
    ns: LabNetns, tmp_path: Path
) -> None:
    ns.add_veth("wlft3", "wlft3p")
    _datadog(ns, "wlft3")
    host, log = _host(tmp_path)
    plan = host.disable("network")
    assert isinstance(plan, HostDisablePlan)
    assert any("checks the kernel" in n for n in plan.notes)
    plan.kernel_scan = lambda: _scan(ns)  # this scene only: other namespaces are not ours
    plan.apply()
    assert log.read_text() == "r\n"  # restarted
    # The "agent" did not detach its classifier: verify says so and names the device.
    with pytest.raises(PlanVerifyError, match=r"still attached.*wlft3/ingress \(priority 10\)"):
        plan.verify()
    assert plan.kernel_report is not None
    # Once it is gone, the disable is proven.
    tc(ns, "filter", "del", "dev", "wlft3", "ingress", "prio", "10")
    plan.verify()
    assert plan.kernel_report is not None
    assert plan.kernel_report.programs == ()


def test_host_disable_verify_never_claims_success_without_the_kernel(tmp_path: Path) -> None:
    host, _log = _host(tmp_path)
    plan = host.disable("workload-protection")
    assert isinstance(plan, HostDisablePlan)

    def unreadable() -> TCReport:
        raise CapabilityError("reading BPF program info needs CAP_BPF")

    plan.kernel_scan = unreadable
    plan.apply()
    with pytest.raises(PlanVerifyError, match=r"could not be read.*CAP_BPF"):
        plan.verify()


def test_namespace_held_only_by_an_agent_descriptor_is_in_the_assessment() -> None:
    held = NamespaceInfo(
        label="pid 4242", id="4:4026532999",
        holders=("fd 9 of pid 812 (system-probe) [datadog agent]",),
    )  # fmt: skip
    busy = NamespaceInfo(
        label="pid 1", id="4:4026531840",
        holders=("pid 1 (systemd)", "fd 9 of pid 812 (system-probe) [datadog agent]"),
    )  # fmt: skip
    a = TCReport(namespaces=[held, busy]).assess(10)
    (f,) = a.findings
    assert (f.code, f.severity, f.netns) == ("netns-held-by-agent", "warning", "pid 4242")
    assert "fd 9 of pid 812 (system-probe)" in f.message
    assert "[datadog" not in f.message


def test_cli_disable_fails_while_a_classifier_is_left_attached(
    ns: LabNetns,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from wpprotect.cli import main
    from wpprotect.platforms import host as host_module

    ns.add_veth("wlft4", "wlft4p")
    _datadog(ns, "wlft4")
    _host_platform, log = _host(tmp_path)
    restart = _host_platform.restart_argv()
    monkeypatch.setattr(HostPlatform, "restart_argv", lambda self: restart)
    # This scene only: other namespaces of the machine are not ours to judge.
    monkeypatch.setattr(host_module, "_scan_all_namespaces", lambda: _scan(ns))
    args = ["disable", "--platform", "host", "--install-dir", str(tmp_path / "opt")]
    args += ["--config-dir", str(tmp_path / "etc"), "--scope", "network"]
    assert main([*args, "--json"]) == 1  # applied, restarted, but the kernel disagrees
    doc = json.loads(capsys.readouterr().out)
    assert (doc["applied"], doc["verified"]) == (True, False)
    assert "wlft4/ingress (priority 10)" in doc["verify_error"]
    assert log.read_text() == "r\n"
    # Run again: the config is already off, and the kernel is still checked.
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "nothing to do" in captured.out
    assert "not verified" in captured.err
    assert "still attached" in captured.err
    tc(ns, "filter", "del", "dev", "wlft4", "ingress", "prio", "10")
    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["applied"], doc["verified"], doc["verify_error"]) == (False, True, None)
    # A dry run proves nothing and says so: verified is null.
    assert main([*args, "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verified"] is None
