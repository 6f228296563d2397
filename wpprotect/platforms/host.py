"""The host adapter: an agent installed on this machine (``/opt/datadog-agent``), run with
``subprocess`` argv lists, through ``sudo -n`` when not root."""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import attrs

from wpprotect._args import path_arg
from wpprotect._contract import Component, ExecResult, Scope
from wpprotect.agent._layout import BINARIES, DEFAULT_CONFIG_DIR, DEFAULT_INSTALL_DIR
from wpprotect.errors import (
    AgentNotFoundError,
    ExecError,
    ExecTimeoutError,
    InvalidArgumentError,
    PermissionDeniedError,
    PlanVerifyError,
    WPProtectError,
)
from wpprotect.plan import Change, Plan
from wpprotect.platforms._base import (
    BasePlatform,
    ExecCall,
    OutputBudget,
    check_argv,
    check_timeout,
)

if TYPE_CHECKING:
    from wpprotect.config import Setting
    from wpprotect.config._settings import SettingValue
    from wpprotect.tc import TCReport

__all__ = ["HostDisablePlan", "HostPlatform", "RestartChange"]

log = logging.getLogger(__name__)

# `systemctl restart datadog-agent` also restarts datadog-agent-sysprobe and
# datadog-agent-security (BindsTo=/Wants=, docs/reference/agent-cli.md#cli-host-layout); `service`
# without systemd.
SYSTEMCTL_RESTART = ("systemctl", "restart", "datadog-agent")
SERVICE_RESTART = ("service", "datadog-agent", "restart")
_KILL_GRACE = 5.0


_CHUNK = 1 << 16
_STDERR_KEPT = 64 * 1024  # of a copy's stderr: enough for its error message


class _Timeout(Exception):
    """The deadline passed while reading a command's output."""


def _pipe_chunks(
    proc: subprocess.Popen[bytes], stdin: bytes | None, deadline: float | None
) -> Iterator[tuple[int, bytes]]:
    """``(1, bytes)`` from stdout and ``(2, bytes)`` from stderr as the command writes them,
    feeding it ``stdin`` (then closing it), until both pipes close.

    :raises _Timeout: ``deadline`` (a ``time.monotonic()`` value) passed.
    """
    sel = selectors.DefaultSelector()
    pending = memoryview(stdin) if stdin is not None else None
    try:
        if proc.stdin is not None:
            if pending:
                os.set_blocking(proc.stdin.fileno(), False)
                sel.register(proc.stdin, selectors.EVENT_WRITE, 0)
            else:
                proc.stdin.close()
        for n, pipe in ((1, proc.stdout), (2, proc.stderr)):
            if pipe is not None:
                sel.register(pipe, selectors.EVENT_READ, n)
        while sel.get_map():
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                raise _Timeout
            for key, _ in sel.select(wait):
                if key.data == 0 and pending is not None and proc.stdin is not None:  # stdin
                    try:
                        pending = pending[os.write(key.fd, pending[:_CHUNK]) :]
                    except BlockingIOError:
                        continue
                    except (BrokenPipeError, ConnectionResetError):
                        pending = memoryview(b"")  # it stopped reading; keep its output
                    if not pending:
                        sel.unregister(proc.stdin)
                        with contextlib.suppress(OSError):
                            proc.stdin.close()
                    continue
                data = os.read(key.fd, _CHUNK)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                yield key.data, data
    finally:
        sel.close()


def _wait(proc: subprocess.Popen[bytes], deadline: float | None) -> None:
    """Wait for ``proc`` to exit once its pipes are closed.

    :raises _Timeout: ``deadline`` passed first.
    """
    try:
        proc.wait(timeout=None if deadline is None else max(deadline - time.monotonic(), 0.001))
    except subprocess.TimeoutExpired:
        raise _Timeout from None


def _file_chunks(source: BinaryIO) -> Iterator[bytes]:
    with source:
        while chunk := source.read(1 << 20):
            yield chunk


