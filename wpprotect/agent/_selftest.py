"""The runtime self-test: which command for which version, and every documented outcome."""

from __future__ import annotations

import html
import logging
import re
import time
from typing import TYPE_CHECKING, Any, Literal

import attrs

from wpprotect._agentversions import lookup
from wpprotect._deadline import Deadline
from wpprotect.agent._run import (
    AgentBinary,
    binary,
    component_of,
    is_unknown_command,
    str_tuple,
    strip_ansi,
)
from wpprotect.agent._version import AgentVersion, read_version
from wpprotect.errors import (
    AgentNotFoundError,
    ExecError,
    ExecTimeoutError,
    UnsupportedAgentError,
)

if TYPE_CHECKING:
    from wpprotect._contract import ExecResult, Platform

__all__ = [
    "Confirmation",
    "SelfTestResult",
    "StatusSelfTests",
    "parse_self_test_output",
    "parse_status_self_tests",
    "run_self_test",
    "self_test_binaries",
]

log = logging.getLogger(__name__)

_OK_LINE = "Runtime self test: OK"
_ERR_RE = re.compile(r"^Runtime self test: error: (?P<msg>.*)$", re.MULTILINE)
_FATAL_RE = re.compile(r"^Error: (?P<msg>.*)$", re.MULTILINE)
_DEPRECATED_RE = re.compile(r'^Command "[^"]+" is deprecated, .*$', re.MULTILINE)

#: How sure a self-test result is: the status "Self Tests" block agrees with the CLI
#: (``confirmed``), lists failed tests after a CLI OK (``contradicted``), or could not be read
#: (``unconfirmed``: no security-agent with direct send, status unreachable, not checked...).
Confirmation = Literal["confirmed", "contradicted", "unconfirmed"]

#: The reason given when the agent runs no security-agent (direct send from system-probe).
NO_SECURITY_AGENT = "no security-agent (direct send)"


def self_test_binaries(version: AgentVersion | None) -> tuple[AgentBinary, ...]:
    """The binaries to try for ``runtime self-test``, best first, for ``version``.

    From the version table (:data:`~wpprotect.agent.VERSION_TABLE`, rows
    ``self-test-binaries`` and ``system-probe-runtime``): ``system-probe runtime`` exists from
    7.56 (PR #27016); ``security-agent runtime`` is deprecated in 7.66 and gone from 7.67
    (docs/reference/agent-cli.md#cli-runtime-binary). ``security-agent`` is always kept as a
    fallback: it has always answered an unknown command with an error. ``system-probe`` is
    listed only for a version known to have ``runtime``: an older system-probe starts a second
    daemon when given a command it does not know
    (docs/reference/agent-cli.md#cli-old-system-probe). Unknown version: security-agent only.

    >>> self_test_binaries(None)
    ('security-agent',)
    >>> self_test_binaries(AgentVersion(7, 50, 3))
    ('security-agent',)
    >>> self_test_binaries(AgentVersion(7, 70, 1))
    ('system-probe', 'security-agent')
    """
    names: list[AgentBinary] = list(lookup("self-test-binaries", version) or ())
    if lookup("system-probe-runtime", version) is not True:
        names = [n for n in names if n != "system-probe"]
    if "security-agent" not in names:
        names.append("security-agent")
    return tuple(names)


def _not_run_reason(version: AgentVersion | None) -> str:
    """Why ``system-probe runtime self-test`` was not tried (an empty string when it was)."""
    if "system-probe" in self_test_binaries(version):
        return ""
    if version is None:
        return (
            "system-probe runtime self-test was not run: the agent version is unknown, and a "
            "system-probe older than 7.45 starts a second daemon when given a command it does "
            "not know (docs/reference/agent-cli.md#cli-old-system-probe)"
        )
    return (
        f"system-probe runtime self-test was not run: agent {version} predates system-probe's "
        "runtime command (7.56), and a system-probe older than 7.45 starts a second daemon "
        "when given a command it does not know"
    )


