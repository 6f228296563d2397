"""Config editing and the agent's settings model.

- :class:`ConfigEditor`: round-trip YAML editing (comments, order, quoting, indentation kept).
- The settings model: where each Workload Protection setting lives (system-probe.yaml,
  security-agent.yaml, env vars, Helm values, the Operator's DatadogAgent) and its effective value.
- File plans: :func:`plan_disable` and :func:`plan_classifier_priority`.

This package is ruamel.yaml's only home in wpprotect.
"""

from __future__ import annotations

from wpprotect.config._editor import ConfigDocuments, ConfigEditor
from wpprotect.config._plans import TargetKind, detect_kind, plan_classifier_priority, plan_disable
from wpprotect.config._settings import (
    CLASSIFIER_PRIORITY,
    CWS_ENABLED,
    NETWORK_ENABLED,
    SETTINGS,
    EffectiveValue,
    Setting,
    effective_settings,
    effective_value,
    scope_settings,
    validate_classifier_priority,
)

__all__ = [
    "CLASSIFIER_PRIORITY",
    "CWS_ENABLED",
    "NETWORK_ENABLED",
    "SETTINGS",
    "ConfigDocuments",
    "ConfigEditor",
    "EffectiveValue",
    "Setting",
    "TargetKind",
    "detect_kind",
    "effective_settings",
    "effective_value",
    "plan_classifier_priority",
    "plan_disable",
    "scope_settings",
    "validate_classifier_priority",
]
