"""The Docker adapter: the agent runs in one container holding every component.

The documented deployment is one container named ``dd-agent`` (setup page) or ``datadog-agent``
(troubleshooting page) from ``registry.datadoghq.com/agent:7``, running both ``system-probe`` and
``security-agent`` under s6 (docs/reference/deployments.md#deploy-docker). So ``component`` only
matters for the binary
name; every command runs in that container with ``docker exec`` semantics.

The ``docker`` SDK is imported lazily, here and in ``_docker_*`` only; its exceptions are
translated into wpprotect's at this wall.
"""

from __future__ import annotations

import contextlib
import logging
import re
import select
import socket
import struct
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from wpprotect._contract import Component, ExecResult
from wpprotect.errors import (
    AgentNotFoundError,
    ExecError,
    ExecOutputLimitError,
    ExecTimeoutError,
    InvalidArgumentError,
    PlatformError,
)
from wpprotect.platforms._base import BasePlatform, ExecCall, OutputBudget, check_timeout
from wpprotect.platforms._docker_api import (
    DockerConnection,
    docker_errors,
    explanation,
    status_code,
)
from wpprotect.platforms._localfile import write_private
from wpprotect.platforms._thirdparty import DockerAPI, DockerClient, JSONObject

if TYPE_CHECKING:
    from wpprotect.config import Setting
    from wpprotect.config._settings import SettingValue
    from wpprotect.plan import Plan

__all__ = ["AGENT_IMAGES", "DEFAULT_NAMES", "DockerPlatform"]

log = logging.getLogger(__name__)

#: Container names tried in order when none is given: the troubleshooting page's, then the
#: setup page's (docs/reference/deployments.md#deploy-docker: the docs themselves use both).
DEFAULT_NAMES: tuple[str, ...] = ("datadog-agent", "dd-agent")

#: Image repositories of the agent. Any repository ending in ``/agent`` also matches (mirrors).
AGENT_IMAGES: tuple[str, ...] = (
    "registry.datadoghq.com/agent",
    "gcr.io/datadoghq/agent",
    "public.ecr.aws/datadog/agent",
    "datadog/agent",
    "docker.io/datadog/agent",
)

#: Names wpprotect gives the containers it keeps or creates while recreating one; such containers
#: are never taken for the agent.
_MARKER = ".wpprotect-"

# Docker's own rule for container names (daemon/names.go: RestrictedNameChars).
_NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$")

# Multiplexed exec stream (Docker Engine API, "Attach to a container"): an 8-byte header
# [stream type, 0, 0, 0, big-endian uint32 size] before each frame; 1 = stdout, 2 = stderr.
_HEADER = struct.Struct(">BxxxL")
_STDOUT, _STDERR = 1, 2
_CHUNK = 65536

# Go's os.FileMode bits in the X-Docker-Container-Path-Stat header of GET /archive.
_MODE_DIR = 1 << 31
_MODE_SYMLINK = 1 << 27
# Anything but a regular file (Go io/fs: ModeDir, ModeSymlink, ModeDevice, ModeNamedPipe,
# ModeSocket, ModeCharDevice, ModeIrregular); setuid/setgid/sticky bits do not count.
_MODE_TYPE = _MODE_DIR | _MODE_SYMLINK | 1 << 26 | 1 << 25 | 1 << 24 | 1 << 21 | 1 << 19


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidArgumentError(
            f"invalid container name or id {name!r}: letters, digits, '_', '.', '-' only"
        )
    return name.lstrip("/")


def _repository(image: str) -> str:
    """``registry.datadoghq.com/agent:7`` -> ``registry.datadoghq.com/agent`` (tag/digest off)."""
    image = image.split("@", 1)[0]
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        image = image[: len(image) - len(last) + last.index(":")]
    return image


def is_agent_image(image: str) -> bool:
    """Whether an image reference names a Datadog Agent image.

    >>> is_agent_image("registry.datadoghq.com/agent:7"), is_agent_image("datadog/cluster-agent")
    (True, False)

    :param image: an image reference as given to ``docker run``.
    :returns: True for the agent's repositories and any repository ending in ``/agent``.
    """
    repo = _repository(image)
    return repo in AGENT_IMAGES or repo.endswith("/agent")


