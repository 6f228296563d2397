"""Small helpers shared by the agent operations: binary names, components, output cleaning."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from wpprotect._contract import Component, Platform

__all__ = [
    "AgentBinary",
    "binary",
    "component_of",
    "is_unknown_command",
    "str_tuple",
    "strip_ansi",
]

#: The agent binaries wpprotect runs.
AgentBinary = Literal["agent", "security-agent", "system-probe"]

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# cobra's answer to a removed or not-yet-added subcommand, e.g.
# `Error: unknown command "runtime" for "datadog-security-agent"`
# (docs/reference/agent-cli.md#cli-runtime-binary).
_UNKNOWN_RE = re.compile(r'unknown command "[^"]*" for "[^"]*"')


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes (the agent colours some lines on a TTY)."""
    return _ANSI_RE.sub("", text).replace("\r\n", "\n")


def binary(platform: Platform, name: AgentBinary) -> str:
    """The path or name to run ``name`` with on ``platform`` (``BasePlatform.binary``, else the
    bare name, as found on ``PATH`` inside agent containers)."""
    resolver = getattr(platform, "binary", None)
    if callable(resolver):
        return str(resolver(name))
    return name


def component_of(name: AgentBinary) -> Component:
    """The component (container on Kubernetes) where binary ``name`` runs."""
    return name


def is_unknown_command(output: str) -> bool:
    """True when ``output`` is cobra's unknown-command error."""
    return _UNKNOWN_RE.search(output) is not None


def str_tuple(items: Iterable[str]) -> tuple[str, ...]:
    """``tuple(items)``, typed for attrs converters (mypy cannot infer ``converter=tuple``)."""
    return tuple(items)
