"""A throwaway traffic-control lab: real namespaces, veths, clsact filters and tcx links.

Used by ``wpprotect``'s demo and tests (and usable by anyone who wants to see a conflict without
a cluster): :class:`Lab` creates network namespaces with unique names (``<prefix>-<random>-<n>``
under ``/var/run/netns``), veth pairs inside them, clsact qdiscs, direct-action ``cls_bpf`` filters
running tiny programs that always return a chosen code (mimicking each vendor's names and
verdicts), and tcx links; and removes everything on exit, also on exceptions and
``KeyboardInterrupt``: link and program fds are closed and the namespaces unmounted. The kernel
frees a namespace (and the programs its filters hold) asynchronously after that;
``Lab(wait_released=True)`` waits (bounded) until every program id it loaded is gone.

How, and why so:

- The kernel state is written with pyroute2 (the ``tc`` extra: ``pip install 'wpprotect[tc]'``);
  no netlink message is encoded by hand. pyroute2 is imported here only, on first use; without it
  the lab raises :class:`~wpprotect.errors.BackendUnavailableError`. Its exceptions become
  :class:`~wpprotect.errors.TCError` (:class:`~wpprotect.errors.CapabilityError` when refused for
  lack of privilege), chained with ``from``. The scan never imports it.
- Each lab namespace has one worker thread that *is* in it. ``BPF_LINK_CREATE``,
  ``BPF_PROG_QUERY`` and ``AF_PACKET`` sends run there, because the kernel resolves ifindexes in
  the calling thread's namespace (``docs/reference/kernel-tc.md#tc-netns``, ``#tc-tcx``). The
  thread calls ``unshare(CLONE_NEWNET)``
  itself: pyroute2's ``netns.create()`` runs that in a forked child, leaving no thread inside
  (svinota/pyroute2, ``pyroute2/netns/__init__.py``). pyroute2's ``netns.attach()`` then
  bind-mounts the thread's namespace under ``/var/run/netns`` (as ``ip netns add`` does) and
  ``netns.remove()`` unmounts it. No process is forked.
- Veths, link state, clsact qdiscs and ``bpf`` filters are pyroute2 messages (``ifinfmsg``,
  ``tcmsg``) sent through a pyroute2 ``IPRSocket`` that the worker thread opens, so the socket is
  in the namespace. Up to 256 requests are sent before their acks are read, so 500 veth pairs
  with 3 filters each take under a second. The lab picks every ifindex itself, so a whole scene is
  built without reading anything back; that is why it fills the messages rather than calling
  ``IPRoute.link("add", peer=...)``, which cannot set the peer's ifindex (it lives in the peer's
  ``ifinfomsg`` header; ``pyroute2/requests/link.py`` turns ``peer`` into attributes only), and
  whose request processing costs about four times the encoding of the message itself.
  pyroute2's ``tcmsg`` knows no ``TCA_CHAIN`` (its attribute map stops at ``TCA_STAB``,
  ``pyroute2/netlink/rtnl/tcmsg/__init__.py``), so the lab's filter message adds it.
- Still by hand, because they are not netlink: loading programs, tcx links (``BPF_LINK_CREATE``
  is a bpf(2) command, torvalds/linux ``include/uapi/linux/bpf.h``; pyroute2 speaks netlink
  only), through :mod:`wpprotect.tc._bpf`; the worker thread's ``unshare(2)``.
- This module writes kernel state and is never used by the inspector, which stays read-only.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import errno as _errno
import functools
import logging
import os
import secrets
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Literal, TypeVar

import attrs

from wpprotect.errors import (
    BackendUnavailableError,
    BPFError,
    CapabilityError,
    InvalidArgumentError,
    TCError,
)
from wpprotect.tc import _bpf

__all__ = [
    "FilterSpec",
    "Lab",
    "LabLink",
    "LabNetns",
    "LabProgram",
    "VendorScene",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

_NETNS_DIR: Final = "/var/run/netns"
_CLONE_NEWNET: Final = 0x40000000  # include/uapi/linux/sched.h

# include/uapi/linux/netlink.h, rtnetlink.h, if.h, pkt_sched.h, pkt_cls.h
_NLM_F_REQUEST: Final = 0x1
_NLM_F_ACK: Final = 0x4
_NLM_F_EXCL: Final = 0x200
_NLM_F_CREATE: Final = 0x400
_RTM_NEWLINK: Final = 16
_RTM_NEWQDISC: Final = 36
_RTM_NEWTFILTER: Final = 44
_IFF_UP: Final = 0x1
_TCA_CHAIN: Final = 11
_TCA_BPF_FLAG_ACT_DIRECT: Final = 1
_TC_H_CLSACT: Final = 0xFFFFFFF1
_CLSACT_HANDLE: Final = 0xFFFF0000
_PARENT: Final = {"ingress": 0xFFFFFFF2, "egress": 0xFFFFFFF3}
_TCX: Final = {"ingress": _bpf.BPF_TCX_INGRESS, "egress": _bpf.BPF_TCX_EGRESS}
_PROTOCOLS: Final = {"all": 0x0003, "ip": 0x0800, "ipv6": 0x86DD, "arp": 0x0806}
_BATCH: Final = 256  # requests in flight: their acks stay far below the receive buffer
_ACK_TIMEOUT: Final = 30.0  # every request is acked; never hang on a lost answer
_NEED_ROOT: Final = "the lab needs root: CAP_SYS_ADMIN"

Direction = Literal["ingress", "egress"]

_libc: ctypes.CDLL | None = None


def _c() -> ctypes.CDLL:
    global _libc  # noqa: PLW0603 - loaded once, on first use
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _oserror(what: str) -> TCError:
    err = ctypes.get_errno()
    if err in (_errno.EPERM, _errno.EACCES):
        return CapabilityError(f"{what}: {os.strerror(err)} ({_NEED_ROOT})")
    return TCError(f"{what}: {os.strerror(err)}")


def _failed(what: str, code: int, detail: str | None, netns: str) -> TCError:
    """The error for a refused write: ``what`` failed with errno ``code`` (and the kernel's or
    pyroute2's own words, when they add something)."""
    text = os.strerror(code) if code else "unknown error"
    if detail and detail != text:
        text += f" ({detail})"
    if code in (_errno.EPERM, _errno.EACCES):
        return CapabilityError(f"{what} failed: {text} ({_NEED_ROOT})", target=netns)
    return TCError(f"{what} failed: {text}", target=netns)


def _check_ifname(name: str) -> str:
    # include/uapi/linux/if.h IFNAMSIZ 16 (15 + NUL); no "/" or whitespace (dev_valid_name).
    if not 1 <= len(name) <= 15 or any(c in name for c in "/: \t\n") or name in (".", ".."):
        raise InvalidArgumentError(f"invalid interface name {name!r}: 1-15 chars, no / : space")
    return name


# --- pyroute2 ---------------------------------------------------------------------------------


@attrs.frozen
class _PyRoute2:
    """The parts of pyroute2 the lab writes with."""

    IPRSocket: Any
    netns: Any  # the pyroute2.netns module
    ifinfmsg: Any
    tcmsg: Any  # pyroute2's tcmsg, plus TCA_CHAIN


@functools.cache
def _pyroute2() -> _PyRoute2:
    """Import pyroute2 (once).

    :raises BackendUnavailableError: it is not installed.
    """
    try:
        from pyroute2 import IPRSocket, netns
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
        from pyroute2.netlink.rtnl.tcmsg import tcmsg
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the TC lab needs pyroute2, which cannot be imported ({exc}): "
            "pip install 'wpprotect[tc]'"
        ) from exc

    class tcmsg_chain(tcmsg):  # type: ignore[misc]
        """``tcmsg`` with ``TCA_CHAIN`` (include/uapi/linux/rtnetlink.h, 11) in its map."""

        nla_map = (
            *((code, *entry) for code, entry in enumerate(tcmsg.nla_map)),
            (_TCA_CHAIN, "TCA_CHAIN", "uint32"),
        )

    # A subclass inherits its base's "compiled" mark: compile its own attribute map now.
    tcmsg_chain().compile_nla_table()
    return _PyRoute2(IPRSocket, netns, ifinfmsg, tcmsg_chain)