class DockerPlatform(BasePlatform):
    """A Datadog Agent running in a Docker container.

    >>> box = DockerPlatform(container="datadog-agent")   # doctest: +SKIP
    >>> box.self_test().ok                                 # doctest: +SKIP
    True

    Nothing contacts the daemon until the platform is first used. A platform that creates its
    client closes it in :meth:`close` (or at the end of a ``with`` block); one garbage-collected
    unclosed warns with ``ResourceWarning``. A ``client`` passed in is never closed.

    :param container: the container's name or id. ``None`` finds it: by name (``names``, in
        order), else by image (a running container of an agent image, see :data:`AGENT_IMAGES`).
    :param client: a ``docker.DockerClient`` (or ``docker.APIClient``); ``None`` creates one
        with ``docker.from_env()`` (``DOCKER_HOST`` etc.).
    :param base_url: instead of ``client``, the daemon's address (``unix:///var/run/docker.sock``).
    :param names: the container names tried when ``container`` is ``None``.
    :param settle: seconds a recreated container must stay up before a disable plan counts it
        as started.
    :param timeout: seconds the daemon has to answer each API call of a client this platform
        creates (``None``: no limit); commands run by :meth:`exec` take their own timeout.
    :raises InvalidArgumentError: ``container`` is not a valid container name or id, or
        ``timeout`` is not a positive number of seconds.
    """

    kind = "docker"

    def __init__(
        self,
        container: str | None = None,
        client: DockerClient | DockerAPI | None = None,
        *,
        base_url: str | None = None,
        names: Sequence[str] = DEFAULT_NAMES,
        settle: float = 5.0,
        timeout: float | None = 60.0,
    ) -> None:
        self._container = None if container is None else _check_name(container)
        self._named = container is not None
        self._names = tuple(_check_name(n) for n in names)
        self._settle = float(settle)
        self._timeout = check_timeout(timeout)
        self._connection = DockerConnection(client, base_url=base_url, timeout=self._timeout)
        self._owner = True

    def _sharing(self, container: str) -> DockerPlatform:
        """A platform for ``container`` on this platform's connection (it never closes it)."""
        child = DockerPlatform(container, names=self._names, settle=self._settle)
        child._timeout = self._timeout
        child._connection = self._connection
        child._owner = False
        return child

    # -- connection -------------------------------------------------------------------------------

    @property
    def timeout(self) -> float | None:
        """Seconds each API call may take (``None``: no limit)."""
        return self._timeout

    @property
    def api(self) -> DockerAPI:
        """The low-level ``docker.APIClient`` in use (created on first use).

        :raises BackendUnavailableError: the SDK is missing or the daemon cannot be reached.
        :raises PlatformError: the platform (or the one whose ``agents()`` made it) was closed.
        """
        return self._connection.api

    def close(self) -> None:
        """Close the Docker client this platform created; a ``client`` passed in is left open,
        and a platform returned by :meth:`agents` closes nothing. After it, this platform (and
        those its :meth:`agents` returned) raise :class:`~wpprotect.PlatformError` when used."""
        if self._owner:
            self._connection.close()

    # -- which container --------------------------------------------------------------------------

    @property
    def container(self) -> str:
        """The agent container's name (found on first use when not given).

        :raises AgentNotFoundError: no agent container was found.
        :raises InvalidArgumentError: several were found and none was named.
        """
        if self._container is None:
            found = self._discover()
            if not found:
                raise self._not_found()
            if len(found) > 1 and found[0] not in self._names:
                raise InvalidArgumentError(
                    f"{len(found)} agent containers found ({', '.join(found)}): pass "
                    "container=... or use agents() to address each",
                    target="docker",
                )
            self._container = found[0]
        return self._container

    @property
    def target(self) -> str:
        """``docker:<container name>``."""
        return f"docker:{self.container}"

    def _not_found(self) -> AgentNotFoundError:
        looked = ", ".join(self._names)
        return AgentNotFoundError(
            f"no Datadog Agent container found: looked for the names {looked} and for "
            f"running containers of the images {', '.join(AGENT_IMAGES)} (or any "
            "repository ending in /agent); pass container=...",
            target="docker",
        )

    def _discover(self) -> list[str]:
        """Agent containers: the named ones first (in ``names`` order), then by image."""
        with docker_errors("list containers", target="docker"):
            listing = self.api.containers(all=True)
        by_name: dict[str, JSONObject] = {}
        by_image: list[str] = []
        for c in listing:
            names = [n.lstrip("/") for n in c.get("Names") or []]
            name = next((n for n in names if "/" not in n), names[0] if names else c["Id"])
            if _MARKER in name:
                continue
            if name in self._names:
                by_name[name] = c
            elif c.get("State") == "running" and is_agent_image(str(c.get("Image", ""))):
                by_image.append(name)
        return [n for n in self._names if n in by_name] + sorted(by_image)

    def agents(self) -> list[BasePlatform]:
        """One platform per agent container: ``[self]`` for the one named, else one per
        container found, sharing this platform's client.

        :raises AgentNotFoundError: the named container does not exist, or none was found (the
            message lists the names and images looked for).
        :raises BackendUnavailableError: the daemon cannot be reached.
        """
        if self._named:
            self.inspect()  # a missing container is an AgentNotFoundError
            return [self]
        found = self._discover()
        if not found:
            raise self._not_found()
        return [self._sharing(name) for name in found]

    def inspect(self) -> JSONObject:
        """The container's ``docker inspect`` document (contains env values: never log it).

        :raises AgentNotFoundError: the container does not exist.
        """
        with docker_errors("inspect the container", target=self.target):
            data: JSONObject = self.api.inspect_container(self.container)
        return data

    # -- exec -------------------------------------------------------------------------------------

    def _exec(self, call: ExecCall) -> ExecResult:
        """Run ``argv`` in the agent container (every component runs there); see
        :meth:`BasePlatform.exec`.

        stdout and stderr are kept apart; ``stdin`` is written, then closed. On a timeout or
        past ``max_output`` the exec'd process is killed when possible.

        :raises ExecError: it could not be started (e.g. the container is not running) or the
            container stopped while it ran.
        :raises AgentNotFoundError: the container does not exist.
        :raises BackendUnavailableError: the daemon cannot be reached.
        """
        argv, _, stdin, timeout, max_output = call.unpack()
        args = argv
        target = self.target
        name = self.container
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        with docker_errors(f"run {args[0]!r}", target=target, api_error=ExecError):
            try:
                created = self.api.exec_create(
                    name, args, stdout=True, stderr=True, stdin=stdin is not None, tty=False
                )
            except Exception as exc:
                if status_code(exc) == 409:  # "Container ... is not running" / paused
                    raise ExecError(
                        f"cannot run {args[0]!r}: the container is {self._state_word(name)}",
                        target=target,
                    ) from exc
                raise
            exec_id = str(created["Id"])
            sock = self.api.exec_start(exec_id, socket=True, tty=False)
        raw = getattr(sock, "_sock", sock)
        try:
            out, err = _pump(raw, stdin, deadline, OutputBudget(max_output, args[0], target))
        except _Timeout:
            self._kill_exec(exec_id, name)
            raise ExecTimeoutError(
                f"{args[0]!r} ran past its {timeout or 0:g} s timeout and was stopped",
                target=target,
            ) from None
        except ExecOutputLimitError:
            # closed first: the daemon, blocked on the flood we stopped reading, would not
            # serve the exec that kills it
            _close(sock, raw)
            self._kill_exec(exec_id, name)
            raise
        except OSError as exc:
            raise ExecError(
                f"lost the connection while {args[0]!r} ran: {explanation(exc)}", target=target
            ) from exc
        finally:
            _close(sock, raw)
        code = self._exit_code(exec_id, name, args[0], target)
        return ExecResult(
            argv=tuple(args),
            exit_code=code,
            stdout=out.decode("utf-8", "replace"),
            stderr=err.decode("utf-8", "replace"),
            duration=time.monotonic() - started,
            target=target,
        )

    def _state_word(self, name: str) -> str:
        try:
            state = self.api.inspect_container(name).get("State") or {}
        except Exception:
            return "not running"
        status = str(state.get("Status") or "not running")
        return "not running" if status == "running" else f"not running ({status})"

    def _exit_code(self, exec_id: str, name: str, what: str, target: str) -> int:
        """The exec's exit status, once the daemon has recorded it."""
        with docker_errors(f"read the exit status of {what!r}", target=target, api_error=ExecError):
            for _ in range(100):  # the stream can close a moment before the exec is marked done
                info = self.api.exec_inspect(exec_id)
                if not info.get("Running"):
                    break
                time.sleep(0.02)
            code = info.get("ExitCode")
            state = (self.api.inspect_container(name).get("State") or {}).get("Status")
            # Killed by a signal: the container may be stopping, and the daemon can record the
            # exec's end a moment before the container's; look again briefly.
            if state == "running" and (code is None or not 0 <= int(code) < 128):
                for _ in range(20):
                    time.sleep(0.05)
                    state = (self.api.inspect_container(name).get("State") or {}).get("Status")
                    if state != "running":
                        break
        if state != "running":
            raise ExecError(
                f"the container stopped ({state}) while {what!r} was running", target=target
            )
        if code is None or info.get("Running"):
            raise ExecError(f"{what!r} ended without an exit status", target=target)
        return int(code) & 0xFF if int(code) < 0 else int(code)

    def _kill_exec(self, exec_id: str, name: str) -> None:
        """Kill a timed-out exec'd process and its descendants, best effort.

        The daemon reports pids in the host's pid namespace (``exec_inspect``, ``top``). ``kill``
        is run in the container with the pids as the container sees them: read from
        ``/proc/<pid>/status`` (NSpid) when the daemon is local and the process is in this
        container's cgroup, or the host pids themselves when the container shares the host's
        pid namespace (``--pid host``, as the documented CWS command does,
        docs/reference/deployments.md#deploy-docker).
        """
        try:
            info = self.api.exec_inspect(exec_id)
            pid = int(info.get("Pid") or 0)
            if not pid or not info.get("Running"):
                return
            container = self.api.inspect_container(name)
        except Exception as exc:
            log.warning("could not look up the timed-out process in %s: %s", name, exc)
            return
        host_pids = [pid, *self._descendants(name, pid)]
        cid = str(container.get("Id", ""))
        shared = (container.get("HostConfig") or {}).get("PidMode") == "host"
        inner = [_namespaced_pid(h, cid) or (h if shared else None) for h in host_pids]
        pids = [str(p) for p in inner if p is not None]
        if not pids:
            log.warning("cannot map pid %d into %s: the timed-out process may still run", pid, name)
            return
        try:
            kill = self.api.exec_create(name, ["kill", "-KILL", *pids], stdout=True, stderr=True)
            self.api.exec_start(kill["Id"], tty=False)
        except Exception as exc:
            log.warning("could not kill pids %s in %s: %s", ", ".join(pids), name, exc)

    def _descendants(self, name: str, pid: int) -> list[int]:
        """Host pids of ``pid``'s descendants in the container (``docker top``: PID, PPID)."""
        try:
            top = self.api.top(name)
            titles = list(top.get("Titles") or [])
            at_pid, at_ppid = titles.index("PID"), titles.index("PPID")
            pairs = [(int(row[at_pid]), int(row[at_ppid])) for row in top.get("Processes") or []]
        except Exception as exc:
            log.debug("docker top failed on %s: %s", name, exc)
            return []
        found: list[int] = []
        parents = {pid}
        while parents:
            children = [p for p, pp in pairs if pp in parents and p not in found]
            found.extend(children)
            parents = set(children)
        return found

    # -- copy out ---------------------------------------------------------------------------------

    def copy_out(
        self, path: str, dest: Path | str, *, component: Component = "security-agent"
    ) -> Path:
        """Copy the regular file at ``path`` in the container to ``dest`` (mode 0600).

        A symlink is followed (a few levels); anything but a regular file is refused. The file
        is created in a private directory next to ``dest`` and renamed into place, so ``dest``
        is never half-written, and a symlink or a file someone else made there is replaced,
        never written through.

        :param path: absolute path in the container.
        :param dest: local file path, or an existing directory to copy into.
        :returns: the local path written.
        :raises PlatformError: the file does not exist or is not a regular file.
        :raises AgentNotFoundError: the container does not exist.
        """
        target = self.target
        src = _check_path(path)
        dest = Path(dest)
        final = dest / PurePosixPath(src).name if dest.is_dir() and not dest.is_symlink() else dest
        self.inspect()  # a missing container is an AgentNotFoundError, a missing file is not
        for _ in range(8):
            with docker_errors(
                f"copy {src} out of the container", target=target, not_found=PlatformError
            ):
                stream, stat = self.api.get_archive(self.container, src)
                link = str(stat.get("linkTarget") or "")
                mode = int(stat.get("mode") or 0)
                if mode & _MODE_SYMLINK and link:
                    _drain(stream)
                    src = (
                        str(PurePosixPath(src).parent / link) if not link.startswith("/") else link
                    )
                    continue
                if mode & _MODE_TYPE:
                    _drain(stream)
                    raise PlatformError(f"{src} is not a regular file", path=src, target=target)
                with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
                    for chunk in stream:
                        spool.write(chunk)
                    spool.seek(0)
                    _extract_single(spool, PurePosixPath(src).name, final, src, target)
            return final
        raise PlatformError(f"{path}: too many levels of symbolic links", path=path, target=target)

    # -- plans ------------------------------------------------------------------------------------

    def env_plan(self, env: Mapping[str, str], *, title: str | None = None) -> Plan:
        """A plan that recreates the container with ``env`` set (everything else kept).

        A container's environment cannot change in place, so applying the plan creates an
        identical container with the new variables, swaps it in under the same name and keeps
        the old one, stopped, for :meth:`~wpprotect.Plan.undo`.

        :param env: variables to set (values are strings; existing ones are updated in place).
        :param title: the plan's title.
        :returns: a one-change plan.
        :raises AgentNotFoundError: the container does not exist.
        """
        from wpprotect.plan import Plan
        from wpprotect.platforms._docker_recreate import RecreateWithEnv

        changes = _check_env(env)
        labels = (self.inspect().get("Config") or {}).get("Labels") or {}
        change: Any = RecreateWithEnv(
            self._connection, self.container, changes, settle=self._settle
        )
        # Plan's list converters confuse mypy's attrs plugin: hand it Any.
        notes: Any = [
            f"{self.target} is recreated with the same configuration and the new environment; "
            f"the original is kept, stopped, as {self.container}{_MARKER}old-<time>-<id> until the "
            "plan is undone or it is removed",
            "the change lasts until the container is created again from its own definition "
            "(a docker run script, a systemd unit): set the variables there too",
        ]
        project = labels.get("com.docker.compose.project")
        if project:
            notes.append(
                f"the container belongs to the Compose project {project!r}: set the variables in "
                "its compose file too, or the next `docker compose up` reverts them"
            )
        title = title or f"set {', '.join(sorted(changes))} on {self.target}"
        return Plan(title, [change], notes=notes)

    def _settings_plan(self, settings: Mapping[Setting, SettingValue], *, title: str) -> Plan:
        """Turn ``{Setting: value}`` into the env changes of the one agent container."""
        from wpprotect.config._surfaces import env_changes
        from wpprotect.platforms._docker_recreate import env_dict

        current = env_dict((self.inspect().get("Config") or {}).get("Env"))
        merged: dict[str, str] = {}
        for component, variables in env_changes(settings, current).items():
            for key, value in variables.items():
                if merged.get(key, value) != value:
                    raise InvalidArgumentError(
                        f"{key} would need two values in one container "
                        f"({merged[key]!r} and {value!r} for {component})",
                        key=key,
                        target=self.target,
                    )
                merged[key] = value
        return self.env_plan(merged, title=title)

    def __repr__(self) -> str:
        return f"<DockerPlatform docker:{self._container or '(not resolved)'}>"


