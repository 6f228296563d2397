"""`wpprotect demo`: it shows the conflict and leaves nothing behind, also when interrupted."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ux.wpux_support import ROOT, run_cli, run_json

PREFIX = "wpux"


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _host_links() -> set[str]:
    out = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def _prog_exists(prog_id: int) -> bool:
    proc = subprocess.run(
        ["bpftool", "prog", "show", "id", str(prog_id)], capture_output=True, check=False
    )
    return proc.returncode == 0


def _assert_nothing_left(netns: str, prog_ids: list[int], devices: set[str]) -> None:
    assert netns not in _netns()
    assert not Path("/var/run/netns", netns).exists()
    assert not devices & _host_links()
    left = [i for i in prog_ids if _prog_exists(i)]
    assert left == [], f"programs still loaded: {left}"


def _start(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [sys.executable, "-m", "wpprotect", "demo", "--prefix", PREFIX, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def _wait_until_up(proc: subprocess.Popen[str]) -> tuple[str, list[int]]:
    """Read stderr until the demo says its namespace is up; return its name and program ids."""
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.match(r"lab is up: netns (\S+), programs ([\d,]+)", line)
        if match:
            return match.group(1), [int(i) for i in match.group(2).split(",")]
    proc.wait(timeout=10)
    raise AssertionError(f"the demo ended before its namespace was up (exit {proc.returncode})")


@pytest.mark.root
def test_demo_shows_the_conflict_and_cleans_up() -> None:
    before = _netns()
    code, doc = run_json(["demo", "--prefix", PREFIX])
    assert code == 0, doc
    assert doc["matches_expected"] is True
    codes = {f["code"] for f in doc["scan"]["findings"]}
    assert {"network-blind", "lower-classifier-priority", "tcx-bypass"} <= codes
    vendors = {p["vendor"] for p in doc["scan"]["programs"]}
    assert {"cilium", "calico", "aws-network-policy", "datadog-cws"} <= vendors
    diff = doc["plans"][0]["diff"]
    assert "+" in diff
    assert "classifier_priority: 4" in diff
    assert diff.startswith("--- a/etc/datadog-agent/system-probe.yaml\n")
    assert "enabled: false" in doc["plans"][-1]["diff"]
    assert doc["cleanup"] == {"netns_removed": True, "programs_left": []}
    _assert_nothing_left(doc["netns"], doc["prog_ids"], set(doc["devices"].values()))
    # Other suites create namespaces too: compare only this suite's.
    mine = {n for n in _netns() if n.startswith(PREFIX + "-")}
    assert mine == {n for n in before if n.startswith(PREFIX + "-")}


@pytest.mark.root
def test_human_output_names_vendors_findings_and_fix() -> None:
    proc = run_cli(["demo", "--prefix", PREFIX])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Cilium" in out
    assert "network-blind" in out
    assert "classifier_priority" in out
    assert "removed namespace" in out
    assert "\x1b[" not in out  # not a terminal


@pytest.mark.root
@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_removes_everything(sig: signal.Signals, status: int) -> None:
    proc = _start("--hold")
    try:
        netns, prog_ids = _wait_until_up(proc)
        assert netns.startswith(PREFIX + "-")
        assert netns in _netns()
        assert all(_prog_exists(i) for i in prog_ids)
        devices = set(
            subprocess.run(
                ["ip", "-n", netns, "-o", "link", "show"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
        )
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, err
    assert "Traceback" not in err
    _assert_nothing_left(
        netns, prog_ids, {d.rstrip(":").split("@")[0] for d in devices if d.startswith("w3")}
    )


@pytest.mark.root
def test_sigint_while_building_leaves_nothing() -> None:
    """SIGINT as soon as the namespace appears, wherever the demo is at that moment."""
    before = _netns()
    proc = _start("--json")
    try:
        for _ in range(2000):
            new = {n for n in _netns() - before if n.startswith(PREFIX + "-")}
            if new or proc.poll() is not None:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 130), err
    assert "Traceback" not in err
    assert {n for n in _netns() - before if n.startswith(PREFIX + "-")} == set()
    if proc.returncode == 0:  # it had finished: its own report says what it removed
        assert json.loads(out)["cleanup"]["programs_left"] == []


def test_demo_without_root_explains_and_exits_2() -> None:
    proc = run_cli(["demo"], user="nobody")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("wpprotect: error: wpprotect demo needs root")
    assert "sudo wpprotect demo" in lines[0]
    code, doc = run_json(["demo"], user="nobody")
    assert code == 2
    assert doc["error"]["type"] == "PermissionDeniedError"
