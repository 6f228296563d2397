"""TC scans of a whole cluster through the agent pods: each node's read runs in its agent's
``system-probe`` container with the embedded Python, and equals a local scan of that node's
namespace."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.k8s_server import pod_for, write_kubeconfig
from tests.tc_remote.conftest import RemoteCluster, node_container
from wpprotect import errors
from wpprotect.fleet import run_fleet
from wpprotect.tc import TCFleetReport, TCInspector, TCReport
from wpprotect.tc._remote import EMBEDDED_PYTHON

pytestmark = [pytest.mark.docker, pytest.mark.root]


def _programs(report: TCReport, netns: str) -> list[tuple[Any, ...]]:
    return sorted(
        (
            (
                p.ifname,
                p.direction,
                p.attach,
                p.priority,
                p.handle,
                p.prog_id,
                p.vendor,
                p.verdict,
                p.name,
                p.prog_tag,
            )
            for p in report.programs
            if p.netns == netns
        ),
        key=repr,
    )


def _findings(report: TCReport, netns: str) -> list[tuple[Any, ...]]:
    return sorted(
        (f.code, f.ifname, f.direction, f.vendor, f.recommended_classifier_priority)
        for f in report.assess().findings
        if f.netns == netns
    )


def _diff(container: str) -> list[str]:
    """``docker diff``, sorted (its order is not stable)."""
    out = subprocess.run(
        ["docker", "diff", container], capture_output=True, text=True, check=True
    ).stdout
    return sorted(out.splitlines())


def test_each_node_equals_a_local_scan_of_its_namespace(remote_cluster: RemoteCluster) -> None:
    agents = remote_cluster.platform(namespace="datadog").agents()
    assert [a.node for a in agents] == ["node-1", "node-2", "node-3"]
    result = run_fleet(agents, lambda p: p.tc_scan())
    assert result.ok, result.table()
    for agent, item in zip(agents, result.items, strict=True):
        netns, _path = remote_cluster.scenes[str(agent.node)]
        report = item.value
        assert isinstance(report, TCReport)
        local = TCInspector(netns).scan()
        assert _programs(report, netns) == _programs(local, netns)
        assert _findings(report, netns) == _findings(local, netns)
        assert _programs(report, netns), f"{agent.node}: the scene's programs were not read"
    # The scenes differ, so the nodes' findings do too.
    by_node = {a.node: i.value for a, i in zip(agents, result.items, strict=True)}
    codes = {n: {f.code for f in r.assess().findings} for n, r in by_node.items() if r}
    assert "network-blind" in codes["node-1"]
    assert codes["node-2"] == {"lower-classifier-priority"}
    assert codes["node-3"] == set()


def test_read_runs_in_system_probe_with_the_embedded_python(
    remote_cluster: RemoteCluster,
) -> None:
    agent = remote_cluster.platform(node="node-2").agents()[0]
    before = len(remote_cluster.server.exec_log)
    agent.tc_scan()
    calls = remote_cluster.server.exec_log[before:]
    assert [(c[2], c[3][:4]) for c in calls] == [
        ("system-probe", [EMBEDDED_PYTHON, "-I", "-B", "-"])
    ]
    assert agent.last_tc_read is not None
    assert agent.last_tc_read["component"] == "system-probe"
    assert agent.last_tc_read["executable"] == EMBEDDED_PYTHON
    assert str(agent.last_tc_read["python"]).startswith("3.")


def test_container_filesystems_are_unchanged(remote_cluster: RemoteCluster) -> None:
    before = {n: _diff(c) for n, c in remote_cluster.containers.items()}
    run_fleet(remote_cluster.platform(namespace="datadog").agents(), lambda p: p.tc_scan())
    after = {n: _diff(c) for n, c in remote_cluster.containers.items()}
    assert after == before
    # What differs from the image is only the mount points the test made (no /tmp, no file).
    for lines in after.values():
        assert not [ln for ln in lines if ln.startswith(("A /tmp", "C /tmp", "A /root"))]
    # Nothing left running: only the container's own idle loop.
    for container in remote_cluster.containers.values():
        ps = subprocess.run(
            ["docker", "exec", container, "ps"], capture_output=True, text=True, check=True
        ).stdout
        assert "python" not in ps


def test_fleet_report_recommends_one_priority_for_every_node(
    remote_cluster: RemoteCluster,
) -> None:
    agents = remote_cluster.platform(namespace="datadog").agents()
    fleet = TCFleetReport.from_fleet(run_fleet(agents, lambda p: p.tc_scan()))
    # node-1: its lowest fixable vendor sits at 5 -> 4; node-2: at 3 -> 2; the lowest wins.
    assert [r.assessment.recommended_classifier_priority for r in fleet.rows if r.assessment] == [
        4,
        2,
        None,
    ]
    assert fleet.recommended_classifier_priority == 2
    summary = fleet.summary()
    assert summary["targets"] == 3
    assert summary["failed"] == 0
    assert summary["with_findings"] == 2
    assert summary["by_code"]["network-blind"] == 1
    assert summary["by_code"]["lower-classifier-priority"] == 2
    assert summary["blind_nodes"] == ["node-1"]
    assert "k8s.set_classifier_priority(2)" in fleet.table()
    doc = fleet.to_dict()
    assert [t["node"] for t in doc["targets"]] == ["node-1", "node-2", "node-3"]
    assert doc["summary"]["plan"].startswith("k8s.set_classifier_priority(2)")


def test_cli_scans_the_cluster_with_a_kubeconfig(
    remote_cluster: RemoteCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from wpprotect.cli import main

    kubeconfig = write_kubeconfig(remote_cluster.server, tmp_path / "kubeconfig")
    code = main(["tc", "scan", "--platform", "kubernetes", "--kubeconfig", str(kubeconfig),
                 "--namespace", "datadog", "--json"])  # fmt: skip
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert code == 1
    assert doc["summary"]["targets"] == 3
    assert doc["summary"]["recommended_classifier_priority"] == 2
    node3 = next(t for t in doc["targets"] if t["node"] == "node-3")
    assert node3["error"] is None
    assert node3["report"]["classifier_priority"] == 10
    # The printed command acts on the same cluster: it repeats the target options.
    hint = doc["summary"]["plan"].split("|")[-1].strip().split()
    assert hint == ["wpprotect", "set-priority", "2", "--platform", "kubernetes", "--kubeconfig",
                    str(kubeconfig), "--namespace", "datadog", "--dry-run"]  # fmt: skip
    assert main(hint[1:]) == 0
    assert 'DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY="2"' in capsys.readouterr().out
    code = main(["tc", "scan", "--platform", "kubernetes", "--kubeconfig", str(kubeconfig),
                 "--node", "node-3"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "node-3" in out
    assert "node-1" not in out


def test_for_pod_finds_the_agent_on_the_pods_node(remote_cluster: RemoteCluster) -> None:
    app = pod_for(
        {"metadata": {"name": "shop", "namespace": "default"},
         "spec": {"template": {"metadata": {"labels": {"app": "shop"}},
                               "spec": {"containers": [{"name": "web", "image": "shop"}]}}}},
        "node-2",
        suffix="x1",
    )  # fmt: skip
    remote_cluster.server.put(app)
    agents = remote_cluster.platform(for_pod="default/shop-x1").agents()
    assert [a.node for a in agents] == ["node-2"]
    report = agents[0].tc_scan()
    netns = remote_cluster.scenes["node-2"][0]
    assert {f.code for f in report.assess().findings if f.netns == netns} == {
        "lower-classifier-priority"
    }
    # Pointed at the application pod itself: the error names the agent on its node.
    with pytest.raises(errors.AgentNotFoundError) as err:
        remote_cluster.platform(namespace="default", pod="shop-x1").tc_scan()
    message = str(err.value)
    assert "application pod" in message
    assert "node-2" in message
    assert "for_pod='default/shop-x1'" in message
    # A node without an agent pod.
    with pytest.raises(errors.AgentNotFoundError, match="node-4"):
        remote_cluster.platform(node="node-4").agents()


def test_remote_measure_counts_datadogs_hooks(remote_cluster: RemoteCluster) -> None:
    agent = remote_cluster.platform(node="node-3").agents()[0]
    measurement = agent.measure(seconds=0.2)
    netns = remote_cluster.scenes["node-3"][0]
    hooks = [h for h in measurement.hooks if h.netns == netns]
    # Two devices, both directions, each with Datadog's classifier; no traffic: idle.
    assert len(hooks) == 4
    assert {h.state for h in hooks} == {"idle"}
    assert measurement.ok


def test_one_failing_node_never_hides_the_others(remote_cluster: RemoteCluster) -> None:
    agents = remote_cluster.platform(namespace="datadog").agents()
    remote_cluster.server.faults.drop_exec_next(1, after_bytes=10)
    fleet = TCFleetReport.from_fleet(run_fleet(agents, lambda p: p.tc_scan(), max_workers=1))
    failed = [r for r in fleet.rows if r.error is not None]
    assert len(failed) == 1
    assert failed[0].error is not None
    assert failed[0].error.startswith("ExecError")
    assert sum(1 for r in fleet.rows if r.report is not None) == 2
    assert not fleet.ok
    assert fleet.summary()["failed"] == 1


def test_hung_exec_times_out(remote_cluster: RemoteCluster) -> None:
    agent = remote_cluster.platform(node="node-1").agents()[0]
    remote_cluster.server.faults.hang_exec_next(1)
    try:
        with pytest.raises(errors.ExecTimeoutError):
            agent.tc_scan(timeout=1.5)
    finally:
        remote_cluster.server.faults.hang_release.set()
    remote_cluster.server.faults.hang_release.clear()


def test_api_errors_are_per_target(remote_cluster: RemoteCluster) -> None:
    k8s = remote_cluster.platform(namespace="datadog")
    remote_cluster.server.faults.fail_next(1, 500, path="/pods")
    with pytest.raises(errors.PlatformError):
        k8s.agents()
    agents = k8s.agents()  # the next call works
    remote_cluster.server.faults.fail_next(1, 500, path="/exec")
    result = run_fleet(agents, lambda p: p.tc_scan(), max_workers=1)
    assert [i.error is not None for i in result.items].count(True) == 1
    assert result.errors[0].error is not None
    assert isinstance(result.errors[0].error, errors.PlatformError)


def test_a_container_without_python_or_capabilities_is_named(
    remote_cluster: RemoteCluster,
) -> None:
    from tests.k8s_server import DockerExecBackend

    server = remote_cluster.server
    backend = server.exec_backend
    assert isinstance(backend, DockerExecBackend)
    ds = server.get("daemonsets", "datadog", "datadog-agent")
    with (
        node_container("nopy", None, python=False) as nopy,
        node_container("nocap", None, caps=[]) as nocap,
    ):
        for name, container in (("nopy", nopy), ("nocap", nocap)):
            pod = server.put(pod_for(ds, f"node-{name}", suffix=name))
            backend.containers[("datadog", pod["metadata"]["name"])] = {"*": container}
        try:
            with pytest.raises(errors.UnsupportedAgentError, match=re.escape(EMBEDDED_PYTHON)):
                remote_cluster.platform(node="node-nopy").agents()[0].tc_scan()
            with pytest.raises(errors.CapabilityError, match=r"CAP_SYS_ADMIN|refused"):
                remote_cluster.platform(node="node-nocap").agents()[0].tc_scan()
        finally:
            for name in ("nopy", "nocap"):
                server.delete("pods", "datadog", f"datadog-agent-{name}")


def test_system_probe_absent_falls_back_to_the_agent_container(
    remote_cluster: RemoteCluster,
) -> None:
    server = remote_cluster.server
    pod_name = remote_cluster.pods["node-3"]

    def drop_system_probe(pod: dict[str, Any]) -> None:
        pod["spec"]["containers"] = [
            c for c in pod["spec"]["containers"] if c["name"] != "system-probe"
        ]

    original = server.get("pods", "datadog", pod_name)
    server.modify("pods", "datadog", pod_name, drop_system_probe)
    try:
        agent = remote_cluster.platform(node="node-3").agents()[0]
        before = len(server.exec_log)
        agent.tc_scan()
        assert [c[2] for c in server.exec_log[before:]] == ["agent"]
        assert agent.last_tc_read is not None
        assert agent.last_tc_read["component"] == "agent"
    finally:
        server.put(original)


def test_docker_platform_scans_through_its_container(remote_cluster: RemoteCluster) -> None:
    from wpprotect.platforms import DockerPlatform

    netns = remote_cluster.scenes["node-2"][0]
    with DockerPlatform(container=remote_cluster.containers["node-2"]) as box:
        report = box.tc_scan()
        assert box.last_tc_read is not None
        assert box.last_tc_read["executable"] == EMBEDDED_PYTHON
    local = TCInspector(netns).scan()
    assert _programs(report, netns) == _programs(local, netns)
    assert _findings(report, netns) == _findings(local, netns)


def test_doctor_reports_every_node_grouped(remote_cluster: RemoteCluster, tmp_path: Path) -> None:
    from wpprotect.doctor import diagnose

    kubeconfig = write_kubeconfig(remote_cluster.server, tmp_path / "kubeconfig")
    report = diagnose(
        kubeconfig=kubeconfig,
        namespace="datadog",
        docker=False,
        install_dir=tmp_path / "none",
        config_dir=tmp_path / "none",
    )
    checks = {c.name: c for c in report.checks}
    head = checks["tc:cluster"]
    assert head.status == "problem"
    assert head.data["summary"]["targets"] == 3
    assert head.data["summary"]["recommended_classifier_priority"] == 2
    assert head.fix is not None
    assert "set_classifier_priority(2)" in head.fix
    grouped = {n: c.data["nodes"] for n, c in checks.items() if n.startswith("tc:cluster:")}
    assert grouped["tc:cluster:clean"] == ["node-3"]
    assert grouped["tc:cluster:lower-classifier-priority"] == ["node-2"]
    assert ["node-1"] in grouped.values()


def test_the_printed_fix_applies_with_dry_run(
    remote_cluster: RemoteCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from wpprotect.cli import main

    kubeconfig = write_kubeconfig(remote_cluster.server, tmp_path / "kubeconfig")
    before = remote_cluster.server.get("daemonsets", "datadog", "datadog-agent")
    code = main(["set-priority", "2", "--platform", "kubernetes", "--kubeconfig",
                 str(kubeconfig), "--namespace", "datadog", "--dry-run"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "CLASSIFIER_PRIORITY" in out
    assert "dry run: nothing was changed" in out
    after = remote_cluster.server.get("daemonsets", "datadog", "datadog-agent")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
