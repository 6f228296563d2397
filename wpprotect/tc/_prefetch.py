"""A whole-process scan that reads the kernel in a forked child while the parent loads the rest.

A cold ``wpprotect tc scan`` on a node with a thousand pod interfaces spends about as long
importing attrs, the result model, the vendor table and the assessment (~25 ms) as it spends in
the kernel's netlink dumps and ``BPF_PROG_QUERY`` calls (~25 ms). Threads cannot overlap the
two: a reader thread needs the interpreter lock back after every one of its ~3000 syscalls, and
the importing thread holds it. A child process can. :func:`scan` forks one that runs the
inspector's own reader (:func:`~wpprotect.tc._inspector.read_netns`, which needs neither attrs
nor the model) and sends back plain tuples through a pipe (:mod:`marshal`), while the parent
imports what the join, the assessment and the JSON need; the parent then builds the report as
:meth:`TCInspector.scan` does.

Only the CLI uses it, and only where forking is safe: a single-threaded process. Anything
unexpected in the child (an error, a signal, a short read) makes the parent read in-process
instead, so errors are raised as :meth:`TCInspector.scan` raises them. The child never returns
into the caller's stack: it leaves with ``os._exit``.
"""

from __future__ import annotations

import marshal
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from wpprotect.tc import _caps, _netlink
from wpprotect.tc._inspector import TCInspector, _HookProg, _RawNetns

if TYPE_CHECKING:
    from wpprotect.tc import _netns
    from wpprotect.tc._model import TCReport

__all__ = ["scan"]


def _encode(raws: list[_RawNetns | str]) -> bytes:
    out: list[Any] = []
    for raw in raws:
        if isinstance(raw, str):
            out.append(raw)
            continue
        out.append(
            (
                raw.names,
                [
                    (f.ifindex, f.parent, f.priority, f.protocol, f.handle, f.chain, f.kind,
                     f.name, f.prog_id, f.tag, f.flags, f.flags_gen)
                    for f in raw.filters
                ],
                [
                    (h.ifindex, h.attach_type, h.position, h.prog_id, h.link_id, h.revision)
                    for h in raw.hooks
                ],
                raw.warnings,
                raw.tcx_supported,
            )
        )  # fmt: skip
    return marshal.dumps(out)


def _decode(data: bytes, refs: list[_netns.NetnsRef]) -> list[_RawNetns | str]:
    items = marshal.loads(data)  # noqa: S302 - our own child's bytes, through our own pipe
    if not isinstance(items, list) or len(items) != len(refs):
        raise ValueError("the reader sent an unexpected document")
    out: list[_RawNetns | str] = []
    record = _netlink.FilterRecord
    for ref, item in zip(refs, items, strict=True):
        if isinstance(item, str):
            out.append(item)
            continue
        names, filters, hooks, warnings, tcx_supported = item
        out.append(
            _RawNetns(
                ref,
                names,
                [record(*f) for f in filters],
                [_HookProg(*h) for h in hooks],
                warnings,
                tcx_supported,
            )
        )
    return out


class _Child:
    """A forked reader of ``refs``; :meth:`result` is what it read, or None if it failed."""

    def __init__(self, pid: int, fd: int, refs: list[_netns.NetnsRef]) -> None:
        self.pid = pid
        self.fd = fd
        self.refs = refs

    @classmethod
    def start(cls, inspector: TCInspector, refs: list[_netns.NetnsRef]) -> _Child | None:
        if threading.active_count() != 1 or not hasattr(os, "fork"):
            return None  # forking a threaded process is not safe: read in-process instead
        for stream in (sys.stdout, sys.stderr):  # nothing buffered may be written twice
            stream.flush()
        rfd, wfd = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(rfd)
            os.close(wfd)
            return None
        if pid == 0:  # pragma: no cover - the child; measured by the parent's tests
            status = 1
            try:
                os.close(rfd)
                # Ctrl-C or SIGTERM end the child at once; the parent handles them.
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                data = memoryview(_encode([inspector._read_one(ref) for ref in refs]))
                while data:
                    data = data[os.write(wfd, data) :]
                status = 0
            finally:
                os._exit(status)
        os.close(wfd)
        return cls(pid, rfd, refs)

    def result(self) -> list[_RawNetns | str] | None:
        """Wait for the child; what it read, or None when it did not finish cleanly."""
        chunks: list[bytes] = []
        try:
            while chunk := os.read(self.fd, 1 << 20):
                chunks.append(chunk)
        finally:
            self.close()
        if self.status != 0:
            return None
        try:
            return _decode(b"".join(chunks), self.refs)
        except (ValueError, EOFError, TypeError):
            return None

    status: int | None = None

    def close(self) -> None:
        """Stop the child if it still runs, and reap it (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.status is None:
            pid, wait_status = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:  # still reading: the parent is leaving early (an error, Ctrl-C)
                os.kill(self.pid, signal.SIGKILL)
                _, wait_status = os.waitpid(self.pid, 0)
            self.status = os.waitstatus_to_exitcode(wait_status)


def scan(inspector: TCInspector) -> TCReport:
    """:meth:`TCInspector.scan`, with the kernel read in a child while this process imports the
    join's, the assessment's and the JSON's modules (same report, same errors).

    :param inspector: what to scan and how.
    """
    # Checked, and the namespaces resolved, before anything is forked: the same clear errors.
    _caps.require("CAP_NET_ADMIN", "CAP_SYS_ADMIN")
    refs = inspector.namespaces()
    child = _Child.start(inspector, refs)
    raws = None
    try:
        # What the join, the assessment and `--json` import, loaded while the child reads.
        import json  # noqa: F401

        from wpprotect.tc import _assess, _bpf, _model, _vendors  # noqa: F401

        if inspector.classifier_priority is None:  # the agent's config will be read
            from wpprotect.config import _settings  # noqa: F401
        if child is not None:
            raws = child.result()
    finally:
        if child is not None:
            child.close()
    if raws is None:
        raws = inspector._read_all(refs)
    return inspector._report(raws)
