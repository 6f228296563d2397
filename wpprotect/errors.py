"""Every error wpprotect raises, under one root.

Catch :class:`WPProtectError` to handle anything the library reports; catch a subclass to handle
one kind of failure. Backend exceptions (docker, kubernetes, pyroute2, ruamel.yaml, ``OSError``)
are translated at the edge of the module that uses the backend and chained with ``from``, so the
original is still on ``__cause__``.

.. code-block:: text

    WPProtectError
    ├── InvalidArgumentError (also ValueError)  a caller's value is out of range or malformed
    ├── ConfigError                            a config file or document cannot be used
    │   ├── ConfigFileError                    not a regular file, too large, symlink refused, I/O
    │   │   └── UnsafePathError                a link, owner or file type refused as unsafe
    │   ├── ConfigParseError                   not YAML, tabs, bad bytes, duplicate keys
    │   │   └── ConfigExpansionError           aliases expand past the limit ("billion laughs")
    │   ├── ConfigStructureError               root not a mapping, path through a scalar or list
    │   ├── ConfigConflictError                the file changed on disk since it was loaded
    │   └── ConfigOverriddenError              a layer a plan cannot change overrides the file
    ├── TargetKindError                        a plan target's kind cannot be recognised
    ├── PlanError                              applying, verifying or undoing a plan failed
    │   ├── PlanApplyError                     apply failed; what was done was rolled back
    │   ├── PlanVerifyError                    applied, but the result is not what was planned
    │   └── PlanUndoError                      undo failed or there is nothing to undo
    ├── PlatformError                          talking to a host, container or cluster failed
    │   ├── BackendUnavailableError            backend not installed, daemon or API unreachable
    │   ├── AgentNotFoundError                 no agent install, container or pod found
    │   ├── PermissionDeniedError              not root, sudo needs a password, RBAC refused
    │   ├── ExecError                          a command could not be run or was cut off
    │   │   ├── ExecTimeoutError               it ran past its timeout
    │   │   └── ExecOutputLimitError           it wrote more output than allowed
    │   └── RemoteConflictError                optimistic concurrency lost after retries
    ├── AgentError                             the agent answered something unusable
    │   ├── UnsupportedAgentError              no command for this agent version or component
    │   └── FlareError                         collecting or reviewing a flare failed
    │       └── FlareUploadError               the flare backend refused or could not be reached
    └── TCError                                reading traffic-control state failed
        ├── CapabilityError                    CAP_NET_ADMIN / CAP_BPF / root missing
        ├── NetnsNotFoundError                 the network namespace asked for does not exist
        └── BPFError                           a bpf(2) call failed

Each error carries keyword-only context (``path``, ``line``, ``key``, ``target``...) that is also
rendered into its message, so ``str(err)`` alone says what and where. Messages never contain
secret values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import os
    from pathlib import Path

__all__ = [
    "AgentError",
    "AgentNotFoundError",
    "BPFError",
    "BackendUnavailableError",
    "CapabilityError",
    "ConfigConflictError",
    "ConfigError",
    "ConfigExpansionError",
    "ConfigFileError",
    "ConfigOverriddenError",
    "ConfigParseError",
    "ConfigStructureError",
    "ExecError",
    "ExecOutputLimitError",
    "ExecTimeoutError",
    "FlareError",
    "FlareUploadError",
    "InvalidArgumentError",
    "NetnsNotFoundError",
    "PermissionDeniedError",
    "PlanApplyError",
    "PlanError",
    "PlanUndoError",
    "PlanVerifyError",
    "PlatformError",
    "RemoteConflictError",
    "TCError",
    "TargetKindError",
    "UnsafePathError",
    "UnsupportedAgentError",
    "WPProtectError",
]


class WPProtectError(Exception):
    """Root of every error raised by wpprotect.

    :param message: what went wrong, in one sentence.
    :param path: the file involved, if any.
    :param line: 1-based line in ``path``, if known.
    :param key: the dotted config key or setting involved, if any.
    :param target: the platform target (host, container, pod) involved, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        line: int | None = None,
        key: str | None = None,
        target: str | None = None,
    ) -> None:
        self.message = message
        self.path: Path | None = None
        if path is not None:
            from pathlib import Path  # only when there is a path: pathlib costs start-up time

            self.path = Path(path)
        self.line = line
        self.key = key
        self.target = target
        super().__init__(self._render())

    def _render(self) -> str:
        where: list[str] = []
        if self.path is not None:
            where.append(f"{self.path}:{self.line}" if self.line is not None else str(self.path))
        if self.key is not None:
            where.append(f"key {self.key!r}")
        if self.target is not None:
            where.append(f"on {self.target}")
        return f"{self.message} ({', '.join(where)})" if where else self.message


