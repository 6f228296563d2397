"""Property: random edit sequences interleaved with random interrupts never tear a file, and
``undo()`` always restores the original bytes.

Each example is a sequence of plans over the same files (disable, disable network, classifier
priority), applied one after another and kept. During any apply a real SIGINT may be raised when
wpprotect enters its N-th function (a tracer counts them; function entry is where CPython runs
signal handlers), so interrupts land anywhere: between files, between a write and its record,
inside the rollback (a second one). After every apply each file must be
wholly what it was or wholly what the plan writes, in agreement with the plan's state; at the
end undoing the kept plans newest first must give back the original bytes.
"""

from __future__ import annotations

import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wpprotect.config import plan_classifier_priority, plan_disable
from wpprotect.plan import Plan

HOST_SP = "# sp\nruntime_security_config:\n  enabled: true\n  network:\n    enabled: true\n"
HOST_SA = "runtime_security_config:\n  enabled: true\ncompliance_config:\n  enabled: false\n"
HELM = "datadog:\n  securityAgent:\n    runtime:\n      enabled: true{tail}\n"

_OPS = st.sampled_from(["workload-protection", "network", "priority"])


def _build(base: Path, op: str, n: int) -> Plan:
    targets = [base / "host", *sorted(base.glob("values-*.yaml"))]
    changes: list[Any] = []
    for t in targets:
        if op == "priority":
            changes += plan_classifier_priority(t, n).changes
        else:
            changes += plan_disable(t, scope=op).changes
    return Plan(op, changes)


def _apply_with_interrupt(plan: Plan, at: list[int]) -> bool:
    """Apply ``plan``, raising a real SIGINT as wpprotect enters its ``at``-th functions (a
    second Ctrl-C can land in the rollback of the first)."""
    count = 0

    def tracer(frame: FrameType, event: str, _arg: object) -> Any:
        nonlocal count
        if "/wpprotect/" not in frame.f_code.co_filename:
            return None
        if event == "call":
            count += 1
            if count in at:
                signal.raise_signal(signal.SIGINT)
        return tracer

    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.settrace(tracer if at else None)
    try:
        plan.apply()
    except KeyboardInterrupt:
        return True
    finally:
        sys.settrace(None)
        signal.signal(signal.SIGINT, old)
    return False


@settings(max_examples=150, deadline=None)
@given(
    helm_files=st.integers(min_value=0, max_value=2),
    tails=st.lists(st.sampled_from(["", "  # on", "\n  site: x"]), min_size=2, max_size=2),
    steps=st.lists(
        st.tuples(_OPS, st.integers(1, 65535), st.lists(st.integers(1, 260), max_size=2)),
        min_size=1,
        max_size=4,
    ),
)
def test_random_edits_and_interrupts_never_tear_and_undo_restores(
    helm_files: int, tails: list[str], steps: list[tuple[str, int, list[int]]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "host").mkdir()
        (base / "host" / "system-probe.yaml").write_text(HOST_SP)
        (base / "host" / "security-agent.yaml").write_text(HOST_SA)
        for i in range(helm_files):
            (base / f"values-{i}.yaml").write_text(HELM.format(tail=tails[i]))
        files = [*sorted((base / "host").glob("*.yaml")), *sorted(base.glob("values-*.yaml"))]
        original = {p: p.read_bytes() for p in files}
        kept: list[Plan] = []
        for op, n, at in steps:
            plan = _build(base, op, n)
            before = {p: p.read_bytes() for p in files}
            after = dict(before)
            after.update({Path(c.target): c._editor.text.encode() for c in plan.pending()})
            _apply_with_interrupt(plan, at)
            applied = {Path(c.target) for c in plan.applied_changes}
            for p in files:
                now = p.read_bytes()
                assert now in (before[p], after[p]), p  # wholly old or wholly new
                assert now == (after[p] if p in applied else before[p]), (p, plan.state)
            assert plan.state in ("applied", "rolled-back", "partially-applied", "planned")
            if plan.state != "planned" and plan.applied_changes:
                kept.append(plan)
            assert not [q for q in base.rglob("*") if "-tmp-" in q.name]
        for plan in reversed(kept):
            plan.undo()
        assert {p: p.read_bytes() for p in files} == original