# One request: (message type, extra NLM_F_* flags, pyroute2 message, what it does).
_Request = tuple[int, int, Any, str]


def _veth_msg(
    pr: _PyRoute2, host: str, host_index: int, peer: str, peer_index: int, *, up: bool
) -> Any:
    msg = pr.ifinfmsg()
    msg["index"] = host_index
    if up:  # the host end can come up at once: the pair is linked before it is configured
        msg["flags"] = msg["change"] = _IFF_UP
    peer_info = {"index": peer_index, "attrs": [("IFLA_IFNAME", peer)]}
    data = {"attrs": [("VETH_INFO_PEER", peer_info)]}
    kind = {"attrs": [("IFLA_INFO_KIND", "veth"), ("IFLA_INFO_DATA", data)]}
    msg["attrs"] = [("IFLA_IFNAME", host), ("IFLA_LINKINFO", kind)]
    return msg


def _up_msg(pr: _PyRoute2, ifindex: int) -> Any:
    # A separate request for the peer end: it is configured before the pair is linked, when
    # veth_open would fail with ENOTCONN (drivers/net/veth.c veth_newlink).
    msg = pr.ifinfmsg()
    msg["index"] = ifindex
    msg["flags"] = msg["change"] = _IFF_UP
    return msg


def _clsact_msg(pr: _PyRoute2, ifindex: int) -> Any:
    msg = pr.tcmsg()
    msg["index"] = ifindex
    msg["handle"] = _CLSACT_HANDLE
    msg["parent"] = _TC_H_CLSACT
    msg["attrs"] = [("TCA_KIND", "clsact")]
    return msg


def _filter_msg(pr: _PyRoute2, ifindex: int, spec: FilterSpec, prog_fd: int) -> Any:
    proto = spec.protocol if isinstance(spec.protocol, int) else _PROTOCOLS[spec.protocol]
    opts: list[tuple[str, object]] = [("TCA_BPF_FD", prog_fd)]
    if spec.name:
        opts.append(("TCA_BPF_NAME", spec.name))
    if spec.direct_action:
        opts.append(("TCA_BPF_FLAGS", _TCA_BPF_FLAG_ACT_DIRECT))
    msg = pr.tcmsg()
    msg["index"] = ifindex
    msg["handle"] = spec.handle or 0
    msg["parent"] = _PARENT[spec.direction]
    # tcm_info: priority in the upper 16 bits, protocol (network order) in the lower.
    msg["info"] = ((spec.priority or 0) << 16) | socket.htons(proto)
    attrs_: list[tuple[str, object]] = [("TCA_KIND", "bpf")]
    if spec.chain is not None:
        attrs_.append(("TCA_CHAIN", spec.chain))
    attrs_.append(("TCA_OPTIONS", {"attrs": opts}))
    msg["attrs"] = attrs_
    return msg


