"""Public fakes for your own tests: an in-memory platform that answers with scripted output.

:class:`FakePlatform` implements the whole platform contract without a host, container or
cluster. Script what each command prints, hand it to your code, then look at what was run:

>>> from wpprotect.testing import FakePlatform
>>> fake = FakePlatform(target="fake:node-1")
>>> fake.respond(["agent", "version"], stdout="Agent 7.59.0 - Commit: 1a2b3c4\\n")
>>> fake.respond(["system-probe", "runtime", "self-test"], stdout="Runtime self test: OK\\n")
>>> result = fake.self_test()
>>> result.ok, result.component, str(result.version)
(True, 'system-probe', '7.59.0')
>>> [" ".join(c.argv) for c in fake.calls]
['agent version', 'system-probe runtime self-test', 'security-agent status']

:meth:`FakePlatform.healthy` scripts a whole working agent (version, self-test, status, flare):

>>> agent = FakePlatform.healthy(version="7.78.0")
>>> flare = agent.flare(email="ops@example.com")
>>> flare.component, len(flare.files) > 0, flare.scan_secrets()
('agent', True, [])
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Union

import attrs

from wpprotect._contract import Component, ExecResult
from wpprotect.errors import AgentNotFoundError, ExecError
from wpprotect.plan import Plan
from wpprotect.platforms._base import BasePlatform, ExecCall, OutputBudget, check_timeout

if TYPE_CHECKING:
    from wpprotect.config import Setting
    from wpprotect.config._settings import SettingValue

__all__ = ["FakeCall", "FakePlatform", "FakeSettingsChange", "Response"]

#: What a scripted command answers: an :class:`ExecResult`, ``(exit_code, stdout, stderr)``, a
#: plain stdout string (exit 0), an exception to raise, or a callable taking the
#: :class:`FakeCall` and returning one of those (or None: not scripted).
Response = Union[  # noqa: UP007 - a recursive alias needs the string forward reference
    ExecResult,
    tuple[int, str, str],
    str,
    BaseException,
    Callable[["FakeCall"], "Response | None"],
]

_FLARE_NAME = "datadog-agent-2025-01-01T00-00-00Z-info.zip"


@attrs.frozen
class FakeCall:
    """One command the fake was asked to run."""

    argv: tuple[str, ...]
    component: Component
    stdin: bytes | None
    timeout: float | None


class FakePlatform(BasePlatform):
    """An in-memory platform with scripted command output and in-memory files.

    :param target: the label results carry.
    :param responses: ``{argv: response}``; ``argv`` a tuple/list of strings or one string
        split on spaces.
    :param handler: called for any argv without a scripted response (return None to fall through
        to "command not found", exit 127).
    :param files: ``{path: bytes}`` that :meth:`copy_out` can copy.
    :param children: what :meth:`agents` returns (default ``[self]``; an empty list makes
        :meth:`agents` raise :class:`~wpprotect.AgentNotFoundError`, as a platform with no agent
        does).
    :param timeout: recorded as :attr:`timeout`, as the other platforms take it; the fake never
        waits.

    It holds no client: :meth:`close` only records that it was called (:attr:`closed`).
    """

    kind = "fake"

    def __init__(
        self,
        *,
        target: str = "fake:agent",
        responses: Mapping[Sequence[str] | str, Response] | None = None,
        handler: Callable[[FakeCall], Response | None] | None = None,
        files: Mapping[str, bytes] | None = None,
        children: Sequence[BasePlatform] | None = None,
        timeout: float | None = 60.0,
    ) -> None:
        self._target = target
        self.responses: dict[tuple[str, ...], Response] = {}
        for argv, response in (responses or {}).items():
            self.respond(argv, response)
        self.handler = handler
        self.files: dict[str, bytes] = dict(files or {})
        self.children = None if children is None else list(children)
        self.calls: list[FakeCall] = []
        self.settings: dict[Setting, SettingValue] = {}
        self.timeout = check_timeout(timeout)
        #: True once :meth:`close` was called.
        self.closed = False

    @property
    def target(self) -> str:
        """The label given at construction."""
        return self._target

    @staticmethod
    def _key(argv: Sequence[str] | str) -> tuple[str, ...]:
        return tuple(argv.split()) if isinstance(argv, str) else tuple(argv)

    def respond(
        self,
        argv: Sequence[str] | str,
        response: Response | None = None,
        *,
        stdout: str = "",
        stderr: str = "",
        exit_code: int = 0,
    ) -> None:
        """Script the answer to ``argv`` (the response, or the keyword parts of one)."""
        if response is None:
            response = (exit_code, stdout, stderr)
        self.responses[self._key(argv)] = response

    def agents(self) -> list[BasePlatform]:
        """``children`` if given, else ``[self]``.

        :raises AgentNotFoundError: ``children`` is empty.
        """
        if self.children is None:
            return [self]
        if not self.children:
            raise AgentNotFoundError("no agent: the fake was given no children", target=self.target)
        return list(self.children)

    def close(self) -> None:
        """Record the call in :attr:`closed` (the fake holds no client)."""
        self.closed = True

    def _exec(self, call: ExecCall) -> ExecResult:
        """Record the call and answer with its scripted response (see
        :meth:`BasePlatform.exec`; an answer longer than ``max_output`` bytes raises
        :class:`~wpprotect.ExecOutputLimitError`, as a real platform does).
        """
        recorded = FakeCall(call.argv, call.component, call.stdin, call.timeout)
        self.calls.append(recorded)
        response = self.responses.get(recorded.argv)
        if response is None and self.handler is not None:
            response = self.handler(recorded)
        result = self._result(recorded, response)
        OutputBudget(call.max_output, call.argv[0], self.target).take(
            len(result.stdout.encode()) + len(result.stderr.encode())
        )
        return result

    def _result(self, call: FakeCall, response: Response | None) -> ExecResult:
        if callable(response):
            response = response(call)
        if response is None or callable(response):
            return ExecResult(
                call.argv, 127, "", f"{call.argv[0]}: command not found\n", target=self.target
            )
        if isinstance(response, BaseException):
            raise response
        if isinstance(response, ExecResult):
            return response
        if isinstance(response, str):
            return ExecResult(call.argv, 0, response, "", target=self.target)
        code, out, err = response
        return ExecResult(call.argv, int(code), str(out), str(err), target=self.target)

    def copy_out(
        self, path: str, dest: Path | str, *, component: Component = "security-agent"
    ) -> Path:
        """Write the in-memory file ``path`` to ``dest`` (a file, or a directory to copy into).

        :raises ExecError: no such in-memory file.
        """
        try:
            data = self.files[path]
        except KeyError:
            raise ExecError(f"no such file {path}", target=self.target) from None
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / Path(path).name
        dest.write_bytes(data)
        return dest

    def _settings_plan(self, settings: Mapping[Setting, SettingValue], *, title: str) -> Plan:
        return Plan(title, [FakeSettingsChange(self, dict(settings))])

    @classmethod
    def healthy(
        cls,
        *,
        version: str = "7.59.0",
        target: str = "fake:agent",
        flare_files: Mapping[str, str] | None = None,
    ) -> FakePlatform:
        """A fake whose agent answers like a healthy one: ``version`` on every binary, the
        self-test OK on the right binary, a status with every self-test passed, and a flare that
        leaves an archive (``flare_files``: extra ``{name: text}`` inside it) to copy out."""
        fake = cls(target=target)
        for name, label in (
            ("agent", "Agent"),
            ("security-agent", "Security agent"),
            ("system-probe", "System Probe"),
        ):
            fake.respond([name, "version"], stdout=f"{label} {version} - Commit: 0000000\n")
        ok = "Runtime self test: OK\n"
        fake.respond(["system-probe", "runtime", "self-test"], stdout=ok)
        fake.respond(["security-agent", "runtime", "self-test"], stdout=ok)
        fake.respond(
            ["security-agent", "status"],
            stdout="Runtime Security\n  Self Tests\n  ==========\n"
            "    Last execution: 01 Jan 25 00:00 UTC\n    Succeeded:\n"
            "      - datadog_agent_cws_self_test_rule_open\n    Failed: none\n",
        )
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("fake-host/flare_creation.log", "fake flare\n")
            for name, text in (flare_files or {}).items():
                zf.writestr(f"fake-host/{name}", text)
        remote = f"/tmp/{_FLARE_NAME}"  # noqa: S108 - a path inside the fake agent, not here
        fake.files[remote] = buf.getvalue()

        def flare(call: FakeCall) -> Response | None:
            if call.argv[:2] not in (("security-agent", "flare"), ("agent", "flare")):
                return None
            lines = f"{remote} is going to be uploaded to Datadog\n"
            if "-s" in call.argv:
                case = next((a for a in call.argv[2:] if a.isdigit()), "1234567")
                lines += (
                    "Your logs were successfully uploaded. For future reference, your "
                    f"internal case id is {case}\n"
                )
            else:
                lines += (
                    "Are you sure you want to upload a flare? [y/N]\n"
                    f"Aborting. (You can still use {remote})\n"
                )
            return (0, lines, "")

        fake.handler = flare
        return fake


class FakeSettingsChange:
    """The change a :class:`FakePlatform` plan makes: it records the settings in memory."""

    def __init__(self, platform: FakePlatform, settings: dict[Setting, SettingValue]) -> None:
        self._platform = platform
        self._settings = settings
        self._before: dict[Setting, SettingValue] | None = None

    @property
    def target(self) -> str:
        """The fake's target."""
        return self._platform.target

    @property
    def description(self) -> str:
        """The settings written."""
        return "set " + ", ".join(
            f"{getattr(k, 'name', k)}={v!r}" for k, v in self._settings.items()
        )

    def diff(self) -> str:
        """One ``-old``/``+new`` pair per setting."""
        lines = []
        for key, value in self._settings.items():
            name = getattr(key, "name", key)
            lines.append(f"-{name}: {self._platform.settings.get(key)!r}\n+{name}: {value!r}\n")
        return "".join(lines)

    def is_satisfied(self) -> bool:
        """True when the fake already holds these values."""
        return all(self._platform.settings.get(k, object()) == v for k, v in self._settings.items())

    def apply(self) -> None:
        """Record the settings."""
        self._before = dict(self._platform.settings)
        self._platform.settings.update(self._settings)

    def verify(self) -> None:
        """Nothing to check in memory."""

    def undo(self) -> None:
        """Restore the settings held before :meth:`apply`."""
        if self._before is not None:
            self._platform.settings.clear()
            self._platform.settings.update(self._before)
