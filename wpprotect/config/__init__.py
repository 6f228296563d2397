"""Config editing and the agent's settings model.

- :class:`ConfigEditor`: round-trip YAML editing (comments, order, quoting, indentation kept).
- The settings model: where each Workload Protection setting lives (system-probe.yaml,
  security-agent.yaml, env vars, Helm values, the Operator's DatadogAgent) and its effective value.
- File plans: :func:`plan_disable` and :func:`plan_classifier_priority`.

This package is ruamel.yaml's only home in wpprotect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wpprotect import _lazy
from wpprotect.config._settings import (
    CLASSIFIER_PRIORITY,
    CWS_ENABLED,
    FIM_ENABLED,
    FLEET_POLICY_FILE,
    HOST_DUMP_ENABLED,
    HOST_FILES,
    NETWORK_ENABLED,
    REENABLING_SETTINGS,
    SECURITY_AGENT_YAML,
    SETTINGS,
    SYSTEM_PROBE_YAML,
    EffectiveValue,
    FileSource,
    Setting,
    SettingConflict,
    ShadowedValue,
    disable_settings,
    effective_settings,
    effective_value,
    fleet_policy_path,
    parse_go_bool,
    parse_go_int,
    scope_settings,
    validate_classifier_priority,
)

if TYPE_CHECKING:
    from wpprotect.config._editor import ConfigDocuments, ConfigEditor
    from wpprotect.config._plans import (
        TargetKind,
        detect_kind,
        disable_values,
        plan_classifier_priority,
        plan_disable,
    )

# The editor and the plans load on first use: reading a setting's effective value (e.g. the
# classifier priority `tc scan` judges against) needs neither (PEP 562).
_LAZY = {
    "ConfigDocuments": "wpprotect.config._editor",
    "ConfigEditor": "wpprotect.config._editor",
    "TargetKind": "wpprotect.config._plans",
    "detect_kind": "wpprotect.config._plans",
    "disable_values": "wpprotect.config._plans",
    "plan_classifier_priority": "wpprotect.config._plans",
    "plan_disable": "wpprotect.config._plans",
}


__all__ = [
    "CLASSIFIER_PRIORITY",
    "CWS_ENABLED",
    "FIM_ENABLED",
    "FLEET_POLICY_FILE",
    "HOST_DUMP_ENABLED",
    "HOST_FILES",
    "NETWORK_ENABLED",
    "REENABLING_SETTINGS",
    "SECURITY_AGENT_YAML",
    "SETTINGS",
    "SYSTEM_PROBE_YAML",
    "ConfigDocuments",
    "ConfigEditor",
    "EffectiveValue",
    "FileSource",
    "Setting",
    "SettingConflict",
    "ShadowedValue",
    "TargetKind",
    "detect_kind",
    "disable_settings",
    "disable_values",
    "effective_settings",
    "effective_value",
    "fleet_policy_path",
    "parse_go_bool",
    "parse_go_int",
    "plan_classifier_priority",
    "plan_disable",
    "scope_settings",
    "validate_classifier_priority",
]

__getattr__, __dir__ = _lazy.attach(__name__, globals(), _LAZY, __all__)