class _Rtnl:
    """A pyroute2 ``IPRSocket`` opened by one namespace's worker thread, so in that namespace.

    ``IPRSocket`` is pyroute2's synchronous socket, outside asyncio: ``put`` encodes and sends a
    message, ``get`` parses what arrived; matching acks to requests is the caller's
    (``pyroute2/netlink/rtnl/iprsocket.py``). Its socket is opened in the namespace of the thread
    that first uses it, so no helper process is forked as ``netns=`` would.
    """

    def __init__(self, pr: _PyRoute2, netns: str) -> None:
        self._netns = netns
        self._seq = 0
        try:
            # groups=0: no multicast membership, the socket only ever sees its own acks.
            self._sock = pr.IPRSocket(ext_ack=True, groups=0)
            self._sock.socket.settimeout(_ACK_TIMEOUT)  # opens it, in this thread's namespace
        except OSError as exc:
            raise _failed("opening a netlink socket", exc.errno or 0, None, netns) from exc

    def close(self) -> None:
        self._sock.close()

    def requests(self, msgs: Sequence[_Request]) -> None:
        """Send the requests, :data:`_BATCH` at a time before reading their acks; raise for the
        first refused one (the rest of its batch is still sent and acked)."""
        for start in range(0, len(msgs), _BATCH):
            self._batch(msgs[start : start + _BATCH])

    def _batch(self, msgs: Sequence[_Request]) -> None:
        pending: dict[int, str] = {}
        for mtype, flags, msg, what in msgs:
            self._seq += 1
            try:
                self._sock.put(msg, mtype, _NLM_F_REQUEST | _NLM_F_ACK | flags, msg_seq=self._seq)
            except OSError as exc:
                raise self._translate(what, exc) from exc
            pending[self._seq] = what
        first: tuple[str, Exception] | None = None
        while pending:
            try:
                answers = self._sock.get()
            except TimeoutError as exc:
                what = next(iter(pending.values()))
                raise TCError(f"no answer from the kernel for {what}", target=self._netns) from exc
            except OSError as exc:
                raise self._translate(next(iter(pending.values())), exc) from exc
            for answer in answers:  # acks: NLMSG_ERROR, "error" None when it succeeded
                header = answer["header"]
                seq: int = header["sequence_number"]
                if seq in pending:
                    what = pending.pop(seq)
                    if header["error"] is not None and first is None:
                        first = (what, header["error"])
        if first is not None:
            raise self._translate(*first) from first[1]

    def _translate(self, what: str, exc: Exception) -> TCError:
        if isinstance(exc, OSError):
            return _failed(what, exc.errno or 0, exc.strerror, self._netns)
        detail = exc.args[1] if len(exc.args) > 1 else None  # NetlinkError(code, message)
        return _failed(what, getattr(exc, "code", 0), str(detail) if detail else None, self._netns)


# --- results ----------------------------------------------------------------------------------


@attrs.frozen
class LabProgram:
    """A loaded ``r0 = retcode; exit`` program.

    :ivar fd: the fd owning it (closed when the lab closes).
    :ivar id: its kernel id.
    :ivar name: its program name.
    :ivar tag: its tag, 16 hex digits.
    :ivar retcode: what it returns.
    """

    fd: int
    id: int
    name: str
    tag: str
    retcode: int


@attrs.frozen
class LabLink:
    """A tcx link made by the lab.

    :ivar fd: the link fd (closing it detaches the program).
    :ivar id: the link id.
    :ivar ifname: the device.
    :ivar direction: ``ingress`` or ``egress``.
    :ivar program: the attached program.
    """

    fd: int
    id: int
    ifname: str
    direction: Direction
    program: LabProgram


def _check_direction(value: str) -> str:
    if value not in _PARENT:
        raise InvalidArgumentError(f"direction must be 'ingress' or 'egress', got {value!r}")
    return value


@attrs.frozen
class FilterSpec:
    """One clsact ``bpf`` filter to add.

    :ivar ifname: the device.
    :ivar direction: ``ingress`` or ``egress``.
    :ivar retcode: what the program returns (``TC_ACT_OK``...).
    :ivar prog_name: the program's name (at most 15 characters).
    :ivar priority: the filter priority; None lets the kernel pick (49152, then lower).
    :ivar handle: the filter handle; None lets the kernel pick.
    :ivar name: the filter name (``TCA_BPF_NAME``); None for none; the string ``"{id}"`` inside
        it is replaced by the program id (libbpf names filters ``<prog>:[<id>]``).
    :ivar protocol: ``all``, ``ip``, ``ipv6``, ``arp`` or an EtherType.
    :ivar direct_action: direct-action mode (every vendor uses it).
    :ivar chain: the filter chain, or None for the default 0.
    :ivar shared: reuse the lab's program of the same name and return code (False: load one
        for this filter alone, as Datadog's agent does per device, so that its run count is
        this hook's own).
    """

    ifname: str
    direction: str = attrs.field(validator=lambda _i, _a, v: _check_direction(v))
    retcode: int = _bpf.TC_ACT_OK
    prog_name: str = "lab_prog"
    priority: int | None = 1
    handle: int | None = 1
    name: str | None = None
    protocol: str | int = "all"
    direct_action: bool = True
    chain: int | None = None
    shared: bool = True


