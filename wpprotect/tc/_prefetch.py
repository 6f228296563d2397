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

from wpprotect._launch import Reader, fork_with_pipe
from wpprotect.tc import _caps, _netlink
from wpprotect.tc._inspector import TCInspector, _HookProg, _RawNetns

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from wpprotect import _launch
    from wpprotect.tc import _netns
    from wpprotect.tc._model import TCReport

__all__ = ["early_reader", "scan"]


def _wire(raws: list[_RawNetns | str]) -> list[Any]:
    """Plain tuples (what marshal writes) for what the readers returned."""
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
                raw.progs,
            )
        )  # fmt: skip
    return out


def _decode(data: bytes, refs: list[_netns.NetnsRef]) -> list[_RawNetns | str]:
    return _unwire(marshal.loads(data), refs)  # noqa: S302 - our own child's, our own pipe


def _unwire(items: object, refs: list[_netns.NetnsRef]) -> list[_RawNetns | str]:
    if not isinstance(items, list) or len(items) != len(refs):
        raise ValueError("the reader sent an unexpected document")
    out: list[_RawNetns | str] = []
    record = _netlink.FilterRecord
    for ref, item in zip(refs, items, strict=True):
        if isinstance(item, str):
            out.append(item)
            continue
        names, filters, hooks, warnings, tcx_supported, progs = item
        out.append(
            _RawNetns(
                ref,
                names,
                [record(*f) for f in filters],
                [_HookProg(*h) for h in hooks],
                warnings,
                tcx_supported,
                progs,
            )
        )
    return out


class _Child(Reader):
    """A reader of ``refs`` forked when the scan starts; :meth:`result` is what it read."""

    def __init__(self, pid: int, fd: int, refs: list[_netns.NetnsRef]) -> None:
        super().__init__(pid, fd)
        self.refs = refs

    @classmethod
    def start(cls, inspector: TCInspector, refs: list[_netns.NetnsRef]) -> _Child | None:
        if threading.active_count() != 1 or not hasattr(os, "fork"):
            return None  # forking a threaded process is not safe: read in-process instead
        for stream in (sys.stdout, sys.stderr):  # nothing buffered may be written twice
            stream.flush()
        forked = fork_with_pipe()
        if forked is None:
            return None
        pid, rfd, wfd = forked
        if pid == 0:  # pragma: no cover - the child; measured by the parent's tests
            status = 1
            try:
                os.close(rfd)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                _send(wfd, _wire(inspector._read_all(refs)))
                status = 0
            finally:
                os._exit(status)
        os.close(wfd)
        return cls(pid, rfd, refs)

    def result(self) -> list[_RawNetns | str] | None:
        """Wait for the child; what it read, or None when it did not finish cleanly."""
        data = self.read_all()
        if self.status != 0:
            return None
        try:
            return _decode(data, self.refs)
        except (ValueError, EOFError, TypeError):
            return None


def _send(wfd: int, doc: Any) -> None:
    """In a reader: Ctrl-C ends it at once (its parent reports it); ``doc`` goes to the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    data = memoryview(marshal.dumps(doc))
    while data:
        data = data[os.write(wfd, data) :]


def early_reader(netns: str, wfd: int) -> int:
    """The reader :mod:`wpprotect._launch` forks before the CLI loads: reads ``netns`` as
    ``wpprotect tc scan --netns NETNS`` would and writes it to ``wfd``.

    :returns: the child's exit status (0: everything was written).
    """
    inspector = TCInspector(netns=netns)
    _caps.require("CAP_NET_ADMIN", "CAP_SYS_ADMIN")
    refs = inspector.namespaces()
    raws = inspector._read_all(refs)
    _send(wfd, (netns, [(r.label, r.path, r.dev, r.ino, r.current) for r in refs], _wire(raws)))
    return 0


def _early_result(
    early: _launch.Early, inspector: TCInspector, refs: list[_netns.NetnsRef]
) -> list[_RawNetns | str] | None:
    """What the launch reader read, if it read what ``inspector`` asks for; else None."""
    from wpprotect.tc._netns import NetnsRef

    data = early.read_all()
    try:
        netns, wire_refs, items = marshal.loads(data)  # noqa: S302 - our own child's bytes
        theirs = [NetnsRef(*r) for r in wire_refs]
        if netns != inspector.netns:
            return None
        if netns != "all":
            # The same name or path must still be the same namespace.
            if [(r.dev, r.ino) for r in theirs] != [(r.dev, r.ino) for r in refs]:
                return None
            theirs = refs
        # "all": the namespaces that existed when it read them (a snapshot, as a scan is).
        return _unwire(items, theirs)
    except (ValueError, EOFError, TypeError):
        return None


def scan(inspector: TCInspector) -> TCReport:
    """:meth:`TCInspector.scan`, with the kernel read in a child while this process imports the
    join's, the assessment's and the JSON's modules (same report, same errors).

    The child is the one :mod:`wpprotect._launch` forked before the CLI loaded, when it read
    what ``inspector`` asks for; otherwise one forked here.

    :param inspector: what to scan and how.
    """
    # Checked, and the namespaces resolved, before anything is forked: the same clear errors.
    _caps.require("CAP_NET_ADMIN", "CAP_SYS_ADMIN")
    refs = inspector.namespaces()
    launch = sys.modules.get("wpprotect._launch")
    early = None if launch is None else launch.take_early()
    if early is not None and (
        early.netns != inspector.netns or not inspector.tcx or inspector._before_read is not None
    ):
        early.close()
        early = None
    child = None if early is not None else _Child.start(inspector, refs)
    raws = None
    try:
        # What the join, the assessment and `--json` import, loaded while the child reads.
        from wpprotect.tc import _assess, _model, _vendors  # noqa: F401

        if inspector.classifier_priority is None:  # the agent's config will be read
            from wpprotect.config import _settings  # noqa: F401
        if early is not None:
            raws = _early_result(early, inspector, refs)
        elif child is not None:
            raws = child.result()
    finally:
        if early is not None:
            early.close()
        if child is not None:
            child.close()
    if raws is None:
        raws = inspector._read_all(refs)
    return inspector._report(raws)
