"""Throwaway kernel scenes for the scan tests: namespaces, veth pairs, clsact, real BPF filters.

Everything created is named with the ``wptc4`` prefix (veths ``w4…``, at most 15 characters) and
removed by :meth:`Scene.close`, which the fixtures call in ``finally``. Programs are the
two-instruction ``r0 = code; exit`` loaded by ``_bpf.prog_load_return``; filters are added with
pyroute2 (a test-only use; the scanner itself never imports it).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

from wpprotect.tc import _bpf, _netns

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
PARENTS = {"ingress": "ffff:fff2", "egress": "ffff:fff3"}
TCX = {"ingress": _bpf.BPF_TCX_INGRESS, "egress": _bpf.BPF_TCX_EGRESS}


def run(*argv: str) -> str:
    """Run a command (argv list), fail loudly, return stdout."""
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    return proc.stdout


class Scene:
    """A set of namespaces and the objects in them, removed on :meth:`close`."""

    def __init__(self) -> None:
        self.named: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.fds: list[int] = []
        self.prog_ids: dict[int, int] = {}  # fd -> prog id
        self.token = secrets.token_hex(3)

    # -- namespaces ------------------------------------------------------------------------

    def netns(self, name: str) -> str:
        """Create a named namespace (``ip netns add``) with ``lo`` up.

        A per-scene token is appended (``wptc4a`` → ``wptc4a-1f2e3d``), so two test runs on
        one machine never share or delete each other's namespaces.

        :returns: the actual name.
        """
        assert name.startswith("wptc4"), name
        name = f"{name}-{self.token}"
        run("ip", "netns", "add", name)
        self.named.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def unnamed(self) -> str:
        """A namespace held only by a ``sleep`` process (``unshare -n``); returns its
        ``/proc/<pid>/ns/net`` path. Nothing names it."""
        proc = subprocess.Popen(["unshare", "-n", "sleep", "120"])
        self.procs.append(proc)
        path = f"/proc/{proc.pid}/ns/net"
        deadline = time.monotonic() + 5
        while os.stat(path).st_ino == os.stat("/proc/self/ns/net").st_ino:
            if time.monotonic() > deadline:
                raise RuntimeError("unshare -n did not enter a new namespace")
            time.sleep(0.005)
        return path

    # -- devices ---------------------------------------------------------------------------

    def _ip(self, ns: str, *argv: str) -> str:
        if ns.startswith("/"):
            return run("nsenter", f"--net={ns}", "ip", *argv)
        return run("ip", "-n", ns, *argv)

    def veth(self, ns: str, name: str, peer: str, *, clsact: bool = True) -> int:
        """A veth pair inside ``ns`` (both ends there, ``name`` up); returns ``name``'s ifindex."""
        assert len(name) <= 15, name
        assert name.startswith("w4"), name
        self._ip(ns, "link", "add", name, "type", "veth", "peer", "name", peer)
        self._ip(ns, "link", "set", name, "up")
        if clsact:
            if ns.startswith("/"):
                run("nsenter", f"--net={ns}", "tc", "qdisc", "add", "dev", name, "clsact")
            else:
                run("tc", "-n", ns, "qdisc", "add", "dev", name, "clsact")
        out = self._ip(ns, "-o", "link", "show", "dev", name)
        return int(out.split(":", 1)[0])

    # -- programs --------------------------------------------------------------------------

    def prog(self, retcode: int, name: str) -> int:
        """Load ``r0 = retcode; exit`` named ``name``; returns its fd (kept until close)."""
        fd = _bpf.prog_load_return(retcode, name)
        self.fds.append(fd)
        self.prog_ids[fd] = _bpf.prog_info(fd=fd).id
        return fd

    def bpf_filter(
        self,
        ns: str,
        dev: str,
        direction: str,
        *,
        prio: int,
        handle: int,
        name: str,
        fd: int,
        direct_action: bool = True,
        protocol: int = ETH_P_ALL,
    ) -> int:
        """Attach a cls_bpf filter; returns the program id."""
        from pyroute2 import IPRoute

        with IPRoute(netns=ns, flags=0) as ipr:
            (index,) = ipr.link_lookup(ifname=dev)
            ipr.tc(
                "add-filter",
                "bpf",
                index,
                handle,
                fd=fd,
                name=name,
                parent=PARENTS[direction],
                prio=prio,
                protocol=protocol,
                direct_action=direct_action,
            )
        return self.prog_ids[fd]

    def tcx(self, ns: str, ifindex: int, direction: str, fd: int) -> int:
        """Attach a tcx link (appended last); returns the link id. The link lives until close."""
        ref = _netns.resolve_netns(ns)
        with _netns.entered(ref):  # LINK_CREATE resolves the ifindex in this thread's netns
            link_fd = _bpf.link_create(fd, ifindex, TCX[direction])
        self.fds.append(link_fd)
        info = Path(f"/proc/self/fdinfo/{link_fd}").read_text()
        return int(next(ln.split()[1] for ln in info.splitlines() if ln.startswith("link_id:")))

    # -- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        """Remove every namespace, process and fd the scene created."""
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()
        for proc in self.procs:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        self.procs.clear()
        for name in self.named:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        self.named.clear()
