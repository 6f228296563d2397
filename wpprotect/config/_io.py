"""Safe file I/O for config files: bounded reads of regular files and atomic writes.

Write rule: a new file is written next to the target as ``.<name>.wpprotect-tmp-<random>``
(created with ``O_EXCL``, so it is never someone else's file), flushed and fsynced, given the
target's mode, owner and group, then renamed over the target with :func:`os.replace` (atomic on
POSIX within one file system), and the directory is fsynced so the rename itself survives a power
cut. Readers therefore see the whole old file or the whole new one, never a mix.

A crash (or SIGKILL) between creating the temp file and the rename can leave one
``.<name>.wpprotect-tmp-*`` file behind; it is never read by wpprotect and is safe to delete.

Symlinks: a path that is a symlink is followed and the *target* file is replaced, in the target's
own directory (the link itself is kept). Callers that must not follow links refuse them before
writing (``ConfigEditor.load(path, follow_symlinks=False)``).

Extended attributes, ACLs and SELinux labels of the old file are not copied.

Plans use the stricter pair :func:`open_config` / :func:`replace_entry`: the file is opened
relative to a file descriptor of its directory with ``O_NOFOLLOW``, every check (regular file,
owner, link count) is made on the opened descriptor, a symlink is followed only when the caller
opts in or when it is a plain name in the same directory and that directory is writable by root
alone, and a replacement never writes through a link (``rename`` replaces the directory entry).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import functools
import hashlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from wpprotect.errors import ConfigConflictError, ConfigFileError, UnsafePathError

__all__ = [
    "AGENT_USER",
    "TMP_MARKER",
    "EntryState",
    "OpenedFile",
    "atomic_write",
    "backup_file",
    "open_config",
    "read_regular_file",
    "replace_entry",
    "restore_backup",
]

#: The account the agent's packages give ``/etc/datadog-agent`` to; its files are accepted.
AGENT_USER = "dd-agent"

#: The part of a temp file's name that marks it as wpprotect's (``.<name>.wpprotect-tmp-XXXXXXXX``).
TMP_MARKER = ".wpprotect-tmp-"

_DEFAULT_MODE = 0o644


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFLNK: "a symlink",
}


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def read_regular_file(
    path: str | os.PathLike[str], *, max_bytes: int, follow_symlinks: bool = True
) -> tuple[bytes, os.stat_result]:
    """Read a whole regular file, refusing anything else before opening it.

    Directories, FIFOs, sockets and devices are refused from ``lstat``/``stat`` alone (opening a
    FIFO or a tape device could block or have side effects); the opened file is checked again
    with ``fstat`` so a swap between the check and the open is caught.

    :param path: the file.
    :param max_bytes: refuse files larger than this.
    :param follow_symlinks: when False, a symlink is refused.
    :returns: the bytes and the ``fstat`` of the opened file.
    :raises ConfigFileError: missing, not a regular file, a refused symlink, too large, or
        unreadable.
    """
    p = Path(path)
    try:
        lst = os.lstat(p)
        if stat.S_ISLNK(lst.st_mode) and not follow_symlinks:
            raise ConfigFileError("refusing to follow a symlink", path=p)
        st = os.stat(p)
    except FileNotFoundError as exc:
        raise ConfigFileError("no such file", path=p) from exc
    except OSError as exc:
        raise ConfigFileError(f"cannot stat the file: {exc.strerror}", path=p) from exc
    if not stat.S_ISREG(st.st_mode):
        raise ConfigFileError(f"expected a regular file, found {_kind(st.st_mode)}", path=p)
    if st.st_size > max_bytes:
        raise ConfigFileError(
            f"file is too large ({st.st_size} bytes, the limit is {max_bytes})", path=p
        )
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(p, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigFileError("refusing to follow a symlink", path=p) from exc
        raise ConfigFileError(f"cannot open the file: {exc.strerror}", path=p) from exc
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode) or (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
            raise ConfigFileError("the file was replaced while it was being opened", path=p)
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise ConfigFileError(f"file is too large (over {max_bytes} bytes)", path=p)
            chunks.append(chunk)
    except OSError as exc:
        raise ConfigFileError(f"cannot read the file: {exc.strerror}", path=p) from exc
    finally:
        os.close(fd)
    return b"".join(chunks), fst


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(
    directory: Path, name: str, data: bytes, *, mode: int, uid: int | None, gid: int | None
) -> Path:
    """Create, fill, chown/chmod and fsync a fresh temp file in ``directory``; return its path."""
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return directory / _temp_at(dfd, directory, name, data, mode=mode, uid=uid, gid=gid)
    finally:
        os.close(dfd)


def _resolve_target(path: Path) -> Path:
    # Follow symlinks: the file the link points at is replaced, the link is kept.
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    mode: int | None = None,
    uid: int | None = None,
    gid: int | None = None,
    follow_symlinks: bool = False,
) -> None:
    """Replace ``path`` with ``data`` atomically (see the module docstring for the rule).

    Mode, owner and group default to those of the existing file (or ``0o644`` and the caller's
    ids for a new file). A symlink is refused, unless ``follow_symlinks`` is True: then the file
    it points at is replaced and the link kept. (A link planted after the check is replaced by
    the rename, never written through.)

    :param path: the file to write.
    :param data: the complete new content.
    :param mode: permission bits for the file; default: keep the existing ones.
    :param uid: owner; default: keep the existing owner.
    :param gid: group; default: keep the existing group.
    :param follow_symlinks: write the file a symlink at ``path`` points at (opt-in, for a
        layout only root can write to).
    :raises UnsafePathError: ``path`` is a symlink and ``follow_symlinks`` is False.
    :raises ConfigFileError: the file could not be written (nothing was changed), or the target
        exists but is not a regular file.
    """
    if not follow_symlinks and Path(path).is_symlink():
        raise UnsafePathError(
            "refusing to write through a symlink (pass follow_symlinks=True to replace the file "
            "it points at)",
            path=path,
        )
    target = _resolve_target(Path(path))
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ConfigFileError(f"cannot stat the file: {exc.strerror}", path=target) from exc
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ConfigFileError(f"refusing to replace {_kind(st.st_mode)} with a file", path=target)
    if mode is None:
        mode = stat.S_IMODE(st.st_mode) if st is not None else _DEFAULT_MODE
    if st is not None:
        uid = st.st_uid if uid is None else uid
        gid = st.st_gid if gid is None else gid
    directory = target.parent
    try:
        tmp = _write_temp(directory, target.name, data, mode=mode, uid=uid, gid=gid)
    except ConfigFileError:
        raise
    except OSError as exc:
        raise ConfigFileError(
            f"cannot write a temp file next to the target: {exc.strerror}", path=target
        ) from exc
    try:
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ConfigFileError(f"cannot replace the file: {exc.strerror}", path=target) from exc
    try:
        _fsync_dir(directory)
    except OSError as exc:  # the data is in place; only its durability is unconfirmed
        raise ConfigFileError(
            f"written, but the directory could not be synced: {exc.strerror}", path=target
        ) from exc


def _utc_stamp() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def backup_file(path: str | os.PathLike[str], *, data: bytes | None = None) -> Path:
    """Copy a file to ``<name>.wpprotect-<UTC timestamp>.bak`` beside it, atomically.

    The backup gets the file's mode, owner and group, is fsynced under a temp name and then
    hard-linked to its final name, so it either exists complete or not at all, and an existing
    backup is never overwritten. A symlink is followed: the target's content is backed up beside
    the target.

    :param path: the file to back up.
    :param data: the content to store (default: the file's current content). ``ConfigEditor``
        passes the bytes it loaded, which it has just checked are still on disk.
    :returns: the backup's path.
    :raises ConfigFileError: the file cannot be read or the backup cannot be written.
    """
    target = _resolve_target(Path(path))
    try:
        st = os.stat(target)
        if data is None:
            data, st = read_regular_file(target, max_bytes=1 << 40)
    except FileNotFoundError as exc:
        raise ConfigFileError("no such file to back up", path=target) from exc
    except OSError as exc:
        raise ConfigFileError(f"cannot read the file: {exc.strerror}", path=target) from exc
    directory = target.parent
    try:
        tmp = _write_temp(
            directory,
            target.name,
            data,
            mode=stat.S_IMODE(st.st_mode),
            uid=st.st_uid,
            gid=st.st_gid,
        )
    except OSError as exc:
        raise ConfigFileError(f"cannot write a backup: {exc.strerror}", path=target) from exc
    try:
        stamp = _utc_stamp()
        for n in range(100):
            suffix = "" if n == 0 else f".{n}"
            backup = directory / f"{target.name}.wpprotect-{stamp}{suffix}.bak"
            try:
                os.link(tmp, backup)
            except FileExistsError:
                continue
            break
        else:  # pragma: no cover - 100 backups in the same microsecond
            raise ConfigFileError("cannot find a free backup name", path=target)
        _fsync_dir(directory)
    except OSError as exc:
        raise ConfigFileError(f"cannot write a backup: {exc.strerror}", path=target) from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return backup


def restore_backup(backup: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Put a backup's content back in place, atomically, keeping the backup.

    :param backup: a path returned by :func:`backup_file`.
    :param path: the file to restore.
    :raises ConfigFileError: the backup cannot be read or the file cannot be written.
    """
    data, st = read_regular_file(backup, max_bytes=1 << 40, follow_symlinks=False)
    atomic_write(path, data, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid)


# --- directory-relative, no-follow access (plans) ---------------------------------------------

_MAX_LINK_HOPS = 8


@functools.cache
def _agent_uid() -> int | None:
    import pwd

    try:
        return pwd.getpwnam(AGENT_USER).pw_uid
    except KeyError:
        return None


def trusted_owners() -> frozenset[int]:
    """The owners a config file may have: root, the agent's user (if it exists) and the caller."""
    uid = _agent_uid()
    return frozenset({0, os.geteuid(), *(() if uid is None else (uid,))})


def _dir_writers(st: os.stat_result) -> str | None:
    """Who besides root (and the caller) can write in a directory, or None if nobody."""
    trusted = {0, os.geteuid()}
    if st.st_uid not in trusted:
        return f"its owner (uid {st.st_uid})"
    if st.st_mode & stat.S_IWGRP and st.st_gid != 0:
        return f"its group (gid {st.st_gid})"
    if st.st_mode & stat.S_IWOTH:
        return "everyone"
    return None


class OpenedFile(NamedTuple):
    """A config file read by :func:`open_config`."""

    data: bytes
    """Its content."""
    stat: os.stat_result
    """``fstat`` of the descriptor that was read."""
    directory: Path
    """The directory that holds the entry (after an accepted symlink was followed)."""
    name: str
    """The entry's name in ``directory``."""
    dir_id: tuple[int, int]
    """``(st_dev, st_ino)`` of the directory."""

    @property
    def path(self) -> Path:
        """``directory / name``."""
        return self.directory / self.name


def _open_dir(directory: Path, *, expect: tuple[int, int] | None = None) -> int:
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise ConfigFileError("no such directory", path=directory) from exc
    except OSError as exc:
        raise ConfigFileError(f"cannot open the directory: {exc.strerror}", path=directory) from exc
    if expect is not None:
        st = os.fstat(dfd)
        if (st.st_dev, st.st_ino) != expect:
            os.close(dfd)
            raise UnsafePathError(
                "the directory was replaced since the plan was made", path=directory
            )
    return dfd


def _hop(dfd: int, directory: Path, name: str, *, follow_symlinks: bool) -> str | Path:
    """Decide about the symlink ``name`` in ``dfd``: the next entry name in the same directory,
    a new absolute path (``follow_symlinks``), or raise :class:`UnsafePathError`."""
    path = directory / name
    try:
        link = os.readlink(name, dir_fd=dfd)
    except OSError as exc:
        raise ConfigFileError(f"cannot read the symlink: {exc.strerror}", path=path) from exc
    if follow_symlinks:
        return Path(os.path.realpath(path))
    writers = _dir_writers(os.fstat(dfd))
    if writers is not None:
        raise UnsafePathError(
            f"refusing to follow the symlink (-> {link}): the directory is writable by "
            f"{writers}, not only by root; pass follow_symlinks=True to follow it anyway",
            path=path,
        )
    if "/" in link or link in ("", ".", ".."):
        raise UnsafePathError(
            f"refusing to follow the symlink (-> {link}): it leaves the directory; pass "
            "follow_symlinks=True to follow it anyway",
            path=path,
        )
    return link


def _open_entry(dfd: int, directory: Path, name: str, *, links: bool) -> tuple[int, str | None]:
    """Open ``name`` in ``dfd`` without following a link; return (fd, None), or (-1, name) when
    it is a symlink and ``links`` allows the caller to decide."""
    path = directory / name
    try:
        lst = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError as exc:
        raise ConfigFileError("no such file", path=path) from exc
    except OSError as exc:
        raise ConfigFileError(f"cannot stat the file: {exc.strerror}", path=path) from exc
    if stat.S_ISLNK(lst.st_mode):
        if links:
            return -1, name
        raise UnsafePathError("refusing to follow a symlink", path=path)
    if not stat.S_ISREG(lst.st_mode):
        # refused before opening: opening a FIFO or a device could block or have side effects
        raise UnsafePathError(f"expected a regular file, found {_kind(lst.st_mode)}", path=path)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        return os.open(name, flags, dir_fd=dfd), None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError("refusing to follow a symlink", path=path) from exc
        raise ConfigFileError(f"cannot open the file: {exc.strerror}", path=path) from exc


def _check_fd(fd: int, dfd: int, path: Path, *, max_bytes: int) -> os.stat_result:
    """The checks made on the opened descriptor (never on the path)."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(f"expected a regular file, found {_kind(st.st_mode)}", path=path)
    if st.st_uid not in trusted_owners():
        owner = "root" + (f" or {AGENT_USER}" if _agent_uid() is not None else "")
        raise UnsafePathError(f"the file is owned by uid {st.st_uid}, not {owner}", path=path)
    writers = _dir_writers(os.fstat(dfd))
    if st.st_nlink > 1 and writers is not None:
        raise UnsafePathError(
            f"the file has {st.st_nlink} hard links and the directory is writable by {writers}",
            path=path,
        )
    if st.st_size > max_bytes:
        raise ConfigFileError(
            f"file is too large ({st.st_size} bytes, the limit is {max_bytes})", path=path
        )
    return st


def _read_fd(fd: int, path: Path, *, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    try:
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            if total > max_bytes:
                raise ConfigFileError(f"file is too large (over {max_bytes} bytes)", path=path)
            chunks.append(chunk)
    except OSError as exc:
        raise ConfigFileError(f"cannot read the file: {exc.strerror}", path=path) from exc


def open_config(
    path: str | os.PathLike[str],
    *,
    max_bytes: int,
    follow_symlinks: bool = False,
    links: bool = True,
    dir_id: tuple[int, int] | None = None,
) -> OpenedFile:
    """Read a config file safely from a node where others can write to its directory.

    The file is opened relative to a descriptor of its directory with ``O_NOFOLLOW``; the
    checks are made on the opened descriptor: a regular file, owned by root, by the agent's
    user (``dd-agent``, when it exists) or by the caller, with one link when others can write
    to the directory. A symlink is followed only if ``follow_symlinks`` is true, or if the
    directory is writable by root alone and the link is a plain name in the same directory.

    :param path: the file.
    :param max_bytes: refuse files larger than this.
    :param follow_symlinks: follow any symlink (for a layout only root can write to).
    :param links: when False, the entry itself must not be a symlink at all.
    :param dir_id: the ``(st_dev, st_ino)`` the directory must have.
    :returns: the content and where it was found.
    :raises UnsafePathError: a refused symlink, owner, link count or file type.
    :raises ConfigFileError: missing, unreadable or too large.
    """
    p = Path(path)
    for _ in range(_MAX_LINK_HOPS):
        if p.name in ("", ".", ".."):
            raise ConfigFileError("not a file name", path=p)
        directory, name = p.parent, p.name
        dfd = _open_dir(directory, expect=dir_id)
        try:
            for _ in range(_MAX_LINK_HOPS):
                fd, link = _open_entry(dfd, directory, name, links=links)
                if link is None:
                    break
                nxt = _hop(dfd, directory, link, follow_symlinks=follow_symlinks)
                if isinstance(nxt, Path):
                    p = nxt
                    break
                name = nxt
            else:
                raise UnsafePathError("too many levels of symbolic links", path=p)
            if fd < 0:
                continue  # followed to another directory
            try:
                st = _check_fd(fd, dfd, directory / name, max_bytes=max_bytes)
                data = _read_fd(fd, directory / name, max_bytes=max_bytes)
            finally:
                os.close(fd)
            dst = os.fstat(dfd)
            return OpenedFile(data, st, directory, name, (dst.st_dev, dst.st_ino))
        finally:
            os.close(dfd)
    raise UnsafePathError("too many levels of symbolic links", path=p)


class EntryState(NamedTuple):
    """What a directory entry is expected to be before it is replaced."""

    dev: int
    ino: int
    sha256: str
    uid: int
    gid: int
    mode: int

    @classmethod
    def of(cls, st: os.stat_result, sha256: str) -> EntryState:
        """The state of the file ``st`` describes, whose content hashes to ``sha256``."""
        return cls(st.st_dev, st.st_ino, sha256, st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))

    def matches(self, found: EntryState | None) -> bool:
        """True when ``found`` is this file: same bytes, and the same inode, or an inode
        with the same owner, group and mode (a later plan's undo puts the very same bytes
        back in a new file)."""
        if found is None or found.sha256 != self.sha256:
            return False
        same_inode = (found.dev, found.ino) == (self.dev, self.ino)
        return same_inode or (found.uid, found.gid, found.mode) == (self.uid, self.gid, self.mode)


def _matches(expect: EntryState | None, found: EntryState | None) -> bool:
    return found is None if expect is None else expect.matches(found)


def _describe_entry(dfd: int, name: str) -> tuple[str, EntryState | None, os.stat_result | None]:
    """('missing'|'symlink'|'regular'|other kind, its state if regular, lstat)."""
    try:
        lst = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return "missing", None, None
    if stat.S_ISLNK(lst.st_mode):
        return f"a symlink (-> {os.readlink(name, dir_fd=dfd)})", None, lst
    if not stat.S_ISREG(lst.st_mode):
        return _kind(lst.st_mode), None, lst
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    except OSError as exc:
        return f"unreadable ({exc.strerror})", None, lst
    try:
        st = os.fstat(fd)
        digest = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
    finally:
        os.close(fd)
    found = EntryState.of(st, digest.hexdigest())
    return "regular", found, st


def _temp_at(
    dfd: int,
    directory: Path,
    name: str,
    data: bytes,
    *,
    mode: int,
    uid: int | None,
    gid: int | None,
) -> str:
    """Create, fill, chown/chmod and fsync a fresh ``O_EXCL`` temp entry in ``dfd``.

    ``uid``/``gid`` None keep the creator's. The new file is never handed back with another
    owner than asked: a refused ``fchown`` raises :class:`ConfigFileError`.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(16):
        tmp = f".{name}{TMP_MARKER}{secrets.token_hex(4)}"
        try:
            fd = os.open(tmp, flags, 0o600, dir_fd=dfd)
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - 16 collisions of 32 random bits
        raise ConfigFileError("cannot create a unique temp file", path=directory / name)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        st = os.fstat(fd)
        want_uid = st.st_uid if uid is None else uid
        want_gid = st.st_gid if gid is None else gid
        if (want_uid, want_gid) != (st.st_uid, st.st_gid):
            try:
                os.fchown(fd, want_uid, want_gid)
            except PermissionError as exc:
                raise ConfigFileError(
                    f"cannot give the new file the owner {want_uid}:{want_gid} (not permitted)",
                    path=directory / name,
                ) from exc
        os.fchmod(fd, mode)  # after chown, which clears set-id bits
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dfd)
        raise
    os.close(fd)
    return tmp


