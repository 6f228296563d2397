"""run_self_test on a host install of the simulated agent, for every documented outcome."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent.conftest import VERSIONS, SimFactory
from wpprotect.agent import AgentVersion, parse_self_test_output, parse_status_self_tests
from wpprotect.errors import ExecTimeoutError, UnsupportedAgentError

CHOWN = "datadog_agent_cws_self_test_rule_chown"


@pytest.mark.parametrize("version", VERSIONS)
def test_ok_uses_the_right_binary(sim_host: SimFactory, version: str) -> None:
    sim, host = sim_host(version=version)
    res = host.self_test(timeout=30)
    assert res.ok, res
    assert res.error is None
    assert res.version == AgentVersion.parse(version)
    expected = "security-agent" if version == "7.50.3" else "system-probe"
    assert res.component == expected
    assert res.command[0].endswith(f"embedded/bin/{expected}")
    assert list(res.command[1:]) == ["runtime", "self-test"]
    assert res.exit_code == 0
    assert "Runtime self test: OK" in res.output
    # The security-agent still runs at every version (Helm and Operator defaults): confirmed.
    assert res.confirmed == "confirmed"
    assert res.confirmed_by_status is True
    assert CHOWN in res.succeeded_tests
    assert res.failed_tests == ()
    assert f"{expected} runtime self-test" in sim.calls()


@pytest.mark.parametrize("version", ["7.50.3", "7.59.0", "7.70.1"])
def test_ok_alone_is_not_a_pass_when_status_lists_failures(
    sim_host: SimFactory, version: str
) -> None:
    _, host = sim_host(version=version, selftest_failed=[CHOWN])
    res = host.self_test(timeout=30)
    assert not res.ok
    assert res.confirmed_by_status is False
    assert res.failed_tests == (CHOWN,)
    assert len(res.succeeded_tests) == 2
    assert res.error is not None
    assert CHOWN in res.error
    assert "Runtime self test: OK" in res.output  # the CLI itself said OK


def test_status_check_can_be_skipped(sim_host: SimFactory) -> None:
    sim, host = sim_host(version="7.59.0", selftest_failed=[CHOWN])
    from wpprotect.agent import run_self_test

    res = run_self_test(host, timeout=30, check_status=False)
    assert res.ok
    assert res.confirmed_by_status is None
    assert not any("status" in c for c in sim.calls())


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        ("disabled", "self-tests are disabled"),
        ("busy", "channel is already full, self test is already running"),
        ("ebpfless", "self-tests through gRPC are not supported with eBPF less"),
    ],
)
@pytest.mark.parametrize("version", VERSIONS)
def test_error_with_exit_zero(
    sim_host: SimFactory, version: str, outcome: str, message: str
) -> None:
    _, host = sim_host(version=version, selftest=outcome)
    res = host.self_test(timeout=30)
    assert not res.ok
    assert res.exit_code == 0
    assert res.error == message
    assert res.confirmed_by_status is None


@pytest.mark.parametrize("version", VERSIONS)
def test_rpc_unavailable_exit_255(sim_host: SimFactory, version: str) -> None:
    _, host = sim_host(version=version, selftest="unavailable")
    res = host.self_test(timeout=30)
    assert not res.ok
    assert res.exit_code == 255
    assert res.error is not None
    assert res.error.startswith("unable to get a process self test: rpc error: code = Unavailable")


def test_client_error(sim_host: SimFactory) -> None:
    _, host = sim_host(version="7.59.0", selftest="noclient")
    res = host.self_test(timeout=30)
    assert not res.ok
    assert res.exit_code == 255
    assert res.error is not None
    assert res.error.startswith("unable to create a runtime security client instance")


@pytest.mark.parametrize("version", VERSIONS)
def test_hang_raises_timeout(sim_host: SimFactory, version: str) -> None:
    _, host = sim_host(version=version, selftest="hang", hang_seconds=300)
    with pytest.raises(ExecTimeoutError) as info:
        host.self_test(timeout=0.5)
    assert "runtime self-test" in str(info.value)
    assert info.value.target == host.target


def test_deprecation_warning_on_7_66_security_agent(sim_host: SimFactory) -> None:
    # 7.66 still has `security-agent runtime` (deprecated); force it by hiding system-probe.
    sim, host = sim_host(version="7.66.0")
    sim.system_probe.unlink()
    res = host.self_test(timeout=30)
    assert res.ok
    assert res.component == "security-agent"
    assert res.warnings == (
        'Command "runtime" is deprecated, please use `system-probe runtime` instead',
    )


def test_a_wrong_version_guess_falls_back(sim_host: SimFactory) -> None:
    # Told 7.60: system-probe first; the 7.50 agent refuses it, so security-agent runs it.
    sim, host = sim_host(version="7.50.3")
    from wpprotect.agent import run_self_test

    sim.agent.unlink()
    res = run_self_test(host, timeout=30, version=AgentVersion(7, 60))
    assert res.ok
    assert res.component == "security-agent"
    assert "system-probe runtime self-test" in sim.calls()


def test_a_version_below_7_56_never_falls_back_to_system_probe(sim_host: SimFactory) -> None:
    # A 7.70 agent taken for 7.50 (a wrong guess): security-agent refuses, and system-probe is
    # not tried, because on a real agent that old it would start a second daemon.
    sim, host = sim_host(version="7.70.1")
    from wpprotect.agent import run_self_test

    with pytest.raises(UnsupportedAgentError) as info:
        run_self_test(host, timeout=30, version=AgentVersion(7, 50))
    assert "system-probe runtime self-test was not run" in str(info.value)
    assert "7.50.0" in str(info.value)
    assert sim.calls() == ["security-agent runtime self-test"]


def test_no_command_at_all(sim_host: SimFactory) -> None:
    sim, host = sim_host(version="7.50.3")
    sim.security_agent.unlink()
    with pytest.raises(UnsupportedAgentError, match="no runtime self-test command"):
        host.self_test(timeout=30)


def test_parse_outputs() -> None:
    assert parse_self_test_output(0, "Runtime self test: OK\n", "") == (True, None)
    assert parse_self_test_output(0, "\x1b[32mRuntime self test: OK\x1b[0m\n", "") == (True, None)
    assert parse_self_test_output(
        0, "Runtime self test: error: a self test is already running", ""
    ) == (
        False,
        "a self test is already running",
    )
    assert parse_self_test_output(255, "", "Error: unable to get a process self test: x\n") == (
        False,
        "unable to get a process self test: x",
    )
    assert parse_self_test_output(1, "", "") == (False, "exit status 1 with no output")
    # OK printed but a non-zero exit is not OK.
    assert parse_self_test_output(1, "Runtime self test: OK\n", "")[0] is False


def test_parse_status_inline_and_absent() -> None:
    text = (
        "Runtime Security\n  Self Tests\n  ==========\n\n    Last execution: 02 Jan 25 15:04 UTC\n"
        "    Succeeded: none\n    Failed: a, b\n\n  Policies\n  ========\n"
    )
    st = parse_status_self_tests(text)
    assert st is not None
    assert st.last_execution == "02 Jan 25 15:04 UTC"
    assert st.succeeded == ()
    assert st.failed == ("a", "b")
    assert parse_status_self_tests("Runtime Security\n  Not enabled\n") is None


def test_result_is_data(sim_host: SimFactory) -> None:
    _, host = sim_host(version="7.59.0")
    res = host.self_test(timeout=30)
    d = res.to_dict()
    assert d["ok"] is True
    assert d["version"] == "7.59.0"
    assert d["component"] == "system-probe"
    assert "system-probe" in repr(res)
    assert "ok" in repr(res)
    assert "OK" in res._repr_html_()


def test_status_wait_sees_the_new_run(sim_host: SimFactory) -> None:
    from wpprotect.agent import run_self_test

    sim, host = sim_host(version="7.59.0", selftest_failed=[CHOWN])
    res = run_self_test(host, timeout=30, status_wait=10)
    assert res.confirmed_by_status is False
    assert res.last_execution is not None
    assert res.last_execution != "01 Jan 25 00:00 UTC"  # the simulator's start-up run
    assert sim.calls().count("security-agent status") == 2  # before and after, no polling


def test_status_wait_gives_up_on_a_stale_status(sim_host: SimFactory, tmp_path: Path) -> None:
    from wpprotect.agent import run_self_test

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    # The run cannot be recorded: the status keeps showing the start-up run.
    _sim, host = sim_host(version="7.59.0", selftest_failed=[CHOWN], state_dir=blocker / "s")
    res = run_self_test(host, timeout=30, status_wait=0.3)
    assert res.ok  # the CLI said OK and nothing newer contradicts it
    assert res.confirmed_by_status is None
    assert res.failed_tests == ()
    assert "still shows the previous self-test run" in res.warnings[-1]
