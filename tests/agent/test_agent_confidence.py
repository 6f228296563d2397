"""How sure a self-test is (confirmed / contradicted / unconfirmed), one deadline per operation,
and a version read that hangs or answers nonsense, on a host install of the simulated agent."""

from __future__ import annotations

import json
import time

import pytest

from tests.agent.conftest import SimFactory
from tests.agent.test_agent_cli import _host_args
from wpprotect.agent import run_self_test
from wpprotect.cli import main
from wpprotect.errors import ExecTimeoutError, UnsupportedAgentError
from wpprotect.fleet import run_fleet

CHOWN = "datadog_agent_cws_self_test_rule_chown"


@pytest.fixture(autouse=True)
def _as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("wpprotect.platforms.host.os.geteuid", lambda: 0)


@pytest.mark.parametrize("version", ["7.59.0", "7.78.0"])
def test_direct_send_ok_is_unconfirmed(sim_host: SimFactory, version: str) -> None:
    sim, host = sim_host(version=version, deploy="direct-send")
    res = host.self_test(timeout=30)
    assert res.ok
    assert res.component == "system-probe"
    assert res.confirmed == "unconfirmed"
    assert res.confirmed_reason == "no security-agent (direct send)"
    assert res.confirmed_by_status is None
    assert res.to_dict()["confirmed"] == "unconfirmed"
    assert "unconfirmed: no security-agent (direct send)" in repr(res)
    assert "unconfirmed" in res._repr_html_()
    assert sim.daemon_starts() == []


def test_direct_send_on_an_old_agent_is_refused_with_the_reason(sim_host: SimFactory) -> None:
    sim, host = sim_host(version="7.50.3", deploy="direct-send")
    with pytest.raises(UnsupportedAgentError) as info:
        host.self_test(timeout=30)
    message = str(info.value)
    assert "security-agent: " in message
    assert "system-probe runtime self-test was not run: agent 7.50.3 predates" in message
    assert not any(c.startswith("system-probe") for c in sim.calls())


def test_status_unreachable_is_unconfirmed(sim_host: SimFactory) -> None:
    _, host = sim_host(version="7.59.0", status="unreachable")
    res = host.self_test(timeout=30)
    assert res.ok
    assert (res.confirmed, res.confirmed_reason) == ("unconfirmed", "status unreachable")


def test_failed_tests_in_the_status_contradict_the_cli(sim_host: SimFactory) -> None:
    _, host = sim_host(version="7.59.0", selftest_failed=[CHOWN])
    res = host.self_test(timeout=30)
    assert not res.ok
    assert res.confirmed == "contradicted"
    assert CHOWN in res.confirmed_reason


def test_status_not_checked_is_unconfirmed(sim_host: SimFactory) -> None:
    _, host = sim_host(version="7.59.0")
    res = run_self_test(host, timeout=30, check_status=False)
    assert (res.confirmed, res.confirmed_reason) == ("unconfirmed", "status not checked")


def test_cli_says_unconfirmed_in_words(
    sim_host: SimFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    _, host = sim_host(version="7.78.0", deploy="direct-send")
    assert main(["self-test", *_host_args(host)]) == 0
    out = capsys.readouterr().out
    assert "unconfirmed (no security-agent (direct send))" in out
    assert "1 of them unconfirmed" in out
    assert main(["self-test", *_host_args(host), "--json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)["results"]
    assert item["value"]["confirmed"] == "unconfirmed"
    assert item["value"]["confirmed_reason"] == "no security-agent (direct send)"


def test_cli_exits_1_on_contradicted(
    sim_host: SimFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    _, host = sim_host(version="7.70.1", selftest_failed=[CHOWN])
    assert main(["self-test", *_host_args(host), "--json"]) == 1
    (item,) = json.loads(capsys.readouterr().out)["results"]
    assert item["value"]["confirmed"] == "contradicted"


def test_cli_says_confirmed(sim_host: SimFactory, capsys: pytest.CaptureFixture[str]) -> None:
    _, host = sim_host(version="7.70.1")
    assert main(["self-test", *_host_args(host)]) == 0
    assert "confirmed: status shows 3 tests passed" in capsys.readouterr().out


# -- the version read -------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["7.43.0", "7.59.0"])
def test_unreadable_version_runs_only_security_agent(sim_host: SimFactory, version: str) -> None:
    sim, host = sim_host(version=version, version_answer="unreadable")
    res = host.self_test(timeout=30)
    assert res.ok
    assert res.version is None
    assert res.component == "security-agent"
    assert "system-probe version" not in sim.calls()
    assert not any(c.startswith("system-probe") for c in sim.calls())
    assert sim.daemon_starts() == []


def test_unreadable_version_on_7_70_is_refused_not_guessed(sim_host: SimFactory) -> None:
    sim, host = sim_host(version="7.70.1", version_answer="unreadable")
    with pytest.raises(UnsupportedAgentError) as info:
        host.self_test(timeout=30)
    assert "the agent version is unknown" in str(info.value)
    assert 'unknown command "runtime"' in str(info.value)
    assert not any(c.startswith("system-probe") for c in sim.calls())


# -- one deadline per operation ---------------------------------------------------------------


@pytest.mark.parametrize("version", ["7.43.0", "7.78.0"])
def test_hung_version_read_is_bounded_by_the_operation_timeout(
    sim_host: SimFactory, version: str
) -> None:
    sim, host = sim_host(version=version, version_answer="hang", hang_seconds=300)
    started = time.monotonic()
    with pytest.raises(ExecTimeoutError) as info:
        host.self_test(timeout=5)
    elapsed = time.monotonic() - started
    assert elapsed < 15, elapsed  # one 5 s budget for the whole operation, not 5 s + 30 s
    assert info.value.target == host.target
    assert "self-test ran past its 5 s timeout" in str(info.value)
    assert "reading the agent version" in str(info.value)
    assert not any("runtime" in c for c in sim.calls())  # nothing ran after the hang


def test_hung_version_read_bounds_a_flare(sim_host: SimFactory) -> None:
    _, host = sim_host(version="7.59.0", version_answer="hang", hang_seconds=300)
    started = time.monotonic()
    with pytest.raises(ExecTimeoutError, match="flare ran past its 5 s timeout"):
        host.flare(email="ops@example.com", timeout=5)
    assert time.monotonic() - started < 15


def test_fleet_timeout_bounds_every_operation(sim_host: SimFactory) -> None:
    hung = [
        sim_host(version="7.59.0", version_answer="hang", hang_seconds=300)[1] for _ in range(2)
    ]
    _, fine = sim_host(version="7.59.0")
    started = time.monotonic()
    result = run_fleet([*hung, fine], lambda p: p.self_test(), timeout=5)
    assert time.monotonic() - started < 15
    assert [i.ok for i in result.items] == [False, False, True]
    for item in result.items[:2]:
        assert isinstance(item.error, ExecTimeoutError)
        assert "ran past its" in str(item.error)


def test_fleet_abandons_an_operation_that_ignores_the_deadline(sim_host: SimFactory) -> None:
    stop = time.monotonic() + 6

    def stubborn(_: object) -> str:
        while time.monotonic() < stop:  # ignores every deadline
            time.sleep(0.05)
        return "late"

    started = time.monotonic()
    result = run_fleet(["a"], stubborn, timeout=1)
    assert time.monotonic() - started < 10
    (item,) = result.items
    assert isinstance(item.error, ExecTimeoutError)
    assert "may still run" in str(item.error)


def test_fleet_timeout_must_be_positive() -> None:
    from wpprotect.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="timeout"):
        run_fleet([], lambda p: p, timeout=0)
