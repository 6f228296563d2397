"""The platform contract: run an argv in one agent component, copy a file out, say what it is.

This module sits at the bottom of wpprotect's layers: it imports nothing from wpprotect, so the
agent operations (:mod:`wpprotect.agent`), which are written against :class:`Platform`, and the
adapters (:mod:`wpprotect.platforms`, :mod:`wpprotect.testing`), which implement it, both depend
on it and never on each other's modules. The public names are re-exported by
:mod:`wpprotect.platforms` and :mod:`wpprotect`, and report ``wpprotect.platforms`` as their
module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from wpprotect._redact import redact_text

__all__ = ["Component", "ExecResult", "Platform", "Scope"]

#: The agent processes wpprotect talks to. On Docker and host they share one container or
#: machine; on Kubernetes each is a container of the agent pod.
Component = Literal["agent", "system-probe", "security-agent"]

#: What ``disable()`` turns off: all of Workload Protection, or only its network detection.
Scope = Literal["workload-protection", "network"]

_PUBLIC_MODULE = "wpprotect.platforms"


def _str_tuple(items: Iterable[str]) -> tuple[str, ...]:
    # A named converter: mypy's attrs plugin cannot type ``converter=tuple``.
    return tuple(items)


@attrs.frozen
class ExecResult:
    """What a command run on a platform returned.

    ``stdout`` and ``stderr`` are decoded as UTF-8 with replacement; ``exit_code`` is the
    process's status (255 for the agent's ``-1``).
    """

    argv: tuple[str, ...] = attrs.field(converter=_str_tuple)
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    target: str = ""

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.exit_code == 0

    @property
    def output(self) -> str:
        """stdout then stderr, as a person at a terminal would have seen them."""
        if self.stdout and self.stderr:
            return self.stdout + ("" if self.stdout.endswith("\n") else "\n") + self.stderr
        return self.stdout or self.stderr

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy of every field, secrets redacted as on every other surface (the
        attributes keep the raw text for the program)."""
        return {
            "argv": [redact_text(a) for a in self.argv],
            "exit_code": self.exit_code,
            "stdout": redact_text(self.stdout),
            "stderr": redact_text(self.stderr),
            "duration": self.duration,
            "target": self.target,
        }

    def _command(self) -> str:
        return redact_text(" ".join(self.argv))

    def __repr__(self) -> str:
        return (
            f"<ExecResult {self._command()!r} exit={self.exit_code} on {self.target or '?'} "
            f"({len(self.stdout)} B out, {len(self.stderr)} B err)>"
        )

    def _repr_html_(self) -> str:
        import html

        head = html.escape(f"$ {self._command()}  (exit {self.exit_code}, {self.target})")
        return f"<pre><b>{head}</b>\n{html.escape(redact_text(self.output))}</pre>"


@runtime_checkable
class Platform(Protocol):
    """The small contract every adapter implements.

    The agent operations need only these four members. The adapters wpprotect ships
    (:class:`~wpprotect.platforms.BasePlatform` and its subclasses) add the operations written
    on top of them (``self_test()``, ``flare()``, ``disable()``...), ``agents()``, and
    ``close()`` with the context-manager protocol.
    """

    @property
    def kind(self) -> str:
        """``host``, ``docker``, ``kubernetes`` or ``fake``."""
        ...

    @property
    def target(self) -> str:
        """A short human label for the agent this talks to, e.g. ``docker:datadog-agent``."""
        ...

    def exec(
        self,
        argv: Sequence[str],
        *,
        component: Component = "security-agent",
        stdin: bytes | None = None,
        timeout: float | None = 120.0,
    ) -> ExecResult:
        """Run ``argv`` (a list, never a shell string) where ``component`` runs.

        A non-zero exit is *not* an error: it is returned in :class:`ExecResult`.

        :raises ExecTimeoutError: it ran past ``timeout`` seconds.
        :raises ExecError: it could not be started or the connection was lost.
        """
        ...

    def copy_out(self, path: str, dest: Path, *, component: Component = "security-agent") -> Path:
        """Copy the file at ``path`` (inside the component) to the local path ``dest``.

        :returns: ``dest``.
        """
        ...


for _public in (ExecResult, Platform):
    _public.__module__ = _PUBLIC_MODULE
del _public
