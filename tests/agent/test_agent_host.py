"""HostPlatform: argv execution, sudo, timeouts, copy-out, agents() and the settings plan."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import pytest

from tests.agent.conftest import SimFactory
from wpprotect.errors import (
    AgentNotFoundError,
    ConfigOverriddenError,
    ExecError,
    ExecTimeoutError,
    InvalidArgumentError,
    PermissionDeniedError,
    PlanApplyError,
)
from wpprotect.platforms.host import HostPlatform

SP_YAML = """\
## system-probe configuration
runtime_security_config:
  ## Set to true to enable Workload Protection.
  enabled: true
  fim_enabled: true
  network:
    enabled: true
"""
SA_YAML = """\
runtime_security_config:
  enabled: true
  socket: /opt/datadog-agent/run/runtime-security.sock
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_binaries_and_target(tmp_path: Path) -> None:
    host = HostPlatform(tmp_path / "opt", tmp_path / "etc", sudo=False)
    assert host.binary("security-agent") == str(tmp_path / "opt/embedded/bin/security-agent")
    assert host.binary("system-probe") == str(tmp_path / "opt/embedded/bin/system-probe")
    assert host.binary("agent") == str(tmp_path / "opt/bin/agent/agent")
    with pytest.raises(InvalidArgumentError, match="valid: agent, security-agent"):
        host.binary("trace-agent")
    assert host.target.startswith("host:")
    assert host.kind == "host"
    assert repr(host) == f"<HostPlatform {host.target}>"


def test_agents_needs_an_install(tmp_path: Path, sim_host: SimFactory) -> None:
    with pytest.raises(AgentNotFoundError, match="no Datadog Agent install") as info:
        HostPlatform(tmp_path / "nothing", sudo=False).agents()
    assert info.value.path == tmp_path / "nothing"
    _, host = sim_host(version="7.59.0")
    assert host.agents() == [host]


def test_exec_passes_stdin_and_returns_result(tmp_path: Path) -> None:
    host = HostPlatform(tmp_path, sudo=False)
    res = host.exec(["/bin/sh", "-c", "read x; echo got:$x; echo err >&2; exit 3"], stdin=b"hi\n")
    assert res.exit_code == 3
    assert res.stdout == "got:hi\n"
    assert res.stderr == "err\n"
    assert res.argv[0] == "/bin/sh"
    assert res.target == host.target
    assert not res.ok


def test_exec_refuses_shell_strings(tmp_path: Path) -> None:
    host = HostPlatform(tmp_path, sudo=False)
    with pytest.raises(InvalidArgumentError, match="not a string"):
        host.exec("echo hi")  # type: ignore[arg-type]


