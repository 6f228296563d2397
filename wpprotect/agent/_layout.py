"""Where the Linux packages put the agent: its install and config directories, and the path of
each binary under the install directory.

The paths are the ``ExecStart`` lines of the packages' systemd units
(``docs/reference/agent-cli.md#cli-host-layout``; upstream ``DataDog/datadog-agent``:
``omnibus/config/templates/datadog-agent/systemd.service.erb``, ``systemd.sysprobe.service.erb``,
``systemd.security.service.erb``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from wpprotect.agent._run import AgentBinary

__all__ = ["BINARIES", "CONFIG_FILES", "DEFAULT_CONFIG_DIR", "DEFAULT_INSTALL_DIR"]

#: Where the Linux packages install the agent.
DEFAULT_INSTALL_DIR = Path("/opt/datadog-agent")
#: Where the Linux packages put its configuration.
DEFAULT_CONFIG_DIR = Path("/etc/datadog-agent")

#: Each binary's path relative to the install directory.
BINARIES: Mapping[AgentBinary, str] = MappingProxyType(
    {
        "agent": "bin/agent/agent",
        "system-probe": "embedded/bin/system-probe",
        "security-agent": "embedded/bin/security-agent",
    }
)

#: The config files of a host install, in the config directory.
CONFIG_FILES: tuple[str, ...] = ("datadog.yaml", "system-probe.yaml", "security-agent.yaml")
