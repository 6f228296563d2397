"""The ``wpprotect`` command's entry point: :func:`wpprotect.cli.main`, with the kernel read of a
``tc scan`` started before the CLI itself is loaded.

A cold ``wpprotect tc scan`` spends ~40 ms loading argparse, attrs and the result model, and
~35 ms reading the kernel in a process that has just forked. When the command line is plainly a
``tc scan`` (:func:`scan_netns`), :func:`main` forks that reader first, so the two overlap from
the start; :func:`wpprotect.tc._prefetch.scan` then takes what it read, provided the namespaces
it read are the ones the parsed arguments name (otherwise it is discarded and the scan reads
again). Nothing else changes: the reader only reads, and the CLI parses, validates and reports
errors as it always does. ``wpprotect.cli.main()`` called from Python never forks early.

This module imports only ``os`` and ``sys`` before forking.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Early", "Reader", "fork_with_pipe", "main", "scan_netns", "take_early"]

# Flags `tc scan` (and the global options) take without a value, and those taking one.
_FLAGS = frozenset({"--json", "--probe", "--debug", "--no-color"})
_WITH_VALUE = frozenset({"--netns", "--classifier-priority"})


def scan_netns(argv: Sequence[str]) -> str | None:
    """The ``--netns`` of a command line that is plainly ``wpprotect tc scan`` (``"all"`` when
    not given), or None for anything else: another command, ``--help``, an abbreviated or
    unknown option. A None only means the scan will not be read ahead.

    :param argv: the arguments after the program name.
    """
    words = list(argv)
    i = 0
    while i < len(words) and words[i] in ("--debug", "--no-color"):
        i += 1
    if words[i : i + 2] != ["tc", "scan"]:
        return None
    netns = "all"
    rest = words[i + 2 :]
    j = 0
    while j < len(rest):
        word = rest[j]
        name, eq, value = word.partition("=")
        if word in _FLAGS:
            j += 1
        elif eq and name in _WITH_VALUE:
            netns = value if name == "--netns" else netns
            j += 1
        elif word in _WITH_VALUE and j + 1 < len(rest):
            netns = rest[j + 1] if word == "--netns" else netns
            j += 2
        else:
            return None
    return netns


class Reader:
    """A forked child that writes its result to a pipe.

    :ivar pid: its process id.
    :ivar fd: the read end of its pipe (-1 once closed).
    :ivar status: its exit status once reaped (a negative signal number if it was killed).
    """

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self.fd = fd
        self.status: int | None = None

    def read_all(self) -> bytes:
        """Everything the child wrote (until it closed the pipe), then :meth:`close`."""
        chunks: list[bytes] = []
        try:
            while chunk := os.read(self.fd, 1 << 20):
                chunks.append(chunk)
        finally:
            self.close()
        return b"".join(chunks)

    def close(self) -> None:
        """Stop the child if it still runs, and reap it (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.status is None:
            pid, wait_status = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:  # still running: its parent is leaving early (an error, Ctrl-C)
                import signal

                os.kill(self.pid, signal.SIGKILL)
                _, wait_status = os.waitpid(self.pid, 0)
            self.status = os.waitstatus_to_exitcode(wait_status)


class Early(Reader):
    """A reader forked at launch for ``wpprotect tc scan --netns NETNS``.

    :ivar netns: the ``--netns`` it was started for.
    """

    def __init__(self, netns: str, pid: int, fd: int) -> None:
        super().__init__(pid, fd)
        self.netns = netns


_early: Early | None = None


def take_early() -> Early | None:
    """The reader forked at launch, handed over once (None if there is none)."""
    global _early
    early, _early = _early, None
    return early


def fork_with_pipe() -> tuple[int, int, int] | None:
    """``os.fork()`` with a pipe from the child to the parent.

    :returns: ``(pid, read fd, write fd)`` (in the child pid is 0; each side closes the end it
        does not use), or None when a pipe or a process cannot be had.
    """
    try:
        rfd, wfd = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(rfd)
        os.close(wfd)
        return None
    return pid, rfd, wfd


def _fork_reader(netns: str) -> Early | None:
    forked = fork_with_pipe()
    if forked is None:
        return None
    pid, rfd, wfd = forked
    if pid == 0:  # pragma: no cover - the child; its result is checked by the parent's tests
        status = 1
        try:
            os.close(rfd)
            from wpprotect.tc import _prefetch

            status = _prefetch.early_reader(netns, wfd)
        finally:
            os._exit(status)
    os.close(wfd)
    return Early(netns, pid, rfd)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``wpprotect`` command (the console script and ``python -m wpprotect``).

    :param argv: the arguments (default: ``sys.argv[1:]``).
    :returns: the exit status.
    """
    global _early  # noqa: PLW0603
    args = list(sys.argv[1:] if argv is None else argv)
    netns = scan_netns(args)
    if netns is not None and _early is None:
        _early = _fork_reader(netns)
    try:
        from wpprotect.cli import main as cli_main

        return cli_main(args)
    finally:
        early = take_early()
        if early is not None:  # not taken: the command failed first, or was not a scan
            early.close()
