"""Fleet self-test over 200 agent pods against the ``kubectl exec`` habit (one pod at a time).

The cluster is the in-process test API server of ``tests/k8s_server``, run in a child process so
the memory figure is the client's alone. Its 200 pods answer exec with the simulated agent CLI
(``tests/agent_sim``, 7.78: ``agent version``, ``system-probe runtime self-test``, then
``security-agent status`` to confirm it),
each exec held for 0.2 s, like a real agent's round trip. Every call goes through the real
``kubernetes`` client and the exec websocket.

Measured in the same run:

- sequential: ``for pod in agents: pod.self_test()`` (what a shell loop over ``kubectl exec``
  does);
- fleet: ``run_fleet(agents, lambda p: p.self_test())`` with the default ``max_workers``.

Printed: both wall times, their ratio (goal: at least 20x), the peak concurrency reached (by the
fleet and as seen by the server), and the client's peak RSS growth during the fleet run.
Set ``WPK8S_BENCH_PODS`` / ``WPK8S_BENCH_DELAY`` to change the size.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

PODS = int(os.environ.get("WPK8S_BENCH_PODS", "200"))
DELAY = float(os.environ.get("WPK8S_BENCH_DELAY", "0.2"))
VERSION = "7.78.2"


def _serve(conn: Any, pods: int, delay: float) -> None:
    """Child process: the API server with ``pods`` agent pods answering like the simulator."""
    from tests import agent_sim
    from tests.k8s_server import FakeExecBackend, FakeExecRequest, K8sTestServer, seed_helm

    with tempfile.TemporaryDirectory(prefix="wpk8s-bench-") as tmp:
        sim = agent_sim.install_host(Path(tmp) / "opt", version=VERSION)
        binaries = {
            "security-agent": sim.security_agent,
            "system-probe": sim.system_probe,
            "agent": sim.agent,
        }
        cache: dict[tuple[str, ...], tuple[int, bytes, bytes]] = {}

        def responder(req: FakeExecRequest) -> tuple[int, bytes, bytes]:
            # The simulator's answer is the same on every pod: run it once per command.
            key = tuple(req.argv)
            if key not in cache:
                exe = binaries.get(req.argv[0])
                if exe is None:
                    return 127, b"", f"{req.argv[0]}: not found\n".encode()
                proc = subprocess.run([str(exe), *req.argv[1:]], capture_output=True, check=False)
                cache[key] = (proc.returncode, proc.stdout, proc.stderr)
            return cache[key]

        backend = FakeExecBackend(responder, delay=delay)
        server = K8sTestServer(backend).start()
        seed_helm(server, pods)
        conn.send(server.url)
        conn.recv()  # "report"
        conn.send({"max_active": server.exec_max_active, "execs": server.exec_count})
        conn.recv()  # "stop"
        server.stop()


def _rss_kib() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def main() -> None:
    """Run both loops and print the figures."""
    from tests.k8s_server import api_client_for  # noqa: F401 - import cost outside the timing
    from wpprotect.fleet import run_fleet
    from wpprotect.platforms.kubernetes import KubernetesPlatform

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, PODS, DELAY), daemon=True)
    proc.start()
    try:
        url = parent.recv()
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = url
        api = client.ApiClient(configuration)
        platform = KubernetesPlatform(namespace="datadog", client=api)
        agents = platform.agents()
        assert len(agents) == PODS, len(agents)
        warm = agents[0].self_test()  # imports, first connections
        assert warm.ok, warm.output

        rss_before = _rss_kib()
        start = time.perf_counter()
        fleet = run_fleet(agents, lambda p: p.self_test())
        fleet_wall = time.perf_counter() - start
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert fleet.ok, fleet.table()

        parent.send("report")
        server_seen = parent.recv()

        start = time.perf_counter()
        for agent in agents:
            res = agent.self_test()
            assert res.ok, res.output
        sequential_wall = time.perf_counter() - start
        execs_per_test = server_seen["execs"] / (PODS + 1)
    finally:
        parent.send("stop")
        proc.join(10)

    print(f"pods: {PODS}, exec delay {DELAY:.2f} s, ~{execs_per_test:.1f} execs per self-test")
    print(f"sequential loop (kubectl exec habit) {sequential_wall:8.2f} s")
    print(
        f"run_fleet (max_workers={fleet.max_workers})        {fleet_wall:8.2f} s   "
        f"{sequential_wall / fleet_wall:6.1f}x faster (goal >= 20x)"
    )
    print(
        f"concurrency reached: {fleet.peak_concurrency} workers, "
        f"{server_seen['max_active']} execs in flight at the server"
    )
    print(
        f"client memory: peak RSS {peak_kib / 1024:.1f} MiB, "
        f"+{max(peak_kib - rss_before, 0) / 1024:.1f} MiB during the fleet run"
    )


if __name__ == "__main__":
    main()