class InvalidArgumentError(WPProtectError, ValueError):
    """A value given by the caller is malformed or out of range (nothing was run or written)."""


class ConfigError(WPProtectError):
    """A configuration file or document cannot be used as it is (nothing was written)."""


class ConfigFileError(ConfigError):
    """The path is not a usable regular file: missing, a directory, special, too large, a
    refused symlink, or an I/O failure."""


class UnsafePathError(ConfigFileError):
    """A path was refused because using it could let someone else choose what is read or
    written: a symlink not followed, a file owned by another user, a hard-linked file, or not a
    regular file. The message says why; ``path`` says where."""


class ConfigParseError(ConfigError):
    """The content is not YAML wpprotect can edit safely: syntax error, tab indentation,
    undecodable bytes, duplicate keys."""


class ConfigExpansionError(ConfigParseError):
    """The document's aliases (``*name``) would expand it past the node limit (a "billion
    laughs" document: a few hundred bytes that stand for billions of nodes). Nothing of it was
    walked or written."""


class ConfigStructureError(ConfigError):
    """The YAML parses but has the wrong shape for the edit: the root is not a mapping, or a
    key path goes through a scalar or a list."""


class ConfigConflictError(ConfigError):
    """The file changed on disk after it was loaded; saving would lose the other change."""


class ConfigOverriddenError(ConfigError):
    """A layer the plan cannot change (a fleet policy file) would override what it writes."""


class TargetKindError(WPProtectError):
    """A plan target is none of the kinds wpprotect knows how to edit."""


class PlanError(WPProtectError):
    """Applying, verifying or undoing a :class:`~wpprotect.Plan` failed."""


class PlanApplyError(PlanError):
    """A change failed during ``apply()``; the changes already made were rolled back."""


class PlanVerifyError(PlanError):
    """The plan was applied but reading the result back does not show the planned state."""


class PlanUndoError(PlanError):
    """``undo()`` failed, or the plan was never applied."""


class PlatformError(WPProtectError):
    """Talking to a host, a container or a cluster failed."""


class BackendUnavailableError(PlatformError):
    """A backend is missing (the Python package is not installed) or cannot be reached (Docker
    daemon, Kubernetes API)."""


class AgentNotFoundError(PlatformError):
    """No Datadog Agent install, container or pod was found where one was looked for."""


class PermissionDeniedError(PlatformError):
    """The operation needs privileges the caller does not have (root, passwordless sudo, RBAC)."""


class ExecError(PlatformError):
    """A command could not be started, or its connection was lost before it finished."""


class ExecTimeoutError(ExecError):
    """A command ran past its timeout and was stopped."""


class ExecOutputLimitError(ExecError):
    """The command wrote more than ``max_output`` bytes on stdout and stderr together; it was
    killed and its output dropped."""


class RemoteConflictError(PlatformError):
    """A remote object kept changing under us (HTTP 409) after the allowed retries."""


class AgentError(WPProtectError):
    """The agent's CLI answered in a way that cannot be used."""


class UnsupportedAgentError(AgentError):
    """No known command does this for the agent version or component found."""


class FlareError(AgentError):
    """Collecting, copying or reviewing a flare failed."""


class FlareUploadError(FlareError):
    """The flare backend refused the archive or could not be reached."""


class TCError(WPProtectError):
    """Reading the kernel's traffic-control state failed."""


class CapabilityError(TCError):
    """The process lacks a capability the operation needs (named in the message)."""


class NetnsNotFoundError(TCError):
    """The network namespace asked for does not exist (none was created)."""


class BPFError(TCError):
    """A ``bpf(2)`` call failed; ``errno`` holds the kernel's error number."""

    def __init__(self, message: str, *, errno: int | None = None, target: str | None = None):
        self.errno = errno
        super().__init__(message, target=target)
