"""Every row of :data:`wpprotect.agent.VERSION_TABLE` checked against the simulated agent behind
a platform (host, Docker or Kubernetes), for one version.

:func:`assert_never_started_daemon` runs what users run (version, self-test, flare, also with an
unreadable version) and asserts the old system-probe's daemon was never started.
:func:`check_rows` then checks each row, deliberately starting the daemon where a row says an
old system-probe does (the simulator must be configured with ``WPSIM_DAEMON_SECONDS=0``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

import pytest

from tests.agent.test_agent_upload import KEY, Backend, _serve
from wpprotect._agentversions import BEHAVIOURS, rows_of
from wpprotect.agent import VERSION_TABLE, AgentVersion
from wpprotect.agent._flare import _NAME_FORMS
from wpprotect.agent._run import binary
from wpprotect.config import effective_settings
from wpprotect.errors import UnsupportedAgentError
from wpprotect.platforms import BasePlatform

#: The versions every row is checked at: before the Go-flags fix (7.28), the Cilium-race
#: window (7.36), the old precedence (7.40, 7.43), before system-probe runtime (7.50), between
#: (7.59), after security-agent runtime was removed (7.70), after the 7.77 documentation change.
VERSION_GRID = ("7.28.0", "7.36.0", "7.40.0", "7.43.0", "7.50.3", "7.59.0", "7.70.1", "7.78.0")

DaemonStarts = Callable[[], list[str]]
#: ``set_sim("version_answer", "unreadable")``: change one simulator setting on the target.
SetSim = Callable[[str, str], None]

_START_LINE = "starting system-probe v"


def backend() -> Iterator[Backend]:
    """A local flare backend (see ``tests/agent/test_agent_upload.py``)."""
    yield from _serve("127.0.0.1")


def assert_never_started_daemon(
    platform: BasePlatform, version: str, daemon_starts: DaemonStarts, dest: Path, set_sim: SetSim
) -> None:
    """Everything wpprotect runs on this agent, with a known and an unknown version: no daemon."""
    assert daemon_starts() == []
    assert str(platform.version()) == version
    res = platform.self_test(timeout=60)
    assert res.ok, res
    assert res.confirmed == "confirmed"
    platform.flare(email="ops@example.com", dest=dest / "known")
    # The version cannot be read: only security-agent is tried, whatever the real version.
    set_sim("version_answer", "unreadable")
    try:
        v = AgentVersion.parse(version)
        if v.at_least(7, 67):  # security-agent runtime is gone: refused, with the reason
            with pytest.raises(UnsupportedAgentError) as info:
                platform.self_test(timeout=60)
            assert "system-probe runtime self-test was not run" in str(info.value)
            assert "version is unknown" in str(info.value)
        else:
            res = platform.self_test(timeout=60)
            assert res.component == "security-agent"
            assert res.version is None
        fl = platform.flare(email="ops@example.com", dest=dest / "unknown")
        assert fl.version is None
    finally:
        set_sim("version_answer", "ok")
    assert daemon_starts() == [], "wpprotect started an old system-probe's daemon"


def _run(platform: BasePlatform, name: str, *args: str) -> tuple[int, str]:
    component = "system-probe" if name == "system-probe" else name
    res = platform.exec([binary(platform, name), *args], component=component, timeout=60)  # type: ignore[arg-type]
    return res.exit_code, res.output


def check_rows(
    platform: BasePlatform, version: str, daemon_starts: DaemonStarts, dest: Path
) -> set[str]:
    """Check every row covering ``version``; returns the behaviours checked (all of them)."""
    v = AgentVersion.parse(version)
    checked: set[str] = set()

    def value(behaviour: str) -> object:
        rows = [r for r in rows_of(behaviour) if r.covers(v)]
        assert len(rows) <= 1, rows
        checked.add(behaviour)
        return rows[0].value if rows else None

    # version-command: the version comes from the first binary of the row.
    sources = value("version-command")
    assert isinstance(sources, tuple)
    code, out = _run(platform, sources[0], "version")
    assert code == 0
    assert AgentVersion.parse(out) == v

    # system-probe-argument, then system-probe-runtime (which may start the daemon too).
    started = len(daemon_starts())
    arg = value("system-probe-argument")
    if arg == "starts-daemon-on-any-argument":
        code, out = _run(platform, "system-probe", "version")
        assert _START_LINE in out
        assert len(daemon_starts()) == started + 1
    elif arg == "starts-daemon-on-unknown-command":
        code, out = _run(platform, "system-probe", "version")
        assert out.startswith(f"System Probe {version} ")
        code, out = _run(platform, "system-probe", "no-such-command")
        assert _START_LINE in out
        assert len(daemon_starts()) == started + 1
    else:
        assert arg == "unknown-command-error"
        code, out = _run(platform, "system-probe", "no-such-command")
        assert code == 255
        assert 'unknown command "no-such-command"' in out
        assert len(daemon_starts()) == started
    started = len(daemon_starts())
    code, out = _run(platform, "system-probe", "runtime", "self-test")
    if value("system-probe-runtime"):
        assert "Runtime self test: OK" in out
    elif arg == "unknown-command-error":
        assert code == 255
        assert 'unknown command "runtime"' in out
    else:
        assert _START_LINE in out  # what wpprotect must never cause
        assert len(daemon_starts()) == started + 1

    code, out = _run(platform, "security-agent", "runtime", "self-test")
    if value("security-agent-runtime"):
        assert "Runtime self test: OK" in out
    else:
        assert code == 255
        assert 'unknown command "runtime"' in out

    binaries = value("self-test-binaries")
    assert isinstance(binaries, tuple)
    res = platform.self_test(timeout=60)
    assert res.component == binaries[0]

    assert value("security-agent-container") is True
    code, out = _run(platform, "security-agent", "status")
    assert code == 0
    assert "Runtime Security" in out

    # security-agent-cws-setting: a doctor rule; the simulator has no config files, so only the
    # bound is checked here (tests/ux/test_wpux_doctor.py runs the doctor on both sides of it).
    assert value("security-agent-cws-setting") is (not v.at_least(7, 77))

    flare_binaries = value("flare-binaries")
    assert isinstance(flare_binaries, tuple)
    fl = platform.flare(email="ops@example.com", dest=dest / "rows")
    assert fl.component == flare_binaries[0]

    forms = value("flare-archive-name")
    assert isinstance(forms, tuple)
    name = PurePosixPath(fl.remote_path).name
    matched = [f for f in forms if re.fullmatch(rf"datadog-agent-{_NAME_FORMS[f]}\.zip", name)]
    assert matched, name
    assert matched == (["legacy"] if not v.at_least(7, 45) else ["rfc3339"])  # the simulator's

    where = value("flare-api-key")
    for server in backend():
        fl.send(KEY, url=server.url)
        head, post = server.requests
        for req in (head, post):
            if where == "query":
                assert req["path"].endswith(f"?api_key={KEY}")
                assert "dd-api-key" not in req["headers"]
            else:
                assert where == "header"
                assert req["headers"]["dd-api-key"] == KEY
                assert "api_key" not in req["path"]

    read = platform.version()
    doc = {"runtime_security_config": {"network": {"classifier_priority": 5}}}
    env = {"DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY": "3"}
    got = effective_settings(files={"system-probe.yaml": doc}, env=env, version=read)
    precedence = value("network-precedence")
    assert got["classifier_priority"].value == (3 if precedence == "env-over-yaml" else 5)

    default = value("default-classifier-priority")
    got = effective_settings(files={"system-probe.yaml": {}}, version=read)
    assert got["classifier_priority"].value == (default if default is not None else 10)

    assert checked == set(BEHAVIOURS) == {r.behaviour for r in VERSION_TABLE}
    return checked