def _link_backup(dfd: int, directory: Path, src: str, name: str) -> Path:
    """Hard-link the entry ``src`` (never following it) to a fresh backup name of ``name``."""
    stamp = _utc_stamp()
    for n in range(100):
        suffix = "" if n == 0 else f".{n}"
        backup = f"{name}.wpprotect-{stamp}{suffix}.bak"
        try:
            os.link(src, backup, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
        except FileExistsError:
            continue
        return directory / backup
    raise ConfigFileError(
        "cannot find a free backup name", path=directory / name
    )  # pragma: no cover


def replace_entry(
    directory: Path,
    name: str,
    data: bytes,
    *,
    mode: int,
    uid: int,
    gid: int,
    expect: EntryState | None,
    dir_id: tuple[int, int] | None = None,
    force: bool = False,
    backup: bytes | None = None,
    guard: contextlib.AbstractContextManager[object] | None = None,
    on_commit: Callable[[EntryState, Path | None], None] | None = None,
) -> tuple[EntryState, Path | None]:
    """Replace the entry ``name`` of ``directory`` with ``data``, never following a link.

    The new content is written to an ``O_EXCL`` temp entry in the same directory and renamed
    over ``name`` (``rename`` replaces the entry itself, link or not). Before the rename the
    entry must be ``expect`` (see :meth:`EntryState.matches`; read through an ``O_NOFOLLOW``
    descriptor); otherwise :class:`~wpprotect.ConfigConflictError` is raised and
    nothing changes, unless ``force``, in which case whatever is there (a link included, not
    followed) is first hard-linked to a ``.bak`` name and kept.

    :param backup: if given, these bytes are also saved as a ``.bak`` beside the file first.
    :param guard: a context manager held around the rename and ``on_commit`` (e.g. one that
        defers signals, so the write and its record cannot be separated by an interrupt).
    :param on_commit: called with the new entry's state and the backup right after the rename.
    :returns: the new entry's state and the path of the backup made (``backup`` or forced).
    :raises ConfigConflictError: the entry is not what was expected.
    :raises ConfigFileError: nothing could be written.
    """
    with guard if guard is not None else contextlib.nullcontext():
        dfd = _open_dir(directory, expect=dir_id)
        try:
            path = directory / name
            what, state, _lst = _describe_entry(dfd, name)
            forced = False
            if not _matches(expect, state):
                if what == "regular" or (what == "missing" and expect is not None):
                    found = "a different file" if what == "regular" else "missing"
                else:
                    found = what
                if not force:
                    raise ConfigConflictError(
                        f"the file is not what wpprotect wrote or read (it is now {found}); "
                        "nothing was written: check it, or pass force=True to overwrite it (a "
                        "backup of it is kept)",
                        path=path,
                    )
                if what not in ("missing", "regular") and not what.startswith("a symlink"):
                    raise UnsafePathError(f"refusing to replace {what}", path=path)
                forced = what != "missing"
            saved: Path | None = None
            tmp: str | None = None
            try:
                if backup is not None:
                    btmp = _temp_at(dfd, directory, name, backup, mode=mode, uid=uid, gid=gid)
                    try:
                        saved = _link_backup(dfd, directory, btmp, name)
                    finally:
                        os.unlink(btmp, dir_fd=dfd)
                tmp = _temp_at(dfd, directory, name, data, mode=mode, uid=uid, gid=gid)
                if forced:
                    saved = _link_backup(dfd, directory, name, name)
                elif not _matches(
                    expect, _describe_entry(dfd, name)[1]
                ):  # checked again just before the rename
                    raise ConfigConflictError(
                        "the file changed while it was being replaced; nothing was written",
                        path=path,
                    )
                new = os.stat(tmp, dir_fd=dfd, follow_symlinks=False)
                new_state = EntryState.of(new, hashlib.sha256(data).hexdigest())
                os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
                tmp = None
            except BaseException as exc:
                if tmp is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp, dir_fd=dfd)
                if saved is not None and backup is not None:  # unchanged: its backup is not needed
                    with contextlib.suppress(OSError):
                        os.unlink(saved.name, dir_fd=dfd)
                if isinstance(exc, OSError):
                    raise ConfigFileError(
                        f"cannot replace the file: {exc.strerror}", path=path
                    ) from exc
                raise
            if on_commit is not None:
                on_commit(new_state, saved)
            with contextlib.suppress(
                OSError
            ):  # the data is in place; only durability is unconfirmed
                os.fsync(dfd)
            return new_state, saved
        finally:
            os.close(dfd)
