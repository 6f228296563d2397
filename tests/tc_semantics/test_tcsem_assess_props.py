"""Properties of the assessment over generated program lists (no kernel).

The central promise: when the assessment says a classifier priority fixes things, judging the
same programs at that priority leaves nothing that needs action.
"""

from __future__ import annotations

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from wpprotect.tc._assess import assess
from wpprotect.tc._model import TCProgram

VENDOR_NAMES = {
    "cilium": ("cil_from_container-lxc", "cil_from_contai"),
    "aws-network-policy": ("handle_ingress", "handle_ingress"),
    "calico": ("cali_tc_preambl:[61]", "cali_tc_preambl"),
    "datadog-cws": ("classifier_ingress_s_1_2", "classifier_ingr"),
    "unknown": ("mystery", "mystery"),
}


@st.composite
def clsact_programs(draw: st.DrawFn) -> TCProgram:
    vendor = draw(st.sampled_from(sorted(VENDOR_NAMES)))
    name, prog_name = VENDOR_NAMES[vendor]
    probed = draw(st.sampled_from([None, "ok", "unspec", "shot", "pipe", "redirect"]))
    return TCProgram(
        netns=draw(st.sampled_from(["host", "pod-a", "pod-b"])),
        ifname=draw(st.sampled_from(["lxc1", "lxc2", "eth0"])),
        ifindex=3,
        direction=draw(st.sampled_from(["ingress", "egress"])),
        attach="clsact",
        priority=draw(st.one_of(st.integers(1, 40), st.just(49152))),
        handle=1,
        name=name,
        prog_id=draw(st.integers(1, 10_000)),
        prog_name=prog_name,
        direct_action=True,
        verdict=probed,
        verdict_source=None if probed is None else "probed",
    )


def _is_dd(p: TCProgram) -> bool:
    return p.name.startswith("classifier_")


def _stops(p: TCProgram) -> bool | None:
    """True: ends the walk; None: unknown (assumed); False: continues."""
    if p.verdict is None:
        return None if not p.name.startswith("cali_") else False
    return p.verdict in ("ok", "shot", "redirect")


@settings(max_examples=80, deadline=None)
@given(st.lists(clsact_programs(), max_size=12), st.integers(1, 30))
def test_the_recommended_priority_resolves_every_priority_finding(
    programs: list[TCProgram], prio: int
) -> None:
    a = assess(programs, prio)
    priority_codes = {"lower-classifier-priority", "priority-collision"}
    priority_findings = [f for f in a.findings if f.code in priority_codes]
    rec = a.recommended_classifier_priority
    if not priority_findings:
        assert rec is None
        return
    if rec is None:
        # No priority can be taken everywhere: each such finding says so and what to do.
        assert all("disable network detection" in f.fix for f in priority_findings)
        return
    assert 1 <= rec < max(f.classifier_priority for f in priority_findings)
    # The agent restarted with it: Datadog's filters now sit there.
    moved = [attrs.evolve(p, priority=rec) if _is_dd(p) else p for p in programs]
    after = assess(moved, rec)
    assert not any(f.code in priority_codes for f in after.findings)
    # Only what no priority can fix is left.
    assert {f.code for f in after.findings if f.needs_action} <= {
        "network-blind",
        "datadog-classifier-missing",
    }


@settings(max_examples=80, deadline=None)
@given(st.lists(clsact_programs(), max_size=12), st.integers(1, 30))
def test_findings_follow_the_kernel_walk(programs: list[TCProgram], prio: int) -> None:
    a = assess(programs, prio)
    hooks: dict[tuple[str, str, str], list[TCProgram]] = {}
    for p in programs:
        hooks.setdefault((p.netns, p.ifname, p.direction), []).append(p)
    expected: set[tuple[str, str, str, int | None, int]] = set()
    for key, progs in hooks.items():
        order = sorted(progs, key=lambda p: p.priority or 0)  # stable: dump order within one
        dd = next((p for p in order if _is_dd(p)), None)
        judged = prio if dd is None else dd.priority or prio
        for p in order:
            if p is dd or (p.priority or 0) > judged:
                break
            if _is_dd(p):
                continue
            stops = _stops(p)
            if stops is False:
                continue
            expected.add((*key, p.prog_id, judged))
            if stops:
                break  # nothing after it runs
    found = set()
    for f in a.findings:
        if f.code in ("classifier-priority-mismatch", "datadog-classifier-missing"):
            continue
        assert f.vendor != "datadog-cws"
        assert f.vendor_priority is not None
        if f.code == "priority-collision":
            assert f.vendor_priority == f.classifier_priority
        elif f.code == "network-blind":
            assert f.vendor_priority == 1
        elif f.code == "lower-classifier-priority":
            assert 2 <= f.vendor_priority < f.classifier_priority
        assert f.netns
        assert f.ifname
        assert f.direction
        found.add((f.netns, f.ifname, f.direction, f.prog_id, f.classifier_priority))
    assert found == expected
