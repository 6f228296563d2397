"""The agent's behaviour by version: one table, :data:`VERSION_TABLE`, read by every module that
picks a command, parses an archive name, uploads a flare or resolves a setting.

Each row says what the agent does (``behaviour``) on a range of versions (``since`` inclusive,
``until`` exclusive, ``None`` for open ends), the ``value`` wpprotect relies on, and the
reference section the fact comes from (``docs/reference/agent-cli.md#...``). A version outside
every row of a behaviour gets no answer (:func:`lookup` returns ``None``): callers then do what
is safe on every version. The table is documented row by row in
``docs/reference/agent-versions.md``.

>>> lookup("system-probe-runtime", (7, 59, 0))
True
>>> lookup("system-probe-runtime", (7, 50, 3))
False
>>> lookup("default-classifier-priority", (7, 39, 1))
1
>>> lookup("flare-api-key", None) is None
True

The module sits low in the layers (below ``agent``, ``config`` and ``platforms``), so it takes
versions as ``(major, minor, patch)`` tuples or any object with those attributes (an
``AgentVersion``); pre-releases count as their release (``7.56.0-rc.1`` is 7.56.0).
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs

__all__ = [
    "BEHAVIOURS",
    "VERSION_TABLE",
    "VersionLike",
    "VersionRow",
    "as_tuple",
    "lookup",
    "row_for",
    "rows_of",
]

Triple = tuple[int, int, int]


class _Versioned(Protocol):
    @property
    def major(self) -> int: ...
    @property
    def minor(self) -> int: ...
    @property
    def patch(self) -> int: ...


VersionLike = _Versioned | tuple[int, ...]


def as_tuple(version: VersionLike) -> Triple:
    """``(major, minor, patch)`` of a version object or a 2- or 3-tuple.

    >>> as_tuple((7, 56))
    (7, 56, 0)
    """
    if isinstance(version, tuple):
        parts = (*version, 0, 0)[:3]
        return (int(parts[0]), int(parts[1]), int(parts[2]))
    return (version.major, version.minor, version.patch)


def _fmt(v: Triple | None) -> str:
    return "" if v is None else ".".join(str(p) for p in v)


def _triple(value: tuple[int, ...] | None) -> Triple | None:
    return None if value is None else as_tuple(value)


@attrs.frozen
class VersionRow:
    """One fact about the agent, true for ``since <= version < until``.

    :param behaviour: what the row is about (a key of :data:`BEHAVIOURS`).
    :param since: first version it holds for (inclusive), ``None``: every older version.
    :param until: first version it no longer holds for (exclusive), ``None``: up to today.
    :param value: what the agent does there (a bool, a number, a string or a tuple of names).
    :param reference: the ``docs/reference/`` page and anchor the fact comes from.
    :param note: how sure the bound is, when it is not pinned.
    """

    behaviour: str
    since: Triple | None = attrs.field(converter=_triple)
    until: Triple | None = attrs.field(converter=_triple)
    value: Any
    reference: str
    note: str = ""

    def covers(self, version: VersionLike) -> bool:
        """True when ``version`` is in ``[since, until)``."""
        v = as_tuple(version)
        return (self.since is None or v >= self.since) and (self.until is None or v < self.until)

    @property
    def range(self) -> str:
        """The range as text: ``>= 7.56.0``, ``< 7.29.0``, ``7.36.0 to < 7.44.0``, ``all``."""
        if self.since is None and self.until is None:
            return "all"
        if self.since is None:
            return f"< {_fmt(self.until)}"
        if self.until is None:
            return f">= {_fmt(self.since)}"
        return f"{_fmt(self.since)} to < {_fmt(self.until)}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (versions as ``"7.56.0"`` strings or ``None``)."""
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {
            "behaviour": self.behaviour,
            "since": _fmt(self.since) or None,
            "until": _fmt(self.until) or None,
            "value": value,
            "reference": self.reference,
            "note": self.note,
        }

    def __repr__(self) -> str:
        return f"<VersionRow {self.behaviour} {self.range}: {self.value!r}>"


#: What each behaviour of :data:`VERSION_TABLE` means.
BEHAVIOURS: dict[str, str] = {
    "version-command": "binaries asked for the version, in order (never system-probe)",
    "system-probe-argument": "what system-probe does with an argument it does not know",
    "system-probe-runtime": "system-probe has the `runtime` subcommand (self-test...)",
    "security-agent-runtime": "security-agent has the `runtime` subcommand",
    "self-test-binaries": "binaries that run `runtime self-test`, best first",
    "security-agent-container": "a security-agent runs under Helm and Operator defaults",
    "security-agent-cws-setting": "security-agent's runtime_security_config.enabled matters",
    "flare-binaries": "binaries that build a flare, best first",
    "flare-archive-name": "archive-name forms the agent writes (the printed path decides)",
    "flare-api-key": "where the flare upload carries the API key",
    "network-precedence": "who wins for runtime_security_config.network.*: env var or YAML",
    "default-classifier-priority": "TC priority of the classifiers when nothing sets it",
}

