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
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import os
import secrets
import stat
from pathlib import Path

from wpprotect.errors import ConfigFileError

__all__ = [
    "TMP_MARKER",
    "atomic_write",
    "backup_file",
    "read_regular_file",
    "restore_backup",
]

#: The part of a temp file's name that marks it as wpprotect's (``.<name>.wpprotect-tmp-XXXXXXXX``).
TMP_MARKER = ".wpprotect-tmp-"

_DEFAULT_MODE = 0o644


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symlink"
    return "not a regular file"


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
    for _ in range(16):
        tmp = directory / f".{name}{TMP_MARKER}{secrets.token_hex(4)}"
        try:
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - 16 collisions of 32 random bits
        raise ConfigFileError("cannot create a unique temp file", path=directory / name)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        st = os.fstat(fd)
        want_uid = st.st_uid if uid is None else uid
        want_gid = st.st_gid if gid is None else gid
        if (want_uid, want_gid) != (st.st_uid, st.st_gid):
            try:
                os.fchown(fd, want_uid, want_gid)
            except PermissionError as exc:
                # Never hand back a config file with a different owner: refuse instead.
                raise ConfigFileError(
                    f"cannot give the new file the owner {want_uid}:{want_gid} (not permitted)",
                    path=directory / name,
                ) from exc
        # chmod after chown: chown clears set-id bits.
        os.fchmod(fd, mode)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


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
) -> None:
    """Replace ``path`` with ``data`` atomically (see the module docstring for the rule).

    Mode, owner and group default to those of the existing file (or ``0o644`` and the caller's
    ids for a new file). A symlink is followed and its target replaced.

    :param path: the file to write.
    :param data: the complete new content.
    :param mode: permission bits for the file; default: keep the existing ones.
    :param uid: owner; default: keep the existing owner.
    :param gid: group; default: keep the existing group.
    :raises ConfigFileError: the file could not be written (nothing was changed), or the target
        exists but is not a regular file.
    """
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
    data, st = read_regular_file(backup, max_bytes=1 << 40)
    atomic_write(path, data, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid)
