"""Network namespaces: find them, say what holds them, label them, enter them from a worker
thread, never create one.

:func:`discover` finds every namespace something keeps alive (docs/reference/kernel-tc.md#tc-netns),
each once, deduplicated by the (st_dev, st_ino) of its nsfs inode (the namespace's identity), and
records what holds it (:class:`Holder`):

- processes (``/proc/<pid>/ns/net``) and their threads (``/proc/<pid>/task/<tid>/ns/net``: a thread
  may have entered another namespace on its own);
- bind mounts anywhere, in every mount namespace this process can reach: the ``nsfs`` entries of
  each mount namespace's ``/proc/<pid>/mountinfo`` (``ip netns`` puts them under
  ``/var/run/netns``, Docker under ``/var/run/docker/netns``, others elsewhere);
- open descriptors (``/proc/<pid>/fd/<n>`` -> ``net:[<inode>]``), e.g. an agent that kept a
  namespace's fd after its pod went away.

What cannot be read (a process whose namespace or descriptors are refused to us) is counted in
:attr:`Discovery.warnings`, never skipped silently. The initial namespace is labelled ``host`` only
when it is really init's (a process of the initial PID namespace holds it): inside a PID+network
namespace, PID 1 is that namespace's own init.

Entering one is done per thread with ``setns(fd, CLONE_NEWNET)``: unlike pyroute2's netns support
this forks no helper process, and it never opens a path with ``O_CREAT`` (pyroute2's default flags
create a missing named namespace; ``docs/reference/kernel-tc.md#tc-netns``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from wpprotect.errors import CapabilityError, InvalidArgumentError, NetnsNotFoundError, TCError
from wpprotect.tc._assess import AGENT_HOLDER_MARK
from wpprotect.tc._model import Finding, NamespaceInfo

__all__ = [
    "NAMED_DIRS",
    "Discovery",
    "Holder",
    "NetnsGoneError",
    "NetnsRef",
    "current_netns",
    "discover",
    "entered",
    "held_by_agent_findings",
    "list_netns",
    "open_netns",
    "resolve_netns",
    "run_in_thread",
]


#: Where named namespaces live: ``ip netns`` first, then Docker's sandboxes (the same list
#: pyroute2 keeps in ``config.netns_path``).
NAMED_DIRS: tuple[str, ...] = ("/var/run/netns", "/var/run/docker/netns")

CLONE_NEWNET = 0x40000000  # include/uapi/linux/sched.h
PROC_PID_INIT_INO = 0xEFFFFFFC  # include/linux/proc_ns.h: the initial PID namespace (Linux 3.8+)
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3), include/uapi/linux/nsfs.h (Linux 4.11+)

# A 64-hex container id anywhere in a cgroup path (docker-<id>.scope, /docker/<id>,
# cri-containerd-<id>.scope, crio-<id>.scope); compiled on first use.
T = TypeVar("T")

_CONTAINER_ID = r"([0-9a-f]{64})"
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.@:+-")


class NetnsGoneError(TCError):
    """A namespace that was listed disappeared before it could be read (the scan skips it)."""


class NetnsRef:
    """One network namespace, as found on this host.

    :ivar label: ``host`` for the initial namespace, else its ``ip netns`` name, or
        ``docker:<name>`` for a Docker sandbox, else ``pid N (comm)`` plus a short container
        id when the cgroup names one.
    :ivar path: a path that opens it (a bind mount or ``/proc/<pid>/ns/net``).
    :ivar dev: st_dev of the nsfs inode.
    :ivar ino: st_ino of the nsfs inode: the ``net:[ino]`` number ``ls -l /proc/*/ns/net`` shows.
    :ivar current: True if it is the namespace the calling process runs in.
    :ivar holders: what keeps it alive, as :func:`discover` found it (empty when not looked up).
    """

    __slots__ = ("current", "dev", "holders", "ino", "label", "path")

    def __init__(  # noqa: PLR0917 - a record
        self, label: str, path: str, dev: int, ino: int, current: bool = False,
        holders: tuple[Holder, ...] = (),
    ) -> None:  # fmt: skip
        self.label = label
        self.path = path
        self.dev = dev
        self.ino = ino
        self.current = current
        self.holders = holders

    def holder_labels(self, limit: int = 5) -> tuple[str, ...]:
        """The holders as text for :class:`~wpprotect.tc._model.NamespaceInfo`: every mount and
        descriptor, and up to ``limit`` processes and threads (then ``and N more processes``)."""
        return holder_labels(self.holders, limit)

    @property
    def id(self) -> str:
        """``dev:inode``, the namespace's identity."""
        return f"{self.dev}:{self.ino}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NetnsRef):
            return NotImplemented
        return (self.dev, self.ino, self.label, self.path) == (
            other.dev, other.ino, other.label, other.path,
        )  # fmt: skip

    def __hash__(self) -> int:
        return hash((self.dev, self.ino))

    def __repr__(self) -> str:
        return f"<NetnsRef {self.label!r} net:[{self.ino}]>"


def _stat_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _self_key() -> tuple[int, int]:
    # /proc/thread-self: a worker thread may have entered another namespace.
    key = _stat_key("/proc/thread-self/ns/net") or _stat_key("/proc/self/ns/net")
    if key is None:
        raise TCError("cannot read /proc/self/ns/net: is /proc mounted?")
    return key


def _initial_pidns(pid: int) -> bool:
    """Whether ``pid`` (as /proc numbers it) lives in the initial PID namespace."""
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino == PROC_PID_INIT_INO
    except OSError:
        return False


def _host() -> tuple[tuple[int, int], str] | None:
    """The initial namespace's key and a path to it, when this process can see it."""
    # PID 1 holds init_net only if it is the real init: inside a PID namespace (with its own
    # /proc) PID 1 is that namespace's first process, whose network namespace may be ours.
    # PID 1 may also be unreadable (a sandboxing init); kthreadd (PID 2) always lives in
    # init_net, but inside a PID namespace PID 2 is an ordinary process, hence the checks.
    key = _stat_key("/proc/1/ns/net")
    if key is not None and _initial_pidns(1):
        return key, "/proc/1/ns/net"
    try:
        with open("/proc/2/comm", encoding="ascii", errors="replace") as fh:
            if fh.read().strip() != "kthreadd":
                return None
    except OSError:
        return None
    if not _initial_pidns(2):
        return None
    key = _stat_key("/proc/2/ns/net")
    return None if key is None else (key, "/proc/2/ns/net")


def _pid_label(pid: int) -> str:
    """``pid N (comm)`` plus ``container <12 hex>`` when /proc/<pid>/cgroup names one."""
    label = f"pid {pid}"
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            label += f" ({fh.read().strip()})"
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as fh:
            match = re.search(_CONTAINER_ID, fh.read(4096))
        if match:
            label += f" container {match.group(1)[:12]}"
    except OSError:
        pass  # the process ended while being labelled: the pid alone still says where
    return label


def _named() -> Iterator[tuple[str, str, str]]:
    """(name, label, path) of every named namespace, ``ip netns`` ones first.

    Docker's sandboxes are labelled ``docker:<name>`` (their names are sandbox ids, which say
    little without the prefix).
    """
    for directory in NAMED_DIRS:
        try:
            entries = sorted(os.listdir(directory))
        except OSError:
            continue
        docker = directory == "/var/run/docker/netns"
        for name in entries:
            yield name, f"docker:{name}" if docker else name, os.path.join(directory, name)


def current_netns() -> NetnsRef:
    """The namespace the calling thread runs in, labelled by name when it has one."""
    dev, ino = _self_key()
    host = _host()
    if host is not None and host[0] == (dev, ino):
        return NetnsRef("host", host[1], dev, ino, current=True)
    for _name, label, path in _named():
        if _stat_key(path) == (dev, ino):
            return NetnsRef(label, path, dev, ino, current=True)
    pid = os.getpid()
    return NetnsRef(_pid_label(pid), f"/proc/{pid}/ns/net", dev, ino, current=True)


def list_netns() -> list[NetnsRef]:
    """Every network namespace reachable on this host, each once, current one first, each
    with what holds it (:func:`discover` without its warnings).

    The initial namespace is ``host``; named ones keep their name (``docker:<name>`` for
    Docker's); the rest are labelled by their lowest PID, a bind mount's path, or the process
    holding a descriptor. Nothing is opened or created.
    """
    return discover().refs


def resolve_netns(spec: str | os.PathLike[str] | None) -> NetnsRef:
    """Resolve ``None`` (current), a name or a path to one namespace, without creating anything.

    :param spec: ``None`` for the current namespace; a name looked up in :data:`NAMED_DIRS`;
        or a path (anything with a ``/``), e.g. ``/proc/1234/ns/net`` or a bind mount.
    :returns: the namespace.
    :raises NetnsNotFoundError: no such name, the path does not exist, or it is not a network
        namespace.
    :raises InvalidArgumentError: the name is malformed.
    """
    if spec is None:
        return current_netns()
    text = os.fspath(spec)
    if "/" not in text:
        if not 1 <= len(text) <= 255 or not set(text) <= _NAME_CHARS or text in {".", ".."}:
            raise InvalidArgumentError(
                f"invalid network namespace name {text!r}: use a name from `ip netns list` "
                "or a path such as /proc/<pid>/ns/net"
            )
        for directory in NAMED_DIRS:
            path = os.path.join(directory, text)
            if os.path.lexists(path):
                break
        else:
            known = sorted({name for name, _, _ in _named()})
            raise NetnsNotFoundError(
                f"no network namespace named {text!r} in {' or '.join(NAMED_DIRS)}"
                + (f"; known: {', '.join(known[:20])}" if known else "; none exist"),
                target=text,
            )
    else:
        path = text
    fd = open_netns(path, label=text)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    me = _self_key()
    label = text
    host = _host()
    if host is not None and host[0] == (st.st_dev, st.st_ino):
        label = "host"  # e.g. Docker's "default", or /proc/1/ns/net
    elif "/" not in text and path.startswith("/var/run/docker/"):
        label = f"docker:{text}"  # as list_netns() labels it
    elif text.startswith("/proc/"):
        parts = text.split("/")
        if len(parts) > 2 and parts[2].isdigit():
            label = _pid_label(int(parts[2]))
    return NetnsRef(label, path, st.st_dev, st.st_ino, current=(st.st_dev, st.st_ino) == me)


def open_netns(path: str, *, label: str | None = None, expect: NetnsRef | None = None) -> int:
    """Open a namespace file read-only (never ``O_CREAT``) and check it is a network namespace.

    :param path: the nsfs file or bind mount.
    :param label: how to name it in errors (defaults to ``path``).
    :param expect: if given, the opened namespace must be this one (guards against a name or a
        PID reused between listing and reading).
    :returns: an fd the caller closes.
    :raises NetnsNotFoundError: missing, or not a network namespace (when ``expect`` is None).
    :raises NetnsGoneError: ``expect`` was given and it no longer exists at ``path``.
    """
    what = label or path
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        if expect is not None:
            raise NetnsGoneError(f"network namespace {what!r} vanished", target=what) from exc
        raise NetnsNotFoundError(
            f"network namespace {what!r} does not exist ({path})", target=what
        ) from exc
    except ProcessLookupError as exc:
        raise NetnsGoneError(f"network namespace {what!r} vanished", target=what) from exc
    except PermissionError as exc:
        raise CapabilityError(
            f"opening network namespace {what!r} needs root (CAP_SYS_ADMIN)", target=what
        ) from exc
    except OSError as exc:
        raise NetnsNotFoundError(
            f"cannot open network namespace {what!r}: {exc.strerror}", target=what
        ) from exc
    try:
        st = os.fstat(fd)
        if expect is not None and (st.st_dev, st.st_ino) != (expect.dev, expect.ino):
            raise NetnsGoneError(
                f"network namespace {what!r} vanished (its path now names another)", target=what
            )
        try:
            nstype = fcntl.ioctl(fd, NS_GET_NSTYPE)
        except OSError as exc:
            raise NetnsNotFoundError(
                f"{path} is not a namespace file (a bind mount of /proc/<pid>/ns/net is)",
                target=what,
            ) from exc
        if nstype != CLONE_NEWNET:
            raise NetnsNotFoundError(f"{path} is a namespace but not a network one", target=what)
    except BaseException:
        os.close(fd)
        raise
    return fd


_setns_impl: list[Callable[[int, int], int]] = []


def _setns(fd: int) -> None:
    """``setns(fd, CLONE_NEWNET)`` for the calling thread only."""
    native = getattr(os, "setns", None)  # Python 3.12+
    if native is not None:
        native(fd, CLONE_NEWNET)
        return
    if not _setns_impl:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.setns
        func.argtypes = (ctypes.c_int, ctypes.c_int)
        func.restype = ctypes.c_int
        _setns_impl.append(func)
    if _setns_impl[0](fd, CLONE_NEWNET) != 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextmanager
def entered(ref: NetnsRef) -> Iterator[None]:
    """Run the body with the calling thread inside ``ref`` (no-op for the current namespace).

    Only this thread moves; sockets created inside stay bound to ``ref`` after the block. The
    thread is moved back afterwards, so pooled threads can be reused.

    :raises NetnsGoneError: the namespace no longer exists.
    :raises CapabilityError: entering needs CAP_SYS_ADMIN.
    """
    if (ref.dev, ref.ino) == _self_key():
        yield
        return
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = open_netns(ref.path, label=ref.label, expect=ref)
        try:
            try:
                _setns(target)
            except OSError as exc:
                if exc.errno == errno.EPERM:
                    raise CapabilityError(
                        "entering another network namespace needs CAP_SYS_ADMIN",
                        target=ref.label,
                    ) from exc
                raise NetnsGoneError(
                    f"cannot enter network namespace {ref.label!r}: {exc.strerror}",
                    target=ref.label,
                ) from exc
        finally:
            os.close(target)
        try:
            yield
        finally:
            try:
                _setns(home)
            except OSError as exc:  # pragma: no cover - going home cannot fail as root
                raise TCError(
                    f"could not return thread {threading.get_ident()} to its namespace"
                ) from exc
    finally:
        os.close(home)


def run_in_thread(fn: Callable[..., T], *args: object) -> T:
    """Call ``fn(*args)`` in a new worker thread, wait for it, and return its result (or raise
    its exception).

    Code that enters namespaces (:func:`entered`) runs here, never in the calling thread: when
    that is the process's main thread, ``/proc/self`` (and so ``/proc/net``) follows it, and
    every other thread of the process would see the entered namespace's ``/proc/net`` meanwhile.
    A Ctrl-C in the caller interrupts the wait; the worker (a daemon thread) finishes its
    namespace and goes home on its own.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def work() -> None:
        try:
            result.append(fn(*args))
        except BaseException as exc:
            error.append(exc)

    worker = threading.Thread(target=work, name="wpprotect-netns", daemon=True)
    worker.start()
    worker.join()
    if error:
        raise error[0]
    return result[0]


# --- discovery: every namespace, and what holds it ----------------------------------------------

_AGENT_COMMS = frozenset({"system-probe", "security-agent", "process-agent", "trace-agent"})
_AGENT_MARK = AGENT_HOLDER_MARK
_MORE = "and "


class Holder:
    """One thing that keeps a network namespace alive.

    :ivar kind: ``process`` (its main thread runs there), ``thread`` (one thread entered it),
        ``mount`` (an nsfs bind mount) or ``fd`` (an open descriptor).
    :ivar pid: the process (for ``mount``: a process of the mount namespace holding it).
    :ivar comm: the process's name.
    :ivar tid: the thread (``thread``).
    :ivar fd: the descriptor number (``fd``).
    :ivar path: the mount point (``mount``), as the mount namespace sees it.
    :ivar foreign_mnt: the mount lives in another mount namespace than ours.
    :ivar agent: the process is a Datadog agent (``system-probe``, ``security-agent``...).
    """

    __slots__ = ("agent", "comm", "fd", "foreign_mnt", "kind", "path", "pid", "tid")

    def __init__(
        self, kind: str, pid: int, *, comm: str = "", tid: int | None = None,
        fd: int | None = None, path: str | None = None, foreign_mnt: bool = False,
        agent: bool = False,
    ) -> None:  # fmt: skip
        self.kind = kind
        self.pid = pid
        self.comm = comm
        self.tid = tid
        self.fd = fd
        self.path = path
        self.foreign_mnt = foreign_mnt
        self.agent = agent

    def __str__(self) -> str:
        who = f"pid {self.pid}" + (f" ({self.comm})" if self.comm else "")
        if self.kind == "thread":
            return f"tid {self.tid} of {who}"
        if self.kind == "mount":
            where = f" (mount namespace of {who})" if self.foreign_mnt else ""
            return f"mount {self.path}{where}"
        if self.kind == "fd":
            return f"fd {self.fd} of {who}" + (_AGENT_MARK if self.agent else "")
        return who

    def __repr__(self) -> str:
        return f"<Holder {self}>"


def holder_labels(holders: tuple[Holder, ...], limit: int = 5) -> tuple[str, ...]:
    """Holders as text: mounts and descriptors all, processes and threads up to ``limit``."""
    busy = [h for h in holders if h.kind in {"process", "thread"}]
    out = [str(h) for h in busy[:limit]]
    if len(busy) > limit:
        out.append(f"{_MORE}{len(busy) - limit} more processes or threads")
    out += [str(h) for h in holders if h.kind not in {"process", "thread"}]
    return tuple(out)


class Discovery:
    """What :func:`discover` found.

    :ivar refs: every namespace, current first, each with its holders.
    :ivar warnings: what could not be read (counted, with the first few named).
    """

    __slots__ = ("refs", "warnings")

    def __init__(self, refs: list[NetnsRef], warnings: list[str]) -> None:
        self.refs = refs
        self.warnings = warnings

    def __repr__(self) -> str:
        return f"<Discovery {len(self.refs)} namespaces, {len(self.warnings)} warnings>"


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _is_agent(pid: int, comm: str) -> bool:
    """A Datadog agent process: by name, or by its executable under /opt/datadog-agent."""
    if comm in _AGENT_COMMS:
        return True
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return exe.startswith("/opt/datadog-agent/")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo (fs/proc_namespace.c).
    if "\\" not in field:
        return field
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _nsfs_mounts(pid: int) -> list[tuple[int, str]] | None:
    """``(inode, mount point)`` of every network-namespace bind mount in the mount namespace of
    ``pid``; None when its mountinfo cannot be read."""
    out: list[tuple[int, str]] = []
    try:
        with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
            for line in fh:
                if " - nsfs " not in line:
                    continue
                fields = line.split(" ", 5)  # id, parent, dev, root, mount point, rest
                root = fields[3]
                if root.startswith("net:[") and root.endswith("]"):
                    out.append((int(root[5:-1]), _unescape(fields[4])))
    except (OSError, ValueError, IndexError):
        return None
    return out


def _named_labels() -> dict[str, str]:
    """Mount path -> label (the ``ip netns`` name, or ``docker:<name>``)."""
    return {path: label for _name, label, path in _named()}


def _refused(exc: OSError) -> bool:
    return exc.errno in (errno.EACCES, errno.EPERM)


def _warn(what: str, items: list[str]) -> str:
    shown = ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
    return (
        f"{what} of {len(items)} process{'es' * (len(items) != 1)} could not be read "
        f"(permission denied): {shown}; a network namespace only they reach was not scanned"
    )


def discover() -> Discovery:
    """Every network namespace something keeps alive, each once, with its holders.

    Order: the current namespace first, then ``host``, named ones, the rest by lowest PID.
    Nothing is opened for writing or created; only ``/proc`` is read.
    """
    me = _self_key()
    nsdev = me[0]
    host = _host()
    found: dict[tuple[int, int], NetnsRef] = {}
    holders: dict[tuple[int, int], list[Holder]] = {}
    if host is not None:
        # "host" wins over names: Docker bind-mounts the initial namespace as "default".
        (dev, ino), path = host
        found[(dev, ino)] = NetnsRef("host", path, dev, ino, current=(dev, ino) == me)
    for _name, label, path in _named():
        key = _stat_key(path)
        # A name left behind by a crashed `ip netns` is a plain file on /var/run, not nsfs.
        if key is None or key in found or key[0] != nsdev:
            continue
        found[key] = NetnsRef(label, path, key[0], key[1], current=key == me)

    def hold(key: tuple[int, int], holder: Holder, path: str, label: str | None = None) -> None:
        if key not in found:  # labelled by the first holder found (the lowest PID)
            if label is None:
                label = _pid_label(holder.pid)
                if holder.kind == "thread":
                    label = f"tid {holder.tid} of {label}"
                elif holder.kind == "fd":
                    label = f"fd {holder.fd} of {label}"
            found[key] = NetnsRef(label, path, key[0], key[1], current=key == me)
        holders.setdefault(key, []).append(holder)

    refused_ns: list[str] = []
    refused_fd: list[str] = []
    refused_mnt: list[str] = []
    my_mnt = _stat_key("/proc/self/ns/mnt")
    mount_namespaces: set[tuple[int, int]] = set()
    named = _named_labels()
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    for pid in pids:
        base = f"/proc/{pid}"
        comm = ""
        try:
            st = os.stat(f"{base}/ns/net")
        except OSError as exc:
            if _refused(exc):
                refused_ns.append(_pid_label(pid))
            continue  # exited meanwhile (or a zombie): nothing holds a namespace there
        key = (st.st_dev, st.st_ino)
        comm = _comm(pid)
        hold(key, Holder("process", pid, comm=comm), f"{base}/ns/net")
        # Threads that entered another namespace on their own.
        try:
            tids = os.listdir(f"{base}/task")
        except OSError:
            tids = []
        if len(tids) > 1:
            for t in tids:
                if t == str(pid):
                    continue
                tkey = _stat_key(f"{base}/task/{t}/ns/net")
                if tkey is not None and tkey != key:
                    hold(
                        tkey,
                        Holder("thread", pid, comm=comm, tid=int(t)),
                        f"{base}/task/{t}/ns/net",
                    )
        # Bind mounts, once per mount namespace.
        mkey = _stat_key(f"{base}/ns/mnt")
        if mkey is not None and mkey not in mount_namespaces:
            mount_namespaces.add(mkey)
            mounts = _nsfs_mounts(pid)
            if mounts is None:
                refused_mnt.append(_pid_label(pid))
            for ino, point in mounts or ():
                ours = mkey == my_mnt
                path = point if ours else f"{base}/root{point}"
                label = (
                    named.get(point, point) if ours else f"{point} (mount namespace of pid {pid})"
                )
                hold(
                    (nsdev, ino),
                    Holder("mount", pid, comm=comm, path=point, foreign_mnt=not ours),
                    path,
                    label,
                )
        # Open descriptors.
        try:
            fds = os.listdir(f"{base}/fd")
        except OSError as exc:
            if _refused(exc):
                refused_fd.append(_pid_label(pid))
            continue
        agent: bool | None = None
        for fd in fds:
            try:
                target = os.readlink(f"{base}/fd/{fd}")
            except OSError:
                continue
            if not target.startswith("net:["):
                continue
            if agent is None:
                agent = _is_agent(pid, comm)
            fkey = (nsdev, int(target[5:-1]))
            hold(
                fkey,
                Holder("fd", pid, comm=comm, fd=int(fd), agent=agent),
                f"{base}/fd/{fd}",
            )
    if me not in found:  # /proc hidden (hidepid): still scan where we are
        found[me] = current_netns()
    elif found[me].label.startswith(("pid ", "tid ", "fd ")):
        # Our own namespace, not init's nor named: labelled as current_netns() labels it.
        ref = found[me]
        found[me] = NetnsRef(current_netns().label, ref.path, ref.dev, ref.ino, current=True)
    refs = []
    for key, ref in found.items():
        ref.holders = tuple(holders.get(key, ()))
        refs.append(ref)
    refs.sort(key=lambda r: not r.current)  # stable: current first, then host, names, pids
    warnings = []
    if refused_ns:
        warnings.append(_warn("the network namespace", refused_ns))
    if refused_fd:
        warnings.append(_warn("the open descriptors", refused_fd))
    if refused_mnt:
        warnings.append(_warn("the mount table", refused_mnt))
    return Discovery(refs, warnings)


def held_by_agent_findings(
    namespaces: Iterable[NamespaceInfo], classifier_priority: int = 10
) -> list[Finding]:
    """``netns-held-by-agent`` findings for ``namespaces``: see
    :func:`wpprotect.tc._assess.held_by_agent_findings` (the assessment raises them itself)."""
    from wpprotect.tc._assess import held_by_agent_findings as judge

    return judge(namespaces, classifier_priority)
