"""The agent's version: parsed from its ``version`` command, compared to pick commands."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import attrs

from wpprotect._agentversions import lookup
from wpprotect._deadline import Deadline
from wpprotect.agent._run import AgentBinary, binary, component_of, strip_ansi
from wpprotect.errors import (
    AgentError,
    AgentNotFoundError,
    ExecError,
    ExecTimeoutError,
    InvalidArgumentError,
)

if TYPE_CHECKING:
    from wpprotect._contract import Platform

__all__ = ["VERSION_READ_CAP", "AgentVersion", "agent_version", "read_version"]

log = logging.getLogger(__name__)

_VERSION_RE = re.compile(
    r"(?<![\d.])v?(?P<major>\d+)\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?"
    r"(?:-(?P<pre>[0-9A-Za-z][0-9A-Za-z.\-]*))?(?:\+(?P<build>[0-9A-Za-z.\-]+))?"
)

# The rest of a `version` command's line: "... - Meta: <meta> - Commit: <commit> - ...".
_META_RE = re.compile(r"\bMeta: (?P<meta>[0-9A-Za-z.\-]+)")
_COMMIT_RE = re.compile(r"\bCommit: (?P<commit>[0-9A-Za-z]+)")


def _pre_key(pre: str) -> tuple[bool, str]:
    # A release sorts after its pre-releases: 7.50.0-rc.1 < 7.50.0.
    return (pre == "", pre)


@attrs.frozen(order=True)
class AgentVersion:
    """An agent version such as ``7.50.3`` (comparable; ``7.50.0-rc.1 < 7.50.0``).

    >>> AgentVersion.parse("Agent 7.56.0 - Commit: 1a2b3c4") >= AgentVersion(7, 56)
    True
    >>> str(AgentVersion.parse("7.78.5-rc.2"))
    '7.78.5-rc.2'
    """

    major: int
    minor: int
    patch: int = 0
    pre: str = attrs.field(default="", order=_pre_key)
    #: Build metadata (``git.40.cd9e04b``, after ``+`` or ``Meta:``) and the commit the
    #: ``version`` command prints: kept for :attr:`full`, ignored when comparing.
    build: str = attrs.field(default="", eq=False, order=False)
    commit: str = attrs.field(default="", eq=False, order=False)

    @classmethod
    def parse(cls, text: str) -> AgentVersion:
        """The first ``X.Y[.Z][-pre]`` found in ``text`` (e.g. a ``version`` command's output).

        :raises InvalidArgumentError: ``text`` holds no version.
        """
        plain = strip_ansi(text)
        match = _VERSION_RE.search(plain)
        if match is None:
            raise InvalidArgumentError(f"no agent version found in {text[:80]!r}")
        meta = _META_RE.search(plain)
        commit = _COMMIT_RE.search(plain)
        return cls(
            int(match["major"]),
            int(match["minor"]),
            int(match["patch"] or 0),
            match["pre"] or "",
            match["build"] or (meta["meta"] if meta else ""),
            commit["commit"] if commit else "",
        )

    def at_least(self, major: int, minor: int, patch: int = 0) -> bool:
        """True when this version is ``major.minor.patch`` or newer (pre-releases count as it)."""
        return (self.major, self.minor, self.patch) >= (major, minor, patch)

    @property
    def full(self) -> str:
        """The agent's full version string, what it sends as a flare's ``agent_version``:
        ``<number>[-<pre>][+<meta>]`` then ``.commit.<c>`` (after metadata) or ``+commit.<c>``
        (docs/reference/agent-cli.md#cli-flare-upload).

        >>> AgentVersion.parse("Agent 7.59.0 - Commit: 1a2b3c4 - Go version: go1.22").full
        '7.59.0+commit.1a2b3c4'
        >>> AgentVersion.parse("Agent 7.51.0-devel - Meta: git.40.cd9e04b - Commit: cd9e04b").full
        '7.51.0-devel+git.40.cd9e04b.commit.cd9e04b'
        """
        text = f"{self}+{self.build}" if self.build else str(self)
        if self.commit:
            text += f".commit.{self.commit}" if self.build else f"+commit.{self.commit}"
        return text

    def __str__(self) -> str:
        base = f"{self.major}.{self.minor}.{self.patch}"
        return f"{base}-{self.pre}" if self.pre else base

    def __repr__(self) -> str:
        return f"AgentVersion({str(self)!r})"

    def to_dict(self) -> dict[str, Any]:
        """``{"version": "7.50.3", "major": 7, "minor": 50, "patch": 3, "pre": ""}``."""
        return {
            "version": str(self),
            "major": self.major,
            "minor": self.minor,
            "patch": self.patch,
            "pre": self.pre,
        }

    def _repr_html_(self) -> str:
        return f"<code>{self}</code>"


# Asked in this order; never `system-probe version`: before PR #16039 (about 7.45) an old
# system-probe runs its daemon for a command it does not know, and before about 7.29 for any
# argument (docs/reference/agent-cli.md#cli-old-system-probe). The order is a row of the version
# table (``version-command``), true for every version.
_VERSION_SOURCES: tuple[AgentBinary, ...] = tuple(lookup("version-command", None))

#: The longest a version read may take inside a longer operation.
VERSION_READ_CAP = 30.0


def agent_version(platform: Platform, *, timeout: float | None = 30.0) -> AgentVersion:
    """Ask the agent for its version (``agent version``, else ``security-agent version``).

    ``system-probe version`` is never run: on old agents system-probe starts its daemon when given
    an argument it does not know (docs/reference/agent-cli.md#cli-old-system-probe).

    :param platform: where the agent runs.
    :param timeout: seconds allowed for the whole read (both commands).
    :raises AgentError: no binary answered with a version.
    :raises ExecTimeoutError: a command hung past ``timeout``.
    """
    deadline = Deadline(timeout, what="reading the agent version", target=platform.target)
    problems: list[str] = []
    for name in _VERSION_SOURCES:
        argv = [binary(platform, name), "version"]
        try:
            res = platform.exec(
                argv, component=component_of(name), timeout=deadline.budget(step=f"{name} version")
            )
        except ExecTimeoutError:
            raise
        except (ExecError, AgentNotFoundError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        if res.exit_code == 0:
            try:
                return AgentVersion.parse(res.stdout or res.output)
            except InvalidArgumentError:
                problems.append(f"{name}: unreadable version output")
                continue
        problems.append(f"{name}: exit {res.exit_code}")
    log.debug("version detection failed on %s: %s", platform.target, problems)
    raise AgentError(
        f"could not read the agent version ({'; '.join(problems)})", target=platform.target
    )


def read_version(platform: Platform, deadline: Deadline) -> AgentVersion | None:
    """The version as one step of a longer operation: within ``deadline`` and at most
    :data:`VERSION_READ_CAP` seconds; ``None`` when it cannot be read (then only commands safe
    on every version are run).

    :raises ExecTimeoutError: the read used up what was left of ``deadline``.
    """
    try:
        return agent_version(
            platform, timeout=deadline.budget(cap=VERSION_READ_CAP, step="reading the version")
        )
    except ExecTimeoutError as exc:
        if deadline.expired:
            raise deadline.error(f"reading the agent version: {exc.message}") from exc
        log.info("agent version read timed out on %s; treated as unknown", platform.target)
        return None
    except AgentError as exc:
        log.info("agent version unknown on %s (%s)", platform.target, exc)
        return None
