"""Network namespaces: find them, label them, enter them from a thread, never create one.

Namespaces are found in three places: the named ones ``ip netns`` keeps under ``/var/run/netns``,
the sandboxes Docker keeps under ``/var/run/docker/netns``, and every process's
``/proc/<pid>/ns/net`` (which reaches namespaces nobody named, e.g. one made by ``unshare -n``).
They are deduplicated by the (st_dev, st_ino) of the nsfs inode, which is the namespace's identity.

Entering one is done per thread with ``setns(fd, CLONE_NEWNET)``: unlike pyroute2's netns support
this forks no helper process, and it never opens a path with ``O_CREAT`` (pyroute2's default flags
create a missing named namespace; reference tc-ebpf.md §1 "Other network namespaces").
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from wpprotect.errors import CapabilityError, InvalidArgumentError, NetnsNotFoundError, TCError

__all__ = [
    "NAMED_DIRS",
    "NetnsGoneError",
    "NetnsRef",
    "current_netns",
    "entered",
    "list_netns",
    "open_netns",
    "resolve_netns",
    "run_in_thread",
]


#: Where named namespaces live: ``ip netns`` first, then Docker's sandboxes (the same list
#: pyroute2 keeps in ``config.netns_path``).
NAMED_DIRS: tuple[str, ...] = ("/var/run/netns", "/var/run/docker/netns")

CLONE_NEWNET = 0x40000000  # include/uapi/linux/sched.h
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
    """

    __slots__ = ("current", "dev", "ino", "label", "path")

    def __init__(self, label: str, path: str, dev: int, ino: int, current: bool = False) -> None:
        self.label = label
        self.path = path
        self.dev = dev
        self.ino = ino
        self.current = current

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


def _host() -> tuple[tuple[int, int], str] | None:
    """The initial namespace's key and a path to it, when this process can see it."""
    # PID 1 may be unreadable (a sandboxing init); kthreadd (PID 2) always lives in init_net,
    # but inside a PID namespace PID 2 is an ordinary process, hence the name check.
    key = _stat_key("/proc/1/ns/net")
    if key is not None:
        return key, "/proc/1/ns/net"
    try:
        with open("/proc/2/comm", encoding="ascii", errors="replace") as fh:
            if fh.read().strip() != "kthreadd":
                return None
    except OSError:
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
    return NetnsRef(f"pid {os.getpid()}", f"/proc/{os.getpid()}/ns/net", dev, ino, current=True)


def list_netns() -> list[NetnsRef]:
    """Every network namespace reachable on this host, each once, current one first.

    The initial namespace is ``host``; named ones keep their name (``docker:<name>`` for
    Docker's); the rest are labelled by their lowest PID. Nothing is opened or created.
    """
    me = _self_key()
    host = _host()
    found: dict[tuple[int, int], NetnsRef] = {}
    if host is not None:
        # "host" wins over names: Docker bind-mounts the initial namespace as "default".
        (dev, ino), path = host
        found[(dev, ino)] = NetnsRef("host", path, dev, ino, current=(dev, ino) == me)
    for _name, label, path in _named():
        key = _stat_key(path)
        # A name left behind by a crashed `ip netns` is a plain file on /var/run, not nsfs.
        if key is None or key in found or key[0] != me[0]:
            continue
        found[key] = NetnsRef(label, path, key[0], key[1], current=key == me)
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    for pid in pids:
        path = f"/proc/{pid}/ns/net"
        key = _stat_key(path)
        if key is None or key in found:
            continue  # kernel threads and exited processes have no readable ns link
        label = _pid_label(pid)
        found[key] = NetnsRef(label, path, key[0], key[1], current=key == me)
    if me not in found:  # /proc hidden (hidepid): still scan where we are
        found[me] = current_netns()
    refs = list(found.values())
    refs.sort(key=lambda r: not r.current)  # stable: current first, then names, then pids
    return refs


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
