"""Interrupts during ``Plan.apply()``: signals sent from a second process at random moments.

The applying process (``tests/attacks/interrupt_child.py``) writes six files per round; this test
sends it SIGINT or SIGTERM at a random point of each of 100 rounds and checks every file is wholly
old or wholly new, that the plan's state says which, and that ``undo()`` restores the original
bytes. A second test leaves SIGTERM at its default disposition (kill) and checks the plan still
rolls back before the process ends.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.attacks.conftest import ROOT
from tests.attacks.interrupt_child import originals

ROUNDS = 100


def _child(base: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.attacks.interrupt_child", str(base), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )


def test_signals_at_random_points_leave_whole_files_and_an_undoable_plan(tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)  # noqa: S311 - timing jitter, not secrets
    child = _child(tmp_path)
    assert child.stdin is not None
    assert child.stdout is not None
    reports = []
    durations = [0.02]
    try:
        for n in range(ROUNDS):
            assert child.stdout.readline().strip() == "go", child.stderr
            # somewhere in (or just around) an apply: the window follows the measured durations
            time.sleep(rng.uniform(0, 1.3 * statistics.median(durations)))
            child.send_signal(rng.choice([signal.SIGINT, signal.SIGTERM]))
            line = child.stdout.readline()
            if not line:
                child.kill()
                raise AssertionError(f"round {n}: the child died: {child.stderr.read()}")
            try:
                report = json.loads(line)
            except ValueError:
                child.kill()
                raise AssertionError(f"round {n}: {line!r} {child.stderr.read()}") from None
            reports.append(report)
            if report["interrupted"] is None:
                durations.append(report["seconds"])
            child.stdin.write("next\n")
            child.stdin.flush()
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    for n, r in enumerate(reports):
        where = f"round {n} (seed {seed}): {r}"
        assert set(r["files"].values()) <= {"old", "new"}, where
        assert r["consistent"], where
        assert r["restored"], where
        assert r["leftovers"] == [], where
        assert r["state"] in ("planned", "rolled-back", "applied"), where
    rolled_back = [r for r in reports if r["state"] == "rolled-back"]
    # the attack happened: some rounds were cut between the writes, after some and before all
    assert any(0 < r["written_before"] < 6 for r in rolled_back), seed


def test_default_sigterm_still_rolls_back_before_the_process_ends(tmp_path: Path) -> None:
    for sig, status in ((signal.SIGTERM, 143), (signal.SIGINT, -signal.SIGINT)):
        child = _child(tmp_path, "--default-sigterm")
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"  # six files written, seventh blocks
        written = [p for p, data in originals(tmp_path).items() if p.read_bytes() != data]
        assert len(written) == 6
        child.send_signal(sig)
        assert child.wait(timeout=60) == status, child.stderr.read() if child.stderr else ""
        for p, data in originals(tmp_path).items():
            assert p.read_bytes() == data, p
