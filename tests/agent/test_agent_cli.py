"""The CLI: wpprotect self-test / flare / disable on a host install of the simulated agent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.agent.conftest import SimFactory
from wpprotect.cli import main

CHOWN = "datadog_agent_cws_self_test_rule_chown"


@pytest.fixture(autouse=True)
def _as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # HostPlatform picks sudo when not root; these tests run the simulator directly.
    monkeypatch.setattr("wpprotect.platforms.host.os.geteuid", lambda: 0)


def _host_args(host: object) -> list[str]:
    return [
        "--platform",
        "host",
        "--install-dir",
        str(host.install_dir),  # type: ignore[attr-defined]
        "--config-dir",
        str(host.config_dir),  # type: ignore[attr-defined]
    ]


def test_self_test_ok_json(sim_host: SimFactory, capsys: pytest.CaptureFixture[str]) -> None:
    _, host = sim_host(version="7.59.0")
    assert main(["self-test", *_host_args(host), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True
    assert doc["counts"] == {"total": 1, "ok": 1, "failed": 0, "errors": 0}
    (item,) = doc["results"]
    assert item["value"]["component"] == "system-probe"
    assert item["value"]["version"] == "7.59.0"
    assert item["value"]["confirmed_by_status"] is True


def test_self_test_failed_tests_exit_1(
    sim_host: SimFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    _, host = sim_host(version="7.50.3", selftest_failed=[CHOWN])
    assert main(["self-test", *_host_args(host)]) == 1
    out = capsys.readouterr().out
    assert "problem" in out
    assert CHOWN in out
    assert "0/1 agents passed the self-test" in out


def test_self_test_error_exit_1_json(
    sim_host: SimFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    _, host = sim_host(version="7.70.1", selftest="hang", hang_seconds=60)
    assert main(["self-test", *_host_args(host), "--timeout", "0.5", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"][0]["error"].startswith("ExecTimeoutError:")


def test_self_test_without_agent_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["self-test", "--install-dir", str(tmp_path / "none")]) == 2
    assert "no Datadog Agent install found" in capsys.readouterr().err


def test_flare_json_with_secrets_exit_1(
    sim_host: SimFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "AKIAIOSFODNN7EXAMPLE"
    _, host = sim_host(version="7.59.0", flare_extra_files={"logs/x.log": f"key={secret}\n"})
    args = ["flare", *_host_args(host), "--case-id", "123", "--email", "ops@example.com"]
    assert main([*args, "--dest", str(tmp_path / "out"), "--json"]) == 1
    out = capsys.readouterr().out
    assert secret not in out
    doc = json.loads(out)
    assert doc["case_id"] == "123"
    assert doc["sent"] is False
    assert Path(doc["archive"]).parent == tmp_path / "out"
    assert doc["secrets"] == [
        {
            "file": "sim-host/logs/x.log",
            "line": 1,
            "kind": "aws-access-key",
            "redacted": "********MPLE",
        }
    ]


def test_flare_clean_human_output_exit_0(
    sim_host: SimFactory, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, host = sim_host(version="7.78.0")
    args = ["flare", *_host_args(host), "--email", "ops@example.com", "--dest", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "(agent flare)" in out
    assert "no secrets found" in out
    assert "not sent" in out


def test_flare_send(
    sim_host: SimFactory, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, host = sim_host(version="7.59.0")
    args = ["flare", *_host_args(host), "--case-id", "9", "--email", "ops@example.com", "--send"]
    args += ["--dest", str(tmp_path)]
    assert main(args) == 0
    assert "sent: case id 9" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bad", [["--case-id", "1; rm -rf /"], ["--email", "x@y"], ["--case-id=-s"]]
)
def test_flare_bad_input_exit_2_before_running(
    sim_host: SimFactory, bad: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    sim, host = sim_host(version="7.59.0")
    assert main(["flare", *_host_args(host), *bad]) == 2
    assert "wpprotect: error:" in capsys.readouterr().err
    assert sim.calls() == []


def test_disable_dry_run_text_and_json(
    sim_host: SimFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, host = sim_host(version="7.59.0")
    etc = host.config_dir
    etc.mkdir()
    sp = "runtime_security_config:\n  enabled: true\n  network:\n    enabled: true\n"
    (etc / "system-probe.yaml").write_text(sp)
    (etc / "security-agent.yaml").write_text("runtime_security_config:\n  enabled: true\n")
    base = ["disable", *_host_args(host), "--scope", "network"]
    # the default restart (systemctl/service) must not run in a test: dry run only here
    assert main([*base, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "+    enabled: false" in out
    assert "dry run: nothing was changed" in out
    assert (etc / "system-probe.yaml").read_text() == sp
    assert main([*base, "--dry-run", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dry_run"] is True
    assert doc["applied"] is False
    assert [c["target"] for c in doc["changes"]][-1] == "service:datadog-agent"


def test_disable_bad_scope_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["disable", "--scope", "everything"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.docker
def test_self_test_unreachable_container_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["self-test", "--platform", "docker", "--container", "wpag-absent", "--json"])
    assert code == 2
    doc = json.loads(capsys.readouterr().out)
    # agents() finds no such container: the same error, before any agent is tested, as on the
    # other platforms
    assert doc["error"]["type"] == "AgentNotFoundError"
    assert "wpag-absent" in doc["error"]["message"]


def test_disable_applies_and_restarts(
    sim_host: SimFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import sys

    from wpprotect.platforms.host import HostPlatform
    from wpprotect.tc import TCReport

    log = tmp_path / "restarts"
    restart = (sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write('r\\n')", str(log))
    monkeypatch.setattr(HostPlatform, "restart_argv", lambda self: restart)
    # The kernel half of verify() has its own tests (tests/tc_truth/test_truth_leftover.py);
    # here, a kernel with no Datadog classifier left, whatever else this machine runs.
    monkeypatch.setattr(
        "wpprotect.platforms.host._scan_all_namespaces", lambda: TCReport(programs=())
    )
    _, host = sim_host(version="7.59.0")
    etc = host.config_dir
    etc.mkdir()
    (etc / "system-probe.yaml").write_text("runtime_security_config:\n  enabled: true\n")
    (etc / "security-agent.yaml").write_text("runtime_security_config:\n  enabled: true\n")
    args = ["disable", *_host_args(host), "--scope", "workload-protection", "--json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["applied"] is True
    assert doc["verified"] is True
    assert doc["state"] == "applied"
    assert log.read_text() == "r\n"
    assert "enabled: false" in (etc / "security-agent.yaml").read_text()
    assert main(args[:-1]) == 0  # again: nothing to do, no restart
    assert "nothing to do" in capsys.readouterr().out
    assert log.read_text() == "r\n"


def test_kubernetes_backend_error_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "no-kubeconfig"
    assert main(["self-test", "--platform", "kubernetes", "--kubeconfig", str(missing)]) == 2
