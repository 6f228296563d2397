"""What every adapter shares: :class:`BasePlatform`, the operations written once on top of the
contract (:class:`~wpprotect.platforms.Platform`, defined in :mod:`wpprotect._contract`).

Every adapter (host, Docker, Kubernetes, the in-memory fake in :mod:`wpprotect.testing`)
subclasses :class:`BasePlatform`; the operations users call (``self_test()``, ``flare()``,
``disable()``...) are written once here, against the small contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from wpprotect._closing import Closing
from wpprotect._contract import Component, ExecResult, Platform, Scope
from wpprotect.errors import ExecOutputLimitError, InvalidArgumentError

if TYPE_CHECKING:
    from wpprotect.agent import AgentVersion, Flare, SelfTestResult
    from wpprotect.config import Setting
    from wpprotect.config._settings import SettingValue
    from wpprotect.plan import Plan
    from wpprotect.tc import TCReport
    from wpprotect.tc._measure import TCMeasurement

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "BasePlatform",
    "Component",
    "ExecCall",
    "ExecResult",
    "OutputBudget",
    "Platform",
    "Scope",
    "check_argv",
    "check_timeout",
]

#: How many bytes of output (stdout and stderr together) :meth:`BasePlatform.exec` keeps by
#: default before it stops the command: generous for any agent command (a flare is copied to a
#: file, never held as output).
DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024


def check_timeout(timeout: object) -> float | None:
    """``timeout`` as seconds (a positive number) or None.

    :raises InvalidArgumentError: anything else.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise InvalidArgumentError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


#: Where an in-process (host) scan ran, as :attr:`BasePlatform.last_tc_read` says it.
_IN_PROCESS: dict[str, Any] = {"component": None, "python": None, "executable": None}


def check_argv(argv: object) -> list[str]:
    """``argv`` as a list of strings: a non-empty sequence of ``str`` without NUL bytes.

    :raises InvalidArgumentError: a string (a shell command line), bytes, empty, or an item
        that is not a string.
    """
    if isinstance(argv, str | bytes) or not isinstance(argv, Sequence) or not argv:
        raise InvalidArgumentError(
            f"argv must be a non-empty list of strings, not a string or empty: {argv!r}"
        )
    args = list(argv)
    for arg in args:
        if not isinstance(arg, str) or "\x00" in arg:
            raise InvalidArgumentError(f"argv items must be strings without NUL, not {arg!r}")
    return args


def check_max_output(max_output: object) -> int | None:
    """``max_output`` as a positive number of bytes, or None (no limit).

    :raises InvalidArgumentError: anything else.
    """
    if max_output is None:
        return None
    if isinstance(max_output, bool) or not isinstance(max_output, int) or max_output <= 0:
        raise InvalidArgumentError(
            f"max_output must be a positive number of bytes or None, not {max_output!r}"
        )
    return max_output


@attrs.frozen
class ExecCall:
    """One call of :meth:`BasePlatform.exec`, its arguments checked, as an adapter's ``_exec``
    receives it."""

    argv: tuple[str, ...]
    component: Component
    stdin: bytes | None
    timeout: float | None
    max_output: int | None

    def unpack(self) -> tuple[list[str], Component, bytes | None, float | None, int | None]:
        """``(argv as a list, component, stdin, timeout, max_output)``."""
        return list(self.argv), self.component, self.stdin, self.timeout, self.max_output


class OutputBudget:
    """Counts the output bytes an adapter reads from a command, against ``max_output``.

    :param limit: the most bytes allowed (None: no limit).
    :param what: the command, for the message.
    :param target: the platform target, for the message.
    """

    __slots__ = ("limit", "target", "used", "what")

    def __init__(self, limit: int | None, what: str, target: str) -> None:
        self.limit = limit
        self.what = what
        self.target = target
        self.used = 0

    def take(self, n: int) -> None:
        """Count ``n`` more bytes.

        :raises ExecOutputLimitError: past the limit (the caller stops the command).
        """
        self.used += n
        if self.limit is not None and self.used > self.limit:
            raise ExecOutputLimitError(
                f"{self.what!r} wrote more than {self.limit:,} bytes of output and was stopped "
                "(raise max_output, or None for no limit)",
                target=self.target,
            )


