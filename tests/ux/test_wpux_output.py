"""The CLI's face: help, usage errors, exit statuses, colour rules, JSON errors, progress bars."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys

import pytest

from tests.ux.wpux_support import ROOT, run_cli
from wpprotect.cli import build_parser, main
from wpprotect.cli._output import (
    Progress,
    Styler,
    color_enabled,
    format_table,
    print_json,
    strip_ansi,
    to_jsonable,
)

OFFLINE = ["doctor", "--install-dir", "/nonexistent", "--config-dir", "/nonexistent",
           "--no-docker", "--no-kubernetes", "--no-tc"]  # fmt: skip


def _run_in_pty(args: list[str], env: dict[str, str]) -> str:
    """Run the CLI with stdout on a real terminal; return what it wrote there."""
    master, slave = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    full_env.update({"PYTHONPATH": str(ROOT), "TERM": "xterm", **env})
    proc = subprocess.Popen(
        [sys.executable, "-m", "wpprotect", *args],
        stdout=slave,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=full_env,
    )
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    proc.wait(timeout=30)
    return b"".join(chunks).decode()


def test_help_wraps_at_the_terminal_width() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="60")
    out = subprocess.run(
        [sys.executable, "-m", "wpprotect", "tc", "scan", "--help"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout  # fmt: skip
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 58  # argparse keeps 2 columns free
    assert max(len(line) for line in lines) >= 50  # and does wrap near the width, not at 80


def test_help_lists_every_command_and_exit_statuses() -> None:
    proc = run_cli(["--help"])
    assert proc.returncode == 0
    assert "doctor" in proc.stdout
    assert "exit status:" in proc.stdout
    for name in ("doctor", "tc", "demo"):
        assert name in build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]


def test_python_dash_m_and_version() -> None:
    proc = run_cli(["--version"])
    assert proc.returncode == 0
    assert proc.stdout.startswith("wpprotect ")


def test_no_command_prints_help_and_exits_2() -> None:
    proc = run_cli([])
    assert proc.returncode == 2
    assert "usage: wpprotect" in proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["doctor", "--bogus"],
        ["doctor", "--timeout", "soon"],
        ["no-such-command"],
        ["demo", "--prefix", "BAD/"],
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str]) -> None:
    proc = run_cli(args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("wpprotect")
    assert "error:" in lines[0]
    assert "Traceback" not in proc.stderr


def test_debug_and_no_color_are_accepted_after_the_subcommand() -> None:
    proc = run_cli([*OFFLINE, "--debug", "--no-color"])
    assert proc.returncode == 0, proc.stderr
    proc = run_cli(["--debug", *OFFLINE])
    assert proc.returncode == 0, proc.stderr


def test_terminal_output_is_coloured_unless_no_color() -> None:
    assert "\x1b[" in _run_in_pty(OFFLINE, {})
    plain = _run_in_pty(OFFLINE, {"NO_COLOR": "1"})
    assert "skipped" in plain
    assert "\x1b[" not in plain
    assert "\x1b[" not in _run_in_pty([*OFFLINE, "--no-color"], {})
    assert "\x1b[" not in _run_in_pty(OFFLINE, {"TERM": "dumb"})


def test_pipes_and_json_are_never_coloured() -> None:
    piped = run_cli(OFFLINE)
    assert "skipped" in piped.stdout
    assert "\x1b[" not in piped.stdout + piped.stderr
    forced = run_cli(OFFLINE, env={"FORCE_COLOR": "1"})
    assert "\x1b[" in forced.stdout  # the rule above is real: colour can be forced on...
    assert "\x1b[" not in run_cli(OFFLINE, env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).stdout
    assert "\x1b[" not in _run_in_pty([*OFFLINE, "--json"], {})  # ...but never into JSON


def test_color_enabled_rules() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert color_enabled(Tty(), environ={}) is True
    assert color_enabled(Tty(), environ={"NO_COLOR": "1"}) is False
    assert color_enabled(Tty(), environ={"NO_COLOR": ""}) is True  # no-color.org: non-empty only
    assert color_enabled(Tty(), environ={"TERM": "dumb"}) is False
    assert color_enabled(io.StringIO(), environ={}) is False
    assert color_enabled(io.StringIO(), environ={"FORCE_COLOR": "1"}) is True


def test_table_aligns_on_visible_width() -> None:
    style = Styler(True)
    table = format_table(
        ["status", "name"], [[style("ok", "ok"), "a"], ["problem", None]], styler=style
    )
    lines = [strip_ansi(line) for line in table.splitlines()]
    assert lines == ["status   name", "ok       a", "problem  -"]


def test_json_helpers() -> None:
    class Result:
        def to_dict(self) -> dict[str, object]:
            return {"path": ROOT, "items": (1, 2)}

    assert to_jsonable({"r": Result()}) == {"r": {"path": str(ROOT), "items": [1, 2]}}
    with pytest.raises(TypeError, match="bytes"):
        to_jsonable(b"raw")
    buf = io.StringIO()
    print_json({"b": 1, "a": 2}, stream=buf)
    assert buf.getvalue() == '{\n  "b": 1,\n  "a": 2\n}\n'


def test_progress_draws_on_a_terminal_only() -> None:
    ticks = iter([0.0, 1.0, 2.0, 3.0, 4.0])
    buf = io.StringIO()
    with Progress(
        4, "self-test", stream=buf, enabled=True, width=8, clock=lambda: next(ticks)
    ) as bar:
        bar.advance(label="node-a")
        bar(3, 4, "node-c")
    text = buf.getvalue()
    assert "self-test [##------] 1/4 node-a (2.0 s)" in text
    assert "self-test [######--] 3/4 node-c (3.0 s)" in text
    assert text.endswith("\r")  # erased, so what follows starts clean
    quiet = io.StringIO()
    with Progress(2, "x", stream=quiet) as bar:  # StringIO is not a terminal
        bar.advance()
    assert quiet.getvalue() == ""
    assert repr(bar) == "<Progress 'x' 1/2>"


def test_main_in_process_returns_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(OFFLINE) == 0
    out = capsys.readouterr().out
    assert "host.install" in out


def test_debug_shows_the_traceback_instead_of_one_line() -> None:
    plain = run_cli(["demo"], user="nobody")
    assert plain.returncode == 2
    assert "Traceback" not in plain.stderr
    debug = run_cli(["demo", "--debug"], user="nobody")
    assert "Traceback (most recent call last)" in debug.stderr
    assert "PermissionDeniedError" in debug.stderr
    assert debug.returncode != 0


def test_no_color_in_process_does_not_leak(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert main([*OFFLINE, "--no-color"]) == 0
    assert "NO_COLOR" not in os.environ
    assert "\x1b[" not in capsys.readouterr().out