@attrs.frozen
class StatusSelfTests:
    """The "Self Tests" block of ``security-agent status``
    (docs/reference/agent-cli.md#cli-status)."""

    last_execution: str | None
    succeeded: tuple[str, ...] = attrs.field(converter=str_tuple)
    failed: tuple[str, ...] = attrs.field(converter=str_tuple)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy: ``last_execution``, ``succeeded`` and ``failed`` rule ids."""
        return {
            "last_execution": self.last_execution,
            "succeeded": list(self.succeeded),
            "failed": list(self.failed),
        }

    def _repr_html_(self) -> str:
        ok = ", ".join(self.succeeded) or "none"
        bad = ", ".join(self.failed) or "none"
        return (
            f"<p>Self tests (last run {html.escape(self.last_execution or 'unknown')}): "
            f"succeeded {html.escape(ok)}; failed {html.escape(bad)}</p>"
        )


def parse_status_self_tests(text: str) -> StatusSelfTests | None:
    """Read the "Self Tests" block of a ``security-agent status`` text, or None if absent.

    Accepts ``Succeeded:``/``Failed:`` followed by ``- <rule id>`` lines, an inline list, or
    ``none``.
    """
    lines = strip_ansi(text).splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip() == "Self Tests"), None)
    if start is None:
        return None
    last: str | None = None
    lists: dict[str, list[str]] = {"succeeded": [], "failed": []}
    current: str | None = None
    base_indent = len(lines[start]) - len(lines[start].lstrip())
    for raw in lines[start + 1 :]:
        line = raw.strip()
        if not line or set(line) == {"="}:
            continue
        indent = len(raw) - len(raw.lstrip())
        if indent <= base_indent and current is not None and not line.startswith("-"):
            break  # the next section ("Policies") starts at the block's own indent
        key, sep, rest = line.partition(":")
        lowered = key.strip().lower()
        if sep and lowered == "last execution":
            last = rest.strip() or None
            current = None
        elif sep and lowered in ("succeeded", "failed"):
            current = lowered
            value = rest.strip()
            if value and value.lower() != "none":
                lists[current].extend(v.strip() for v in value.split(",") if v.strip())
        elif line.startswith("-") and current is not None:
            lists[current].append(line.lstrip("- ").strip())
        elif indent <= base_indent:
            break
    return StatusSelfTests(last, lists["succeeded"], lists["failed"])


def parse_self_test_output(exit_code: int, stdout: str, stderr: str) -> tuple[bool, str | None]:
    """Classify a ``runtime self-test`` run: ``(cli_ok, error)``.

    - ``Runtime self test: OK`` → ``(True, None)``;
    - ``Runtime self test: error: <msg>`` (still exit 0) → ``(False, msg)``;
    - ``Error: <msg>`` with exit 255 (RPC or client failure) → ``(False, msg)``;
    - anything else → ``(False, <last line>)``.
    """
    out = strip_ansi(stdout)
    err = strip_ansi(stderr)
    both = out + "\n" + err
    match = _ERR_RE.search(both)
    if match:
        return False, match["msg"].strip()
    if exit_code == 0 and any(ln.strip() == _OK_LINE for ln in out.splitlines()):
        return True, None
    match = _FATAL_RE.search(err) or _FATAL_RE.search(out)
    if match:
        return False, match["msg"].strip()
    last = next((ln.strip() for ln in reversed(both.splitlines()) if ln.strip()), "")
    return False, last or f"exit status {exit_code} with no output"


def _html_list(items: tuple[str, ...]) -> str:
    return ", ".join(html.escape(i) for i in items) or "none"


@attrs.frozen
class SelfTestResult:
    """The outcome of one runtime self-test on one agent.

    ``ok`` is True only when the CLI printed ``Runtime self test: OK`` *and* the agent's status,
    where it could be read, lists no failed test: the CLI answers OK once events are generated,
    whatever the rules then see (docs/reference/agent-cli.md#cli-self-test-transport).

    ``confirmed`` says how sure that is: ``"confirmed"`` (the status "Self Tests" block lists
    no failed test), ``"contradicted"`` (the CLI said OK, the status lists failed tests: ``ok``
    is then False), or ``"unconfirmed"`` (the status could not be read; ``confirmed_reason``
    says why, e.g. ``"no security-agent (direct send)"`` or ``"status unreachable"``). An
    unconfirmed OK is only the CLI's word.
    """

    ok: bool
    error: str | None
    output: str
    command: tuple[str, ...] = attrs.field(converter=str_tuple)
    component: str
    version: AgentVersion | None
    exit_code: int
    target: str
    succeeded_tests: tuple[str, ...] = attrs.field(converter=str_tuple, default=())
    failed_tests: tuple[str, ...] = attrs.field(converter=str_tuple, default=())
    confirmed: Confirmation = attrs.field(
        default="unconfirmed",
        validator=attrs.validators.in_(("confirmed", "contradicted", "unconfirmed")),
    )
    confirmed_reason: str = "status not checked"
    last_execution: str | None = None
    warnings: tuple[str, ...] = attrs.field(converter=str_tuple, default=())
    duration: float = 0.0

    @property
    def confirmed_by_status(self) -> bool | None:
        """Deprecated: ``True`` when :attr:`confirmed` is ``"confirmed"``, ``False`` when
        ``"contradicted"``, ``None`` when ``"unconfirmed"``."""
        return {"confirmed": True, "contradicted": False}.get(self.confirmed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (``version`` as a string)."""
        return {
            "target": self.target,
            "ok": self.ok,
            "error": self.error,
            "command": list(self.command),
            "component": self.component,
            "version": None if self.version is None else str(self.version),
            "exit_code": self.exit_code,
            "succeeded_tests": list(self.succeeded_tests),
            "failed_tests": list(self.failed_tests),
            "confirmed": self.confirmed,
            "confirmed_reason": self.confirmed_reason,
            "confirmed_by_status": self.confirmed_by_status,
            "last_execution": self.last_execution,
            "warnings": list(self.warnings),
            "duration": round(self.duration, 3),
            "output": self.output,
        }

    def __repr__(self) -> str:
        state = "ok" if self.ok else f"FAILED: {self.error}"
        version = f" {self.version}" if self.version else ""
        sure: str = self.confirmed
        if self.confirmed != "confirmed":
            sure += f": {self.confirmed_reason}"
        return f"<SelfTestResult {self.target}{version} via {self.component}: {state} ({sure})>"

    def _repr_html_(self) -> str:
        colour = "green" if self.ok else "red"
        state = "OK" if self.ok else f"FAILED: {html.escape(self.error or '')}"
        return (
            f"<p><b>{html.escape(self.target)}</b> "
            f"({html.escape(str(self.version or 'unknown version'))}, "
            f"<code>{html.escape(' '.join(self.command))}</code>): "
            f"<span style='color:{colour}'>{state}</span> "
            f"<i>{html.escape(self.confirmed)}: {html.escape(self.confirmed_reason)}</i><br>"
            f"succeeded: {_html_list(self.succeeded_tests)}; "
            f"failed: {_html_list(self.failed_tests)}</p>"
        )


def _read_status(platform: Platform, deadline: Deadline) -> tuple[StatusSelfTests | None, str]:
    """The status "Self Tests" block, or None and why it is missing."""
    if deadline.expired:
        return None, "status not read: the timeout was used up"
    argv = [binary(platform, "security-agent"), "status"]
    try:
        res = platform.exec(argv, component="security-agent", timeout=deadline.budget())
    except ExecTimeoutError:
        return None, "status unreachable (timed out)"
    except AgentNotFoundError:
        return None, NO_SECURITY_AGENT
    except ExecError as exc:
        log.debug("status not readable on %s: %s", platform.target, exc)
        return None, "status unreachable"
    if res.exit_code in (126, 127) or is_unknown_command(res.output):
        return None, NO_SECURITY_AGENT
    if res.exit_code != 0:
        return None, "status unreachable"
    block = parse_status_self_tests(res.stdout)
    if block is None:
        return None, "status has no Self Tests block"
    return block, ""


def run_self_test(
    platform: Platform,
    *,
    timeout: float | None = 120.0,
    version: AgentVersion | None = None,
    check_status: bool = True,
    status_wait: float = 0.0,
) -> SelfTestResult:
    """Run ``runtime self-test`` with the right binary for the agent's version.

    The version is read first (``agent version``, then ``security-agent version``; never
    ``system-probe version``). ``system-probe runtime self-test`` is run only on an agent known
    to be 7.56 or newer, ``security-agent runtime self-test`` otherwise and as the fallback
    (docs/reference/agent-cli.md#cli-runtime-binary, #cli-old-system-probe). After an ``OK``, the
    "Self Tests" block of ``security-agent status`` is read: any failed test turns the result
    into a failure (``confirmed="contradicted"``); without it the result says ``unconfirmed``
    and why.

    :param platform: where the agent runs.
    :param timeout: seconds for the whole operation: the version read (itself at most 30 s),
        the self-test (it has no deadline of its own) and the status reads.
    :param version: the agent version if already known (else it is asked for).
    :param check_status: read the status to confirm the tests passed.
    :param status_wait: seconds to keep polling the status until its "Self Tests" block changes
        (newer agents match events asynchronously, up to 30 s); if it never changes the result is
        left unconfirmed, with a warning. 0 (the default) reads it once, right after the run.
    :raises ExecTimeoutError: the operation did not finish within ``timeout`` (a hung command is
        abandoned, and killed where the platform can).
    :raises UnsupportedAgentError: no binary that is safe to run for this version has a
        ``runtime self-test`` command (the message says what was not run and why).
    """
    deadline = Deadline(timeout, what="self-test", target=platform.target)
    if version is None:
        version = read_version(platform, deadline)
    before: StatusSelfTests | None = None
    if check_status and status_wait > 0:
        before, _ = _read_status(platform, deadline)

    refused: list[str] = []
    warnings: list[str] = []
    for name in self_test_binaries(version):
        argv = [binary(platform, name), "runtime", "self-test"]
        started = time.monotonic()
        try:
            res: ExecResult = platform.exec(
                argv,
                component=component_of(name),
                timeout=deadline.budget(step=f"before {name} runtime self-test"),
            )
        except ExecTimeoutError:
            raise
        except (ExecError, AgentNotFoundError) as exc:
            refused.append(f"{name}: {exc.message}")
            continue
        duration = time.monotonic() - started
        if is_unknown_command(res.output) or res.exit_code in (126, 127):
            refused.append(f"{name}: {_first_line(res.output)}")
            continue
        warnings.extend(m.group(0) for m in _DEPRECATED_RE.finditer(strip_ansi(res.stderr)))
        cli_ok, error = parse_self_test_output(res.exit_code, res.stdout, res.stderr)
        result = SelfTestResult(
            ok=cli_ok,
            error=error,
            output=res.output,
            command=argv,
            component=name,
            version=version,
            exit_code=res.exit_code,
            target=platform.target,
            confirmed="unconfirmed",
            confirmed_reason="status not checked" if cli_ok else "the self-test itself failed",
            warnings=warnings,
            duration=duration,
        )
        if cli_ok and check_status:
            result = _confirm(platform, result, before, deadline, status_wait)
        log.info("self-test on %s: %r", platform.target, result)
        return result
    why = _not_run_reason(version)
    raise UnsupportedAgentError(
        f"no runtime self-test command answered ({'; '.join(refused)})"
        + (f"; {why}" if why else ""),
        target=platform.target,
    )


def _confirm(
    platform: Platform,
    result: SelfTestResult,
    before: StatusSelfTests | None,
    deadline: Deadline,
    status_wait: float,
) -> SelfTestResult:
    status, why = _read_status(platform, deadline)
    until = time.monotonic() + status_wait
    while (
        status is not None
        and before is not None
        and status == before
        and time.monotonic() < until
        and not deadline.expired
    ):
        time.sleep(min(1.0, max(until - time.monotonic(), 0.0), deadline.remaining() or 1.0))
        status, why = _read_status(platform, deadline)
    if status is None:
        return attrs.evolve(result, confirmed="unconfirmed", confirmed_reason=why)
    if before is not None and status == before:
        # Waited, and the status still shows the run from before this one: it proves nothing.
        note = (
            f"the status still shows the previous self-test run (Last execution: "
            f"{status.last_execution}) after {status_wait:g} s; not confirmed"
        )
        return attrs.evolve(
            result,
            warnings=(*result.warnings, note),
            confirmed="unconfirmed",
            confirmed_reason="status still shows the previous run",
        )
    failed = status.failed
    return attrs.evolve(
        result,
        ok=not failed,
        error=f"self tests failed: {', '.join(failed)}" if failed else None,
        succeeded_tests=status.succeeded,
        failed_tests=failed,
        confirmed="contradicted" if failed else "confirmed",
        confirmed_reason=(
            f"status lists failed tests: {', '.join(failed)}"
            if failed
            else "status Self Tests block lists no failed test"
        ),
        last_execution=status.last_execution,
    )


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in strip_ansi(text).splitlines() if ln.strip()), "")
