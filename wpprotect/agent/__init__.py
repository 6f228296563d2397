"""The agent's CLI as data: which command runs what for which version, and its output parsed.

- :func:`agent_version` / :class:`AgentVersion`: the version, read with the agent's ``version``.
- :data:`VERSION_TABLE` / :class:`VersionRow`: every behaviour that depends on the agent's
  version, with the range it holds for and the reference it comes from.
- :func:`run_self_test` / :class:`SelfTestResult`: the runtime self-test, confirmed by status.
- :func:`collect_flare` / :class:`Flare`: a flare without a terminal, copied out for review
  (:meth:`Flare.scan_secrets` → :class:`SecretFinding`) and sent with :meth:`Flare.send`.

Facts (strings, exit codes, version gates) come from the datadog-agent sources cited beside each
rule; everything runs through a :class:`~wpprotect.platforms.Platform`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wpprotect import _lazy

if TYPE_CHECKING:
    from wpprotect._agentversions import VERSION_TABLE, VersionRow
    from wpprotect.agent._flare import Flare, collect_flare, flare_binaries, parse_flare_output
    from wpprotect.agent._secrets import SecretFinding
    from wpprotect.agent._selftest import (
        Confirmation,
        SelfTestResult,
        StatusSelfTests,
        parse_self_test_output,
        parse_status_self_tests,
        run_self_test,
        self_test_binaries,
    )
    from wpprotect.agent._upload import FlareUpload, flare_base_url, flare_url
    from wpprotect.agent._validate import validate_case_id, validate_email
    from wpprotect.agent._version import AgentVersion, agent_version

# Each name loads its module on first use (PEP 562): the command line reads the install
# layout (wpprotect.agent._layout) without loading the flare, upload and self-test code.
_LAZY = {
    "AgentVersion": "wpprotect.agent._version",
    "Confirmation": "wpprotect.agent._selftest",
    "Flare": "wpprotect.agent._flare",
    "FlareUpload": "wpprotect.agent._upload",
    "SecretFinding": "wpprotect.agent._secrets",
    "SelfTestResult": "wpprotect.agent._selftest",
    "StatusSelfTests": "wpprotect.agent._selftest",
    "VERSION_TABLE": "wpprotect._agentversions",
    "VersionRow": "wpprotect._agentversions",
    "agent_version": "wpprotect.agent._version",
    "collect_flare": "wpprotect.agent._flare",
    "flare_base_url": "wpprotect.agent._upload",
    "flare_binaries": "wpprotect.agent._flare",
    "flare_url": "wpprotect.agent._upload",
    "parse_flare_output": "wpprotect.agent._flare",
    "parse_self_test_output": "wpprotect.agent._selftest",
    "parse_status_self_tests": "wpprotect.agent._selftest",
    "run_self_test": "wpprotect.agent._selftest",
    "self_test_binaries": "wpprotect.agent._selftest",
    "validate_case_id": "wpprotect.agent._validate",
    "validate_email": "wpprotect.agent._validate",
}

__all__ = [
    "VERSION_TABLE",
    "AgentVersion",
    "Confirmation",
    "Flare",
    "FlareUpload",
    "SecretFinding",
    "SelfTestResult",
    "StatusSelfTests",
    "VersionRow",
    "agent_version",
    "collect_flare",
    "flare_base_url",
    "flare_binaries",
    "flare_url",
    "parse_flare_output",
    "parse_self_test_output",
    "parse_status_self_tests",
    "run_self_test",
    "self_test_binaries",
    "validate_case_id",
    "validate_email",
]

__getattr__, __dir__ = _lazy.attach(__name__, globals(), _LAZY, __all__)
