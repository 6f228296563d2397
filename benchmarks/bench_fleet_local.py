"""Fleet self-test speed-up: N simulated host agents, one after the other vs ``run_fleet``.

Each simulated agent answers its self-test after a fixed delay (as the real RPC takes a moment);
the baseline is the sequential loop measured in the same run.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tests.agent_sim import install_host
from wpprotect.agent import AgentVersion, run_self_test
from wpprotect.fleet import run_fleet
from wpprotect.platforms.host import HostPlatform

AGENTS = 32
DELAY = 0.2
VERSION = AgentVersion(7, 59)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="wpag-bench-") as tmp:
        hosts = []
        for i in range(AGENTS):
            sim = install_host(Path(tmp) / f"a{i}", version="7.59.0", selftest_delay=DELAY)
            hosts.append(HostPlatform(sim.install_dir, Path(tmp) / "etc", sudo=False))

        def op(h: HostPlatform) -> bool:
            return run_self_test(h, timeout=30, version=VERSION).ok

        started = time.perf_counter()
        sequential = [op(h) for h in hosts]
        seq = time.perf_counter() - started

        started = time.perf_counter()
        result = run_fleet(hosts, op, max_workers=AGENTS)
        par = time.perf_counter() - started

        assert all(sequential)
        assert result.ok
        print(f"agents: {AGENTS}, self-test delay: {DELAY:.2f} s")
        print(f"sequential: {seq:.2f} s ({seq / AGENTS * 1000:.0f} ms per agent)")
        print(f"run_fleet:  {par:.2f} s (peak concurrency {result.peak_concurrency})")
        print(f"speed-up:   {seq / par:.1f}x")


if __name__ == "__main__":
    main()
