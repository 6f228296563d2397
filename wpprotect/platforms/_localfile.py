"""Writing a copied-out file (a flare holds an API key) where someone else may write too.

The file is created with ``O_CREAT|O_EXCL|O_NOFOLLOW`` inside a fresh private (0700) directory
made next to the destination, filled, fsynced, given its mode, and renamed into place through
directory descriptors. Nothing already at the destination is ever opened or written through: a
symlink planted there is replaced, not followed, and a pre-created file someone keeps a
descriptor to is replaced by a new inode they cannot read.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__ = ["private_file", "write_private"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _private_dir(pfd: int, name: str) -> tuple[str, int]:
    for _ in range(16):
        tmp = f".{name}.wpprotect-{secrets.token_hex(6)}"
        try:
            os.mkdir(tmp, 0o700, dir_fd=pfd)
        except FileExistsError:
            continue
        dfd = os.open(tmp, _DIR_FLAGS, dir_fd=pfd)
        st = os.fstat(dfd)
        if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
            os.close(dfd)  # pragma: no cover - someone swapped it in the same instant
            raise PermissionError(f"the private directory {tmp} is not private")
        return tmp, dfd
    raise FileExistsError("cannot create a private temp directory")  # pragma: no cover


@contextlib.contextmanager
def private_file(final: Path, *, mode: int = 0o600) -> Iterator[Callable[[bytes], None]]:
    """Write ``final`` as :func:`write_private` does, chunk by chunk as they come: the block
    is given a ``write(chunk)`` callable; the file is renamed into place when the block ends
    normally, and nothing is left behind when it raises.

    :raises OSError: the file could not be written, or the destination is a directory.
    """
    pfd = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        tmp, dfd = _private_dir(pfd, final.name)
        try:
            fd = os.open(
                final.name,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=dfd,
            )
            try:

                def write(chunk: bytes) -> None:
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]

                yield write
                os.fchmod(fd, mode)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(final.name, final.name, src_dir_fd=dfd, dst_dir_fd=pfd)
            with contextlib.suppress(OSError):
                os.fsync(pfd)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(final.name, dir_fd=dfd)
            os.close(dfd)
            with contextlib.suppress(OSError):
                os.rmdir(tmp, dir_fd=pfd)
    finally:
        os.close(pfd)


def write_private(final: Path, chunks: Iterable[bytes], *, mode: int = 0o600) -> Path:
    """Write ``chunks`` to ``final`` (see the module docstring for how).

    :param final: the destination file path (its directory must exist).
    :param chunks: the content (read one chunk at a time: a stream is never held whole).
    :param mode: the file's permission bits.
    :returns: ``final``.
    :raises OSError: the file could not be written (nothing is left behind), or the destination
        is a directory.
    """
    with private_file(final, mode=mode) as write:
        for chunk in chunks:
            write(chunk)
    return final