class HostPlatform(BasePlatform):
    """An agent installed on this host.

    :param install_dir: the agent's install dir (``embedded/bin/security-agent``,
        ``embedded/bin/system-probe``, ``bin/agent/agent``).
    :param config_dir: where ``datadog.yaml``, ``system-probe.yaml`` and ``security-agent.yaml``
        live.
    :param sudo: run through ``sudo -n``; None (default) means "when not root".
    :param restart_command: the argv that restarts the agent after a config change; default
        ``systemctl restart datadog-agent``, or ``service datadog-agent restart`` without systemd.
    :param timeout: seconds each command this platform runs on its own may take (the copy in
        :meth:`copy_out` through ``sudo``, the restart after a settings change; ``None``: no
        limit); commands run by :meth:`exec` take their own timeout.
    :raises InvalidArgumentError: ``restart_command`` is a string, or ``timeout`` is not a
        positive number of seconds.

    It holds no client: :meth:`~BasePlatform.close` has nothing to close, and ``with`` works as on
    every platform.
    """

    kind = "host"
    _kernel_is_local = True

    def __init__(
        self,
        install_dir: str | os.PathLike[str] = DEFAULT_INSTALL_DIR,
        config_dir: str | os.PathLike[str] = DEFAULT_CONFIG_DIR,
        *,
        sudo: bool | None = None,
        restart_command: Sequence[str] | None = None,
        timeout: float | None = 300.0,
    ) -> None:
        if isinstance(restart_command, str):
            raise InvalidArgumentError("restart_command must be an argv list, not a string")
        self.install_dir = path_arg(install_dir, "install_dir")
        self.config_dir = path_arg(config_dir, "config_dir")
        self.sudo = (os.geteuid() != 0) if sudo is None else bool(sudo)
        self.restart_command: tuple[str, ...] | None = (
            None if restart_command is None else tuple(restart_command)
        )
        self.timeout = check_timeout(timeout)
        self._hostname = socket.gethostname()

    @property
    def target(self) -> str:
        """``host:<hostname>``."""
        return f"host:{self._hostname}"

    def binary(self, name: str) -> str:
        """The full path of ``name`` under :attr:`install_dir`."""
        rel = BINARIES.get(name)  # type: ignore[call-overload]
        if rel is None:
            raise InvalidArgumentError(
                f"unknown agent binary {name!r}; valid: {', '.join(sorted(BINARIES))}"
            )
        return str(self.install_dir / rel)

    def agents(self) -> list[BasePlatform]:
        """``[self]`` when an agent is installed in :attr:`install_dir`.

        :raises AgentNotFoundError: none of the agent binaries is there.
        """
        if not any(Path(self.binary(n)).exists() for n in BINARIES):
            raise AgentNotFoundError(
                "no Datadog Agent install found (no embedded/bin/security-agent, "
                "embedded/bin/system-probe or bin/agent/agent)",
                path=self.install_dir,
                target=self.target,
            )
        return [self]

    # -- traffic control ------------------------------------------------------------------------

    # -- running commands ---------------------------------------------------------------------

    def _argv(self, argv: Sequence[str]) -> list[str]:
        items = check_argv(argv)  # the restart command comes here without exec()'s check
        if not self.sudo:
            return items
        if shutil.which("sudo") is None:
            raise PermissionDeniedError(
                "not root and sudo is not installed: run as root", target=self.target
            )
        # -n: never prompt; a password prompt would hang a non-interactive caller.
        return ["sudo", "-n", "--", *items]

    def _check_sudo(self, proc_rc: int, stderr: str) -> None:
        if (
            self.sudo
            and proc_rc != 0
            and stderr.startswith("sudo:")
            and ("password" in stderr or "terminal is required" in stderr)
        ):
            raise PermissionDeniedError(
                "sudo needs a password: run as root or allow passwordless sudo for the "
                "agent binaries",
                target=self.target,
            )

    def _spawn(self, argv: Sequence[str], *, stdin: bool) -> subprocess.Popen[bytes] | None:
        """Start ``argv`` in its own process group (None: the program does not exist)."""
        full = self._argv(argv)
        try:
            return subprocess.Popen(
                full,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group, killed whole on timeout
            )
        except FileNotFoundError:
            return None
        except PermissionError as exc:
            raise PermissionDeniedError(
                f"cannot run {full[0]}: permission denied", target=self.target
            ) from exc
        except OSError as exc:
            raise ExecError(f"cannot run {full[0]}: {exc}", target=self.target) from exc

    def _run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None,
        timeout: float | None,
        max_output: int | None = None,
    ) -> tuple[int, bytes, bytes, float]:
        started = time.monotonic()
        proc = self._spawn(argv, stdin=stdin is not None)
        if proc is None:
            # As a shell and `docker exec` report it: status 127, so callers can fall back to
            # another binary the same way on every platform.
            message = f"{self._argv(argv)[0]}: not found\n".encode()
            return 127, b"", message, time.monotonic() - started
        deadline = None if timeout is None else started + timeout
        budget = OutputBudget(max_output, " ".join(argv), self.target)
        out, err = bytearray(), bytearray()
        with self._supervised(proc, argv, timeout):
            for n, data in _pipe_chunks(proc, stdin, deadline):
                budget.take(len(data))
                (out if n == 1 else err).extend(data)
            _wait(proc, deadline)
        return proc.returncode, bytes(out), bytes(err), time.monotonic() - started

    @contextlib.contextmanager
    def _supervised(
        self, proc: subprocess.Popen[bytes], argv: Sequence[str], timeout: float | None
    ) -> Iterator[None]:
        """Kill ``proc``'s process group when reading it times out or fails; close its pipes."""
        try:
            yield
        except _Timeout:
            self._kill(proc)
            raise ExecTimeoutError(
                f"{' '.join(argv)} did not finish within {timeout or 0:g} s and was killed",
                target=self.target,
            ) from None
        except BaseException:
            self._kill(proc)
            raise
        finally:
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        # A root child of `sudo` cannot be signalled by us; sudo relays SIGTERM to it.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=_KILL_GRACE if sig == signal.SIGTERM else None)
                return
            except subprocess.TimeoutExpired:
                continue

    def _exec(self, call: ExecCall) -> ExecResult:
        """Run ``argv`` on this host (all components share it); see :meth:`BasePlatform.exec`.

        On a timeout or past ``max_output`` its whole process group is killed; sudo needing a
        password, or missing, is a :class:`~wpprotect.PermissionDeniedError`.
        """
        argv, _, stdin, timeout, max_output = call.unpack()
        rc, out, err, duration = self._run(
            argv, stdin=stdin, timeout=timeout, max_output=max_output
        )
        stderr = err.decode("utf-8", errors="replace")
        self._check_sudo(rc, stderr)
        log.debug("%s: %s -> %d", self.target, argv[0], rc)
        return ExecResult(
            argv=tuple(argv),
            exit_code=rc,
            stdout=out.decode("utf-8", errors="replace"),
            stderr=stderr,
            duration=duration,
            target=self.target,
        )

    def copy_out(
        self, path: str, dest: Path | str, *, component: Component = "security-agent"
    ) -> Path:
        """Copy ``path`` to ``dest``, a file or an existing directory to copy into (mode 0600:
        flares hold logs and configs).

        Through ``sudo -n cat`` when not root (the archive belongs to the root-run agent). The
        copy is streamed (never held in memory whole) into a file created in a private
        directory next to ``dest`` and renamed into place: a symlink or a file someone else
        made at ``dest`` is replaced, never written through (a symlink at ``dest`` is not taken
        for a directory to copy into).

        :raises ExecError: the file cannot be read, or ``dest`` cannot be written.
        """
        from wpprotect.platforms._localfile import write_private

        dest = Path(dest)
        if dest.is_dir() and not dest.is_symlink():
            dest = dest / Path(path).name
        if self.sudo:
            chunks: Iterable[bytes] = self._cat(path)
        else:
            try:
                source = open(path, "rb")  # noqa: SIM115 - closed by _file_chunks
            except OSError as exc:
                raise ExecError(f"cannot read {path}: {exc.strerror}", target=self.target) from exc
            chunks = _file_chunks(source)
        try:
            return write_private(dest, chunks, mode=0o600)
        except OSError as exc:
            raise ExecError(
                f"cannot write {dest}: {exc.strerror or exc}", target=self.target
            ) from exc

    def _cat(self, path: str) -> Iterator[bytes]:
        """The bytes of ``path`` read through ``sudo -n cat``, as they come."""
        argv = ["cat", "--", path]
        proc = self._spawn(argv, stdin=False)
        if proc is None:  # pragma: no cover - cat is part of every system
            raise ExecError(f"cannot read {path}: cat not found", target=self.target)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        err = bytearray()
        with self._supervised(proc, argv, self.timeout):
            for n, data in _pipe_chunks(proc, None, deadline):
                if n == 1:
                    yield data
                elif len(err) < _STDERR_KEPT:
                    err.extend(data[: _STDERR_KEPT - len(err)])
            _wait(proc, deadline)
        stderr = err.decode("utf-8", errors="replace")
        self._check_sudo(proc.returncode, stderr)
        if proc.returncode != 0:
            raise ExecError(f"cannot read {path}: {stderr.strip()}", target=self.target)

    # -- settings -----------------------------------------------------------------------------

    def restart_argv(self) -> tuple[str, ...]:
        """The argv that restarts the agent (see ``restart_command``)."""
        if self.restart_command is not None:
            return self.restart_command
        if shutil.which("systemctl") and Path("/run/systemd/system").is_dir():
            return SYSTEMCTL_RESTART
        return SERVICE_RESTART

    def disable(self, scope: Scope = "workload-protection") -> Plan:
        """A plan that turns off Workload Protection, or only its network detection, restarts
        the agent, and whose :meth:`~HostDisablePlan.verify` also proves in the kernel that no
        Datadog classifier is left attached (every device, every network namespace).

        :param scope: ``"workload-protection"`` or ``"network"``.
        :returns: a :class:`HostDisablePlan`.
        :raises InvalidArgumentError: unknown scope.
        """
        plan = super().disable(scope)
        return HostDisablePlan(
            plan.title,
            plan.changes,
            [
                *plan.notes,
                "verify() then checks the kernel: no Datadog TC classifier may be left attached "
                "on any device of any network namespace (needs root)",
            ],
            kernel_scan=_scan_all_namespaces,
        )

    def _disable_values(self, scope: Scope) -> tuple[dict[Setting, SettingValue], list[str]]:
        """What the host's files need: the re-enabling settings its system-probe.yaml has on,
        and a refusal when its fleet policy file keeps Workload Protection on."""
        from wpprotect.config._plans import disable_values

        return disable_values(self.config_dir, scope)

    def _settings_plan(self, settings: Mapping[Setting, SettingValue], *, title: str) -> Plan:
        from wpprotect.config._plans import RESTART_NOTE, host_dir_changes

        files: list[Change] = list(host_dir_changes(self.config_dir, settings))
        changes: list[Change] = list(files)
        notes: list[str] = []
        if files:
            restart = RestartChange(self, files)
            changes = [restart.after_undo(), *files, restart]
            notes.append(f"the agent is restarted with: {' '.join(self.restart_argv())}")
        else:
            notes.append(RESTART_NOTE)
        return Plan(title, changes, notes)

    def _restart(self) -> None:
        argv = self.restart_argv()
        res = self.exec(argv, timeout=self.timeout)
        if res.exit_code != 0:
            raise ExecError(
                f"{' '.join(argv)} failed with exit status {res.exit_code}: "
                f"{res.output.strip()[-300:]}",
                target=self.target,
            )


