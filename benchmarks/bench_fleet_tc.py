"""A cluster-wide TC scan over 1,000 simulated nodes against the ``kubectl exec ... bpftool net -j``
habit (one node at a time), and one real node's remote scan against a local one.

Simulated nodes: the in-process test API server of ``tests/k8s_server`` (in a child process, so
the memory figure is the client's alone) with 1,000 agent pods whose exec is held 0.2 s, like a
real round trip, then answers with a real reader output: the records the kernel reader
(``wpprotect/tc/_remote_reader.py``) printed for a real 50-interface namespace built with the TC
lab (veths, clsact, Datadog's classifiers on each, a Cilium-like filter ahead of them on some).
Every call goes through the real ``kubernetes`` client and the exec websocket, and every node's
records are decoded and assessed as a real scan's.

Measured in the same run:

- fleet: ``run_fleet(k8s.agents(), lambda p: p.tc_scan())`` with the default ``max_workers``,
  then the :class:`~wpprotect.tc.TCFleetReport` built from it: every node assessed, the
  summary, the one priority and the table (the "summary" figure); the ``--json`` document of
  every node's programs is timed apart;
- sequential: ``for pod in pods: kubectl exec pod -c system-probe -- bpftool net -j`` then
  ``json.loads`` (the habit it replaces), on ``WPTC_BENCH_SEQ`` nodes (default 100) and scaled
  to the whole cluster (its cost is linear: one 0.2 s exec after the other); set
  ``WPTC_BENCH_SEQ=1000`` to run it in full.

Printed: both wall times and their ratio (goal: at least 50x), the summary's own time (goal:
under 1 s), the client's peak RSS, and, for one real node (a container holding the same 50
interfaces), the remote scan's time against the local in-process scan of that namespace.
Needs root (the lab) and, for the real node, Docker.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

NODES = int(os.environ.get("WPTC_BENCH_NODES", "1000"))
DELAY = float(os.environ.get("WPTC_BENCH_DELAY", "0.2"))
WORKERS = int(os.environ.get("WPTC_BENCH_WORKERS", "0"))  # 0: run_fleet's default
SEQUENTIAL = min(int(os.environ.get("WPTC_BENCH_SEQ", "100")), NODES)
INTERFACES = 50


def _scene(lab: Any) -> Any:
    """A 50-interface namespace: Datadog's classifiers on every device, Cilium's on ten."""
    from wpprotect.tc import _bpf

    ns = lab.netns("bench")
    names = [f"b{i}" for i in range(INTERFACES)]
    ns.add_veths([(n, f"{n}p") for n in names])
    from wpprotect.tc._lab import FilterSpec

    specs = []
    for i, dev in enumerate(names):
        for direction in ("ingress", "egress"):
            specs.append(
                FilterSpec(
                    dev,
                    direction,
                    _bpf.TC_ACT_UNSPEC,
                    f"classifier_{direction}"[:15],
                    10,
                    2,
                    f"classifier_{direction}_security_1_1",
                )
            )
            if i % 5 == 0:
                specs.append(
                    FilterSpec(
                        dev,
                        direction,
                        _bpf.TC_ACT_OK,
                        "cil_from_contai",
                        1,
                        1,
                        "cil_from_container-" + dev,
                    )
                )
    ns.add_filters(specs)
    return ns


def _reader_output(netns: str) -> bytes:
    """What the reader prints for ``netns`` (run here, with this interpreter)."""
    from wpprotect.tc import _remote

    argv = [sys.executable, *_remote.reader_argv(netns)[1:]]
    proc = subprocess.run(argv, input=_remote.reader_source(), capture_output=True, check=True)
    return proc.stdout


def _bpftool_output(records: bytes) -> bytes:
    """A ``bpftool net -j`` answer of the same node (one entry per filter)."""
    from wpprotect.tc import _remote

    report = _remote.report_from_records(_remote.decode_wire(records.decode())["scan"])
    tc = [
        {
            "devname": p.ifname,
            "ifindex": p.ifindex,
            "kind": f"clsact/{p.direction}",
            "name": p.name,
            "prog_id": p.prog_id,
            "prio": p.priority,
            "handle": p.handle,
        }
        for p in report.programs
    ]
    return json.dumps([{"xdp": [], "tc": tc, "flow_dissector": []}]).encode()


def _serve(conn: Any, nodes: int, delay: float, records: bytes, bpftool: bytes) -> None:
    """Child process: the API server with ``nodes`` agent pods."""
    from tests.k8s_server import FakeExecBackend, FakeExecRequest, K8sTestServer, seed_helm

    def responder(req: FakeExecRequest) -> tuple[int, bytes, bytes]:
        if req.argv[:1] == ["bpftool"]:
            return 0, bpftool, b""
        return 0, records, b""

    server = K8sTestServer(FakeExecBackend(responder, delay=delay)).start()
    seed_helm(server, nodes)
    conn.send(server.url)
    conn.recv()  # "report"
    conn.send({"max_active": server.exec_max_active, "execs": server.exec_count})
    conn.recv()  # "stop"
    server.stop()


def _simulated(records: bytes, bpftool: bytes) -> None:
    from kubernetes import client

    from wpprotect.fleet import run_fleet
    from wpprotect.platforms.kubernetes import KubernetesPlatform
    from wpprotect.tc import TCFleetReport

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, NODES, DELAY, records, bpftool), daemon=True)
    proc.start()
    try:
        configuration = client.Configuration()
        configuration.host = parent.recv()
        configuration.connection_pool_maxsize = 64
        api = client.ApiClient(configuration)
        agents = KubernetesPlatform(namespace="datadog", client=api).agents()
        assert len(agents) == NODES, len(agents)
        warm = agents[0].tc_scan()  # imports, first connections
        assert warm.programs

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu_before = time.process_time()
        start = time.perf_counter()
        if WORKERS:
            result = run_fleet(agents, lambda p: p.tc_scan(), max_workers=WORKERS)
        else:
            result = run_fleet(agents, lambda p: p.tc_scan())
        fleet_wall = time.perf_counter() - start
        fleet_cpu = time.process_time() - cpu_before
        assert result.ok, result.table()
        start = time.perf_counter()
        fleet = TCFleetReport.from_fleet(result)
        summary = fleet.summary()
        fleet.table()
        summary_wall = time.perf_counter() - start
        start = time.perf_counter()
        fleet.to_dict()
        json_wall = time.perf_counter() - start
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

        parent.send("report")
        seen = parent.recv()

        start = time.perf_counter()
        for agent in agents[:SEQUENTIAL]:
            res = agent.exec(["bpftool", "net", "-j"], component="system-probe")
            json.loads(res.stdout)
        sequential_sample = time.perf_counter() - start
        sequential_wall = sequential_sample * NODES / SEQUENTIAL
    finally:
        parent.send("stop")
        proc.join(10)

    per_node = len(records)
    print(
        f"nodes: {NODES}, exec delay {DELAY:.2f} s, reader output {per_node / 1024:.1f} KiB per "
        f"node ({INTERFACES} interfaces, {len(warm.programs)} programs)"
    )
    scaled = "" if SEQUENTIAL == NODES else f" (measured on {SEQUENTIAL} nodes, scaled)"
    print(f"sequential kubectl exec bpftool net -j  {sequential_wall:8.2f} s{scaled}")
    print(
        f"run_fleet tc_scan (max_workers={result.max_workers})    {fleet_wall:8.2f} s   "
        f"{sequential_wall / fleet_wall:6.1f}x faster (goal >= 50x)"
    )
    print(
        f"client CPU during the fleet run: {fleet_cpu:.2f} s ({fleet_cpu / NODES * 1000:.1f} ms "
        "per node: exec websocket + decode + assess, one interpreter)"
    )
    print(
        f"summary + one priority for {NODES} nodes: {summary_wall * 1000:.0f} ms (goal < 1 s); "
        f"recommended classifier_priority {summary['recommended_classifier_priority']}, "
        f"{summary['with_findings']} nodes with findings"
    )
    print(f"the --json document of every node's programs: {json_wall * 1000:.0f} ms")
    print(
        f"concurrency: {result.peak_concurrency} workers, {seen['max_active']} execs in flight "
        f"at the server"
    )
    print(
        f"client memory: peak RSS {peak_kib / 1024:.1f} MiB "
        f"(+{max(peak_kib - rss_before, 0) / 1024:.1f} MiB during the fleet run)"
    )


def _real_node(netns: str, path: str) -> None:
    """One container holding the scene: remote scan through it against the local scan."""
    from tests.tc_remote.conftest import node_container
    from wpprotect.platforms import DockerPlatform
    from wpprotect.tc import TCInspector

    try:
        with node_container("bench", path) as name, DockerPlatform(container=name) as box:
            box.tc_scan(netns=netns)  # warm: image, first exec
            remote = []
            for _ in range(5):
                start = time.perf_counter()
                report = box.tc_scan(netns=netns)
                remote.append(time.perf_counter() - start)
            local = []
            for _ in range(5):
                start = time.perf_counter()
                TCInspector(netns).scan()
                local.append(time.perf_counter() - start)
            where = box.last_tc_read or {}
    except Exception as exc:  # a benchmark reports what it could not measure
        print(f"real node: not measured ({type(exc).__name__}: {exc})")
        return
    r, lo = statistics.median(remote), statistics.median(local)
    print(
        f"one real node ({len(report.programs)} programs, python {where.get('python')} in the "
        f"container): remote scan {r * 1000:.0f} ms, local in-process scan {lo * 1000:.1f} ms "
        f"(exec + transfer + decode overhead {(r - lo) * 1000:.0f} ms, median of 5)"
    )


def main() -> None:
    """Build the scene, then run both measurements."""
    from wpprotect.tc._lab import Lab

    if os.geteuid() != 0:
        print("bench_fleet_tc: needs root (the TC lab); skipped")
        return
    with Lab("wpbtc") as lab:
        ns = _scene(lab)
        records = _reader_output(ns.name)
        bpftool = _bpftool_output(records)
        _simulated(records, bpftool)
        _real_node(ns.name, ns.path)


if __name__ == "__main__":
    main()
