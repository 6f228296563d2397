"""Results are data: JSON-ready ``to_dict()`` and an escaped ``_repr_html_`` for notebooks."""

from __future__ import annotations

import json

from wpprotect import ExecResult
from wpprotect.agent import StatusSelfTests
from wpprotect.config import CLASSIFIER_PRIORITY, CWS_ENABLED


def test_exec_result_round_trips_to_json_and_html() -> None:
    res = ExecResult(["security-agent", "status"], 255, "out <b>\n", "Error: x", 0.5, "host:n1")
    assert json.loads(json.dumps(res.to_dict())) == {
        "argv": ["security-agent", "status"],
        "exit_code": 255,
        "stdout": "out <b>\n",
        "stderr": "Error: x",
        "duration": 0.5,
        "target": "host:n1",
    }
    html = res._repr_html_()
    assert "exit 255" in html
    assert "&lt;b&gt;" in html  # output is escaped, never rendered
    assert (
        repr(res) == "<ExecResult 'security-agent status' exit=255 on host:n1 (8 B out, 8 B err)>"
    )


def test_status_self_tests_to_dict_and_html() -> None:
    block = StatusSelfTests("Mon, 02 Jan 2026 10:00:00 UTC", ["open", "chmod"], ["chown"])
    assert block.to_dict() == {
        "last_execution": "Mon, 02 Jan 2026 10:00:00 UTC",
        "succeeded": ["open", "chmod"],
        "failed": ["chown"],
    }
    assert "succeeded open, chmod; failed chown" in block._repr_html_()


def test_setting_html_lists_where_it_lives() -> None:
    html = CLASSIFIER_PRIORITY._repr_html_()
    assert "DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY" in html
    assert "<th>helm_path</th>" in CWS_ENABLED._repr_html_()


def test_jsonable_converts_results_and_refuses_unknown_types_when_strict() -> None:
    from pathlib import Path

    import pytest

    from wpprotect._jsonable import jsonable

    res = ExecResult(["a"], 0)
    assert jsonable({"r": res, "p": Path("/x"), "s": {"b", "a"}}) == {
        "r": res.to_dict(),
        "p": "/x",
        "s": ["a", "b"],
    }
    assert jsonable(b"raw", fallback=repr) == "b'raw'"
    with pytest.raises(TypeError, match="bytes"):
        jsonable(b"raw", fallback=None)
