"""doctor reads the settings of a system-probe that runs in a container through /proc/<pid>
(a Kubernetes node seen from the host). These tests give diagnose() a procfs laid out as the
kernel lays it out (cmdline, cgroup, environ, root/), since a FROM-scratch busybox image cannot run
a process whose argv[0] is `system-probe`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wpprotect.doctor import diagnose, running_components

CID = "3f4e5d6c7b8a" + "0" * 52


def _proc(tmp_path: Path, *, env: dict[str, str], files: dict[str, str], pid: int = 4242) -> Path:
    proc = tmp_path / "proc"
    d = proc / str(pid)
    d.mkdir(parents=True)
    argv = ["system-probe", "run", "--config=/etc/datadog-agent/system-probe.yaml"]
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (d / "cgroup").write_text(f"0::/kubepods/besteffort/pod1234/cri-containerd-{CID}.scope\n")
    (d / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in env.items()) + b"\0")
    for rel, text in files.items():
        path = d / "root" / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return proc


def _run(tmp_path: Path, proc: Path):  # type: ignore[no-untyped-def]
    return diagnose(
        install_dir=tmp_path / "none", config_dir=tmp_path / "none",
        docker=False, kubernetes=False, tc=False, proc=proc,
    )  # fmt: skip


def test_settings_of_a_containerised_system_probe(tmp_path: Path) -> None:
    proc = _proc(
        tmp_path,
        env={"DD_RUNTIME_SECURITY_CONFIG_ENABLED": "true", "DD_API_KEY": "a" * 32, "HOME": "/"},
        files={
            "/etc/datadog-agent/system-probe.yaml": (
                "runtime_security_config:\n  network:\n    classifier_priority: 3\n"
            )
        },
    )
    [component] = running_components(proc)
    assert (component.component, component.container) == ("system-probe", CID[:12])
    report = _run(tmp_path, proc)
    label = f"container {CID[:12]}"
    cws = report.get(f"config.cws_enabled:{label}")
    prio = report.get(f"config.classifier_priority:{label}")
    assert cws is not None
    assert prio is not None
    assert (cws.data["effective"]["value"], cws.data["effective"]["source"]) == (
        True,
        "env DD_RUNTIME_SECURITY_CONFIG_ENABLED",
    )
    assert prio.data["effective"]["value"] == 3
    assert prio.data["effective"]["key"] == "runtime_security_config.network.classifier_priority"
    agents = report.get("agents")
    assert agents is not None
    assert agents.status == "ok"
    assert CID[:12] in agents.detail
    assert "a" * 32 not in json.dumps(report.to_dict())


def test_a_symlink_in_the_container_is_not_followed_to_the_host(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.yaml"
    secret.write_text("runtime_security_config:\n  network:\n    classifier_priority: 77\n")
    proc = _proc(tmp_path, env={}, files={})
    link = proc / "4242" / "root" / "etc" / "datadog-agent" / "system-probe.yaml"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)  # absolute: read from the host, it would resolve on the host
    report = _run(tmp_path, proc)
    check = report.get(f"config:container {CID[:12]}")
    assert check is not None
    assert check.status == "error"
    assert "symlink" in check.detail
    assert "77" not in json.dumps(report.to_dict())


@pytest.mark.root
def test_tc_is_judged_against_the_node_agents_priority(tmp_path: Path) -> None:
    proc = _proc(
        tmp_path,
        env={"DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY": "7"},
        files={},
    )
    report = diagnose(
        install_dir=tmp_path / "none", config_dir=tmp_path / "none",
        docker=False, kubernetes=False, tc=True, proc=proc,
    )  # fmt: skip
    tc = report.get("tc")
    assert tc is not None
    assert tc.data["assessment"]["classifier_priority"] == 7
    assert f"system-probe in container {CID[:12]}" in tc.detail
