"""The version table: its shape, its page, and every row against the simulated agent on a host
install at each version of the grid; wpprotect never starts an old system-probe's daemon."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from tests.agent.conftest import SimFactory
from tests.agent_sim.rows import VERSION_GRID, assert_never_started_daemon, check_rows
from wpprotect._agentversions import BEHAVIOURS, VersionRow, lookup, row_for, rows_of
from wpprotect.agent import VERSION_TABLE, AgentVersion, self_test_binaries

ROOT = Path(__file__).resolve().parents[2]


def test_rows_of_one_behaviour_never_overlap() -> None:
    for behaviour in BEHAVIOURS:
        rows = rows_of(behaviour)
        assert rows, behaviour
        for a, b in itertools.pairwise(rows):
            assert a.until is not None, (a, b)
            assert b.since is not None, (a, b)
            assert a.until <= b.since, (a, b)


def test_every_row_cites_a_reference_section() -> None:
    for row in VERSION_TABLE:
        assert re.fullmatch(r"docs/reference/[\w-]+\.md#[\w-]+", row.reference), row


def test_the_page_lists_every_row() -> None:
    page = (ROOT / "docs" / "reference" / "agent-versions.md").read_text()
    for row in VERSION_TABLE:
        anchor = row.reference.split("#")[1]
        line = f"| `{row.behaviour}` | {row.range} |"
        assert line in page, line
        assert f"{{ref}}`{anchor}`" in page


def test_public_names() -> None:
    import wpprotect.agent

    assert wpprotect.agent.VERSION_TABLE is VERSION_TABLE
    assert isinstance(VERSION_TABLE[0], VersionRow)
    assert VERSION_TABLE[0].to_dict()["behaviour"] == "version-command"


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ((7, 28, 9), None),
        ((7, 36, 0), 1),
        ((7, 39, 1), 1),
        ((7, 39, 2), 10),
        ((7, 40, 0), 10),
        ((7, 78, 0), 10),
    ],
)
def test_default_priority_bounds(version: tuple[int, int, int], expected: int | None) -> None:
    assert lookup("default-classifier-priority", version) == expected


def test_unknown_version_gets_only_rows_true_everywhere() -> None:
    assert row_for("system-probe-runtime", None) is None
    assert lookup("version-command", None) == ("agent", "security-agent")


@pytest.mark.parametrize(
    "version", [None, "7.28.0", "7.40.0", "7.44.9", "7.50.3", "7.55.9", "7.56.0-rc.1", "7.70.1"]
)
def test_system_probe_runtime_only_on_a_version_known_to_have_it(version: str | None) -> None:
    v = None if version is None else AgentVersion.parse(version)
    names = self_test_binaries(v)
    assert ("system-probe" in names) == (v is not None and v.at_least(7, 56))
    assert "security-agent" in names  # always safe, always the fallback


@pytest.mark.parametrize("version", VERSION_GRID)
def test_every_row_on_a_host_install(sim_host: SimFactory, tmp_path: Path, version: str) -> None:
    sim, host = sim_host(version=version, daemon_seconds=0)

    def set_sim(key: str, value: str) -> None:
        sim.configure(**{key: value})

    assert_never_started_daemon(host, version, sim.daemon_starts, tmp_path, set_sim)
    assert not any(c.startswith("system-probe version") for c in sim.calls())
    runtime_calls = [c for c in sim.calls() if c.startswith("system-probe runtime")]
    assert runtime_calls == [] or AgentVersion.parse(version).at_least(7, 56)
    assert check_rows(host, version, sim.daemon_starts, tmp_path) == set(BEHAVIOURS)
