"""wpprotect: operate Datadog Workload Protection (formerly CWS) from code.

Collect and review Security Agent flares, run the runtime self-test on one agent or a fleet, find
eBPF traffic-control classifiers that blind Datadog's network detection, and turn Workload
Protection (or its network detection) off or reconfigure it as previewable, undoable plans.

Everything public is importable from here. Heavy backends (docker, kubernetes, pyroute2,
ruamel.yaml) are imported only when the object that needs them is first used, so
``import wpprotect`` stays fast and works without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wpprotect import _lazy
from wpprotect._version import __version__
from wpprotect.errors import (
    AgentError,
    AgentNotFoundError,
    BackendUnavailableError,
    BPFError,
    CapabilityError,
    ConfigConflictError,
    ConfigError,
    ConfigExpansionError,
    ConfigFileError,
    ConfigOverriddenError,
    ConfigParseError,
    ConfigStructureError,
    ExecError,
    ExecOutputLimitError,
    ExecTimeoutError,
    FlareError,
    FlareUploadError,
    InvalidArgumentError,
    NetnsNotFoundError,
    PermissionDeniedError,
    PlanApplyError,
    PlanError,
    PlanUndoError,
    PlanVerifyError,
    PlatformError,
    RemoteConflictError,
    TargetKindError,
    TCError,
    UnsafePathError,
    UnsupportedAgentError,
    WPProtectError,
)

if TYPE_CHECKING:
    from wpprotect.agent import AgentVersion, Flare, FlareUpload, SecretFinding, SelfTestResult
    from wpprotect.config import (
        ConfigDocuments,
        ConfigEditor,
        EffectiveValue,
        Setting,
        effective_settings,
        plan_classifier_priority,
        plan_disable,
    )
    from wpprotect.doctor import DoctorReport, diagnose
    from wpprotect.fleet import FleetResult, run_fleet
    from wpprotect.plan import Change, Plan
    from wpprotect.platforms import (
        BasePlatform,
        DockerPlatform,
        ExecResult,
        HostPlatform,
        KubernetesPlatform,
        Platform,
    )
    from wpprotect.tc import (
        Assessment,
        Finding,
        TCFleetReport,
        TCInspector,
        TCMeasurement,
        TCProgram,
        TCReport,
    )


# name -> module that defines it; imported on first attribute access (PEP 562).
_LAZY: dict[str, str] = {
    "AgentVersion": "wpprotect.agent",
    "Assessment": "wpprotect.tc",
    "BasePlatform": "wpprotect.platforms",
    "Change": "wpprotect.plan",
    "ConfigDocuments": "wpprotect.config",
    "ConfigEditor": "wpprotect.config",
    "DockerPlatform": "wpprotect.platforms",
    "DoctorReport": "wpprotect.doctor",
    "EffectiveValue": "wpprotect.config",
    "ExecResult": "wpprotect.platforms",
    "Finding": "wpprotect.tc",
    "Flare": "wpprotect.agent",
    "FlareUpload": "wpprotect.agent",
    "FleetResult": "wpprotect.fleet",
    "HostPlatform": "wpprotect.platforms",
    "KubernetesPlatform": "wpprotect.platforms",
    "Plan": "wpprotect.plan",
    "Platform": "wpprotect.platforms",
    "SecretFinding": "wpprotect.agent",
    "SelfTestResult": "wpprotect.agent",
    "Setting": "wpprotect.config",
    "TCFleetReport": "wpprotect.tc",
    "TCInspector": "wpprotect.tc",
    "TCMeasurement": "wpprotect.tc",
    "TCProgram": "wpprotect.tc",
    "TCReport": "wpprotect.tc",
    "diagnose": "wpprotect.doctor",
    "effective_settings": "wpprotect.config",
    "plan_classifier_priority": "wpprotect.config",
    "plan_disable": "wpprotect.config",
    "run_fleet": "wpprotect.fleet",
}

__all__ = [
    "AgentError",
    "AgentNotFoundError",
    "AgentVersion",
    "Assessment",
    "BPFError",
    "BackendUnavailableError",
    "BasePlatform",
    "CapabilityError",
    "Change",
    "ConfigConflictError",
    "ConfigDocuments",
    "ConfigEditor",
    "ConfigError",
    "ConfigExpansionError",
    "ConfigFileError",
    "ConfigOverriddenError",
    "ConfigParseError",
    "ConfigStructureError",
    "DockerPlatform",
    "DoctorReport",
    "EffectiveValue",
    "ExecError",
    "ExecOutputLimitError",
    "ExecResult",
    "ExecTimeoutError",
    "Finding",
    "Flare",
    "FlareError",
    "FlareUpload",
    "FlareUploadError",
    "FleetResult",
    "HostPlatform",
    "InvalidArgumentError",
    "KubernetesPlatform",
    "NetnsNotFoundError",
    "PermissionDeniedError",
    "Plan",
    "PlanApplyError",
    "PlanError",
    "PlanUndoError",
    "PlanVerifyError",
    "Platform",
    "PlatformError",
    "RemoteConflictError",
    "SecretFinding",
    "SelfTestResult",
    "Setting",
    "TCError",
    "TCFleetReport",
    "TCInspector",
    "TCMeasurement",
    "TCProgram",
    "TCReport",
    "TargetKindError",
    "UnsafePathError",
    "UnsupportedAgentError",
    "WPProtectError",
    "__version__",
    "diagnose",
    "effective_settings",
    "plan_classifier_priority",
    "plan_disable",
    "run_fleet",
]

__getattr__, __dir__ = _lazy.attach(__name__, globals(), _LAZY, __all__)
