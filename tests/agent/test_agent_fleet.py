"""run_fleet: bounded concurrency, one result per target, failures kept, progress reported."""

from __future__ import annotations

import threading
import time

import pytest

from tests.agent.conftest import SimFactory
from wpprotect.errors import ExecTimeoutError, InvalidArgumentError
from wpprotect.fleet import FleetResult, run_fleet
from wpprotect.testing import FakePlatform


def test_failures_are_kept_per_target_and_order_is_preserved() -> None:
    agents = [FakePlatform(target=f"fake:{i}") for i in range(10)]

    def op(p: FakePlatform) -> int:
        n = int(p.target.split(":")[1])
        if n % 3 == 0:
            raise ExecTimeoutError("hung", target=p.target)
        if n == 5:
            raise RuntimeError("bug")
        return n * 10

    seen: list[tuple[int, int, str]] = []
    result = run_fleet(agents, op, max_workers=4, progress=lambda d, t, x: seen.append((d, t, x)))
    assert [i.target for i in result.items] == [a.target for a in agents]
    assert result.values() == [None, 10, 20, None, 40, None, None, 70, 80, None]
    assert not result.ok
    assert result.counts() == {"total": 10, "ok": 5, "failed": 5, "errors": 5}
    assert [i.target for i in result.failed] == ["fake:0", "fake:3", "fake:5", "fake:6", "fake:9"]
    assert isinstance(result.items[3].error, ExecTimeoutError)
    assert result.items[5].error_message == "RuntimeError: bug"
    assert [d for d, _, _ in seen] == list(range(1, 11))
    assert {t for _, t, _ in seen} == {10}
    assert {x for _, _, x in seen} == {a.target for a in agents}
    d = result.to_dict()
    assert d["counts"]["errors"] == 5
    assert d["items"][1] == {
        "target": "fake:1",
        "ok": True,
        "value": 10,
        "error": None,
        "duration": d["items"][1]["duration"],
    }
    table = result.table()
    assert "fake:3  error   ExecTimeoutError: hung" in table
    assert "<table>" in result._repr_html_()
    assert repr(result) == "<FleetResult 5/10 ok, 5 failed>"


def test_concurrency_is_bounded_and_reached() -> None:
    agents = [FakePlatform(target=f"fake:{i}") for i in range(12)]
    gate = threading.Barrier(3, timeout=10)

    def op(p: FakePlatform) -> str:
        gate.wait()  # three at a time must be running together to pass the barrier
        time.sleep(0.01)
        return p.target

    result = run_fleet(agents, op, max_workers=3)
    assert result.ok
    assert result.peak_concurrency == 3
    assert result.max_workers == 3


def test_values_reporting_failure_count_as_failed(sim_host: SimFactory) -> None:
    _, good = sim_host(version="7.59.0")
    _, bad = sim_host(version="7.50.3", selftest="disabled")
    _, hung = sim_host(version="7.70.1", selftest="hang", hang_seconds=60)
    result: FleetResult[object] = run_fleet(
        [good, bad, hung], lambda p: p.self_test(timeout=1), max_workers=3
    )
    assert [i.ok for i in result.items] == [True, False, False]
    assert result.items[1].value is not None
    assert result.items[1].error is None
    assert isinstance(result.items[2].error, ExecTimeoutError)
    assert "self-tests are disabled" in result.table()


def test_empty_and_bad_bounds() -> None:
    empty = run_fleet([], lambda p: p)
    assert empty.ok
    assert empty.items == ()
    assert empty.peak_concurrency == 0
    for bad in (0, -1, True, 1.5):
        with pytest.raises(InvalidArgumentError):
            run_fleet([FakePlatform()], lambda p: p, max_workers=bad)  # type: ignore[arg-type]
