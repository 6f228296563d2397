"""ConfigEditor on the real Helm values file (3000+ lines) against plain parsing.

Baseline: plain ``yaml.safe_load`` (PyYAML) of the same text, measured in the same run. Also
shown: PyYAML's C loader (when built with libyaml), ruamel.yaml's round-trip load alone (which the
editor builds on), and the editor's steps: load, load+set, load+set+text, load+set+diff.

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
RUNS = 5


def _time(fn: Callable[[], Any]) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    if not VALUES.is_file():
        print(f"skipped: {VALUES} is absent")
        return
    import yaml
    from ruamel.yaml import YAML

    from wpprotect.config._editor import ConfigEditor

    text = VALUES.read_text()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    def baseline() -> None:
        yaml.safe_load(text)

    def c_loader() -> None:
        yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader, C or Python

    def ruamel_rt() -> None:
        YAML().load(text)

    def load() -> None:
        ConfigEditor.from_text(text)

    def load_set() -> None:
        ConfigEditor.from_text(text).set("datadog.securityAgent.runtime.enabled", True)

    def load_set_text() -> None:
        ed = ConfigEditor.from_text(text)
        ed.set("datadog.securityAgent.runtime.enabled", True)
        _ = ed.text

    def load_set_diff() -> None:
        ed = ConfigEditor.from_text(text)
        ed.set("datadog.securityAgent.runtime.enabled", True)
        ed.diff()

    base = _time(baseline)
    rows = [
        ("yaml.safe_load (baseline)", base),
        (f"yaml.load, {loader.__name__}", _time(c_loader)),
        ("ruamel.yaml round-trip load", _time(ruamel_rt)),
        ("ConfigEditor load", _time(load)),
        ("ConfigEditor load+set", _time(load_set)),
        ("ConfigEditor load+set+text", _time(load_set_text)),
        ("ConfigEditor load+set+diff", _time(load_set_diff)),
    ]
    print(f"{VALUES.name}: {text.count(chr(10))} lines, {len(text)} bytes, median of {RUNS}")
    for label, t in rows:
        print(f"{label:44s} {t * 1000:8.1f} ms   {t / base:7.1f}x baseline")


if __name__ == "__main__":
    main()
