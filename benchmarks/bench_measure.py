"""What ``TCInspector.measure()`` (``wpprotect tc watch``) costs.

Scene (built by :class:`wpprotect.tc._lab.Lab`, namespace ``wptcmb-*``, removed at the end): one
namespace, 100 veth pairs, each host side with a Datadog-like classifier at priority 10 on
ingress and egress (filter ``classifier_<dir>_…``, one program per device and direction, as the
agent loads them: 200 programs).

1. The measuring process: CPU time (user + sys, ``RUSAGE_SELF``) and wall time of ``measure()``
   for windows of 1 and 3 seconds; the fixed part (scan + two readings) and the part per second
   of window (the process sleeps through it, so this should be ~0).
2. What statistics cost the traffic while the window is open: ``BPF_PROG_TEST_RUN`` of one
   classifier, 2 000 000 runs, average ns per run with ``BPF_ENABLE_STATS`` held and without
   (``kernel.bpf_stats_enabled`` must be 0 and no other process may hold statistics for the
   "off" figure to be clean: it is reported), and ``run_time_ns / run_cnt`` with statistics on
   (what the kernel itself attributes to the program per run).
"""

from __future__ import annotations

import ctypes
import os
import resource
import struct
import time

from wpprotect.tc import TCInspector, _bpf
from wpprotect.tc._lab import FilterSpec, Lab

PAIRS = 100


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _test_run_ns(fd: int, repeat: int) -> tuple[float, int]:
    """Average ns per run as the kernel times a ``BPF_PROG_TEST_RUN`` loop, and the retval."""
    data = _bpf.test_packet()
    buf = ctypes.create_string_buffer(data, len(data))
    out = ctypes.create_string_buffer(len(data) + 256)
    attr = ctypes.create_string_buffer(80)
    struct.pack_into(
        "<IIIIQQI",
        attr, 0, fd, 0, len(data), len(out), ctypes.addressof(buf), ctypes.addressof(out), repeat,
    )  # fmt: skip
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    nr = 321 if os.uname().machine in {"x86_64", "amd64"} else 280
    if libc.syscall(ctypes.c_long(nr), ctypes.c_int(10), attr, ctypes.c_uint(80)) < 0:
        raise OSError(ctypes.get_errno(), "BPF_PROG_TEST_RUN")
    retval, _, _, _, _, _, _, duration = struct.unpack_from("<iIIIQQII", attr, 0)
    return float(duration), retval


def _sysctl() -> str:
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return "?"


def main() -> None:
    """Build the scene, measure, print one line per figure."""
    with Lab("wptcmb") as lab:
        ns = lab.netns("m")
        devs = [f"wmb{i}" for i in range(PAIRS)]
        ns.add_veths([(d, f"{d}p") for d in devs], up=True)
        specs = [
            FilterSpec(
                d,
                direction,
                _bpf.TC_ACT_UNSPEC,
                f"wptcmb_{direction[0]}{i}",
                10,
                2,
                f"classifier_{direction}_{d}",
            )
            for i, d in enumerate(devs)
            for direction in ("ingress", "egress")
        ]
        progs = ns.add_filters(specs)
        inspector = TCInspector(netns=ns.path)
        inspector.measure(0.05)  # warm: imports, first scan
        rows: dict[float, tuple[float, float]] = {}
        for window in (1.0, 3.0):
            best_cpu = best_wall = float("inf")
            for _ in range(3):
                cpu0, wall0 = _cpu(), time.perf_counter()
                m = inspector.measure(window)
                best_cpu = min(best_cpu, _cpu() - cpu0)
                best_wall = min(best_wall, time.perf_counter() - wall0)
            assert len(m.hooks) == 2 * PAIRS, m
            rows[window] = (best_cpu, best_wall)
            print(
                f"measure({window:g} s), {2 * PAIRS} hooks: CPU {best_cpu * 1000:.1f} ms, "
                f"wall {best_wall:.3f} s (fixed part {(best_wall - window) * 1000:.1f} ms)"
            )
        per_second = (rows[3.0][0] - rows[1.0][0]) / 2.0
        print(
            f"measure() CPU per second of window: {per_second * 1000:.2f} ms "
            f"(fixed: {rows[1.0][0] * 1000 - per_second * 1000:.1f} ms)"
        )

        fd = progs[0].fd
        repeat = 2_000_000
        before = _sysctl()
        off = min(_test_run_ns(fd, repeat)[0] for _ in range(3))
        stats = _bpf.enable_stats()
        try:
            info0 = _bpf.prog_info(fd=fd)
            on = min(_test_run_ns(fd, repeat)[0] for _ in range(3))
            info1 = _bpf.prog_info(fd=fd)
        finally:
            os.close(stats)
        runs = info1.run_cnt - info0.run_cnt
        own = (info1.run_time_ns - info0.run_time_ns) / runs if runs else float("nan")
        print(
            f"classifier run, BPF_PROG_TEST_RUN x{repeat}: {off:.1f} ns without statistics, "
            f"{on:.1f} ns with them (+{on - off:.1f} ns per packet); run_time_ns/run_cnt with "
            f"statistics on: {own:.1f} ns (kernel.bpf_stats_enabled was {before})"
        )


if __name__ == "__main__":
    main()
