"""``wpprotect tc scan``'s forked reader (wpprotect.tc._prefetch): the same report and errors
as ``TCInspector.scan()``, a fall-back when the child fails, and no child left behind."""

from __future__ import annotations

import marshal
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.tc_scan._scene import Scene
from wpprotect.errors import NetnsNotFoundError
from wpprotect.tc import TCInspector, TCReport, _bpf, _prefetch

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def spaces() -> Iterator[dict[str, Any]]:
    """Two namespaces: clsact filters of three vendors and one tcx program."""
    sc = Scene()
    try:
        a = sc.netns("wptc4pa")
        b = sc.netns("wptc4pb")
        sc.veth(a, "w4p0", "w4p1")
        a2 = sc.veth(a, "w4p2", "w4p3")
        sc.veth(b, "w4q0", "w4q1")
        ok = sc.prog(_bpf.TC_ACT_OK, "cil_from_contai")
        dd = sc.prog(_bpf.TC_ACT_UNSPEC, "classifier_ingr")
        cali = sc.prog(_bpf.TC_ACT_UNSPEC, "cali_tc_preambl")
        netdev = sc.prog(_bpf.TCX_PASS, "cil_from_netdev")
        sc.bpf_filter(a, "w4p0", "ingress", prio=1, handle=1, name="cil_from_container-w4p0",
                      fd=ok)  # fmt: skip
        sc.bpf_filter(a, "w4p0", "ingress", prio=10, handle=2, name="classifier_ingress_1_2",
                      fd=dd)  # fmt: skip
        sc.bpf_filter(b, "w4q0", "egress", prio=7, handle=3, name="cali_tc_preambl:[2]", fd=cali)
        sc.tcx(a, a2, "egress", netdev)
        yield {"a": a, "b": b}
    finally:
        sc.close()


def _stable(report: TCReport) -> dict[str, Any]:
    # run_cnt/run_time_ns change if BPF statistics are on and packets flow between two scans.
    doc = report.to_dict(10)
    for p in doc["programs"]:
        p.pop("run_cnt")
        p.pop("run_time_ns")
    return doc


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the children the prefetch forked during the test."""
    pids: list[int] = []
    real = _prefetch._Child.start.__func__  # type: ignore[attr-defined]

    def start(cls: type[_prefetch._Child], *args: Any) -> _prefetch._Child | None:
        child: _prefetch._Child | None = real(cls, *args)
        if child is not None:
            pids.append(child.pid)
        return child

    monkeypatch.setattr(_prefetch._Child, "start", classmethod(start))
    return pids


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("which", ["a", "b", "all"])
def test_same_report_as_scan(spaces: dict[str, Any], forks: list[int], which: str) -> None:
    netns = "all" if which == "all" else spaces[which]
    inspector = TCInspector(netns=netns, classifier_priority=10)
    prefetched = _prefetch.scan(inspector)
    assert _stable(prefetched) == _stable(inspector.scan())
    assert len(forks) == 1
    assert _gone(forks[0])
    if which == "a":
        assert {(p.attach, p.vendor) for p in prefetched.programs} == {
            ("clsact", "cilium"), ("clsact", "datadog-cws"), ("tcx", "cilium")
        }  # fmt: skip


def test_a_failing_child_means_an_in_process_read(
    spaces: dict[str, Any], forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(raws: object) -> list[object]:
        raise RuntimeError("the child cannot encode")

    monkeypatch.setattr(_prefetch, "_wire", broken)  # the forked child inherits it
    reads: list[int] = []
    real = TCInspector._read_all

    def counting(self: TCInspector, refs: list[Any]) -> Any:
        reads.append(os.getpid())
        return real(self, refs)

    monkeypatch.setattr(TCInspector, "_read_all", counting)
    inspector = TCInspector(netns=spaces["a"], classifier_priority=10)
    report = _prefetch.scan(inspector)
    assert reads == [os.getpid()]  # the parent read again, itself
    assert len(forks) == 1
    assert _gone(forks[0])
    assert _stable(report) == _stable(inspector.scan())


def test_an_unknown_namespace_is_the_same_error_and_forks_nothing(forks: list[int]) -> None:
    with pytest.raises(NetnsNotFoundError, match="wptc4-no-such-ns"):
        _prefetch.scan(TCInspector(netns="wptc4-no-such-ns"))
    assert forks == []


def test_a_threaded_process_is_read_in_process(spaces: dict[str, Any], forks: list[int]) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        report = _prefetch.scan(TCInspector(netns=spaces["b"], classifier_priority=10))
    finally:
        stop.set()
        thread.join()
    assert forks == []  # forking with another thread running is never done
    assert [p.vendor for p in report.programs] == ["calico"]


def test_leaving_early_kills_and_reaps_the_child(spaces: dict[str, Any]) -> None:
    inspector = TCInspector(netns="all")
    child = _prefetch._Child.start(inspector, inspector.namespaces())
    assert child is not None
    child.close()  # e.g. Ctrl-C while the parent imports
    assert child.status is not None
    assert _gone(child.pid)
    child.close()  # idempotent


def test_wire_format_round_trip(spaces: dict[str, Any]) -> None:
    inspector = TCInspector(netns="all")
    refs = inspector.namespaces()
    raws = [inspector._read_one(ref) for ref in refs]
    back = _prefetch._decode(marshal.dumps(_prefetch._wire(raws)), refs)

    def flat(items: list[Any]) -> list[Any]:
        out: list[Any] = []
        for r in items:
            if isinstance(r, str):
                out.append(r)
                continue
            out.append(
                (r.ref, r.names, r.warnings, r.tcx_supported, r.progs,
                 [tuple(getattr(f, k) for k in f.__slots__) for f in r.filters],
                 [tuple(getattr(h, k) for k in h.__slots__) for h in r.hooks])
            )  # fmt: skip
        return out

    assert flat(back) == flat(raws)
    assert any(not isinstance(r, str) and r.filters for r in raws)
    assert any(not isinstance(r, str) and any(r.progs.values()) for r in raws)
    with pytest.raises(ValueError, match="unexpected"):
        _prefetch._decode(marshal.dumps(_prefetch._wire(raws)), refs[:-1])