def _scan_all_namespaces() -> TCReport:
    from wpprotect.tc import TCInspector

    return TCInspector(netns="all").scan()


@attrs.define(eq=False)
class HostDisablePlan(Plan):
    """The host's disable plan: the config files, the agent restart, and a :meth:`verify` that
    reads the kernel after that restart.

    :ivar kernel_scan: what :meth:`verify` reads the kernel with (default: a scan of every
        network namespace of this host); None skips the kernel check.
    :ivar kernel_report: the last scan :meth:`verify` made (None before one).
    """

    kernel_scan: Callable[[], TCReport] | None = attrs.field(default=None, kw_only=True)
    kernel_report: TCReport | None = attrs.field(default=None, init=False)

    def verify(self) -> None:
        """Check every file reads back as planned, then that no Datadog classifier is left
        attached in the kernel (on any device, in any namespace the scan reaches).

        :raises PlanVerifyError: a file is not in the planned state; Datadog's classifiers are
            still attached (the message names them); or the kernel could not be read, so the
            disable cannot be proven (it is never reported as done then).
        """
        super().verify()
        if self.kernel_scan is None:
            return
        try:
            report = self.kernel_scan()
        except (WPProtectError, OSError) as exc:
            raise PlanVerifyError(
                "the configuration reads back as planned, but the kernel could not be read to "
                f"prove that no Datadog classifier is left attached: {exc}",
                target="kernel:tc",
            ) from exc
        self.kernel_report = report
        for warning in report.warnings:
            log.warning("disable verify: part of the kernel could not be read: %s", warning)
        from wpprotect.tc._assess import annotate_programs

        left = [
            p
            for p in annotate_programs(report.programs)
            if p.vendor == "datadog-cws" and p.attach == "clsact"
        ]
        if left:
            where = ", ".join(f"{p.where} (priority {p.priority})" for p in left[:5])
            more = f" and {len(left) - 5} more" if len(left) > 5 else ""
            raise PlanVerifyError(
                f"Datadog's classifiers are still attached after the restart: {where}{more}. "
                "The agent did not detach them (an agent released before "
                "DataDog/datadog-agent#46062 attaches them even with network detection off: "
                "disable the workload-protection scope or upgrade; else restart it again)",
                target="kernel:tc",
            )


