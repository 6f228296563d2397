"""``to_json()`` of programs, findings and reports: exactly ``json.dumps(to_dict(),
ensure_ascii=False)``, whatever the field values (the CLI's ``--json`` output is built from it)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wpprotect.tc import Finding, TCProgram, TCReport
from wpprotect.tc._model import Assessment, NamespaceInfo

# Any text, including quotes, backslashes, control characters, U+2028 and lone surrogates.
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
INT = st.integers(min_value=-(2**70), max_value=2**70)
OPT_INT = st.none() | INT | st.booleans()
OPT_TEXT = st.none() | TEXT


def dumps(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False)


PROGRAMS = st.builds(
    TCProgram,
    netns=TEXT, ifname=TEXT, ifindex=INT, direction=TEXT, attach=TEXT, priority=OPT_INT,
    handle=OPT_INT, protocol=TEXT, name=TEXT, prog_id=OPT_INT, prog_name=OPT_TEXT,
    prog_tag=OPT_TEXT, direct_action=st.none() | st.booleans(), vendor=TEXT, netns_id=OPT_TEXT,
    chain=OPT_INT, kind=TEXT, hw_flags=st.lists(TEXT, max_size=3).map(tuple), link_id=OPT_INT,
    position=OPT_INT, verdict=OPT_TEXT, verdict_source=OPT_TEXT, run_cnt=OPT_INT,
    run_time_ns=OPT_INT, load_time_ns=OPT_INT,
)  # fmt: skip
FINDINGS = st.builds(
    Finding,
    code=TEXT, severity=st.sampled_from(["error", "warning", "info"]), netns=OPT_TEXT,
    ifname=OPT_TEXT, direction=OPT_TEXT, vendor=OPT_TEXT, vendor_priority=OPT_INT,
    classifier_priority=INT, recommended_classifier_priority=OPT_INT, message=TEXT, fix=TEXT,
    prog_id=OPT_INT,
)  # fmt: skip


@settings(max_examples=400)
@given(PROGRAMS)
def test_program_to_json_is_json_dumps(program: TCProgram) -> None:
    assert program.to_json() == dumps(program.to_dict())
    json.loads(program.to_json())  # and it is JSON


@settings(max_examples=400)
@given(FINDINGS)
def test_finding_to_json_is_json_dumps(finding: Finding) -> None:
    assert finding.to_json() == dumps(finding.to_dict())


def test_values_of_other_types_than_declared_fall_back_to_json() -> None:
    # attrs does not check types: a float, an int subclass, a list where a tuple is declared.
    class Prio(int):
        def __format__(self, spec: str) -> str:
            return "not-json"

    odd = TCProgram(
        "ns", "eth0", 1, "ingress", "clsact", priority=1.5,  # type: ignore[arg-type]
        handle=Prio(3), hw_flags=["in_hw"], prog_name=7,  # type: ignore[arg-type]
    )  # fmt: skip
    assert odd.to_json() == dumps(odd.to_dict())
    assert json.loads(odd.to_json())["priority"] == 1.5
    odd_finding = Finding("c", "info", None, None, None, None, 2.0, 10, None, "m")  # type: ignore[arg-type]
    assert odd_finding.to_json() == dumps(odd_finding.to_dict())


@settings(max_examples=100)
@given(
    programs=st.lists(PROGRAMS, max_size=4),
    findings=st.lists(FINDINGS, max_size=4),
    warnings=st.lists(TEXT, max_size=2),
    namespaces=st.lists(st.builds(NamespaceInfo, TEXT, OPT_TEXT, OPT_TEXT), max_size=2),
    tcx=st.none() | st.booleans(),
    probe=st.booleans(),
    recommended=st.none() | INT,
)
def test_report_json_with_is_json_dumps_of_to_dict(  # noqa: PLR0917 - one per field
    programs: list[TCProgram],
    findings: list[Finding],
    warnings: list[str],
    namespaces: list[NamespaceInfo],
    tcx: bool | None,
    probe: bool,
    recommended: int | None,
) -> None:
    report = TCReport(programs, namespaces, warnings, tcx_supported=tcx, probe=probe)
    assessment = Assessment(findings, 10, "caller", recommended, False)
    expected = {
        "programs": [p.to_dict() for p in programs],
        "findings": [f.to_dict() for f in findings],
        "classifier_priority": 10,
        "classifier_priority_source": "caller",
        "recommended_classifier_priority": recommended,
        "fixable_by_priority": False,
        "warnings": warnings,
        "namespaces": [n.to_dict() for n in namespaces],
        "tcx_supported": tcx,
        "probe": probe,
    }
    assert report.json_with(assessment) == dumps(expected)


def test_report_to_json_is_to_dict_with_the_same_assessment() -> None:
    dd = TCProgram("ns", "eth0", 2, "ingress", "clsact", priority=10, handle=1,
                   name="classifier_ingress_1", prog_id=5, vendor="datadog-cws",
                   verdict="unspec", verdict_source="documented")  # fmt: skip
    cil = TCProgram("ns", "eth0", 2, "ingress", "clsact", priority=1, handle=1,
                    name="cil_from_container", prog_id=6, vendor="cilium", verdict="ok",
                    verdict_source="documented")  # fmt: skip
    report = TCReport([cil, dd], ["ns"])
    for prio in (10, 20, 1):
        text = report.to_json(prio)
        assert text == dumps(report.to_dict(prio))
        assert json.loads(text)["findings"], prio  # the case has findings to write
    assert TCReport().to_json(10) == dumps(TCReport().to_dict(10))