@attrs.frozen
class VendorScene:
    """What :meth:`Lab.scene_mimic_vendors` built, and what an assessment at priority 10 finds.

    :ivar netns: the namespace name (under ``/var/run/netns``).
    :ivar path: its path.
    :ivar devices: role (``cilium``, ``calico``, ``aws``, ``unknown``, ``tcx``) -> device name.
    :ivar prog_ids: role -> program id of the vendor's ingress program.
    :ivar expected: ``(code, ifname, direction)`` for each finding expected at priority 10.
    :ivar recommended_classifier_priority: expected node-wide recommendation at priority 10.
    """

    netns: str
    path: str
    devices: dict[str, str] = attrs.field(hash=False)
    prog_ids: dict[str, int] = attrs.field(hash=False)
    expected: tuple[tuple[str, str, str], ...]
    recommended_classifier_priority: int


# --- namespaces -------------------------------------------------------------------------------


class LabNetns:
    """One throwaway network namespace of a :class:`Lab`, with a worker thread inside it.

    Create it with :meth:`Lab.netns`; it is removed when the lab closes.
    """

    def __init__(self, lab: Lab, name: str) -> None:
        # A weak reference: the lab's finalizer holds its namespaces, which must not keep the
        # lab itself alive (or an unclosed lab would be cleaned only at exit, not when dropped).
        self._lab_ref = weakref.ref(lab)
        self.name = name
        """The namespace name (``ip netns`` style)."""
        self.path = f"{_NETNS_DIR}/{name}"
        """Its bind-mount path."""
        self.ifindex: dict[str, int] = {"lo": 1}
        """Device name -> ifindex, for the devices the lab made."""
        self._next_index = 2  # a new namespace has only lo (1)
        self._clsact: set[int] = set()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"lab-{name}")
        self._rtnl: _Rtnl | None = None
        self._owns_path = False
        # Registered before it is created, so a failure half-way is still cleaned up.
        lab._state.namespaces.append(self)
        self.run(self._create)
        st = os.stat(self.path)
        self.id = f"{st.st_dev}:{st.st_ino}"
        """The namespace's ``dev:inode``."""
        self.inode = st.st_ino
        """The namespace's inode number."""

    def _owner(self) -> Lab:
        lab = self._lab_ref()
        if lab is None:
            raise TCError(f"the lab of namespace {self.name} is gone")
        return lab

    def __repr__(self) -> str:
        return f"<LabNetns {self.name} {len(self.ifindex) - 1} devices>"

    def _create(self) -> None:
        pr = _pyroute2()
        # unshare(2) moves this thread only; the rest of the process stays where it is.
        if _c().unshare(_CLONE_NEWNET) != 0:
            raise _oserror("unshare(CLONE_NEWNET)")
        existed = os.path.lexists(self.path)
        try:
            # The mount point is created with O_EXCL, then /proc/<tid>/ns/net (this thread's
            # namespace, not the process leader's) is bind-mounted on it.
            pr.netns.attach(self.path, threading.get_native_id())
        except OSError as exc:
            # Ours to remove only if pyroute2 made it (it fails before, or with EEXIST, if not).
            self._owns_path = (
                not existed and exc.errno != _errno.EEXIST and os.path.lexists(self.path)
            )
            what = f"cannot create {self.path}: {os.strerror(exc.errno) if exc.errno else exc}"
            if exc.errno in (_errno.EPERM, _errno.EACCES):
                raise CapabilityError(f"{what} ({_NEED_ROOT})") from exc
            raise TCError(what) from exc
        self._owns_path = True
        self._rtnl = _Rtnl(pr, self.name)

    def run(self, fn: Callable[..., T], *args: object) -> T:
        """Call ``fn(*args)`` in this namespace's worker thread and return its result.

        :param fn: any callable; bpf(2) and socket calls it makes act in this namespace.
        :returns: what ``fn`` returned.
        :raises TCError: the lab was closed.
        """
        try:
            fut = self._pool.submit(fn, *args)
        except RuntimeError as exc:
            raise TCError(f"lab namespace {self.name} is closed") from exc
        return fut.result()

    def _requests(self, msgs: Sequence[_Request]) -> None:
        def go() -> None:
            assert self._rtnl is not None  # noqa: S101 - set by _create in this thread
            self._rtnl.requests(msgs)

        self.run(go)

    def add_veths(
        self, pairs: Iterable[tuple[str, str]], *, up: bool = False, clsact: bool = True
    ) -> list[tuple[int, int]]:
        """Create veth pairs (both ends in this namespace), batched.

        :param pairs: ``(host name, peer name)``, each at most 15 characters.
        :param up: bring both ends up.
        :param clsact: add a clsact qdisc on the host end.
        :returns: ``(host ifindex, peer ifindex)`` per pair.
        :raises InvalidArgumentError: a name is invalid or already used.
        :raises TCError: the kernel refused.
        """
        pr = _pyroute2()
        msgs: list[_Request] = []
        result: list[tuple[int, int]] = []
        names: dict[str, int] = {}
        for host, peer in pairs:
            for n in (host, peer):
                _check_ifname(n)
                if n in self.ifindex or n in names:
                    raise InvalidArgumentError(f"device {n!r} already exists in {self.name}")
            hi, pi = self._next_index, self._next_index + 1
            self._next_index += 2
            names[host], names[peer] = hi, pi
            create = _NLM_F_CREATE | _NLM_F_EXCL
            msgs.append(
                (
                    _RTM_NEWLINK,
                    create,
                    _veth_msg(pr, host, hi, peer, pi, up=up),
                    f"veth {host}/{peer}",
                )
            )
            if up:
                msgs.append((_RTM_NEWLINK, 0, _up_msg(pr, pi), f"set {peer} up"))
            if clsact:
                msgs.append((_RTM_NEWQDISC, create, _clsact_msg(pr, hi), f"clsact on {host}"))
            result.append((hi, pi))
        self._requests(msgs)
        self.ifindex.update(names)
        if clsact:
            self._clsact.update(hi for hi, _ in result)
        return result

    def add_veth(self, host: str, peer: str, *, up: bool = False, clsact: bool = True) -> int:
        """Create one veth pair; see :meth:`add_veths`.

        :returns: the host end's ifindex.
        """
        return self.add_veths([(host, peer)], up=up, clsact=clsact)[0][0]

    def _index(self, ifname: str) -> int:
        try:
            return self.ifindex[ifname]
        except KeyError:
            raise InvalidArgumentError(
                f"no device {ifname!r} in lab namespace {self.name}; have {sorted(self.ifindex)}"
            ) from None

    def add_filters(self, specs: Iterable[FilterSpec]) -> list[LabProgram]:
        """Add clsact ``bpf`` filters (adding clsact where missing), batched, in order.

        :param specs: the filters.
        :returns: the program of each filter (programs are shared per name and return code).
        :raises InvalidArgumentError: unknown device or bad spec.
        :raises TCError: the kernel refused.
        """
        pr = _pyroute2()
        msgs: list[_Request] = []
        progs: list[LabProgram] = []
        new_clsact: set[int] = set()
        for spec in specs:
            idx = self._index(spec.ifname)
            if idx not in self._clsact and idx not in new_clsact:
                new_clsact.add(idx)
                msgs.append(
                    (
                        _RTM_NEWQDISC,
                        _NLM_F_CREATE | _NLM_F_EXCL,
                        _clsact_msg(pr, idx),
                        f"clsact on {spec.ifname}",
                    )
                )
            prog = self._owner().program(spec.retcode, spec.prog_name, shared=spec.shared)
            if isinstance(spec.protocol, str) and spec.protocol not in _PROTOCOLS:
                raise InvalidArgumentError(
                    f"protocol {spec.protocol!r}: use one of {sorted(_PROTOCOLS)} or an int"
                )
            if spec.name and "{id}" in spec.name:
                spec = attrs.evolve(spec, name=spec.name.replace("{id}", str(prog.id)))  # noqa: PLW2901
            msgs.append(
                (
                    _RTM_NEWTFILTER,
                    _NLM_F_CREATE | _NLM_F_EXCL,
                    _filter_msg(pr, idx, spec, prog.fd),
                    f"{spec.direction} filter prio {spec.priority} on {spec.ifname}",
                )
            )
            progs.append(prog)
        self._requests(msgs)
        self._clsact.update(new_clsact)
        return progs

    def add_filter(
        self,
        ifname: str,
        direction: str,
        retcode: int,
        *,
        prog_name: str = "lab_prog",
        priority: int | None = 1,
        handle: int | None = 1,
        name: str | None = None,
        protocol: str | int = "all",
        direct_action: bool = True,
        chain: int | None = None,
    ) -> LabProgram:
        """Add one clsact ``bpf`` filter; the parameters are :class:`FilterSpec`'s.

        :returns: the filter's program.
        """
        spec = FilterSpec(
            ifname,
            direction,
            retcode,
            prog_name,
            priority,
            handle,
            name,
            protocol,
            direct_action,
            chain,
        )
        return self.add_filters([spec])[0]

    def add_tcx(
        self,
        ifname: str,
        direction: str,
        retcode: int,
        *,
        prog_name: str = "lab_tcx",
        first: bool = False,
    ) -> LabLink:
        """Attach a program returning ``retcode`` with a tcx link.

        :param ifname: the device.
        :param direction: ``ingress`` or ``egress``.
        :param retcode: ``TCX_PASS``, ``TCX_NEXT``...
        :param prog_name: the program's name.
        :param first: put it before the existing tcx programs (default: after them).
        :returns: the link (detached when the lab closes).
        :raises BPFError: the kernel refused (``EINVAL``: no tcx before Linux 6.6).
        """
        _check_direction(direction)
        idx = self._index(ifname)
        prog = self._owner().program(retcode, prog_name)
        flags = _bpf.BPF_F_BEFORE if first else 0
        # By hand (through _bpf), not pyroute2: a tcx link is made by the bpf(2) command
        # BPF_LINK_CREATE (torvalds/linux include/uapi/linux/bpf.h, kernel/bpf/tcx.c), not by a
        # netlink message, and pyroute2 speaks netlink only.
        fd = self.run(_bpf.link_create, prog.fd, idx, _TCX[direction], flags)
        link_id = self._owner()._register_link(fd)
        return LabLink(fd, link_id, ifname, "ingress" if direction == "ingress" else "egress", prog)

    def send(self, ifname: str, frame: bytes | None = None, count: int = 1) -> None:
        """Transmit raw Ethernet frames out of a device (an ``AF_PACKET`` socket in this
        namespace). Out of a veth's peer end, they arrive on the other end's ingress hooks.

        :param ifname: the device to send from (it must be up).
        :param frame: the frame (default: :func:`~wpprotect.tc._bpf.test_packet`).
        :param count: how many times.
        :raises TCError: the kernel refused (e.g. the device is down).
        """
        idx = self._index(ifname)
        data = _bpf.test_packet() if frame is None else frame

        def go() -> None:
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
                sock.bind((ifname, 0))
                for _ in range(count):
                    sock.send(data)

        try:
            self.run(go)
        except OSError as exc:
            raise TCError(f"cannot send on {ifname} (ifindex {idx}): {exc.strerror}") from exc

    def prog_query(self, ifname: str, direction: str) -> _bpf.QueryResult | None:
        """``BPF_PROG_QUERY`` the device's tcx hook from inside this namespace.

        :param ifname: the device.
        :param direction: ``ingress`` or ``egress``.
        :returns: as :func:`wpprotect.tc._bpf.prog_query`.
        """
        _check_direction(direction)
        return self.run(_bpf.prog_query, self._index(ifname), _TCX[direction])

    def _close(self) -> None:
        """Close the socket and the worker, unmount and delete the namespace (idempotent)."""
        first: BaseException | None = None
        try:
            # Waits for a creation still running (e.g. interrupted by ^C in the caller).
            self._pool.shutdown(wait=True, cancel_futures=True)
        except BaseException as exc:  # keep cleaning up, re-raised by Lab
            first = exc
        if self._rtnl is not None:
            rtnl, self._rtnl = self._rtnl, None
            rtnl.close()
        if self._owns_path:  # never touch a path some other namespace owns
            try:
                # umount2(MNT_DETACH), then unlink (still mounted: EBUSY).
                _pyroute2().netns.remove(self.path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                if first is None:
                    first = TCError(f"cannot remove {self.path}: {exc.strerror}")
                    first.__cause__ = exc
            self._owns_path = False
        if first is not None:
            raise first


# --- the lab ----------------------------------------------------------------------------------


class _State:
    """Everything a lab must undo; kept apart from :class:`Lab` so a finalizer can run it."""

    def __init__(self) -> None:
        self.namespaces: list[LabNetns] = []
        self.link_fds: list[int] = []
        self.prog_fds: list[int] = []
        self.closed = False
        self.lock = threading.Lock()

    def cleanup(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        first: BaseException | None = None
        # Links first (detaches tcx programs), then namespaces (veths, qdiscs, filters), then
        # the program fds the lab itself holds.
        for fd in self.link_fds:
            try:
                os.close(fd)
            except BaseException as exc:  # keep cleaning, re-raise the first
                first = first or exc
        for ns in self.namespaces:
            try:
                ns._close()
            except BaseException as exc:  # keep cleaning, re-raise the first
                first = first or exc
        for fd in self.prog_fds:
            try:
                os.close(fd)
            except BaseException as exc:  # keep cleaning, re-raise the first
                first = first or exc
        if first is not None:
            raise first


_PREFIX_OK: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


class Lab:
    """A context manager owning throwaway namespaces, programs and links.

    :param prefix: start of every namespace name (letters, digits, ``-``, ``_``; at most 20).
    :param wait_released: on close, wait (up to ``release_timeout`` seconds) until the kernel
        has freed every program the lab loaded, so callers can check nothing is left.
    :param release_timeout: the bound for that wait.

    Example::

        with Lab("wptc3") as lab:
            scene = lab.scene_mimic_vendors()
            report = TCInspector(netns=scene.netns).scan()

    :raises InvalidArgumentError: a bad prefix.
    """

    def __init__(
        self, prefix: str = "wplab", *, wait_released: bool = False, release_timeout: float = 10.0
    ) -> None:
        if not 1 <= len(prefix) <= 20 or not set(prefix) <= _PREFIX_OK:
            raise InvalidArgumentError(f"lab prefix {prefix!r}: 1-20 characters from [a-z0-9_-]")
        self.prefix = prefix
        self.wait_released = wait_released
        self.release_timeout = release_timeout
        self._token = secrets.token_hex(3)
        self._state = _State()
        self._programs: dict[tuple[int, str], LabProgram] = {}
        self._loaded: list[LabProgram] = []  # every program, shared or not, in load order
        self._count = 0
        self._link_ids: list[int] = []
        self._finalizer = weakref.finalize(self, self._state.cleanup)

    def __repr__(self) -> str:
        return (
            f"<Lab {self.prefix}-{self._token} {len(self._state.namespaces)} namespaces "
            f"{len(self._loaded)} programs {len(self._state.link_fds)} links"
            f"{' closed' if self._state.closed else ''}>"
        )

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._state.closed

    @property
    def namespaces(self) -> tuple[LabNetns, ...]:
        """The namespaces created so far."""
        return tuple(self._state.namespaces)

    @property
    def prog_ids(self) -> tuple[int, ...]:
        """The ids of every program the lab loaded."""
        return tuple(p.id for p in self._loaded)

    @property
    def link_ids(self) -> tuple[int, ...]:
        """The ids of every link the lab created."""
        return tuple(self._link_ids)

    def _check_open(self) -> None:
        if self._state.closed:
            raise TCError("this lab is closed")

    def close(self) -> None:
        """Remove everything the lab made (idempotent; also runs at garbage collection/exit).

        :raises TCError: something could not be removed (the rest still was).
        """
        ids = self.prog_ids
        self._finalizer()
        if self.wait_released and ids:
            self.wait_programs_released(ids, self.release_timeout)

    @staticmethod
    def wait_programs_released(ids: Iterable[int], timeout: float = 10.0) -> list[int]:
        """Wait until none of these program ids exists any more (the kernel frees namespaces and
        their filters asynchronously).

        :param ids: program ids.
        :param timeout: seconds to wait at most.
        :returns: the ids still present when the time ran out (empty when all are gone).
        """
        pending = list(ids)
        deadline = time.monotonic() + timeout
        while True:
            still = []
            for i in pending:
                try:
                    fd = _bpf.prog_get_fd_by_id(i)
                except BPFError as exc:
                    if exc.errno == _errno.ENOENT:
                        continue
                    raise
                os.close(fd)
                still.append(i)
            pending = still
            if not pending or time.monotonic() >= deadline:
                return pending
            time.sleep(0.05)

    def netns(self, suffix: str | None = None) -> LabNetns:
        """Create a namespace named ``<prefix>-<random>-<n>[-suffix]``.

        :param suffix: appended to the name (letters, digits, ``-``, ``_``).
        :returns: the namespace.
        :raises TCError: it could not be created (not root...).
        :raises BackendUnavailableError: pyroute2 is not installed (the ``tc`` extra).
        """
        self._check_open()
        if suffix is not None and (not set(suffix) <= _PREFIX_OK or len(suffix) > 40):
            raise InvalidArgumentError(f"lab netns suffix {suffix!r}: [a-z0-9_-], at most 40")
        _pyroute2()  # before anything is made: BackendUnavailableError without it
        self._count += 1
        name = f"{self.prefix}-{self._token}-{self._count}" + (f"-{suffix}" if suffix else "")
        return LabNetns(self, name)

    def program(self, retcode: int, name: str, *, shared: bool = True) -> LabProgram:
        """Load (once per ``(retcode, name)``) a program ``r0 = retcode; exit``.

        :param retcode: what it returns.
        :param name: its name (at most 15 characters from ``[A-Za-z0-9_.]``).
        :param shared: False loads a new program every call (never reused).
        :returns: the program (its fd closes with the lab).
        :raises InvalidArgumentError: a bad name.
        :raises CapabilityError: not allowed to load BPF programs.
        """
        self._check_open()
        key = (retcode, name)
        prog = self._programs.get(key) if shared else None
        if prog is None:
            fd = _bpf.prog_load_return(retcode, name)
            self._state.prog_fds.append(fd)
            info = _bpf.prog_info(fd=fd)
            prog = LabProgram(fd, info.id, name, info.tag, retcode)
            self._loaded.append(prog)
            if shared:
                self._programs[key] = prog
        return prog

    def _register_link(self, fd: int) -> int:
        self._state.link_fds.append(fd)
        link_id = _bpf.link_info(fd).id
        self._link_ids.append(link_id)
        return link_id

    # --- scenes -------------------------------------------------------------------------------

    def scene_mimic_vendors(self, dev_prefix: str = "w3", *, up: bool = False) -> VendorScene:
        """Build one namespace where each vendor sits as it does in the wild.

        - ``<p>cil0``: Cilium (legacy tc) at priority 1, handle 1, returning OK, both directions;
        - ``<p>cal0``: Calico's preamble at the kernel's automatic priority (49152), UNSPEC;
        - ``<p>aws0``: the AWS network policy agent at priority 1, OK, both directions;
        - ``<p>unk0``: an unknown program at priority 5 returning OK;
        - ``<p>tcx0``: netobserv's tcx program (NEXT) then Cilium's tcx ``cil_from_netdev``
          (PASS) on ingress;
        - Datadog CWS's ``classifier_ingress``/``egress`` at priority 10 (UNSPEC) on every device,
          one program per device and direction as the agent loads them, so that each hook's
          run count is its own (``measure()`` tells blind, seen and idle devices apart).

        :param dev_prefix: start of the device names (at most 8 characters).
        :param up: bring every device up, so traffic can flow (e.g. ``ping -6 ff02::1%<dev>p``
            from a peer end arrives on the device's ingress hooks).
        :returns: what was built and the findings expected at classifier priority 10.
        """
        if len(dev_prefix) > 8:
            raise InvalidArgumentError(f"dev_prefix {dev_prefix!r}: at most 8 characters")
        ns = self.netns("vendors")
        roles = ("cilium", "calico", "aws", "unknown", "tcx")
        short = {"cilium": "cil", "calico": "cal", "aws": "aws", "unknown": "unk", "tcx": "tcx"}
        devices = {r: f"{dev_prefix}{short[r]}0" for r in roles}
        ns.add_veths([(d, f"{d}p") for d in devices.values()], up=up)
        ok, unspec = _bpf.TC_ACT_OK, _bpf.TC_ACT_UNSPEC
        d = devices
        specs = [
            # pkg/datapath/loader/tc.go: prio TCFilterPriority (1), handle 1, "<prog>-<dev>".
            FilterSpec(
                d["cilium"],
                "ingress",
                ok,
                "cil_from_contai",
                1,
                1,
                f"cil_from_container-{d['cilium']}",
            ),
            FilterSpec(
                d["cilium"],
                "egress",
                ok,
                "cil_to_containe",
                1,
                1,
                f"cil_to_container-{d['cilium']}",
            ),
            # felix/bpf/tc/attach.go via libbpf bpf_tc_attach: auto prio, "<prog>:[<id>]".
            FilterSpec(
                d["calico"], "ingress", unspec, "cali_tc_preambl", None, 1, "cali_tc_preambl:[{id}]"
            ),
            FilterSpec(
                d["calico"], "egress", unspec, "cali_tc_preambl", None, 1, "cali_tc_preambl:[{id}]"
            ),
            # aws-ebpf-sdk-go pkg/tc/tc.go: prio 1, handle 1, Name: funcName.
            FilterSpec(d["aws"], "ingress", ok, "handle_ingress", 1, 1, "handle_ingress"),
            FilterSpec(d["aws"], "egress", ok, "handle_egress", 1, 1, "handle_egress"),
            FilterSpec(d["unknown"], "ingress", ok, "mystery_fw", 5, 1, "mystery_fw"),
        ]
        # ebpf-manager: "<section>_<UID>_<pid>" with non-alphanumerics as "_", prio 10.
        for dev in d.values():
            for direction in ("ingress", "egress"):
                specs.append(
                    FilterSpec(
                        dev,
                        direction,
                        unspec,
                        f"classifier_{direction}"[:15],  # prog names are cut at 15
                        10,
                        2,
                        f"classifier_{direction}_security_{ns.inode}_{os.getpid()}",
                        shared=False,
                    )
                )
        progs = ns.add_filters(specs)
        ns.add_tcx(d["tcx"], "ingress", _bpf.TCX_NEXT, prog_name="tcx_ingress_flo")
        tcx = ns.add_tcx(d["tcx"], "ingress", _bpf.TCX_PASS, prog_name="cil_from_netdev")
        prog_ids = {
            "cilium": progs[0].id,
            "calico": progs[2].id,
            "aws": progs[4].id,
            "unknown": progs[6].id,
            "tcx": tcx.program.id,
            "datadog": progs[7].id,
        }
        expected = (
            ("network-blind", d["cilium"], "ingress"),
            ("network-blind", d["cilium"], "egress"),
            ("network-blind", d["aws"], "ingress"),
            ("network-blind", d["aws"], "egress"),
            ("lower-classifier-priority", d["unknown"], "ingress"),
            ("tcx-bypass", d["tcx"], "ingress"),
        )
        return VendorScene(ns.name, ns.path, dict(devices), prog_ids, expected, 4)

    def scene_veths(
        self,
        pairs: int = 500,
        *,
        netns: LabNetns | None = None,
        dev_prefix: str = "wl",
        filters: bool = True,
        up: bool = False,
    ) -> LabNetns:
        """Many veth pairs with clsact and 3 direct-action filters on each host end: Cilium-like
        OK at priority 1 on ingress and egress, and a Datadog-like UNSPEC at priority 10 on
        ingress (2 programs in all), as in the benchmark scene of
        ``docs/reference/kernel-tc.md#tc-speed``.

        :param pairs: how many veth pairs.
        :param netns: where (default: a new namespace).
        :param dev_prefix: device names are ``<prefix><n>`` and ``<prefix><n>p``.
        :param filters: add the 3 filters (False: clsact only).
        :param up: bring both ends up, as a pod's veth is (each up device also gets a
            ``noqueue`` root qdisc, which tools that dump qdiscs per device pay for).
        :returns: the namespace.
        """
        ns = netns or self.netns("veths")
        base = len(ns.ifindex)
        names = [(f"{dev_prefix}{base + i}", f"{dev_prefix}{base + i}p") for i in range(pairs)]
        for host, _ in names:
            _check_ifname(host + "p")
        ns.add_veths(names, up=up)
        if filters:
            ok, unspec = _bpf.TC_ACT_OK, _bpf.TC_ACT_UNSPEC
            specs: list[FilterSpec] = []
            for host, _ in names:
                specs += [
                    FilterSpec(
                        host, "ingress", ok, "cil_from_contai", 1, 1, f"cil_from_container-{host}"
                    ),
                    FilterSpec(
                        host,
                        "ingress",
                        unspec,
                        "classifier_ingr",
                        10,
                        2,
                        "classifier_ingress_security_0_1",
                    ),
                    FilterSpec(
                        host, "egress", ok, "cil_from_contai", 1, 1, f"cil_to_container-{host}"
                    ),
                ]
            ns.add_filters(specs)
        return ns

    def scene_namespaces(
        self,
        count: int = 100,
        ifaces: int = 10,
        *,
        dev_prefix: str = "wl",
        filters: bool = True,
        up: bool = False,
    ) -> list[LabNetns]:
        """Many namespaces, each with ``ifaces // 2`` veth pairs set up as in :meth:`scene_veths`.

        :param count: how many namespaces.
        :param ifaces: devices per namespace (besides ``lo``).
        :param dev_prefix: device name prefix.
        :param filters: add filters on the host ends.
        :param up: bring the devices up (see :meth:`scene_veths`).
        :returns: the namespaces.
        """
        out = []
        for _ in range(count):
            ns = self.netns("many")
            self.scene_veths(ifaces // 2, netns=ns, dev_prefix=dev_prefix, filters=filters, up=up)
            out.append(ns)
        return out