# --- helpers --------------------------------------------------------------------------------------


class _Timeout(Exception):
    """The exec ran past its deadline (internal; becomes ExecTimeoutError)."""


def _check_path(path: object) -> str:
    if not isinstance(path, str) or not path.startswith("/") or "\x00" in path:
        raise InvalidArgumentError(f"need an absolute path in the container, not {path!r}")
    return path


def _check_env(env: Mapping[str, object]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in env.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", str(key)):
            raise InvalidArgumentError(f"invalid environment variable name {key!r}")
        if isinstance(value, bool):  # "false", the spelling the agent's docs use
            text = "true" if value else "false"
        elif isinstance(value, str | int):
            text = str(value)
        else:
            raise InvalidArgumentError(f"{key}: value must be a string", key=key)
        if "\x00" in text:
            raise InvalidArgumentError(f"{key}: value contains NUL", key=key)
        out[key] = text
    if not out:
        raise InvalidArgumentError("no environment variable to set")
    return out


def _pump(
    raw: Any, stdin: bytes | None, deadline: float | None, budget: OutputBudget
) -> tuple[bytes, bytes]:
    """Write ``stdin`` then half-close; read and demultiplex frames until EOF, counting the
    output against ``budget``."""
    out, err = bytearray(), bytearray()
    buf = bytearray()
    pending = memoryview(stdin) if stdin is not None else None
    if pending is not None and not pending:
        raw.shutdown(socket.SHUT_WR)
        pending = None
    raw.setblocking(False)
    eof = False
    try:
        while not eof:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                raise _Timeout
            writers = [raw] if pending is not None else []
            readable, writable, _ = select.select([raw], writers, [], wait)
            if not readable and not writable:
                continue
            if writable and pending is not None:
                try:
                    sent = raw.send(pending[:_CHUNK])
                    pending = pending[sent:]
                except (BrokenPipeError, ConnectionResetError):
                    pending = memoryview(b"")  # the process stopped reading; keep its output
                except BlockingIOError:
                    pass
                if not pending:
                    with contextlib.suppress(OSError):
                        raw.shutdown(socket.SHUT_WR)
                    pending = None
            if readable:
                try:
                    data = raw.recv(_CHUNK)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    # The daemon closed the stream with some of our stdin unread (the process
                    # exited without reading it): the output already queued has been read, and
                    # the exit status comes from exec_inspect, so this is the end of the stream.
                    if stdin is None:
                        raise
                    data = b""
                if not data:
                    eof = True
                budget.take(len(data))  # frames and their 8-byte headers, as they arrive
                buf.extend(data)
                while len(buf) >= _HEADER.size:
                    kind, size = _HEADER.unpack_from(buf)
                    if len(buf) < _HEADER.size + size:
                        break
                    frame = bytes(buf[_HEADER.size : _HEADER.size + size])
                    del buf[: _HEADER.size + size]
                    if kind == _STDERR:
                        err.extend(frame)
                    elif kind == _STDOUT:
                        out.extend(frame)
    finally:
        with contextlib.suppress(OSError):
            raw.setblocking(True)
    return bytes(out), bytes(err)


def _close(sock: Any, raw: Any) -> None:
    """Close a hijacked exec stream: the socket file, the socket and the HTTP response that
    docker-py keeps alive beside them (else each exec leaks a descriptor until collected)."""
    for obj in (sock, raw, getattr(sock, "_response", None)):
        if obj is not None:
            with contextlib.suppress(Exception):
                obj.close()


def _namespaced_pid(pid: int, container_id: str) -> int | None:
    """The pid as the container sees it, when the process is visible here and in the container."""
    if not container_id:
        return None
    try:
        cgroup = Path(f"/proc/{pid}/cgroup").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    if container_id not in cgroup:  # another machine's pid, or reused: never kill it
        return None
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    return None


def _drain(stream: Any) -> None:
    with contextlib.suppress(Exception):
        for _ in stream:
            pass


def _extract_single(archive: Any, name: str, final: Path, src: str, target: str) -> None:
    """Write the one regular file named ``name`` from a tar stream to ``final`` atomically.

    Members are never extracted by their own path: only the expected single file is read, so
    ``..`` or absolute names in the archive cannot write anywhere.
    """
    try:
        with tarfile.open(fileobj=archive, mode="r|*") as tar:
            member = tar.next()
            if member is None or not member.isreg() or PurePosixPath(member.name).name != name:
                raise PlatformError(
                    f"unexpected archive from the daemon for {src}: "
                    f"{'empty' if member is None else repr(member.name)}",
                    path=src,
                    target=target,
                )
            fileobj = tar.extractfile(member)
            if fileobj is None:
                raise PlatformError(f"cannot read {src} from the archive", path=src, target=target)
            final.parent.mkdir(parents=True, exist_ok=True)
            # created in a private directory and renamed into place: a link or a file someone
            # else made at `final` is replaced, never written through; owner only (a flare
            # holds configuration and logs)
            reader = fileobj
            write_private(final, iter(lambda: reader.read(_CHUNK), b""), mode=0o600)
    except OSError as exc:
        raise PlatformError(
            f"cannot write {final}: {exc.strerror or exc}", path=final, target=target
        ) from exc
    except tarfile.TarError as exc:
        raise PlatformError(
            f"cannot read the archive of {src}: {exc}", path=src, target=target
        ) from exc
