"""Attacks on the terminal: remote strings (flare member names, container and pod names, agent
output, check details) carrying escape sequences that clear the screen or rewrite what a person
reads. Each human printer escapes every control character; JSON output is left to its encoder.
"""

from __future__ import annotations

import io
from pathlib import Path

from tests.attacks.conftest import tree_digest
from wpprotect.cli._doctor import render
from wpprotect.cli._output import Styler, error_line, format_table, safe_text
from wpprotect.doctor import Check, DoctorReport

CLEAR = "\x1b[2J"
HOSTILE = f"datadog-agent{CLEAR}\x1b]0;owned\x07\x9b31m\u202eexe.txt"


def _has_control(text: str) -> bool:
    return any((ord(c) < 32 and c not in "\n") or 0x7F <= ord(c) <= 0x9F for c in text) or (
        "\u202e" in text
    )


def test_safe_text_escapes_every_control_character() -> None:
    shown = safe_text(HOSTILE)
    assert not _has_control(shown)
    assert "\\x1b[2J" in shown  # still readable: the person sees what was there
    assert safe_text("line1\nline2\t", multiline=True) == "line1\nline2\t"
    assert safe_text("line1\nline2") == "line1\\nline2"


def test_tables_escape_container_and_pod_names() -> None:
    table = format_table(["AGENT", "DETAIL"], [[f"docker:{HOSTILE}", f"output {CLEAR}"]])
    assert not _has_control(table)
    assert CLEAR not in table
    coloured = format_table(["RESULT"], [["\x1b[32mok\x1b[0m"]])
    assert "\x1b[32mok\x1b[0m" in coloured  # colours (SGR) alone are kept


def test_doctor_render_escapes_check_details() -> None:
    report = DoctorReport(
        checks=[
            Check(
                name=f"self-test:docker:{HOSTILE}",
                status="problem",
                detail=f"agent said {HOSTILE}",
                fix=CLEAR,
            )
        ],
    )
    text = render(report, Styler(stream=io.StringIO()), width=100)
    assert CLEAR not in text
    assert not _has_control(text)


def test_error_lines_escape_remote_text(tmp_path: Path) -> None:
    before = tree_digest(tmp_path)
    out = io.StringIO()
    error_line(f"cannot read {tmp_path}/{HOSTILE}", stream=out)
    assert CLEAR not in out.getvalue()
    assert not _has_control(out.getvalue().rstrip("\n"))
    assert tree_digest(tmp_path) == before
