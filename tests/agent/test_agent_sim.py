"""The simulated agent CLI itself, under /bin/sh and busybox sh: strings, exit codes, gates."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.agent.conftest import SimFactory
from tests.agent_sim import SimInstall

BUSYBOX = Path("/bin/busybox")
SHELLS = [
    pytest.param(["/bin/sh"], id="sh"),
    pytest.param(
        [str(BUSYBOX), "sh"],
        id="busybox",
        marks=pytest.mark.skipif(not BUSYBOX.exists(), reason="/bin/busybox is not installed"),
    ),
]


def run(
    shell: list[str], exe: Path, *args: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*shell, str(exe), *args], input=stdin, capture_output=True, check=False, timeout=30
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    )


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> list[str]:
    return list(request.param)


def test_version_outputs(sim_host: SimFactory, shell: list[str]) -> None:
    sim, _ = sim_host(version="7.70.1")
    assert run(shell, sim.agent, "version").stdout == (
        "Agent 7.70.1 - Commit: 1a2b3c4 - Serialization version: v5.0.97 - Go version: go1.21.5\n"
    )
    assert run(shell, sim.security_agent, "version").stdout.startswith("Security agent 7.70.1 - ")
    assert run(shell, sim.system_probe, "version").stdout.startswith("System Probe 7.70.1 - ")


@pytest.mark.parametrize(
    ("version", "exe", "code", "stderr"),
    [
        ("7.55.0", "system_probe", 255, 'Error: unknown command "runtime" for "system-probe"'),
        ("7.56.0", "system_probe", 0, ""),
        ("7.65.2", "security_agent", 0, ""),
        (
            "7.66.0",
            "security_agent",
            0,
            'Command "runtime" is deprecated, please use `system-probe runtime` instead',
        ),
        (
            "7.67.0",
            "security_agent",
            255,
            'Error: unknown command "runtime" for "datadog-security-agent"',
        ),
    ],
)
def test_runtime_version_gates(  # noqa: PLR0917 - pytest passes these by name
    sim_host: SimFactory, shell: list[str], version: str, exe: str, code: int, stderr: str
) -> None:
    sim, _ = sim_host(version=version)
    proc = run(shell, getattr(sim, exe), "runtime", "self-test")
    assert proc.returncode == code
    assert proc.stderr.splitlines()[:1] == ([stderr] if stderr else [])
    assert ("Runtime self test: OK" in proc.stdout) is (code == 0)


@pytest.mark.parametrize(
    ("outcome", "code", "stdout", "stderr_prefix"),
    [
        ("ok", 0, "Runtime self test: OK\n", ""),
        ("disabled", 0, "Runtime self test: error: self-tests are disabled\n", ""),
        ("unavailable", 255, "", "Error: unable to get a process self test: rpc error: code = "),
        ("noclient", 255, "", "Error: unable to create a runtime security client instance: "),
    ],
)
def test_self_test_outcomes(  # noqa: PLR0917 - pytest passes these by name
    sim_host: SimFactory, shell: list[str], outcome: str, code: int, stdout: str, stderr_prefix: str
) -> None:
    sim, _ = sim_host(version="7.59.0", selftest=outcome)
    proc = run(shell, sim.system_probe, "runtime", "self-test")
    assert (proc.returncode, proc.stdout) == (code, stdout)
    assert proc.stderr.startswith(stderr_prefix)


def _status_block(sim: SimInstall, shell: list[str]) -> str:
    out = run(shell, sim.security_agent, "status").stdout
    return out[out.index("  Self Tests") : out.index("  Policies")]


def test_status_self_tests_block(sim_host: SimFactory, shell: list[str]) -> None:
    sim, _ = sim_host(version="7.59.0", selftest_failed=["datadog_agent_cws_self_test_rule_open"])
    block = _status_block(sim, shell)
    assert "    Last execution: 01 Jan 25 00:00 UTC\n" in block
    assert "    Failed:\n      - datadog_agent_cws_self_test_rule_open\n" in block
    run(shell, sim.system_probe, "runtime", "self-test")
    after = _status_block(sim, shell)
    assert "Last execution: 01 Jan 25" not in after  # the run was recorded
    assert "      - datadog_agent_cws_self_test_rule_chmod\n" in after


def test_status_not_running(sim_host: SimFactory, shell: list[str]) -> None:
    sim, _ = sim_host(version="7.78.0", security_agent_running=0)
    proc = run(shell, sim.security_agent, "status")
    assert proc.returncode == 255
    assert "Could not reach security agent: " in proc.stdout
    assert "Make sure the agent is running before requesting the status." in proc.stdout


def test_agent_flare_local_and_not_running(sim_host: SimFactory, shell: list[str]) -> None:
    sim, _ = sim_host(version="7.78.0", agent_running=0)
    proc = run(shell, sim.agent, "flare", "-e", "a@b.co", stdin=b"n\n")
    lines = proc.stdout.splitlines()
    assert lines[0] == "NEW: You can now generate a flare from the comfort of your Datadog UI!"
    assert "Asking the agent to build the flare archive." in lines
    assert "The agent was unable to make the flare. (is it running?)" in lines
    assert "Initiating flare locally." in lines
    proc = run(shell, sim.agent, "flare", "--local", "--email=a@b.co", stdin=b"N\n")
    assert "Initiating flare locally." in proc.stdout.splitlines()
    assert "Asking the agent to build the flare archive." not in proc.stdout
    archive = proc.stdout.splitlines()[-1].removeprefix("Aborting. (You can still use ")[:-1]
    with zipfile.ZipFile(archive) as zf:
        assert "sim-host/local" in zf.namelist()


def test_security_agent_flare_has_no_local_flag(sim_host: SimFactory, shell: list[str]) -> None:
    sim, _ = sim_host(version="7.59.0")
    proc = run(shell, sim.security_agent, "flare", "-l")
    assert proc.returncode == 255
    assert proc.stderr == "Error: unknown shorthand flag: 'l' in -l\n"


def test_archive_name_and_tempdir(sim_host: SimFactory, shell: list[str]) -> None:
    sim, _ = sim_host(version="7.50.3")
    proc = run(shell, sim.security_agent, "flare", "1", "-e", "a@b.co", "-s")
    first = proc.stdout.splitlines()[1]
    path = Path(first.removesuffix(" is going to be uploaded to Datadog"))
    assert path.parent == sim.tmp_dir
    assert path.name.startswith("datadog-agent-")
    assert path.name.endswith("Z-info.zip")
    assert (path.stat().st_mode & 0o777) == 0o600
    assert proc.stdout.splitlines()[-1] == (
        "Your logs were successfully uploaded. For future reference, your internal case id is 1"
    )
    assert sim.archives() == [path]


def test_image_tree_runs_with_wpsim_conf(tmp_path: Path, shell: list[str]) -> None:
    import os

    from tests.agent_sim import image_files, write_image_tree

    root = write_image_tree(tmp_path / "rootfs", version="7.78.0", selftest="disabled")
    conf = root / "etc/wpprotect-sim/env"
    assert "WPSIM_VERSION=7.78.0" in conf.read_text()
    env = {**os.environ, "WPSIM_CONF": str(conf), "WPSIM_TMPDIR": str(tmp_path)}
    exe = root / "usr/local/bin/system-probe"
    proc = subprocess.run(
        [*shell, str(exe), "runtime", "self-test"], capture_output=True, check=False, env=env
    )
    assert proc.stdout == b"Runtime self test: error: self-tests are disabled\n"
    agent = root / "usr/local/bin/agent"
    proc = subprocess.run(
        [*shell, str(agent), "flare", "-e", "a@b.co"],
        input=b"n\n",
        capture_output=True,
        check=False,
        env=env,
    )
    assert b"Aborting. (You can still use " + str(tmp_path).encode() in proc.stdout
    files = image_files(Path("/etc/wpprotect-sim"))
    assert sorted(files) == [
        "/etc/wpprotect-sim/flare-template-local.zip",
        "/etc/wpprotect-sim/flare-template.zip",
    ]
    # deterministic bytes: the images built from them are cached by content hash
    assert files == image_files(Path("/etc/wpprotect-sim"))
