"""The example notebook runs from top to bottom (each part only where it can), and every result
class the notebook shows renders as HTML."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import docker_skip_reason
from tests.ux.wpux_support import ROOT

NOTEBOOK = ROOT / "docs" / "examples" / "tour.ipynb"
PREFIX = "wpprotect-tour"


def _remove_tour_images() -> None:
    """The notebook's kernel built its images under PREFIX: remove them (and only them)."""
    if docker_skip_reason() is not None:
        return
    from tests.images import docker_client

    client = docker_client()
    for image in client.images.list():
        for tag in image.tags:
            if tag.startswith(PREFIX + "-"):
                client.images.remove(tag)


def _outputs(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        data = out.get("data", {})
        parts.append(data.get("text/html", ""))
        parts.append(data.get("text/plain", ""))
    return "\n".join(parts)


def _by_source(nb: object, needle: str) -> str:
    cells = [c for c in nb.cells if c.cell_type == "code" and needle in c.source]  # type: ignore[attr-defined]
    assert len(cells) == 1, needle
    return _outputs(cells[0])


def test_tour_notebook_executes() -> None:
    nbformat = pytest.importorskip("nbformat", reason="the dev extra (nbformat) is not installed")
    nbclient = pytest.importorskip("nbclient", reason="the dev extra (nbclient) is not installed")
    pytest.importorskip("ipykernel", reason="the dev extra (ipykernel) is not installed")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    old = os.environ.get("WPPROTECT_TOUR_PREFIX")
    os.environ["WPPROTECT_TOUR_PREFIX"] = PREFIX  # inherited by the kernel
    try:
        client = nbclient.NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
        )
        client.execute()  # raises CellExecutionError on the first failing cell
    finally:
        _remove_tour_images()
        if old is None:
            os.environ.pop("WPPROTECT_TOUR_PREFIX", None)
        else:
            os.environ["WPPROTECT_TOUR_PREFIX"] = old
    plan = _by_source(nb, "plan_classifier_priority")
    assert "+    classifier_priority: 4" in plan
    assert "file back as it was: True" in plan
    tc = _by_source(nb, "scene_mimic_vendors")
    if os.geteuid() == 0:
        assert "network-blind" in tc
        assert "tcx-bypass" in tc
        assert "recommended classifier priority: 4" in tc
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
        assert PREFIX not in netns.stdout
    else:
        assert "skipped: building the lab needs root" in tc
    docker = _by_source(nb, "build_agent_image")
    if docker_skip_reason() is None:
        assert "ok: True" in docker
    else:
        assert "skipped: Docker" in docker
    assert "<table>" in _by_source(nb, "diagnose(")


def test_results_render_in_notebooks() -> None:
    """Every public result class has an HTML view (gaps elsewhere are listed in the report)."""
    import wpprotect as wp
    from wpprotect import doctor

    classes = [
        wp.Plan, wp.TCReport, wp.TCProgram, wp.Finding, wp.SelfTestResult, wp.Flare,
        wp.SecretFinding, wp.FleetResult, wp.EffectiveValue, wp.AgentVersion,
        doctor.DoctorReport, doctor.Check, doctor.RunningComponent,
    ]  # fmt: skip
    missing = [c.__name__ for c in classes if not callable(getattr(c, "_repr_html_", None))]
    assert missing == []
