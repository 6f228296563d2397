"""Shared pieces of the attack suite: run a callable under a hard limit, fingerprint a tree."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: A generous hard limit: the attacks used to run for minutes; now they must complete at all.
HARD_LIMIT = 20.0


def run_bounded(code: str, limit: float = HARD_LIMIT) -> str:
    """Run ``code`` in a fresh interpreter and return its stdout; fail the test if it does not
    finish within ``limit`` seconds (the process is killed) or exits non-zero."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=limit,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"did not complete within {limit} s") from None
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def tree_digest(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` (links by their target)."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out