#: Every version-dependent fact wpprotect relies on; see the module docstring.
VERSION_TABLE: tuple[VersionRow, ...] = (
    VersionRow(
        "version-command",
        None,
        None,
        ("agent", "security-agent"),
        "docs/reference/agent-cli.md#cli-old-system-probe",
        "`system-probe version` is never run: an old system-probe starts its daemon instead",
    ),
    VersionRow(
        "system-probe-argument",
        None,
        (7, 29),
        "starts-daemon-on-any-argument",
        "docs/reference/agent-cli.md#cli-old-system-probe",
        "plain Go flags before PR #7859 (April 2021, about 7.29)",
    ),
    VersionRow(
        "system-probe-argument",
        (7, 29),
        (7, 45),
        "starts-daemon-on-unknown-command",
        "docs/reference/agent-cli.md#cli-old-system-probe",
        "PR #16039 (March 2023) added the guard; its first release is not pinned (7.44 or 7.45)",
    ),
    VersionRow(
        "system-probe-argument",
        (7, 45),
        None,
        "unknown-command-error",
        "docs/reference/agent-cli.md#cli-old-system-probe",
    ),
    VersionRow(
        "system-probe-runtime",
        None,
        (7, 56),
        False,
        "docs/reference/agent-cli.md#cli-runtime-binary",
        "PR #27016",
    ),
    VersionRow(
        "system-probe-runtime",
        (7, 56),
        None,
        True,
        "docs/reference/agent-cli.md#cli-runtime-binary",
    ),
    VersionRow(
        "security-agent-runtime",
        None,
        (7, 66),
        True,
        "docs/reference/agent-cli.md#cli-runtime-binary",
    ),
    VersionRow(
        "security-agent-runtime",
        (7, 66),
        (7, 67),
        True,
        "docs/reference/agent-cli.md#cli-runtime-binary",
        "deprecated (PR #35703): cobra prints a deprecation line on stderr",
    ),
    VersionRow(
        "security-agent-runtime",
        (7, 67),
        None,
        False,
        "docs/reference/agent-cli.md#cli-runtime-binary",
        "removed by PR #36367 (an inference from the code)",
    ),
    VersionRow(
        "self-test-binaries",
        None,
        (7, 56),
        ("security-agent",),
        "docs/reference/agent-cli.md#cli-runtime-binary",
    ),
    VersionRow(
        "self-test-binaries",
        (7, 56),
        (7, 67),
        ("system-probe", "security-agent"),
        "docs/reference/agent-cli.md#cli-runtime-binary",
    ),
    VersionRow(
        "self-test-binaries",
        (7, 67),
        None,
        ("system-probe",),
        "docs/reference/agent-cli.md#cli-runtime-binary",
    ),
    VersionRow(
        "security-agent-container",
        None,
        None,
        True,
        "docs/reference/agent-cli.md#cli-security-agent-presence",
        "absent only with directSendFromSystemProbe, whatever the version",
    ),
    VersionRow(
        "security-agent-cws-setting",
        None,
        (7, 77),
        True,
        "docs/reference/deployments.md#deploy-host",
        "both files must agree",
    ),
    VersionRow(
        "security-agent-cws-setting",
        (7, 77),
        None,
        False,
        "docs/reference/deployments.md#deploy-host",
        "the security-agent runtime is unused: only system-probe's value matters",
    ),
    VersionRow(
        "flare-binaries",
        None,
        (7, 77),
        ("security-agent", "agent"),
        "docs/reference/agent-cli.md#cli-flare-command",
    ),
    VersionRow(
        "flare-binaries",
        (7, 77),
        None,
        ("agent", "security-agent"),
        "docs/reference/deployments.md#deploy-troubleshooting-page",
        "the documentation moves the flare to the core agent; security-agent flare still exists",
    ),
    VersionRow(
        "flare-archive-name",
        None,
        None,
        ("rfc3339", "legacy"),
        "docs/reference/agent-cli.md#cli-flare-archive",
        "the cut-over release is not pinned: both forms are accepted at every version",
    ),
    VersionRow(
        "flare-api-key",
        None,
        (7, 57),
        "query",
        "docs/reference/agent-cli.md#cli-flare-upload",
        "the key as ?api_key= in the URL",
    ),
    VersionRow(
        "flare-api-key",
        (7, 57),
        None,
        "header",
        "docs/reference/agent-cli.md#cli-flare-upload",
        "DD-API-KEY header (PR #27912)",
    ),
    VersionRow(
        "network-precedence",
        (7, 36),
        (7, 44),
        "env-over-yaml",
        "docs/reference/agent-cli.md#cli-old-precedence",
        "about 7.36 to 7.43: the bounds are approximate",
    ),
    VersionRow(
        "network-precedence",
        (7, 44),
        None,
        "deprecated-yaml-first",
        "docs/reference/agent-cli.md#cli-config-keys",
    ),
    VersionRow(
        "default-classifier-priority",
        (7, 36),
        (7, 39, 2),
        1,
        "docs/reference/agent-cli.md#cli-cilium-race",
    ),
    VersionRow(
        "default-classifier-priority",
        (7, 39, 2),
        None,
        10,
        "docs/reference/agent-cli.md#cli-cilium-race",
        "whether 7.40.0 carries the fix was not confirmed",
    ),
)


def rows_of(behaviour: str) -> tuple[VersionRow, ...]:
    """Every row of ``behaviour``, oldest range first.

    :raises KeyError: no such behaviour.
    """
    if behaviour not in BEHAVIOURS:
        raise KeyError(behaviour)
    return tuple(r for r in VERSION_TABLE if r.behaviour == behaviour)


def row_for(behaviour: str, version: VersionLike | None) -> VersionRow | None:
    """The row of ``behaviour`` covering ``version``; ``None`` when the version is unknown or
    outside every row (then only what is safe on every version may be done)."""
    rows = rows_of(behaviour)
    if version is None:
        everywhere = [r for r in rows if r.since is None and r.until is None]
        return everywhere[0] if everywhere else None
    return next((r for r in rows if r.covers(version)), None)


def lookup(behaviour: str, version: VersionLike | None) -> Any:
    """The ``value`` of :func:`row_for`, or ``None``."""
    row = row_for(behaviour, version)
    return None if row is None else row.value