class BasePlatform(Closing):
    """Shared operations on top of :class:`Platform`; adapters subclass it.

    Subclasses implement ``kind``, ``target``, ``_exec`` (the adapter's part of :meth:`exec`,
    given checked arguments), ``copy_out``, ``agents`` and ``_settings_plan``; those holding an
    SDK client also override :meth:`close`.

    Every platform is a context manager: ``with`` closes, on the way out, the SDK clients the
    platform created itself (never one passed in as ``client=``)::

        with wp.KubernetesPlatform(namespace="datadog") as k8s:
            for agent in k8s.agents():
                agent.self_test()
    """

    kind: str = "base"
    #: Where the last :meth:`tc_scan` or :meth:`measure` read ran: ``component``, ``python``
    #: (its version), ``executable``, ``duration`` and ``bytes`` of output (None before any).
    last_tc_read: dict[str, object] | None = None
    #: True where the agent runs on this process's own kernel (the host): TC scans then run
    #: in-process instead of through the agent's container.
    _kernel_is_local: ClassVar[bool] = False

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
        max_output: int | None = DEFAULT_MAX_OUTPUT,
    ) -> ExecResult:
        """Run ``argv`` where ``component`` runs (see :meth:`Platform.exec`).

        The arguments are checked here, once for every adapter, which then runs the command in
        its ``_exec`` hook.

        :param argv: the command, a list of strings (never a shell string).
        :param component: the agent component to run it in.
        :param stdin: bytes fed to the command, then closed; ``None`` for no stdin.
        :param timeout: seconds before the command is stopped; ``None`` for no limit.
        :param max_output: bytes of stdout and stderr together the command may write (64 MiB by
            default; ``None`` for no limit).
        :returns: the exit code and decoded output (a non-zero exit is returned, not raised).
        :raises InvalidArgumentError: ``argv``, ``stdin``, ``timeout`` or ``max_output`` is not
            valid.
        :raises ExecTimeoutError: it ran past ``timeout``.
        :raises ExecOutputLimitError: it wrote more than ``max_output`` bytes (it was stopped).
        :raises ExecError: it could not be started or the connection was lost.
        """
        args = check_argv(argv)
        if stdin is not None and not isinstance(stdin, bytes | bytearray | memoryview):
            raise InvalidArgumentError(f"stdin must be bytes or None, not {type(stdin).__name__}")
        call = ExecCall(
            tuple(args),
            component,
            None if stdin is None else bytes(stdin),
            check_timeout(timeout),
            check_max_output(max_output),
        )
        return self._exec(call)

    def _exec(self, call: ExecCall) -> ExecResult:  # pragma: no cover - adapters override it
        """The adapter's part of :meth:`exec`: run the checked ``call``."""
        raise NotImplementedError

    def copy_out(
        self, path: str, dest: Path | str, *, component: Component = "security-agent"
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
        """One single-agent platform per agent found (one per node on Kubernetes).

        The platforms returned share this platform's SDK client: they do not close it, and
        they stop working once this platform is closed.

        :raises AgentNotFoundError: no agent was found; the message says where it looked.
        """
        return [self]

    # -- life cycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the SDK clients this platform created (none here; Docker and Kubernetes
        override it). A client passed in as ``client=`` is left open for its owner; closing
        twice is harmless."""

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

        :param timeout: seconds for the whole operation, the version read included.
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
        (``files``, ``scan_secrets()``) and then call :meth:`Flare.send`. ``timeout`` bounds
        the whole operation, the version read included.
        """
        from wpprotect.agent import collect_flare

        return collect_flare(
            self, case_id=case_id, email=email, send=send, dest=dest, timeout=timeout
        )

    def disable(self, scope: Scope = "workload-protection") -> Plan:
        """A plan that turns off Workload Protection, or only its network detection.

        ``workload-protection`` also turns off the settings that would keep it running
        (``fim_enabled``, ``security_profile.v2.host_dump.enabled``), each shown in the diff.
        """
        from wpprotect.plan import Plan

        values, notes = self._disable_values(scope)
        plan = self._settings_plan(values, title=f"disable {scope} on {self.target}")
        if not notes:
            return plan
        return Plan(plan.title, list(plan.changes), [*notes, *plan.notes])

    def _disable_values(self, scope: Scope) -> tuple[dict[Setting, SettingValue], list[str]]:
        """The settings a disable writes, with notes. By default every setting that can keep
        Workload Protection on is set off too: as env vars they win over any YAML value the
        container's config files hold, which a platform cannot always read."""
        from wpprotect.config import REENABLING_SETTINGS, disable_settings

        values = disable_settings(scope)
        notes = [
            f"{s.write_env}=false too: {s.write_key} would keep Workload Protection running"
            for s in REENABLING_SETTINGS
            if s in values
        ]
        return values, notes

    def set_classifier_priority(self, priority: int) -> Plan:
        """A plan that sets Datadog's TC classifier priority (1..65535)."""
        from wpprotect.config import CLASSIFIER_PRIORITY, validate_classifier_priority

        value = validate_classifier_priority(priority)
        return self._settings_plan(
            {CLASSIFIER_PRIORITY: value},
            title=f"set classifier_priority={value} on {self.target}",
        )

    # -- traffic control ------------------------------------------------------------------------

    @property
    def node(self) -> str | None:
        """The node this agent runs on, when the platform knows (Kubernetes); else None."""
        return None

    def tc_scan(
        self,
        netns: str | None = "all",
        probe: bool = False,
        *,
        classifier_priority: int | None = None,
        timeout: float | None = 60.0,
        fallback_pod: bool = False,
    ) -> TCReport:
        """Scan the kernel this agent sees: every clsact filter and tcx/netkit program.

        Here (Docker, each Kubernetes agent pod) wpprotect's read-only kernel reader runs inside
        the agent's ``system-probe`` container (else ``agent``) with the agent image's embedded
        Python, sent over stdin; nothing is installed, written or left running there. The raw
        records come back and are decoded and assessed here, exactly as a local scan's.
        :class:`~wpprotect.platforms.HostPlatform` scans in-process. Where the reader ran is
        kept in :attr:`last_tc_read`.

        :param netns: ``"all"``, None (the container's own namespace), a name or a path.
        :param probe: test-run programs; host platform only (a remote scan is read-only).
        :param classifier_priority: the priority to judge against; None: the one the agent's
            container env sets, when readable, else the default 10.
        :param timeout: seconds the exec may take.
        :param fallback_pod: Kubernetes only, opt-in: when the agent's container cannot run
            the reader, run it in a short-lived privileged pod pinned to the node, from the
            agent's own image, deleted afterwards (``last_tc_read["fallback_pod"]`` is then
            True).
        :raises UnsupportedAgentError: the container has no embedded Python.
        :raises CapabilityError: the container lacks a capability the read needs.
        :raises AgentNotFoundError: neither ``system-probe`` nor ``agent`` is there.
        :raises ExecError: the exec failed, was cut off or timed out.
        """
        report, where = self._read_tc(
            netns=netns,
            probe=probe,
            classifier_priority=classifier_priority,
            timeout=timeout,
            fallback_pod=fallback_pod,
        )
        self.last_tc_read = where
        return report

    def _read_tc(
        self,
        *,
        netns: str | None,
        probe: bool,
        classifier_priority: int | None,
        timeout: float | None,
        fallback_pod: bool,
    ) -> tuple[TCReport, dict[str, Any]]:
        """The scan behind :meth:`tc_scan` and where it ran: in-process where the agent shares
        this process's kernel (the host; ``timeout`` and ``fallback_pod`` unused), else the
        reader in the agent's container."""
        if self._kernel_is_local:
            from wpprotect.tc import TCInspector

            inspector = TCInspector(netns, probe=probe, classifier_priority=classifier_priority)
            return inspector.scan(), dict(_IN_PROCESS)
        from wpprotect.platforms._tc import remote_tc_scan

        return remote_tc_scan(
            self,
            netns=netns,
            probe=probe,
            classifier_priority=classifier_priority,
            timeout=timeout,
            fallback_pod=fallback_pod,
        )

    def measure(
        self, seconds: float = 10.0, *, netns: str | None = "all", timeout: float | None = None
    ) -> TCMeasurement:
        """Measure, over ``seconds``, whether Datadog's classifiers ran for the traffic their
        devices carried (see :meth:`wpprotect.TCInspector.measure`), with the reader run in the
        agent's container as :meth:`tc_scan` does.

        :param timeout: seconds for the exec (default: the window plus 60 s).
        """
        measurement, where = self._measure_tc(seconds, netns=netns, timeout=timeout)
        self.last_tc_read = where
        return measurement

    def _measure_tc(
        self, seconds: float, *, netns: str | None, timeout: float | None
    ) -> tuple[TCMeasurement, dict[str, Any]]:
        """The measurement behind :meth:`measure` and where it ran (the host: in-process)."""
        if self._kernel_is_local:
            from wpprotect.tc import TCInspector

            return TCInspector(netns).measure(seconds), dict(_IN_PROCESS)
        from wpprotect.platforms._tc import remote_measure

        return remote_measure(self, seconds, netns=netns, timeout=timeout)

    def _settings_plan(self, settings: Mapping[Setting, SettingValue], *, title: str) -> Plan:
        """Turn ``{Setting: value}`` into this platform's plan (files, env, restart...)."""
        raise NotImplementedError(f"{type(self).__name__} cannot change settings")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.target}>"
