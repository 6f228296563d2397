"""TC scan speed against the tools people use today, all measured in the same run.

Scenes are built by :class:`wpprotect.tc._lab.Lab` (namespaces ``wptc4b-*``, removed at the end):

1. one namespace, 500 veth pairs (1000 interfaces + lo), clsact and 3 direct-action filters on
   each host side (1500 filters), as in docs/reference/kernel-tc.md#tc-speed. Every device is up,
   as a pod's veth is:
   an up device gets a ``noqueue`` root qdisc, and that is what bpftool's per-device qdisc dumps
   pay for (with the devices down it takes ~380 ms here instead of ~900 ms):

   - whole process ``wpprotect tc scan --json --netns NAME`` (the installed command; with and
     without ``--classifier-priority``, which decides whether the agent's config is read) against
     ``ip netns exec NAME bpftool net -j`` and against a loop of
     ``tc -n NAME -j filter show dev X ingress|egress`` (sampled on 100 devices, extrapolated
     to all 1000 interfaces x 2 directions);
   - in-process ``TCInspector(netns=NAME).scan()`` against bpftool and against a lean floor: the
     same netlink dumps (links, qdiscs, per-device filters) walked with ``struct`` only, plus the
     same 2 ``BPF_PROG_QUERY`` per device, decoding nothing;
   - ``probe=True`` (opt-in: every program but Datadog's test-run once per traffic class) as a
     ratio to the same scan without it;

2. 100 namespaces x 10 interfaces: ``--netns all`` against a loop of
   ``ip netns exec NS bpftool net -j`` over those namespaces;

3. scaling: 10, 100, 1000 and 4000 interfaces, in-process, per-interface cost, with bpftool's
   beside it.

Also: start-up (``import wpprotect``, ``wpprotect --help`` as whole processes) and which heavy
backends a whole scan imports.

Timings are wall-clock, best of N (the minimum is the least disturbed by other load on the
machine), with CPU time (user+sys) beside for the subprocesses. Goals: the in-process
``scan()`` (the kernel read, decoded into the result model, actions included) at least 20x
faster than bpftool and within 2x of the floor; per-interface cost flat as the count grows.
Scan + assess is printed beside it without a goal: the assessment (the walk per hook, findings,
recommendations) is work neither bpftool nor the floor does, and its cost is in the breakdown.
The whole-process time is printed beside bpftool's, with no goal: it is mostly the interpreter
and imports, which a tool or notebook calling ``scan()`` pays once.
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Subprocesses run as an installed wpprotect would: with compiled bytecode (pip writes .pyc
# files; a PYTHONDONTWRITEBYTECODE environment would recompile every module at each start).
# The cache goes to a private directory, never into the source tree.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV.update(PYTHONPATH=str(ROOT), PYTHONPYCACHEPREFIX=tempfile.mkdtemp(prefix="wptc4-pyc-"))
HEAVY = ("pyroute2", "ruamel", "docker", "kubernetes")


def _best(fn: Callable[[], object], runs: int) -> float:
    return _interleaved([fn], runs)[0]


def _interleaved(fns: Sequence[Callable[[], object]], runs: int) -> list[float]:
    """Best time of each function, run in turns so that they see the same machine load."""
    best = [float("inf")] * len(fns)
    for _ in range(runs):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def _proc(argv: Sequence[str], runs: int) -> tuple[float, float]:
    """Best wall time and best CPU time (user+sys of the child) of a command."""
    best_wall = best_cpu = float("inf")
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, check=False
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    return best_wall, best_cpu


def _wpprotect() -> list[str]:
    """The installed ``wpprotect`` command (what people run), else ``python -m wpprotect``."""
    script = Path(sys.executable).with_name("wpprotect")
    return [str(script)] if script.exists() else [sys.executable, "-m", "wpprotect"]


def _settle() -> None:
    """Let the kernel finish the work a scene's creation (or the previous scene's removal)
    queued: namespace teardown and device setup hold the RTNL lock the dumps also need."""
    time.sleep(1.0)


def _ms(t: float) -> str:
    return f"{t * 1000:9.1f} ms"


def _row(label: str, t: float, cpu: float | None = None, ref: float | None = None) -> None:
    extra = f"  cpu {cpu * 1000:7.1f} ms" if cpu is not None else " " * 17
    ratio = f"  {ref / t:7.1f}x faster" if ref is not None else ""
    print(f"  {label:58s}{_ms(t)}{extra}{ratio}")


def _bare_query() -> Callable[[int, int], None]:
    """BPF_PROG_QUERY count-only with one preallocated attr: the cheapest call ctypes allows
    (bpf cmd 16; target_ifindex @0, attach_type @4; docs/reference/kernel-tc.md#tc-bpf-syscall)."""
    import ctypes
    import platform

    libc = ctypes.CDLL(None, use_errno=True)
    nr_bpf = {"x86_64": 321, "aarch64": 280}[platform.machine()]
    attr = ctypes.create_string_buffer(64)
    pack_attr = struct.Struct("=II").pack_into

    def query(ifindex: int, attach_type: int) -> None:
        ctypes.memset(attr, 0, 64)
        pack_attr(attr, 0, ifindex, attach_type)
        if libc.syscall(nr_bpf, 16, attr, 64) != 0:
            raise OSError(ctypes.get_errno(), "BPF_PROG_QUERY")

    return query


def _floor(netns_name: str) -> Callable[[], None]:
    """The lean floor: the scan's syscalls with a struct-only loop that decodes nothing."""
    from wpprotect.tc import _netns

    hdr = struct.Struct("=IHHII").unpack_from
    pair = struct.Struct("=i4xI").unpack_from
    req = struct.Struct("=IHHII BBHiIII")

    def dump(sock: socket.socket, buf: bytearray, msg: bytes) -> list[tuple[int, int]]:
        """Send a dump request; (ifindex, parent) of every message, read from the fixed header."""
        sock.send(msg)
        seen: list[tuple[int, int]] = []
        while True:
            n = sock.recv_into(buf)
            off = 0
            while off < n:
                length, mtype, _, _, _ = hdr(buf, off)
                if mtype in (2, 3):  # NLMSG_ERROR, NLMSG_DONE
                    return seen
                # ifinfomsg and tcmsg both hold the ifindex at +20; tcmsg's parent is at +28.
                seen.append(pair(buf, off + 20))
                off += (length + 3) & ~3

    query = _bare_query()
    ref = _netns.resolve_netns(netns_name)

    def run() -> None:
        with _netns.entered(ref):
            big = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            small = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            bbuf, sbuf = bytearray(32768), bytearray(4096)
            link_req = struct.pack("=IHHII BBHiII HHI", 40, 18, 0x301, 1, 0, 0, 0, 0, 0, 0, 0,
                                   8, 29, 8)  # fmt: skip
            links = [ifindex for ifindex, _ in dump(big, bbuf, link_req)]
            qreq = req.pack(36, 38, 0x301, 2, 0, 0, 0, 0, 0, 0, 0, 0)
            clsact = [i for i, parent in dump(big, bbuf, qreq) if parent == 0xFFFFFFF1]
            for ifindex in clsact:
                for parent in (0xFFFFFFF2, 0xFFFFFFF3):
                    dump(small, sbuf, req.pack(36, 46, 0x301, 3, 0, 0, 0, 0, ifindex, 0, parent, 0))
            for ifindex in links:
                query(ifindex, 46)
                query(ifindex, 47)
            big.close()
            small.close()

    return run


def _breakdown(netns_name: str) -> list[tuple[str, float]]:
    """Best time of each step of a scan and of the CLI's output, measured separately."""
    import json

    from wpprotect.tc import TCInspector, _bpf, _inspector, _netlink, _netns

    ref = _netns.resolve_netns(netns_name)
    parts: dict[str, float] = {}

    def note(key: str, t: float) -> None:
        parts[key] = min(parts.get(key, t), t)

    inspector = TCInspector(netns=netns_name)
    bare = _bare_query()
    for _ in range(9):
        with _netns.entered(ref), _netlink.RtnlReader() as reader:
            t0 = time.perf_counter()
            devices = reader.clsact_devices()
            t1 = time.perf_counter()
            links = reader.links()
            t2 = time.perf_counter()
            for ifindex, parents in devices.items():
                for parent in parents:
                    reader.filters(ifindex, parent)
            t3 = time.perf_counter()
            for link in links:
                _bpf.prog_query(link.ifindex, 46)
                _bpf.prog_query(link.ifindex, 47)
            t4 = time.perf_counter()
            for link in links:
                bare(link.ifindex, 46)
                bare(link.ifindex, 47)
            t4b = time.perf_counter()
        raw = _inspector.read_netns(ref)
        t5 = time.perf_counter()
        inspector._join([raw], [])
        t6 = time.perf_counter()
        report = inspector.scan()
        t7 = time.perf_counter()
        report.assess(10)
        t8 = time.perf_counter()
        doc = report.to_dict(10)
        t9 = time.perf_counter()
        json.dumps(doc)
        t10 = time.perf_counter()
        report.to_json(assessment=report.assess(10))
        t11 = time.perf_counter()
        note("qdisc dump (1)", t1 - t0)
        note("link dump (1)", t2 - t1)
        note("filter dumps (1000)", t3 - t2)
        note("BPF_PROG_QUERY tcx (2000, _bpf.prog_query)", t4 - t3)
        note("  the same 2000 queries, bare ctypes call (floor)", t4b - t4)
        note("join: vendor, verdict, TCProgram (1500)", t6 - t5)
        note("report.assess(10)", t8 - t7)
        note("report.to_dict(10) (assesses again)", t9 - t8)
        note("json.dumps of that (compact, C encoder)", t10 - t9)
        note("report.to_json(assessment=report.assess(10)) (what the CLI does)", t11 - t10)
    return list(parts.items())


def _heavy_imports(netns_name: str) -> str:
    code = (
        "import sys, io, contextlib\n"
        "from wpprotect.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main(['tc', 'scan', '--json', '--netns', {netns_name!r}])\n"
        f"print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=False
    )
    return out.stdout.strip() or "none"


def scene_one_namespace() -> None:
    from wpprotect.tc import TCInspector
    from wpprotect.tc._lab import Lab

    print("1. one namespace, 1000 interfaces (500 veth pairs), 1500 clsact filters")
    with Lab("wptc4b", wait_released=True) as lab:
        ns = lab.scene_veths(500, dev_prefix="w4", up=True)
        name = ns.name
        _settle()
        bpftool, bpftool_cpu = _proc(["ip", "netns", "exec", name, "bpftool", "net", "-j"], 5)
        hosts = [n for n in ns.ifindex if n.startswith("w4") and not n.endswith("p")][:100]
        start = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for dev in hosts:
            for direction in ("ingress", "egress"):
                subprocess.run(["tc", "-n", name, "-j", "filter", "show", "dev", dev, direction],
                               stdout=subprocess.DEVNULL, check=True)  # fmt: skip
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        scale = 1000 / len(hosts)
        tc_loop = (time.perf_counter() - start) * scale
        tc_cpu = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * scale
        cli = [*_wpprotect(), "tc", "scan", "--json", "--netns", name]
        whole, whole_cpu = _proc(cli, 9)
        whole_p, whole_p_cpu = _proc([*cli, "--classifier-priority", "10"], 9)
        dash_m, _ = _proc([sys.executable, "-m", "wpprotect", *cli[-5:]], 9)
        inspector = TCInspector(netns=name)
        prober = TCInspector(netns=name, probe=True)
        inproc, scan_only, no_tcx, floor, probed = _interleaved(
            [
                lambda: inspector.scan().assess(10),
                inspector.scan,
                TCInspector(netns=name, tcx=False).scan,
                _floor(name),
                lambda: prober.scan().assess(10),
            ],
            11,
        )
        runs = sum(len(p.probes or ()) for p in prober.scan().programs)
        report = inspector.scan()
        assert len(report.programs) == 1500, len(report.programs)
        heavy = _heavy_imports(name)
        parts = _breakdown(name)

    _row("ip netns exec NS bpftool net -j (baseline)", bpftool, bpftool_cpu)
    _row("tc -j filter show dev X ingress|egress x 2000 (from 200)", tc_loop, tc_cpu)
    _row("wpprotect tc scan --json --netns NS (whole process)", whole, whole_cpu, bpftool)
    _row("  ... --classifier-priority 10 (agent config not read)", whole_p, whole_p_cpu, bpftool)
    _row("  ... as python -m wpprotect (runpy on top)", dash_m, None, bpftool)
    _row("TCInspector(netns=NS).scan().assess(10) in-process", inproc, None, bpftool)
    _row("TCInspector(netns=NS).scan() alone (the kernel read)", scan_only, None, bpftool)
    _row("  ... tcx=False (no BPF_PROG_QUERY per device)", no_tcx, None, bpftool)
    _row("lean floor: same dumps + queries, struct-only, no decoding", floor, None, bpftool)
    _row("  ... probe=True (every program test-run per traffic class)", probed, None, bpftool)
    print(f"  whole process vs tc loop: {tc_loop / whole:7.1f}x faster")
    print(f"  whole process vs bpftool: {bpftool / whole:7.1f}x faster (no goal); "
          f"with --classifier-priority {bpftool / whole_p:.1f}x")  # fmt: skip
    print(f"  scan() vs bpftool:        {bpftool / scan_only:7.1f}x faster (goal >= 20x)")
    print(f"  scan() vs floor:          {scan_only / floor:7.2f}x the floor (goal <= 2x)")
    print(f"  scan + assess vs bpftool: {bpftool / inproc:7.1f}x faster, "
          f"{inproc / floor:.2f}x the floor (no goal: the assessment is work neither bpftool "
          "nor the floor does; its cost is in the breakdown below)")  # fmt: skip
    print(f"  probe=True vs without:    {probed / inproc:7.2f}x the time ({runs} test runs, "
          f"{(probed - inproc) / max(runs, 1) * 1e6:.1f} us each; no goal, opt-in)")  # fmt: skip
    print(f"  heavy backends imported by a whole `tc scan --json`: {heavy}")
    print("  where the time goes (each step best of 9, measured alone):")
    for label, t in parts:
        print(f"    {label:56s}{_ms(t)}")


def scene_many_namespaces() -> None:
    from wpprotect.tc import TCInspector
    from wpprotect.tc._lab import Lab

    print("2. 100 namespaces x 10 interfaces (5 veth pairs, 15 filters each)")
    with Lab("wptc4m", wait_released=True) as lab:
        spaces = lab.scene_namespaces(100, 10, dev_prefix="w4", up=True)
        _settle()
        start = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for ns in spaces:
            subprocess.run(["ip", "netns", "exec", ns.name, "bpftool", "net", "-j"],
                           stdout=subprocess.DEVNULL, check=True)  # fmt: skip
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        loop = time.perf_counter() - start
        loop_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        cli = [*_wpprotect(), "tc", "scan", "--json", "--netns", "all",
               "--classifier-priority", "10"]  # fmt: skip
        whole, whole_cpu = _proc(cli, 5)
        (inproc,) = _interleaved([TCInspector(netns="all").scan], 5)
        report = TCInspector(netns="all").scan()
        found = sum(1 for p in report.programs if p.netns.startswith("wptc4m"))
        assert found == 1500, found
    _row("loop: ip netns exec NS bpftool net -j x 100 (baseline)", loop, loop_cpu)
    _row("wpprotect tc scan --json --netns all (whole process)", whole, whole_cpu, loop)
    _row("TCInspector(netns='all').scan() in-process (1 thread)", inproc, None, loop)


def scene_scaling() -> None:
    from wpprotect.tc import TCInspector
    from wpprotect.tc._lab import Lab

    print("3. scaling (one namespace, 3 filters per veth pair host side)")
    for ifaces in (10, 100, 1000, 4000):
        with Lab("wptc4s", wait_released=True) as lab:
            ns = lab.scene_veths(ifaces // 2, dev_prefix="w4", up=True)
            _settle()
            t, floor = _interleaved(
                [TCInspector(netns=ns.name).scan, _floor(ns.name)], 5 if ifaces > 1000 else 9
            )
            # bpftool's per-device qdisc dumps make it O(N^2): one run is enough at 4000.
            bpftool, _ = _proc(
                ["ip", "netns", "exec", ns.name, "bpftool", "net", "-j"], 1 if ifaces > 1000 else 3
            )
        print(
            f"  {ifaces:5d} interfaces: scan {_ms(t)} {t / ifaces * 1e6:6.1f} us/interface; "
            f"floor {_ms(floor)} {floor / ifaces * 1e6:6.1f} us/interface; "
            f"{t / floor:4.2f}x the floor; bpftool {_ms(bpftool)} "
            f"{bpftool / ifaces * 1e6:7.1f} us/interface"
        )


def startup() -> None:
    print("4. start-up (whole processes)")
    base, _ = _proc([sys.executable, "-c", "pass"], 15)
    top, _ = _proc([sys.executable, "-c", "import wpprotect"], 15)
    tc, _ = _proc([sys.executable, "-c", "import wpprotect.tc"], 15)
    helptext, _ = _proc([*_wpprotect(), "--help"], 15)
    _row("python -c pass (baseline)", base)
    _row("import wpprotect", top)
    _row("import wpprotect.tc (the scan path)", tc)
    _row("wpprotect --help", helptext)


def main() -> None:
    if os.geteuid() != 0:
        print("bench_tc: needs root (network namespaces, BPF); nothing measured")
        return
    # Fill the bytecode cache once (the first start compiles every module).
    subprocess.run([sys.executable, "-m", "wpprotect", "--help"], env=ENV, capture_output=True,
                   check=False)  # fmt: skip
    subprocess.run([sys.executable, "-c", "import wpprotect.tc._bpf, wpprotect.tc._vendors, "
                    "wpprotect.tc._assess, wpprotect.tc"], env=ENV, check=False)  # fmt: skip
    try:
        startup()
        scene_one_namespace()
        scene_many_namespaces()
        scene_scaling()
    finally:
        shutil.rmtree(ENV["PYTHONPYCACHEPREFIX"], ignore_errors=True)


if __name__ == "__main__":
    main()
