"""Properties of the assessment over generated program lists (no kernel).

The central promise: when the assessment says a classifier priority fixes things, judging the
same programs at that priority leaves nothing that needs action.
"""

from __future__ import annotations

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


@settings(max_examples=80, deadline=None)
@given(st.lists(clsact_programs(), max_size=12), st.integers(1, 30))
def test_the_recommended_priority_resolves_every_priority_finding(
    programs: list[TCProgram], prio: int
) -> None:
    a = assess(programs, prio)
    priority_codes = {"lower-classifier-priority", "priority-collision"}
    has_priority_findings = any(f.code in priority_codes for f in a.findings)
    assert (a.recommended_classifier_priority is not None) is has_priority_findings
    if a.recommended_classifier_priority is None:
        return
    assert 1 <= a.recommended_classifier_priority < prio
    after = assess(programs, a.recommended_classifier_priority)
    assert not any(f.code in priority_codes for f in after.findings)
    # Only what no priority can fix is left.
    assert {f.code for f in after.findings if f.needs_action} <= {"network-blind"}
    if a.fixable_by_priority:
        assert after.ok


@settings(max_examples=80, deadline=None)
@given(st.lists(clsact_programs(), max_size=12), st.integers(1, 30))
def test_findings_match_the_table(programs: list[TCProgram], prio: int) -> None:
    a = assess(programs, prio)
    judged = [f for f in a.findings if f.code != "classifier-priority-mismatch"]
    for f in a.findings:
        if f.code == "classifier-priority-mismatch":
            assert f.vendor == "datadog-cws"
            assert f.vendor_priority != prio
            continue
        assert f.vendor != "datadog-cws"
        assert f.classifier_priority == prio
        assert f.vendor_priority is not None
        if f.code == "network-blind":
            assert f.vendor_priority == 1
        elif f.code == "lower-classifier-priority":
            assert 2 <= f.vendor_priority < prio
        elif f.code == "priority-collision":
            assert f.vendor_priority == prio
    # Every non-Datadog filter that may stop the chain at or before P has a finding, and only
    # those do (calico documents UNSPEC, so only a probe that says otherwise counts).
    stoppers = {
        (p.netns, p.ifname, p.direction, p.prog_id)
        for p in programs
        if p.priority is not None
        and p.priority <= prio
        and (
            p.verdict in ("ok", "shot", "redirect")
            or (p.verdict is None and not p.name.startswith(("cali_", "classifier_")))
        )
        and not p.name.startswith("classifier_")
    }
    found = {(f.netns, f.ifname, f.direction, f.prog_id) for f in judged}
    assert found == stoppers
