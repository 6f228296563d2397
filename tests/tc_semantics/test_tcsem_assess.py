"""The priority assessment on hand-built program lists (no kernel): every rule of
docs/reference/contract.md#contract-findings's
finding table, each "no finding" case, the recommendation, and the report's JSON shape."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from wpprotect.errors import InvalidArgumentError
from wpprotect.tc import TCReport, _assess
from wpprotect.tc._assess import annotate_programs, assess, cilium_race, parse_version
from wpprotect.tc._model import Assessment, Finding, NamespaceInfo, TCProgram

DESIGN_PROGRAM_KEYS = [
    "netns",
    "ifname",
    "ifindex",
    "direction",
    "attach",
    "priority",
    "handle",
    "protocol",
    "name",
    "prog_id",
    "prog_name",
    "prog_tag",
    "direct_action",
    "vendor",
]
DESIGN_FINDING_KEYS = [
    "code",
    "severity",
    "netns",
    "ifname",
    "direction",
    "vendor",
    "vendor_priority",
    "classifier_priority",
    "recommended_classifier_priority",
    "message",
]


def clsact(
    name: str,
    prio: int,
    *,
    prog_name: str | None = None,
    ifname: str = "lxc1",
    direction: str = "ingress",
    netns: str = "host",
    prog_id: int = 100,
    **kw: Any,
) -> TCProgram:
    return TCProgram(
        netns=netns,
        ifname=ifname,
        ifindex=3,
        direction=direction,  # type: ignore[arg-type]
        attach="clsact",
        priority=prio,
        handle=1,
        name=name,
        prog_id=prog_id,
        prog_name=prog_name,
        prog_tag="59f4a931744dcdc6",
        direct_action=True,
        **kw,
    )


def tcx(prog_name: str, position: int, *, ifname: str = "eth0", **kw: Any) -> TCProgram:
    return TCProgram(
        netns="host",
        ifname=ifname,
        ifindex=2,
        direction="ingress",
        attach=kw.pop("attach", "tcx"),
        name=prog_name,
        prog_id=kw.pop("prog_id", 200 + position),
        prog_name=prog_name,
        position=position,
        link_id=7,
        **kw,
    )


CILIUM = clsact("cil_from_container-lxc1", 1, prog_name="cil_from_contai")
DATADOG = clsact("classifier_ingress_security_4026531992_2115", 10, prog_name="classifier_ingr")


def codes(a: Assessment) -> list[tuple[str, str | None, str | None]]:
    return [(f.code, f.ifname, f.direction) for f in a.findings]


# --- each finding code ------------------------------------------------------------------------


def test_cilium_at_priority_1_is_network_blind_and_not_fixable_by_priority() -> None:
    a = assess([CILIUM, DATADOG], 10)
    assert codes(a) == [("network-blind", "lxc1", "ingress")]
    f = a.findings[0]
    assert (f.severity, f.vendor, f.vendor_priority, f.classifier_priority) == (
        "error",
        "cilium",
        1,
        10,
    )
    assert f.recommended_classifier_priority is None
    assert "--bpf-filter-priority" in f.fix
    assert 'scope="network"' in f.fix
    assert "wpprotect disable --scope network" in f.fix
    assert a.recommended_classifier_priority is None
    assert not a.fixable_by_priority
    assert not a.ok


@pytest.mark.parametrize("vendor_prio", [2, 5, 9])
def test_stopper_between_2_and_p_minus_1_asks_for_a_lower_priority(vendor_prio: int) -> None:
    prog = clsact("cil_from_container-lxc1", vendor_prio, prog_name="cil_from_contai")
    a = assess([prog, DATADOG], 10)
    assert codes(a) == [("lower-classifier-priority", "lxc1", "ingress")]
    f = a.findings[0]
    assert f.severity == "error"
    assert f.recommended_classifier_priority == vendor_prio - 1
    assert a.recommended_classifier_priority == vendor_prio - 1
    assert a.fixable_by_priority
    assert not a.ok
    assert f"classifier_priority to {vendor_prio - 1}" in f.fix
    assert f"DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY={vendor_prio - 1}" in f.fix


def test_same_priority_as_datadog_is_a_collision() -> None:
    prog = clsact("handle_ingress", 10, prog_name="handle_ingress")
    a = assess([prog], 10)
    assert codes(a) == [("priority-collision", "lxc1", "ingress")]
    assert a.findings[0].severity == "warning"
    assert a.findings[0].vendor == "aws-network-policy"
    assert a.recommended_classifier_priority == 9
    assert a.fixable_by_priority


def test_lowest_blocking_vendor_on_the_node_decides_the_recommendation() -> None:
    progs = [
        clsact("cil_from_container-lxc1", 7, prog_name="cil_from_contai", ifname="lxc1"),
        clsact("cil_from_container-lxc2", 4, prog_name="cil_from_contai", ifname="lxc2"),
        clsact("cil_from_container-lxc3", 6, prog_name="cil_from_contai", netns="pod-b"),
    ]
    a = assess(progs, 10)
    assert a.recommended_classifier_priority == 3
    assert {f.recommended_classifier_priority for f in a.findings} == {3}
    assert a.recommendations == {"host": 3, "pod-b": 5}


def test_tcx_program_returning_pass_bypasses_clsact_whatever_the_priority() -> None:
    progs = [
        tcx("tcx_ingress_flo", 0),  # netobserv: documented UNSPEC = NEXT
        tcx("cil_from_netdev", 1),  # Cilium: documented OK = PASS under tcx
        clsact("classifier_ingress_x", 1, prog_name="classifier_ingr", ifname="eth0"),
    ]
    a = assess(progs, 1)
    assert codes(a) == [("tcx-bypass", "eth0", "ingress")]
    f = a.findings[0]
    assert f.vendor == "cilium"
    assert f.vendor_priority is None
    assert f.prog_id == 201
    assert f.recommended_classifier_priority is None
    assert "enable-tcx=false" in f.fix
    assert 'scope="network"' in f.fix
    assert not a.fixable_by_priority


def test_tcx_program_returning_next_is_fine() -> None:
    a = assess([tcx("tcx_ingress_flo", 0), tcx("tcx_egress_flow", 1)], 10)
    assert a.findings == ()
    assert a.ok


def test_only_the_first_stopping_tcx_program_is_reported() -> None:
    a = assess([tcx("cil_from_netdev", 0), tcx("mystery", 1)], 10)
    assert [f.prog_id for f in a.findings] == [200]


def test_netkit_pass_hands_the_packet_on_but_redirect_bypasses() -> None:
    passing = tcx("cil_from_netdev", 0, attach="netkit")
    assert assess([passing], 10).findings == ()
    redirect = tcx("x", 0, attach="netkit", verdict="redirect", verdict_source="probed")
    assert codes(assess([redirect], 10)) == [("tcx-bypass", "eth0", "ingress")]


# --- no finding -------------------------------------------------------------------------------


def test_unspec_vendor_causes_no_finding_even_at_priority_1() -> None:
    progs = [
        clsact("cali_tc_preambl:[61]", 1, prog_name="cali_tc_preambl"),
        clsact("endpoint_ingress_filter", 2, prog_name="endpoint_ingres"),
    ]
    a = assess(progs, 10)
    assert a.findings == ()
    assert a.ok
    assert a.recommended_classifier_priority is None
    assert not a.fixable_by_priority


def test_stopper_above_datadogs_priority_causes_no_finding() -> None:
    prog = clsact("cil_from_container-lxc1", 11, prog_name="cil_from_contai")
    assert assess([prog, DATADOG], 10).findings == ()


def test_calico_at_its_automatic_priority_causes_no_finding() -> None:
    cal = clsact("calico_from_hos:[61]", 49152, prog_name="calico_from_hos")
    # Even probed as OK, 49152 sits far above any Datadog priority.
    assert assess([cal], 10).findings == ()
    probed_ok = attrs.evolve(cal, vendor="calico", verdict="ok", verdict_source="probed")
    assert assess([probed_ok], 10).findings == ()


def test_filters_outside_chain_0_do_not_compete() -> None:
    prog = clsact("cil_from_container-lxc1", 1, prog_name="cil_from_contai", chain=5)
    assert assess([prog], 10).findings == ()


def test_datadogs_own_filters_never_raise_priority_findings() -> None:
    dd = clsact("classifier_egress_security_1_2", 1, prog_name="classifier_egre")
    a = assess([dd], 1)
    assert a.findings == ()


# --- verdict sources --------------------------------------------------------------------------


def test_unknown_verdict_is_assumed_to_stop_and_says_so() -> None:
    unk = clsact("mystery_fw", 5, prog_name="mystery_fw")
    a = assess([unk], 10)
    assert codes(a) == [("lower-classifier-priority", "lxc1", "ingress")]
    f = a.findings[0]
    assert f.severity == "warning"  # not proven: the verdict was assumed
    assert "assumed" in f.message
    assert "--probe" in f.message
    assert a.recommended_classifier_priority == 4


def test_probed_verdicts_override_the_vendor_table() -> None:
    unk_unspec = clsact("mystery_fw", 5, verdict="unspec", verdict_source="probed")
    assert assess([unk_unspec], 10).findings == ()
    unk_ok = clsact("mystery_fw", 5, verdict="ok", verdict_source="probed")
    a = assess([unk_ok], 10)
    assert a.findings[0].severity == "error"
    assert "returns OK (probed)" in a.findings[0].message


@pytest.mark.parametrize(
    ("verdict", "stops"),
    [
        ("ok", True),
        ("shot", True),
        ("redirect", True),
        ("stolen", True),
        ("trap", True),
        ("unspec", False),
        ("pipe", False),  # cls_bpf_exec_opcode turns PIPE into UNSPEC
        ("reclassify", False),
    ],
)
def test_direct_action_verdicts(verdict: str, stops: bool) -> None:
    prog = clsact("x", 3, verdict=verdict, verdict_source="probed")
    assert bool(assess([prog], 10).findings) is stops


def test_annotate_fills_vendor_and_documented_verdicts_without_probing() -> None:
    out = annotate_programs([CILIUM, DATADOG, clsact("mystery", 3), tcx("cil_from_netdev", 0)])
    assert [(p.vendor, p.verdict, p.verdict_source) for p in out] == [
        ("cilium", "ok", "documented"),
        ("datadog-cws", "unspec", "documented"),
        ("unknown", None, "assumed"),
        ("cilium", "pass", "documented"),
    ]


# --- informational codes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "cilium", "race"),
    [
        ("7.36.0", "1.9.0", True),
        ("7.39.1", "1.8.12", True),
        ("7.38.2-rc.1", "v1.9", True),
        ("7.39.2", "1.9.0", False),  # the fix release
        ("7.35.9", "1.9.0", False),
        ("7.38.0", "1.10.0", False),
    ],
)
def test_known_cilium_race(agent: str, cilium: str, race: bool) -> None:
    assert cilium_race(agent, cilium) is race
    a = assess([], 10, agent_version=agent, cilium_version=cilium)
    assert (("cilium-race", None, None) in codes(a)) is race
    if race:
        assert "7.39.2" in a.findings[0].fix
        assert not a.ok


def test_race_needs_both_versions_and_rejects_malformed_ones() -> None:
    assert assess([], 10, agent_version="7.38.0").findings == ()
    with pytest.raises(InvalidArgumentError, match="agent_version"):
        assess([], 10, agent_version="latest")
    assert parse_version("v1.9") == (1, 9, 0)


def test_tcx_unsupported_is_informational() -> None:
    a = assess([], 10, tcx_supported=False)
    assert codes(a) == [("tcx-unsupported", None, None)]
    assert a.findings[0].severity == "info"
    assert a.ok


def test_datadog_filter_at_another_priority_is_reported_once_per_netns() -> None:
    dd2 = clsact("classifier_egress_s_1_2", 3, prog_name="classifier_egre", direction="egress")
    dd1 = clsact("classifier_ingress_s_1_2", 3, prog_name="classifier_ingr")
    a = assess([dd1, dd2], 10)
    assert [f.code for f in a.findings] == ["classifier-priority-mismatch"]
    assert a.ok


def test_non_bpf_filter_ahead_of_datadog_is_judged_by_its_actions() -> None:
    u32 = attrs.evolve(clsact("", 2), kind="u32", prog_id=None, direct_action=None)
    # Nothing known about its actions: assumed to end the walk, a warning.
    a = assess([u32], 10)
    assert [(f.code, f.severity, f.basis) for f in a.findings] == [
        ("lower-classifier-priority", "warning", "assumed")
    ]
    # A match-all u32 with a flowid and no action ends the walk: an error (tc-ebpf §8).
    ends = attrs.evolve(u32, verdict="ok", verdict_source="decoded", action_verdict="ok")
    assert [(f.code, f.severity) for f in assess([ends], 10).findings] == [
        ("lower-classifier-priority", "error")
    ]
    # `continue` goes on: nothing to report.
    goes_on = attrs.evolve(
        u32,
        verdict="unspec",
        verdict_source="decoded",
        actions=("mirred egress mirror dev 2 unspec",),
        action_verdict="unspec",
    )
    assert assess([goes_on], 10).findings == ()


def test_errors_come_before_warnings_and_infos() -> None:
    a = assess(
        [clsact("mystery", 10, ifname="lxc2"), CILIUM],
        10,
        tcx_supported=False,
    )
    assert [f.severity for f in a.findings] == ["error", "warning", "info"]


# --- classifier priority input ----------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, 65536, -1, True, "10"])
def test_classifier_priority_is_validated(bad: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="classifier_priority"):
        assess([], bad)


def test_report_priority_resolution_order() -> None:
    report = TCReport(programs=[CILIUM], classifier_priority=4, classifier_priority_source="x.yaml")
    assert report.assess().classifier_priority_source == "x.yaml"
    assert report.assess(2).classifier_priority == 2
    assert report.assess(2).classifier_priority_source == "caller"

    assert report.assess(2, source="/etc/x.yaml").classifier_priority_source == "/etc/x.yaml"


def test_assess_reads_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without a priority, the default: the agent's files are the caller's to read.
    def no_io(*_a: object, **_k: object) -> object:
        raise AssertionError("assess() opened a file")

    monkeypatch.setattr("builtins.open", no_io)
    monkeypatch.setattr("os.open", no_io)
    a = TCReport(programs=[CILIUM]).assess()
    assert (a.classifier_priority, a.classifier_priority_source) == (10, "default")
    TCReport(programs=[CILIUM]).to_dict()
    repr(TCReport(programs=[CILIUM]))
    TCReport(programs=[CILIUM])._repr_html_()
    assert _assess.DEFAULT_CLASSIFIER_PRIORITY == 10


# --- data shapes ------------------------------------------------------------------------------


def test_report_to_dict_has_the_design_keys_first_and_is_json() -> None:
    report = TCReport(
        programs=[CILIUM, DATADOG],
        namespaces=[NamespaceInfo(label="host", id="4:4026531840", path="/proc/1/ns/net")],
        warnings=["pid 9: network namespace vanished during the scan; skipped"],
        tcx_supported=True,
        classifier_priority=10,
    )
    d = report.to_dict()
    assert list(d)[:3] == ["programs", "findings", "classifier_priority"]
    assert d["classifier_priority"] == 10
    assert d["recommended_classifier_priority"] is None
    assert list(d["programs"][0])[: len(DESIGN_PROGRAM_KEYS)] == DESIGN_PROGRAM_KEYS
    assert list(d["findings"][0])[: len(DESIGN_FINDING_KEYS)] == DESIGN_FINDING_KEYS
    assert d["findings"][0]["code"] == "network-blind"
    assert d["programs"][0]["handle"] == 1
    assert d["programs"][0]["direct_action"] is True
    assert json.loads(json.dumps(d)) == d


def test_tcx_rows_have_null_priority_and_handle() -> None:
    d = tcx("cil_from_netdev", 0).to_dict()
    assert d["attach"] == "tcx"
    assert d["priority"] is None
    assert d["handle"] is None


def test_people_renderings() -> None:
    report = TCReport(programs=[CILIUM, DATADOG, tcx("cil_from_netdev", 0)], classifier_priority=10)
    table = report.table()
    assert "cil_from_container-lxc1" in table
    assert "#0" in table
    a = report.assess()
    text = a.table()
    assert "network-blind" in text
    assert "tcx-bypass" in text
    assert "fix for [1]: " in text
    assert "[2] cilium clsact program 'cil_from_container-lxc1'" in text
    assert text.splitlines()[0].split() == [
        "#",
        *["severity", "code", "netns", "ifname", "dir", "vendor", "prio"],
    ]
    assert "no classifier priority fixes this" in a.summary()
    assert "<table>" in a._repr_html_()
    assert "<table>" in report._repr_html_()
    assert "&lt;" not in CILIUM._repr_html_()
    assert repr(a).startswith("<Assessment ok=False")
    assert "vendor=cilium" in repr(annotate_programs([CILIUM])[0])
    assert len(repr(report)) < 120
    f = a.findings[0]
    assert isinstance(f, Finding)
    assert "Fix:" in f._repr_html_()


def test_many_findings_are_grouped_for_people() -> None:
    # 30 pod interfaces behind Cilium at priority 1, one at priority 5: people get one row per
    # kind of finding with counts; the data (to_dict, --json) keeps every finding.
    progs = [
        TCProgram(
            netns=f"ns{i % 3}",
            ifname=f"lxc{i}",
            ifindex=i,
            direction="ingress",
            attach="clsact",
            priority=1,
            handle=1,
            name=f"cil_from_container-lxc{i}",
            prog_id=7,
        )
        for i in range(30)
    ] + [
        TCProgram(
            netns="ns0",
            ifname="lxc99",
            ifindex=99,
            direction="ingress",
            attach="clsact",
            priority=5,
            handle=1,
            name="cil_from_container-lxc99",
            prog_id=8,
        )
    ]
    a = TCReport(programs=progs, classifier_priority=10).assess()
    assert len(a.findings) == 31
    text = a.table()
    head, _rule, *rows = text.split("\n\n")[0].splitlines()
    assert head.split() == ["#", "severity", "code", "vendor", "prio", "hooks", "namespaces",
                            "first", "at"]  # fmt: skip
    cells = [r.split() for r in rows]
    assert [(c[2], c[4], c[5], c[6]) for c in cells] == [
        ("network-blind", "1", "30", "3"),
        ("lower-classifier-priority", "5", "1", "1"),
    ]
    assert "(and 29 more like it)" in text
    assert "fix for [1]: " in text
    assert text.endswith(a.summary())
    assert len(text.splitlines()) < 15
    # At most max_rows findings: one row each, as before.
    assert len(a.table(max_rows=31).split("\n\n")[0].splitlines()) == 2 + 31


def test_html_escapes_names() -> None:
    evil = clsact("<script>", 1)
    assert "<script>" not in evil._repr_html_()
    assert "&lt;script&gt;" in TCReport(programs=[evil])._repr_html_()


def test_empty_report_says_nothing_to_do() -> None:
    a = TCReport(classifier_priority=10).assess()
    assert a.ok
    assert a.table().endswith("nothing to do.")
    assert "no traffic-control programs" in TCReport().table()


def test_tables_neutralise_control_characters_in_names() -> None:
    hostile = clsact("evil\x1b[2Jname\n", 1)
    text = TCReport(programs=[hostile], classifier_priority=10).table()
    assert "\x1b" not in text
    assert "evil\\x1b[2Jname\\x0a" in text
