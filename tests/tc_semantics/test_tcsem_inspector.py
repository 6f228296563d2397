"""End to end on the real kernel: the lab's vendor scene, read by ``TCInspector`` and judged by
the assessment, gives exactly the findings the scene was built to show."""

from __future__ import annotations

import json

import pytest

from wpprotect.tc import TCInspector
from wpprotect.tc._lab import Lab

pytestmark = pytest.mark.root


@pytest.mark.parametrize("probe", [False, True])
def test_scan_and_assess_the_vendor_scene(probe: bool) -> None:
    with Lab("wptc3") as lab:
        scene = lab.scene_mimic_vendors()
        report = TCInspector(netns=scene.netns, probe=probe).scan()
        vendors = {(p.ifname, p.vendor) for p in report.programs}
        assert {
            ("w3cil0", "cilium"),
            ("w3cal0", "calico"),
            ("w3aws0", "aws-network-policy"),
            ("w3unk0", "unknown"),
            ("w3tcx0", "netobserv"),
            ("w3tcx0", "cilium"),
            ("w3cil0", "datadog-cws"),
        } <= vendors
        a = report.assess(10)
        acting = sorted((f.code, f.ifname, f.direction) for f in a.findings if f.needs_action)
        assert acting == sorted(scene.expected)
        assert a.recommended_classifier_priority == scene.recommended_classifier_priority
        unknown = next(f for f in a.findings if f.vendor == "unknown")
        assert ("probed" in unknown.message) is probe
        d = report.to_dict(10)
        assert json.loads(json.dumps(d))["classifier_priority"] == 10
        assert {f["code"] for f in d["findings"]} >= {"network-blind", "tcx-bypass"}
