"""Flare secret scan on a large member: whole-file gated scan vs a per-line regex baseline.

The input is this machine's ``/proc/kallsyms`` (the biggest file a flare holds) plus a few
planted secrets; the baseline runs every rule on every line, as a first version did.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from wpprotect.agent._secrets import _RULES, scan_text

PLANTED = (
    b"\nkey AKIAIOSFODNN7EXAMPLE\npassword: hunter2hunter2\n0123456789abcdef0123456789abcdef\n"
)


def _baseline(data: bytes) -> int:
    rules = [re.compile(p.pattern) for _, p, _ in _RULES]
    hexrun = re.compile(rb"(?<![A-Fa-f0-9])[a-fA-F0-9]{32}(?![A-Fa-f0-9])")
    found = 0
    for line in data.splitlines():
        for rule in [*rules, hexrun]:
            found += sum(1 for _ in rule.finditer(line))
    return found


def main() -> None:
    data = Path("/proc/kallsyms").read_bytes() + PLANTED
    started = time.perf_counter()
    findings = scan_text("kallsyms", data)
    fast = time.perf_counter() - started
    started = time.perf_counter()
    _baseline(data)
    slow = time.perf_counter() - started
    assert {f.kind for f in findings} >= {"aws-access-key", "password", "api-key"}
    lines = data.count(b"\n")
    print(f"input: {len(data) / 1e6:.1f} MB, {lines} lines")
    print(f"per-line baseline: {slow:.2f} s")
    print(f"scan_text:         {fast:.2f} s ({len(data) / 1e6 / fast:.0f} MB/s)")
    print(f"speed-up:          {slow / fast:.1f}x")


if __name__ == "__main__":
    main()
