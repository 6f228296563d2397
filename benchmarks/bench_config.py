"""ConfigEditor on the Datadog Helm chart's values file (3,500 lines) against one load.

Baseline: ``ConfigEditor.load`` of the file (a ruamel.yaml round-trip parse plus the editor's
reference dump), measured in the same run. The editing rows are load + edits + ``diff()``, as
``wpprotect config`` plans do: what one edit costs on top of reading the file. For context, the
parsers alone are shown too (PyYAML's safe loader, ruamel.yaml's round-trip loader).

Needs ../shared/upstream/helm-charts/values.yaml (the workspace's upstream files); prints a note
and returns when it is absent.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

VALUES = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "upstream"
    / "helm-charts"
    / "values.yaml"
)
RUNS = 9

#: Realistic edits of the chart's values: CWS on, its network events off, then three more in
#: other parts of the file.
EDITS: list[tuple[str, Any]] = [
    ("datadog.securityAgent.runtime.enabled", True),
    ("datadog.securityAgent.runtime.network.enabled", False),
    ("datadog.securityAgent.compliance.enabled", True),
    ("clusterAgent.replicas", 2),
    ("agents.image.tag", "7.60.0"),
]


def _time_all(fns: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Median time of each function, timed in turns (one call of each per round), so that a
    busy moment on a shared machine weighs on every row alike."""
    for fn in fns.values():
        fn()  # warm: imports, regex compilation
    samples: dict[str, list[float]] = {label: [] for label in fns}
    for _ in range(RUNS):
        for label, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[label].append(time.perf_counter() - start)
    return {label: statistics.median(times) for label, times in samples.items()}


def main() -> None:
    if not VALUES.is_file():
        print(f"skipped: {VALUES} is absent")
        return
    import yaml
    from ruamel.yaml import YAML

    from wpprotect.config import ConfigEditor

    text = VALUES.read_text()

    def edit(count: int, finish: Callable[[ConfigEditor, int], object]) -> Callable[[], None]:
        def run() -> None:
            ed = ConfigEditor.load(VALUES)
            for path, value in EDITS[:count]:
                ed.set(path, value)
            finish(ed, count)

        return run

    def diff(ed: ConfigEditor, count: int) -> None:
        lines = ed.diff().splitlines()
        changed = [ln for ln in lines if ln[:1] in "+-" and not ln.startswith(("---", "+++"))]
        if len(changed) != 2 * count:  # one line out, one line in, per edit
            raise SystemExit(f"unexpected diff for {count} edits:\n" + "\n".join(changed))

    def render(ed: ConfigEditor, _count: int) -> None:
        _ = ed.text

    baseline = "ConfigEditor.load (baseline)"
    times = _time_all(
        {
            "yaml.safe_load (context)": lambda: yaml.safe_load(text),
            "ruamel.yaml round-trip load (context)": lambda: YAML().load(text),
            baseline: lambda: ConfigEditor.load(VALUES),
            "load + 1 set + text": edit(1, render),
            "load + 2 sets + diff": edit(2, diff),
            "load + 5 sets + diff": edit(5, diff),
        }
    )
    base = times[baseline]
    print(f"{VALUES.name}: {text.count(chr(10))} lines, {len(text)} bytes, median of {RUNS} rounds")
    for label, t in times.items():
        print(f"{label:40s} {t * 1000:8.1f} ms   {t / base:5.2f}x one load")


if __name__ == "__main__":
    main()
