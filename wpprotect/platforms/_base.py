"""The platform contract: run an argv in one agent component, copy a file out, describe the target.

Every adapter (host, Docker, Kubernetes, the in-memory fake in :mod:`wpprotect.testing`) implements
:class:`Platform`. The operations users call (``self_test()``, ``flare()``, ``disable()``...) are
written once, in :class:`BasePlatform`, against that small contract.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from wpprotect.agent import AgentVersion, Flare, SelfTestResult
    from wpprotect.plan import Plan

__all__ = ["BasePlatform", "Component", "ExecResult", "Platform", "Scope"]

#: The agent processes wpprotect talks to. On Docker and host they share one container or
#: machine; on Kubernetes each is a container of the agent pod.
Component = Literal["agent", "system-probe", "security-agent"]

#: What ``disable()`` turns off: all of Workload Protection, or only its network detection.
Scope = Literal["workload-protection", "network"]


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
        """A JSON-ready copy of every field."""
        return {
            "argv": list(self.argv),
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "duration": self.duration,
            "target": self.target,
        }

    def __repr__(self) -> str:
        return (
            f"<ExecResult {' '.join(self.argv)!r} exit={self.exit_code} on {self.target or '?'} "
            f"({len(self.stdout)} B out, {len(self.stderr)} B err)>"
        )

    def _repr_html_(self) -> str:
        import html

        head = html.escape(f"$ {' '.join(self.argv)}  (exit {self.exit_code}, {self.target})")
        return f"<pre><b>{head}</b>\n{html.escape(self.output)}</pre>"


@runtime_checkable
class Platform(Protocol):
    """The small contract every adapter implements."""

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


class BasePlatform:
    """Shared operations on top of :class:`Platform`; adapters subclass it.

    Subclasses implement ``kind``, ``target``, ``exec``, ``copy_out``, ``agents`` and
    ``_settings_plan``.
    """

    kind: str = "base"

    @property
    def target(self) -> str:  # pragma: no cover - every adapter overrides it
        """A short label for the agent, e.g. ``docker:datadog-agent`` (see :class:`Platform`)."""
        raise NotImplementedError

    def exec(
        self,
        argv: Sequence[str],
        *,
        component: Component = "security-agent",
        stdin: bytes | None = None,
        timeout: float | None = 120.0,
    ) -> ExecResult:  # pragma: no cover - every adapter overrides it
        """Run ``argv`` where ``component`` runs (see :meth:`Platform.exec`)."""
        raise NotImplementedError

    def copy_out(
        self, path: str, dest: Path, *, component: Component = "security-agent"
    ) -> Path:  # pragma: no cover - every adapter overrides it
        """Copy ``path`` out of ``component`` to ``dest`` (see :meth:`Platform.copy_out`)."""
        raise NotImplementedError

    def binary(self, name: str) -> str:
        """How to run the agent binary ``name`` (``agent``, ``security-agent``,
        ``system-probe``) here: the bare name, found on ``PATH`` inside agent containers.

        :class:`~wpprotect.platforms.HostPlatform` returns full paths under its install dir.
        """
        return name

    def agents(self) -> list[BasePlatform]:
        """One single-agent platform per agent found (one per node on Kubernetes)."""
        return [self]

    # -- operations, written once -------------------------------------------------------------

    def version(self) -> AgentVersion:
        """The agent's version, read with the agent's own ``version`` command."""
        from wpprotect.agent import agent_version

        return agent_version(self)

    def self_test(
        self,
        *,
        timeout: float | None = 120.0,
        check_status: bool = True,
        status_wait: float = 0.0,
    ) -> SelfTestResult:
        """Run the runtime self-test with the right binary for the agent version.

        :param timeout: seconds allowed for the self-test.
        :param check_status: confirm with the status "Self Tests" block (failed tests → not ok).
        :param status_wait: seconds to wait for the status to show this run (see
            :func:`wpprotect.agent.run_self_test`).
        """
        from wpprotect.agent import run_self_test

        return run_self_test(
            self, timeout=timeout, check_status=check_status, status_wait=status_wait
        )

    def flare(
        self,
        *,
        case_id: str | None = None,
        email: str | None = None,
        send: bool = False,
        dest: str | Path | None = None,
        timeout: float | None = 600.0,
    ) -> Flare:
        """Collect a flare without a terminal and copy it out for review.

        With ``send=False`` (the default) the archive is kept local; review it
        (``files``, ``scan_secrets()``) and then call :meth:`Flare.send`.
        """
        from wpprotect.agent import collect_flare

        return collect_flare(
            self, case_id=case_id, email=email, send=send, dest=dest, timeout=timeout
        )

    def disable(self, scope: Scope = "workload-protection") -> Plan:
        """A plan that turns off Workload Protection, or only its network detection."""
        from wpprotect.config import scope_settings

        return self._settings_plan(scope_settings(scope), title=f"disable {scope} on {self.target}")

    def set_classifier_priority(self, priority: int) -> Plan:
        """A plan that sets Datadog's TC classifier priority (1..65535)."""
        from wpprotect.config import CLASSIFIER_PRIORITY, validate_classifier_priority

        value = validate_classifier_priority(priority)
        return self._settings_plan(
            {CLASSIFIER_PRIORITY: value},
            title=f"set classifier_priority={value} on {self.target}",
        )

    def _settings_plan(self, settings: dict[Any, Any], *, title: str) -> Plan:
        """Turn ``{Setting: value}`` into this platform's plan (files, env, restart...)."""
        raise NotImplementedError(f"{type(self).__name__} cannot change settings")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.target}>"
