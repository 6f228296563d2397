"""The agent processes seen in ``/proc``: which component, which container, their ``DD_*``
environment, and files read inside their root without following symlinks."""

from __future__ import annotations

import html
import os
import re
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from wpprotect.platforms import Component

__all__ = ["RunningComponent", "agent_environ", "config_arg", "read_in_root", "running_components"]


def _to_strs(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class RunningComponent:
    """An agent process seen in ``/proc``.

    :ivar component: ``agent``, ``system-probe`` or ``security-agent``.
    :ivar pid: its process id.
    :ivar argv: its command line.
    :ivar container: the container id (12 characters) when it runs in a container, else None.
    """

    component: Component
    pid: int
    argv: tuple[str, ...] = attrs.field(converter=_to_strs)
    container: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "component": self.component,
            "pid": self.pid,
            "argv": list(self.argv),
            "container": self.container,
        }

    def _repr_html_(self) -> str:
        where = f"container {self.container}" if self.container else "host"
        return (
            f"<p><b>{html.escape(self.component)}</b> pid {self.pid} ({html.escape(where)}): "
            f"<code>{html.escape(' '.join(self.argv))}</code></p>"
        )


_CONTAINER_RE = re.compile(r"(?:docker[-/]|containerd[-/]|cri-containerd-|crio-)([0-9a-f]{12,64})")


def running_components(proc: str | os.PathLike[str] = "/proc") -> list[RunningComponent]:
    """The agent processes running on this machine (host and containers), read from ``/proc``.

    Needs no privileges: ``cmdline`` and ``cgroup`` are world-readable.

    :param proc: the procfs mount to read.
    """
    found: list[RunningComponent] = []
    root = Path(proc)
    try:
        entries = [e for e in os.listdir(root) if e.isdigit()]
    except OSError:
        return found
    for entry in entries:
        try:
            raw = (root / entry / "cmdline").read_bytes()
        except OSError:
            continue  # the process exited, or /proc is mounted hidepid
        argv = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
        component = _component_of(argv)
        if component is None:
            continue
        container = None
        try:
            match = _CONTAINER_RE.search((root / entry / "cgroup").read_text())
            if match:
                container = match.group(1)[:12]
        except OSError:
            pass
        found.append(RunningComponent(component, int(entry), argv, container))
    return sorted(found, key=lambda c: (c.component, c.pid))


def _component_of(argv: Sequence[str]) -> Component | None:
    if not argv:
        return None
    exe = os.path.basename(argv[0])
    if exe == "system-probe":
        return "system-probe"
    if exe == "security-agent":
        return "security-agent"
    # The core agent runs as `agent run` (s6 and systemd units); `agent version` etc. are not it.
    if exe == "agent" and len(argv) > 1 and argv[1] in ("run", "start"):
        return "agent"
    return None


def agent_environ(proc_root: str | os.PathLike[str], pid: int) -> dict[str, str] | None:
    """A process's ``DD_*`` environment variables (root only), or None when unreadable."""
    try:
        raw = (Path(proc_root) / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    # Only the agent's own variables: nothing else from the process is needed or shown.
    return {
        k.decode(errors="replace"): v.decode(errors="replace")
        for k, v in pairs
        if k.startswith(b"DD_")
    }


_MAX_CONFIG_BYTES = 8 * 1024 * 1024  # as the config loader: agent files are a few kB


def read_in_root(root: Path, path: str) -> bytes | None:
    """The file at ``path`` inside a process's root (``/proc/<pid>/root``), or None if absent.

    Every component is checked with ``lstat`` and the file opened with ``O_NOFOLLOW``: a symlink
    inside a container would otherwise be resolved against the *host's* root when read from
    outside it, and could point doctor at any host file.

    :raises PermissionError: a component of ``path`` is a symlink.
    """
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    current = root
    for part in parts:
        current = current / part
        try:
            info = os.lstat(current)
        except OSError:
            return None
        if stat.S_ISLNK(info.st_mode):
            raise PermissionError(f"{path} is a symlink inside the container: not followed")
    if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_CONFIG_BYTES:
        return None
    fd = os.open(current, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        return fh.read(_MAX_CONFIG_BYTES + 1)[:_MAX_CONFIG_BYTES]


def config_arg(argv: Sequence[str], default: str) -> str:
    """system-probe's config file from its command line (``--config=...``; s6 and systemd both
    pass it), else ``default``."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
        if arg in ("--config", "-c") and i + 1 < len(argv):
            return argv[i + 1]
    return default