class RestartChange:
    """Restart the host agent after its config files changed (and again after an undo).

    :param platform: the host.
    :param files: the file changes it follows; nothing is restarted if none was needed.
    """

    def __init__(self, platform: HostPlatform, files: Sequence[Change]) -> None:
        self._platform = platform
        self._files = list(files)
        self._needed = any(not c.is_satisfied() for c in self._files)
        self._done = False
        self._restarted = False  # the agent runs the new config: an undo must restart it

    @property
    def target(self) -> str:
        """``service:datadog-agent``."""
        return "service:datadog-agent"

    @property
    def description(self) -> str:
        """What it runs."""
        return f"restart the agent: {' '.join(self._platform.restart_argv())}"

    def diff(self) -> str:
        """A one-line description (a restart has no file diff)."""
        return f"# then: {' '.join(self._platform.restart_argv())}\n"

    def is_satisfied(self) -> bool:
        """True once restarted, or when no file needed changing."""
        return self._done or not (self._needed or any(not c.is_satisfied() for c in self._files))

    def apply(self) -> None:
        """Run the restart command.

        :raises ExecError: it failed.
        """
        self._platform._restart()
        self._done = True
        self._restarted = True

    def verify(self) -> None:
        """Nothing to read back: the restart command's exit status was checked."""

    def undo(self) -> None:
        """Nothing here: the plan restores the files, then :meth:`after_undo` restarts."""
        self._done = False

    def after_undo(self) -> Change:
        """The companion change placed first in the plan: it restarts once the files were
        restored by an undo or a rollback (plans undo in reverse order)."""
        return _RestartAfterUndo(self)


class _RestartAfterUndo:
    def __init__(self, restart: RestartChange) -> None:
        self._restart = restart
        self._armed = False

    @property
    def target(self) -> str:
        return self._restart.target

    @property
    def description(self) -> str:
        return "restart the agent again if the plan is undone"

    def diff(self) -> str:
        return ""

    def is_satisfied(self) -> bool:
        return self._armed or self._restart.is_satisfied()

    def apply(self) -> None:
        self._armed = True

    def verify(self) -> None:
        pass

    def undo(self) -> None:
        self._armed = False
        # Only restart if the agent was restarted onto the new config; after a failed restart
        # (rollback) the running agent never left the old one.
        if self._restart._restarted:
            self._restart._platform._restart()
            self._restart._restarted = False
