"""The process the interrupt attack sends signals to: it applies a six-file plan again and again.

Run as ``python -m tests.attacks.interrupt_child DIR``. For each round it restores the original
files, prints ``go``, applies the plan while SIGINT and SIGTERM are let through (both raise), then,
with the signals blocked again, reports one JSON line: the plan's state, what each file holds
(``old``, ``new`` or ``torn``), and whether ``undo()`` put the original bytes back. It then waits
for a line on stdin before the next round, so the sender (the test) paces the rounds.

With ``--default-sigterm`` it leaves SIGTERM at its default (kill) and runs one round with a last
change that blocks, printing ``ready`` when the first changes are applied.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from wpprotect.config import plan_disable
from wpprotect.plan import Plan

SIGNALS = {signal.SIGINT, signal.SIGTERM}
SP = "# system-probe\nruntime_security_config:\n  enabled: true\n  socket: /run/rs.sock\n"
SA = "runtime_security_config:\n  enabled: true\ncompliance_config:\n  enabled: false\n"
HELM = "datadog:\n  securityAgent:\n    runtime:\n      enabled: true  # keep\n"


def originals(base: Path) -> dict[Path, bytes]:
    files = {base / "host" / "system-probe.yaml": SP, base / "host" / "security-agent.yaml": SA}
    files.update({base / f"values-{i}.yaml": HELM.replace("keep", str(i)) for i in range(4)})
    return {p: text.encode() for p, text in files.items()}


def setup(base: Path) -> dict[Path, bytes]:
    files = originals(base)
    (base / "host").mkdir(parents=True, exist_ok=True)
    for old in [*base.glob("*.bak"), *base.glob("host/*.bak")]:
        old.unlink()
    for p, data in files.items():
        p.write_bytes(data)
    return files


def build(base: Path) -> Plan:
    changes: list[Any] = list(plan_disable(base / "host").changes)
    for i in range(4):
        changes += plan_disable(base / f"values-{i}.yaml").changes
    return Plan("six files", changes)


def snapshot(files: dict[Path, bytes], new: dict[Path, bytes]) -> dict[str, str]:
    out = {}
    for p, old in files.items():
        cur = p.read_bytes()
        out[p.name if p.parent.name != "host" else f"host/{p.name}"] = (
            "old" if cur == old else "new" if cur == new[p] else "torn"
        )
    return out


def _sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)


class Blocker:
    """A last change that never finishes by itself."""

    target = "blocker"
    description = "wait to be interrupted"

    def diff(self) -> str:
        return ""

    def is_satisfied(self) -> bool:
        return False

    def apply(self) -> None:
        print("ready", flush=True)
        for _ in range(6000):
            time.sleep(0.01)

    def verify(self) -> None:
        pass

    def undo(self) -> None:
        pass


def main() -> None:
    base = Path(sys.argv[1])
    if "--default-sigterm" in sys.argv:
        setup(base)
        plan = build(base)
        Plan.apply(Plan("blocked", [*plan.changes, Blocker()]))
        return
    signal.signal(signal.SIGTERM, _sigterm)
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    while True:
        files = setup(base)
        plan = build(base)
        new = {Path(c.target): c._editor.text.encode() for c in plan.changes}
        for pending in signal.sigpending():  # a signal that came after the last round ended
            signal.sigtimedwait([pending], 0)
        print("go", flush=True)
        interrupted = None
        started = time.perf_counter()
        try:
            try:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
                plan.apply()
            finally:
                signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        except (KeyboardInterrupt, SystemExit) as exc:
            interrupted = type(exc).__name__
        took = time.perf_counter() - started
        applied = {c.target for c in plan.applied_changes}
        kinds = snapshot(files, new)
        consistent = all(
            kinds[k] == ("new" if str(p) in applied else "old")
            for p, k in zip(files, kinds, strict=True)
        )
        state = plan.state
        if state in ("applied", "partially-applied"):
            plan.undo()
        restored = all(p.read_bytes() == data for p, data in files.items())
        leftovers = sorted(
            q.name for q in [*base.iterdir(), *(base / "host").iterdir()] if "-tmp-" in q.name
        )
        written = len([*base.glob("*.bak"), *base.glob("host/*.bak")])  # apply backs each up
        report = {
            "written_before": written,
            "interrupted": interrupted,
            "state": state,
            "files": kinds,
            "consistent": consistent,
            "restored": restored,
            "leftovers": leftovers,
            "seconds": took,
        }
        print(json.dumps(report), flush=True)
        if not sys.stdin.readline():
            return


if __name__ == "__main__":
    main()
