"""The TC results' ``to_dict()`` and JSON are derived from their fields: every field is in the
output, in declaration order, and ``to_json()`` is ``json.dumps(to_dict(), ensure_ascii=False)``
whatever the values (the CLI's ``--json`` prints the same)."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wpprotect.tc
from wpprotect.tc import Assessment, Finding, TCProgram, TCReport
from wpprotect.tc._model import NamespaceInfo

# Any text, including quotes, backslashes, control characters, U+2028 and lone surrogates.
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
INT = st.integers(min_value=-(2**70), max_value=2**70)
OPT_INT = st.none() | INT | st.booleans()
OPT_TEXT = st.none() | TEXT


def dumps(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False)


def plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if attrs.has(type(value)):
        return value.to_dict()
    return value


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
    prog_id=OPT_INT, protocols=st.none() | st.lists(TEXT, max_size=2).map(tuple),
    basis=st.none() | st.sampled_from(["documented", "probed", "assumed", "measured"]),
)  # fmt: skip
NAMESPACES = st.builds(NamespaceInfo, label=TEXT, id=OPT_TEXT, path=OPT_TEXT)
ASSESSMENTS = st.builds(
    Assessment,
    findings=st.lists(FINDINGS, max_size=3),
    classifier_priority=INT,
    classifier_priority_source=TEXT,
    recommended_classifier_priority=OPT_INT,
    fixable_by_priority=st.booleans(),
    recommendations=st.dictionaries(TEXT, OPT_INT, max_size=2),
)


@pytest.mark.parametrize("cls", [TCProgram, Finding, NamespaceInfo, Assessment])
def test_rows_are_built_by_keyword_only(cls: type) -> None:
    assert all(f.kw_only for f in attrs.fields(cls))


@settings(max_examples=200)
@given(st.one_of(PROGRAMS, FINDINGS, NAMESPACES, ASSESSMENTS))
def test_to_dict_is_every_field_in_order_and_to_json_is_its_dumps(row: Any) -> None:
    out = row.to_dict()
    names = [f.name for f in attrs.fields(type(row))]
    assert list(out)[: len(names)] == names
    assert {n: out[n] for n in names} == {n: plain(getattr(row, n)) for n in names}
    if isinstance(row, Assessment):
        assert list(out)[len(names) :] == ["ok"]
    else:
        assert len(out) == len(names)
        assert row.to_json() == dumps(out)
        json.loads(row.to_json())  # and it is JSON


def test_the_contract_keys_come_first() -> None:
    # The keys of `wpprotect tc scan --json` rows in docs/reference/contract.md, in that order.
    program = [f.name for f in attrs.fields(TCProgram)]
    assert program[:14] == [
        "netns", "ifname", "ifindex", "direction", "attach", "priority", "handle", "protocol",
        "name", "prog_id", "prog_name", "prog_tag", "direct_action", "vendor",
    ]  # fmt: skip
    finding = [f.name for f in attrs.fields(Finding)]
    assert finding[:10] == [
        "code", "severity", "netns", "ifname", "direction", "vendor", "vendor_priority",
        "classifier_priority", "recommended_classifier_priority", "message",
    ]  # fmt: skip


@settings(max_examples=100)
@given(
    programs=st.lists(PROGRAMS, max_size=4),
    assessment=ASSESSMENTS,
    warnings=st.lists(TEXT, max_size=2),
    namespaces=st.lists(NAMESPACES, max_size=2),
    tcx=st.none() | st.booleans(),
    probe=st.booleans(),
)
def test_report_document_covers_every_field(  # noqa: PLR0917 - one per field
    programs: list[TCProgram],
    assessment: Assessment,
    warnings: list[str],
    namespaces: list[NamespaceInfo],
    tcx: bool | None,
    probe: bool,
) -> None:
    report = TCReport(
        programs=programs, namespaces=namespaces, warnings=warnings, tcx_supported=tcx, probe=probe
    )
    doc = report.to_dict(assessment=assessment)
    assert list(doc) == [
        "programs", "findings", "classifier_priority", "classifier_priority_source",
        "recommended_classifier_priority", "fixable_by_priority", "warnings", "namespaces",
        "tcx_supported", "probe", "devices",
    ]  # fmt: skip
    # Every field of the report and of the assessment is in the document (the report's own
    # classifier priority is the one the assessment judged against).
    judged = assessment.to_dict()
    for name in ("findings", "classifier_priority", "classifier_priority_source"):
        assert doc[name] == judged[name]
    for name in ("recommended_classifier_priority", "fixable_by_priority"):
        assert doc[name] == judged[name]
    for name in ("programs", "warnings", "namespaces", "tcx_supported", "probe", "devices"):
        assert doc[name] == plain(getattr(report, name))
    assert report.to_json(assessment=assessment) == dumps(doc)


def test_report_to_json_judges_with_the_given_priority() -> None:
    dd = TCProgram(netns="ns", ifname="eth0", ifindex=2, direction="ingress", attach="clsact",
                   priority=10, handle=1, name="classifier_ingress_1", prog_id=5,
                   vendor="datadog-cws", verdict="unspec", verdict_source="documented")  # fmt: skip
    cil = TCProgram(netns="ns", ifname="eth0", ifindex=2, direction="ingress", attach="clsact",
                    priority=1, handle=1, name="cil_from_container", prog_id=6, vendor="cilium",
                    verdict="ok", verdict_source="documented")  # fmt: skip
    report = TCReport(programs=[cil, dd], namespaces=["ns"])
    for prio in (10, 20, 1):
        text = report.to_json(prio)
        assert text == dumps(report.to_dict(prio))
        assert json.loads(text)["classifier_priority"] == prio
        assert json.loads(text)["findings"], prio  # the case has findings to write
    assert TCReport().to_json(10) == dumps(TCReport().to_dict(10))


@pytest.mark.parametrize("name", wpprotect.tc.__all__)
def test_public_names_say_their_public_module(name: str) -> None:
    assert getattr(wpprotect.tc, name).__module__ == "wpprotect.tc"
