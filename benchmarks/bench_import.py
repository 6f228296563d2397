"""Import time of ``wpprotect`` against a baseline of a bare interpreter start.

Baseline: ``python -c pass`` in the same run. Also shown: ``import json`` (a light stdlib module)
and importing the heavy backends wpprotect keeps out of ``import wpprotect``.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time

RUNS = 15


def _time(code: str) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    base = _time("pass")
    rows = [
        ("python -c pass (baseline)", base),
        ("import json", _time("import json")),
        ("import wpprotect", _time("import wpprotect")),
        ("import wpprotect; wpprotect.Plan", _time("import wpprotect; wpprotect.Plan")),
    ]
    heavy = "import docker, kubernetes, pyroute2, ruamel.yaml"
    with contextlib.suppress(subprocess.CalledProcessError):  # a backend may not be installed
        rows.append((heavy + " (kept out)", _time(heavy)))
    for label, t in rows:
        extra = (t - base) * 1000
        print(f"{label:52s} {t * 1000:8.1f} ms  {t / base:5.2f}x baseline  +{extra:6.1f} ms")


if __name__ == "__main__":
    main()