def test_exec_missing_binary_is_status_127(tmp_path: Path) -> None:
    # Like `docker exec` and a shell: a result, so operations fall back to another binary.
    res = HostPlatform(tmp_path, sudo=False).exec([str(tmp_path / "nope")])
    assert res.exit_code == 127
    assert res.stderr == f"{tmp_path / 'nope'}: not found\n"


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    host = HostPlatform(tmp_path, sudo=False)
    with pytest.raises(ExecTimeoutError, match=r"did not finish within 0\.5 s"):
        host.exec(["/bin/sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], timeout=0.5)
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def _fake_sudo(bin_dir: Path, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    sudo = bin_dir / "sudo"
    sudo.write_text("#!/bin/sh\n" + body)
    sudo.chmod(sudo.stat().st_mode | stat.S_IEXEC)


def test_sudo_is_used_with_n_and_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    log = tmp_path / "sudo.log"
    _fake_sudo(bin_dir, f'printf "%s\\n" "$*" >> {log}\nshift 2\nexec "$@"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    host = HostPlatform(tmp_path, sudo=True)
    res = host.exec(["/bin/echo", "a b"])
    assert res.stdout == "a b\n"
    assert log.read_text().splitlines() == ["-n -- /bin/echo a b"]
    src = tmp_path / "src.zip"
    src.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    out = host.copy_out(str(src), tmp_path / "copy.zip")
    assert out.read_bytes() == src.read_bytes()
    assert log.read_text().splitlines()[-1] == f"-n -- cat -- {src}"


def test_sudo_password_needed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    _fake_sudo(bin_dir, 'echo "sudo: a password is required" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    host = HostPlatform(tmp_path, sudo=True)
    with pytest.raises(PermissionDeniedError, match="sudo needs a password"):
        host.exec(["/bin/true"])
    with pytest.raises(PermissionDeniedError, match="sudo needs a password"):
        host.copy_out("/etc/hostname", tmp_path / "x")


def test_sudo_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(PermissionDeniedError, match="sudo is not installed"):
        HostPlatform(tmp_path, sudo=True).exec(["/bin/true"])


def test_sudo_auto_follows_euid(tmp_path: Path) -> None:
    assert HostPlatform(tmp_path).sudo is (os.geteuid() != 0)


def test_copy_out_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ExecError, match="cannot read"):
        HostPlatform(tmp_path, sudo=False).copy_out(str(tmp_path / "gone"), tmp_path / "x")


def test_restart_command_must_be_argv(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="argv list"):
        HostPlatform(tmp_path, restart_command="systemctl restart datadog-agent")  # type: ignore[arg-type]


def _config_host(tmp_path: Path, *, fail_restart: bool = False) -> tuple[HostPlatform, Path, Path]:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "system-probe.yaml").write_text(SP_YAML)
    (etc / "security-agent.yaml").write_text(SA_YAML)
    log = tmp_path / "restarts.log"
    code = "import sys; open(sys.argv[1], 'a').write('restart\\n')"
    if fail_restart:
        code += "; sys.exit('unit not found')"
    restart = [sys.executable, "-c", code, str(log)]
    return HostPlatform(tmp_path / "opt", etc, sudo=False, restart_command=restart), etc, log


def _restarts(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_disable_plan_edits_both_files_then_restarts(tmp_path: Path) -> None:
    host, etc, log = _config_host(tmp_path)
    plan = host.disable("workload-protection")
    diff = plan.diff()
    assert "-  enabled: true" in diff
    assert "+  enabled: false" in diff
    assert "system-probe.yaml" in diff
    assert "security-agent.yaml" in diff
    assert "# then: " in diff
    assert _restarts(log) == 0  # planning changes nothing
    plan.apply()
    assert _restarts(log) == 1
    assert "  enabled: false\n" in (etc / "system-probe.yaml").read_text()
    assert "  enabled: false\n" in (etc / "security-agent.yaml").read_text()
    assert (
        "## Set to true to enable Workload Protection." in (etc / "system-probe.yaml").read_text()
    )
    # applying again changes nothing and does not restart
    again = host.disable("workload-protection")
    assert again.is_satisfied()
    again.apply()
    assert _restarts(log) == 1
    # undo restores both files, then restarts once more
    plan.undo()
    assert (etc / "system-probe.yaml").read_text() == SP_YAML
    assert (etc / "security-agent.yaml").read_text() == SA_YAML
    assert _restarts(log) == 2


def test_disable_turns_fim_off_and_refuses_a_fleet_policy(tmp_path: Path) -> None:
    host, etc, log = _config_host(tmp_path)
    sp = etc / "system-probe.yaml"
    assert "  fim_enabled: true\n" in SP_YAML
    plan = host.disable("workload-protection")
    assert "-  fim_enabled: true" in plan.diff()
    assert "+  fim_enabled: false" in plan.diff()
    assert any("fim_enabled" in n and "turns it off too" in n for n in plan.notes)
    # a fleet policy that keeps it on: refused, nothing written, nothing restarted
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "system-probe.yaml").write_text("runtime_security_config:\n  enabled: true\n")
    sp.write_text(f"fleet_policies_dir: {fleet}\n" + SP_YAML)
    before = sp.read_text()
    with pytest.raises(ConfigOverriddenError, match="fleet policy"):
        host.disable("workload-protection")
    assert sp.read_text() == before
    assert _restarts(log) == 0


def test_network_scope_touches_system_probe_only(tmp_path: Path) -> None:
    host, etc, log = _config_host(tmp_path)
    plan = host.disable("network")
    assert "security-agent.yaml" not in plan.diff()
    plan.apply()
    assert _restarts(log) == 1
    assert (etc / "security-agent.yaml").read_text() == SA_YAML
    assert "network:\n    enabled: false" in (etc / "system-probe.yaml").read_text()


def test_failed_restart_rolls_the_files_back(tmp_path: Path) -> None:
    host, etc, log = _config_host(tmp_path, fail_restart=True)
    plan = host.disable("workload-protection")
    with pytest.raises(PlanApplyError, match="unit not found"):
        plan.apply()
    assert (etc / "system-probe.yaml").read_text() == SP_YAML
    assert (etc / "security-agent.yaml").read_text() == SA_YAML
    assert _restarts(log) == 1  # the failed attempt only; no restart for the rollback
    assert plan.state == "rolled-back"


def test_default_restart_argv(tmp_path: Path) -> None:
    argv = HostPlatform(tmp_path, sudo=False).restart_argv()
    assert argv in (
        ("systemctl", "restart", "datadog-agent"),
        ("service", "datadog-agent", "restart"),
    )
