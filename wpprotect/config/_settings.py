"""The agent's Workload Protection settings as data, and how to read their effective value.

Each :class:`Setting` knows every place the agent reads it from: the YAML keys in
``system-probe.yaml`` / ``security-agent.yaml`` (with the deprecated aliases the agent still
honours), the environment variables bound to it, which agent components read it, the Helm
chart's values key and the Datadog Operator's ``DatadogAgent`` field. The edit functions in
:mod:`wpprotect.config._surfaces` and the plans in :mod:`wpprotect.config._plans` are driven by
this table; nothing else in wpprotect spells these keys.

:func:`effective_value` answers "what does the agent actually use?" by following the agent's own
reading order, and says where the value came from, what it shadows (:class:`ShadowedValue`) and
which component reads another value (:class:`SettingConflict`), as data.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from wpprotect._agentversions import VersionLike, as_tuple, lookup
from wpprotect._redact import redact_text
from wpprotect.errors import (
    ConfigExpansionError,
    ConfigFileError,
    ConfigParseError,
    ConfigStructureError,
    InvalidArgumentError,
)

__all__ = [
    "CLASSIFIER_PRIORITY",
    "CWS_ENABLED",
    "DEFAULT_CONFIG_DIR",
    "FIM_ENABLED",
    "FLEET_POLICY_FILE",
    "HOST_DUMP_ENABLED",
    "HOST_FILES",
    "NETWORK_ENABLED",
    "REENABLING_SETTINGS",
    "SCOPES",
    "SECURITY_AGENT",
    "SECURITY_AGENT_YAML",
    "SETTINGS",
    "SYSTEM_PROBE",
    "SYSTEM_PROBE_YAML",
    "EffectiveValue",
    "FileSource",
    "Setting",
    "SettingConflict",
    "SettingValue",
    "ShadowedValue",
    "disable_settings",
    "dotted_get",
    "effective_settings",
    "effective_value",
    "fleet_policy_path",
    "get_setting",
    "load_yaml_document",
    "parse_agent_value",
    "parse_go_bool",
    "parse_go_int",
    "parse_yaml_bytes",
    "scope_settings",
    "validate_classifier_priority",
    "validate_settings",
]


#: The host config directory of the Linux packages (``/etc/datadog-agent``).
DEFAULT_CONFIG_DIR = Path("/etc/datadog-agent")
#: File names of the two host files that carry Workload Protection settings.
SYSTEM_PROBE_YAML = "system-probe.yaml"
# The settings whose precedence changed with the agent's version (``network-precedence``).
_NETWORK_PREFIX = "runtime_security_config.network."
SECURITY_AGENT_YAML = "security-agent.yaml"
HOST_FILES: tuple[str, ...] = (SYSTEM_PROBE_YAML, SECURITY_AGENT_YAML)
#: Component (and container) names, as the Helm chart and the Operator name the containers.
SYSTEM_PROBE = "system-probe"
SECURITY_AGENT = "security-agent"

#: A setting's value: every setting here is a bool or an int.
SettingValue = bool | int

# Refuse to parse files larger than this: agent config files are a few kB, the Helm values
# file ~150 kB; anything far larger is not a config file.
_MAX_FILE_BYTES = 8 * 1024 * 1024


@attrs.frozen(repr=False)
class Setting:
    """One Workload Protection setting and every place the agent reads it from.

    :param name: short identifier (``cws_enabled``, ``network_enabled``,
        ``classifier_priority``), also the key of :func:`effective_settings`.
    :param description: one line for people.
    :param value_type: ``bool`` or ``int``.
    :param default: the agent's default when nothing sets it.
    :param yaml_keys: every YAML spelling the agent reads, deprecated alias first.
    :param write_key: the YAML key wpprotect adds when the file has none of ``yaml_keys``.
    :param files: the host files (``system-probe.yaml``, ``security-agent.yaml``) that carry it.
    :param env_vars: the environment variables bound to it, in the order viper looks them up
        (the first one set wins).
    :param env_key: the YAML key the environment variables are bound to.
    :param write_env: the environment variable wpprotect adds when none is set.
    :param components: the agent components (= container names) that read it.
    :param helm_path: the Helm chart's values key, or ``None`` when the chart has none.
    :param helm_env_container: for settings without a values key, the
        ``agents.containers.<name>`` whose ``env`` list carries the variable.
    :param dda_path: the ``DatadogAgent`` field, or ``None`` when the Operator has none.
    :param dda_override_env: when a ``spec.override.nodeAgent.containers.<c>.env`` entry is
        needed on a DatadogAgent: ``"never"``, ``"when-false"`` (the Operator only ever writes
        ``"true"`` env vars) or ``"always"`` (no CRD field exists).
    """

    name: str
    description: str
    value_type: type[bool] | type[int]
    default: SettingValue
    yaml_keys: tuple[str, ...]
    write_key: str
    files: tuple[str, ...]
    env_vars: tuple[str, ...]
    env_key: str
    write_env: str
    components: tuple[str, ...]
    helm_path: str | None
    helm_env_container: str | None
    dda_path: str | None
    dda_override_env: Literal["never", "when-false", "always"]

    @property
    def precedence(self) -> tuple[tuple[Literal["yaml", "env"], str], ...]:
        """Where the agent looks, first match wins: ``(("yaml", key) | ("env", name), ...)``.

        The deprecated ``runtime_security_config.*`` YAML alias comes first, before any env
        var: ``pkg/security/probe/config/config.go`` ``getBool``/``getInt`` return the
        deprecated key whenever it ``IsConfigured`` and only otherwise read
        ``event_monitoring_config.*``. The env vars are bound (``eventMonitorBindEnvAndSetDefault``
        in ``pkg/config/setup/system_probe.go``) to the ``event_monitoring_config.*`` key, so
        viper lets them override only that key's YAML value, not the deprecated alias (an
        inference from the code, not tested against a running agent:
        docs/reference/deployments.md#deploy-helm-priority). For a
        key with no alias (``runtime_security_config.enabled``) the usual viper order applies:
        env, then YAML, then the default.
        """
        order: list[tuple[Literal["yaml", "env"], str]] = [
            ("yaml", k) for k in self.yaml_keys if k != self.env_key
        ]
        order += [("env", e) for e in self.env_vars]
        order.append(("yaml", self.env_key))
        return tuple(order)

    def precedence_for(
        self, version: VersionLike | None
    ) -> tuple[tuple[Literal["yaml", "env"], str], ...]:
        """:attr:`precedence` as the agent at ``version`` applies it.

        About 7.36 to 7.43 (the version table's ``network-precedence`` rows) CWS read
        ``runtime_security_config.network.*`` directly, with the env var bound to that same key,
        so ``DD_RUNTIME_SECURITY_CONFIG_NETWORK_*`` beats the YAML and the
        ``event_monitoring_config`` spellings are not read
        (docs/reference/agent-cli.md#cli-old-precedence). Other versions, and an unknown one:
        :attr:`precedence`.
        """
        legacy = self.write_key
        if not legacy.startswith(_NETWORK_PREFIX) or (
            lookup("network-precedence", version) != "env-over-yaml"
        ):
            return self.precedence
        envs = [e for e in self.env_vars if e.startswith("DD_RUNTIME_SECURITY_CONFIG_")]
        return (*(("env", e) for e in envs), ("yaml", legacy))

    def default_for(self, version: VersionLike | None) -> SettingValue:
        """The agent's default at ``version``: the classifier priority was 1 on 7.36 to 7.39.1
        (the version table's ``default-classifier-priority``,
        docs/reference/agent-cli.md#cli-cilium-race); :attr:`default` otherwise."""
        if self.name == "classifier_priority":
            value = lookup("default-classifier-priority", version)
            if isinstance(value, int):
                return value
        return self.default

    def coerce(self, value: object) -> SettingValue:
        """Check ``value`` for this setting and return it normalised.

        :raises InvalidArgumentError: wrong type, or out of range.
        """
        if self.name == "classifier_priority":
            return validate_classifier_priority(value)
        if self.value_type is bool:
            if not isinstance(value, bool):
                raise InvalidArgumentError(
                    f"{self.name} takes true or false, not {value!r}", key=self.write_key
                )
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentError(
                f"{self.name} takes an integer, not {value!r}", key=self.write_key
            )
        return value

    def env_value(self, value: SettingValue) -> str:
        """The value as an environment variable's string (``"false"``, ``"4"``)."""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def __repr__(self) -> str:
        return f"<Setting {self.name} {self.write_key} default={self.default!r}>"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of where the setting lives."""
        return {
            "name": self.name,
            "description": self.description,
            "type": self.value_type.__name__,
            "default": self.default,
            "yaml_keys": list(self.yaml_keys),
            "write_key": self.write_key,
            "files": list(self.files),
            "env_vars": list(self.env_vars),
            "write_env": self.write_env,
            "components": list(self.components),
            "helm_path": self.helm_path,
            "helm_env_container": self.helm_env_container,
            "dda_path": self.dda_path,
            "dda_override_env": self.dda_override_env,
        }

    def _repr_html_(self) -> str:
        import html  # for notebooks only

        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in self.to_dict().items()
        )
        return f"<table>{rows}</table>"


#: ``runtime_security_config.enabled``: Workload Protection itself. Bound to the one env var
#: ``DD_RUNTIME_SECURITY_CONFIG_ENABLED`` in both the core/security-agent config
#: (``pkg/config/setup/config.go``) and system-probe (``pkg/config/setup/system_probe_cws.go``);
#: the docs' "disable" steps set it in both host files, and on both the system-probe and
#: security-agent containers.
CWS_ENABLED = Setting(
    name="cws_enabled",
    description="Workload Protection (CWS) runtime security",
    value_type=bool,
    default=False,
    yaml_keys=("runtime_security_config.enabled",),
    write_key="runtime_security_config.enabled",
    files=(SYSTEM_PROBE_YAML, SECURITY_AGENT_YAML),
    env_vars=("DD_RUNTIME_SECURITY_CONFIG_ENABLED",),
    env_key="runtime_security_config.enabled",
    write_env="DD_RUNTIME_SECURITY_CONFIG_ENABLED",
    components=(SYSTEM_PROBE, SECURITY_AGENT),
    helm_path="datadog.securityAgent.runtime.enabled",
    helm_env_container=None,
    dda_path="spec.features.cws.enabled",
    dda_override_env="never",
)

#: Network detection (TC classifiers). ``eventMonitorBindEnvAndSetDefault`` binds
#: ``event_monitoring_config.network.enabled`` (default true) to both env prefixes; the YAML key
#: the docs and the shipped template name, ``runtime_security_config.network.enabled``, is the
#: deprecated alias that wins (see :attr:`Setting.precedence`), so it is the one written.
NETWORK_ENABLED = Setting(
    name="network_enabled",
    description="Workload Protection network detection (TC classifiers)",
    value_type=bool,
    default=True,
    yaml_keys=(
        "runtime_security_config.network.enabled",
        "event_monitoring_config.network.enabled",
    ),
    write_key="runtime_security_config.network.enabled",
    files=(SYSTEM_PROBE_YAML,),
    env_vars=(
        "DD_EVENT_MONITORING_CONFIG_NETWORK_ENABLED",
        "DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED",
    ),
    env_key="event_monitoring_config.network.enabled",
    write_env="DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED",
    components=(SYSTEM_PROBE,),
    helm_path="datadog.securityAgent.runtime.network.enabled",
    helm_env_container=None,
    dda_path="spec.features.cws.network.enabled",
    dda_override_env="when-false",
)

#: The TC priority of the agent's classifiers (default 10). No Helm values key and no
#: DatadogAgent field exist for it (docs/reference/deployments.md#deploy-helm-priority,
# #deploy-operator): Helm takes it as an env entry on
#: the system-probe container, the Operator as an override env entry.
CLASSIFIER_PRIORITY = Setting(
    name="classifier_priority",
    description="TC priority of Workload Protection's network classifiers",
    value_type=int,
    default=10,
    yaml_keys=(
        "runtime_security_config.network.classifier_priority",
        "event_monitoring_config.network.classifier_priority",
    ),
    write_key="runtime_security_config.network.classifier_priority",
    files=(SYSTEM_PROBE_YAML,),
    env_vars=(
        "DD_EVENT_MONITORING_CONFIG_NETWORK_CLASSIFIER_PRIORITY",
        "DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY",
    ),
    env_key="event_monitoring_config.network.classifier_priority",
    write_env="DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY",
    components=(SYSTEM_PROBE,),
    helm_path=None,
    helm_env_container="systemProbe",
    dda_path=None,
    dda_override_env="always",
)

#: ``runtime_security_config.fim_enabled`` (default false): system-probe keeps the event monitor,
#: and with it CWS, on while it is true, whatever ``runtime_security_config.enabled`` says
#: (docs/reference/agent-cli.md#cli-reenable). The Helm chart's ``fimEnabled`` has no effect
#: (docs/reference/deployments.md#deploy-helm-values), so on Kubernetes it is an env entry on
#: system-probe.
FIM_ENABLED = Setting(
    name="fim_enabled",
    description="File integrity monitoring (keeps the event monitor and CWS on)",
    value_type=bool,
    default=False,
    yaml_keys=("runtime_security_config.fim_enabled",),
    write_key="runtime_security_config.fim_enabled",
    files=(SYSTEM_PROBE_YAML,),
    env_vars=("DD_RUNTIME_SECURITY_CONFIG_FIM_ENABLED",),
    env_key="runtime_security_config.fim_enabled",
    write_env="DD_RUNTIME_SECURITY_CONFIG_FIM_ENABLED",
    components=(SYSTEM_PROBE,),
    helm_path=None,
    helm_env_container="systemProbe",
    dda_path=None,
    dda_override_env="always",
)

#: ``runtime_security_config.security_profile.v2.host_dump.enabled`` (default false): when true,
#: system-probe sets ``runtime_security_config.enabled`` (and the V2 security profiles) back to
#: true before anything reads it (docs/reference/agent-cli.md#cli-reenable). The env var name
#: follows the agent's convention for the key.
HOST_DUMP_ENABLED = Setting(
    name="host_dump_enabled",
    description="Host-wide activity dump (forces runtime_security_config.enabled on)",
    value_type=bool,
    default=False,
    yaml_keys=("runtime_security_config.security_profile.v2.host_dump.enabled",),
    write_key="runtime_security_config.security_profile.v2.host_dump.enabled",
    files=(SYSTEM_PROBE_YAML,),
    env_vars=("DD_RUNTIME_SECURITY_CONFIG_SECURITY_PROFILE_V2_HOST_DUMP_ENABLED",),
    env_key="runtime_security_config.security_profile.v2.host_dump.enabled",
    write_env="DD_RUNTIME_SECURITY_CONFIG_SECURITY_PROFILE_V2_HOST_DUMP_ENABLED",
    components=(SYSTEM_PROBE,),
    helm_path=None,
    helm_env_container="systemProbe",
    dda_path=None,
    dda_override_env="always",
)

#: Every setting wpprotect knows, in a stable order.
SETTINGS: tuple[Setting, ...] = (
    CWS_ENABLED,
    NETWORK_ENABLED,
    CLASSIFIER_PRIORITY,
    FIM_ENABLED,
    HOST_DUMP_ENABLED,
)

#: Settings that keep Workload Protection running when ``runtime_security_config.enabled`` is
#: false: a ``workload-protection`` disable turns them off too (:func:`disable_settings`).
REENABLING_SETTINGS: tuple[Setting, ...] = (FIM_ENABLED, HOST_DUMP_ENABLED)

#: The key of :func:`effective_value`'s ``files`` for the fleet policy layer: the
#: ``system-probe.yaml`` in ``fleet_policies_dir`` (docs/reference/agent-cli.md#cli-reenable).
FLEET_POLICY_FILE = "fleet-policy:system-probe.yaml"
_FLEET_DIR_KEY = "fleet_policies_dir"
#: How :attr:`EffectiveValue.source` names the fleet policy layer: ``fleet-policy <path>``.
FLEET_POLICY_PREFIX = "fleet-policy "
_FLEET_DIR_ENV = "DD_FLEET_POLICIES_DIR"

#: The scopes :func:`scope_settings` (and ``disable``) accept, with what each turns off.
SCOPES: Mapping[str, Mapping[Setting, SettingValue]] = {
    "workload-protection": {CWS_ENABLED: False},
    "network": {NETWORK_ENABLED: False},
}


def get_setting(name: str) -> Setting:
    """The :class:`Setting` called ``name`` (``cws_enabled``, ``network_enabled``...).

    :raises InvalidArgumentError: no such setting; the message names the valid ones.
    """
    for setting in SETTINGS:
        if setting.name == name:
            return setting
    valid = ", ".join(s.name for s in SETTINGS)
    raise InvalidArgumentError(f"unknown setting {name!r}; valid settings: {valid}")


def scope_settings(scope: str) -> dict[Setting, SettingValue]:
    """The settings a ``disable`` of ``scope`` writes.

    >>> from wpprotect.config import scope_settings
    >>> scope_settings("network")
    {<Setting network_enabled runtime_security_config.network.enabled default=True>: False}

    :param scope: ``"workload-protection"`` (all of CWS) or ``"network"`` (network detection).
    :returns: ``{Setting: value}``.
    :raises InvalidArgumentError: unknown scope; the message names the valid ones.
    """
    if scope not in tuple(SCOPES):  # a tuple: an unhashable argument must not raise TypeError
        raise InvalidArgumentError(
            f"unknown scope {scope!r}; valid scopes: {', '.join(sorted(SCOPES))}"
        )
    return dict(SCOPES[scope])


def disable_settings(
    scope: str, current: Mapping[Setting, SettingValue | None] | None = None
) -> dict[Setting, SettingValue]:
    """What a ``disable`` of ``scope`` must write so that nothing turns it back on.

    For ``"workload-protection"`` that is ``runtime_security_config.enabled: false`` plus every
    setting of :data:`REENABLING_SETTINGS` (``fim_enabled``, ``host_dump.enabled``) that is not
    known to be off already: with ``current`` (the target's values; ``None`` for one that
    cannot be known, e.g. a ``valueFrom``) only those that are not ``False``, without it all of
    them.

    >>> from wpprotect.config import FIM_ENABLED, HOST_DUMP_ENABLED, disable_settings
    >>> sorted(s.name for s in disable_settings("workload-protection",
    ...     {FIM_ENABLED: True, HOST_DUMP_ENABLED: False}))
    ['cws_enabled', 'fim_enabled']

    :param scope: ``"workload-protection"`` or ``"network"``.
    :param current: the target's current values, if read.
    :returns: ``{Setting: value}``.
    :raises InvalidArgumentError: unknown scope.
    """
    values = scope_settings(scope)
    if scope == "workload-protection":
        for setting in REENABLING_SETTINGS:
            if current is None or current.get(setting, setting.default) is not False:
                values[setting] = False
    return values


def validate_classifier_priority(n: object) -> int:
    """Check a TC classifier priority for the agent and return it.

    The agent casts the value to ``uint16`` (``pkg/security/probe/config/config.go``), and TC
    priority 0 means "let the kernel pick" (ebpf-manager then falls back to priority 50), so
    only 1..65535 is accepted.

    >>> from wpprotect.config import validate_classifier_priority
    >>> validate_classifier_priority(4)
    4

    :param n: the priority; an ``int`` (not a ``bool``, ``float`` or ``str``).
    :returns: ``n``.
    :raises InvalidArgumentError: wrong type or out of range.
    """
    key = "runtime_security_config.network.classifier_priority"
    if isinstance(n, bool) or not isinstance(n, int):
        raise InvalidArgumentError(
            f"classifier priority must be an integer 1..65535, not {type(n).__name__} {n!r}",
            key=key,
        )
    if n == 0:
        raise InvalidArgumentError(
            "classifier priority 0 means 'the kernel picks' (ebpf-manager then falls back to "
            "priority 50, behind most vendors); give 1..65535",
            key=key,
        )
    if not 1 <= n <= 65535:
        raise InvalidArgumentError(
            f"classifier priority {n} is out of range: TC priorities are 1..65535", key=key
        )
    return n


def validate_settings(settings: Mapping[Setting, object]) -> dict[Setting, SettingValue]:
    """Check every value of a ``{Setting: value}`` mapping (see :meth:`Setting.coerce`).

    :raises InvalidArgumentError: a key is not a :class:`Setting`, a value is invalid, or the
        mapping is empty.
    """
    if not settings:
        raise InvalidArgumentError("no settings given: nothing to plan")
    out: dict[Setting, SettingValue] = {}
    for setting, value in settings.items():
        if not isinstance(setting, Setting):
            raise InvalidArgumentError(
                f"settings must be keyed by Setting (e.g. wpprotect.config.CWS_ENABLED), "
                f"not {setting!r}"
            )
        out[setting] = setting.coerce(value)
    return out


# --- reading values the way the agent does ---------------------------------------------------

# The one truth table for the agent's values. strconv.ParseBool, which cast.ToBool (viper's
# GetBool) uses for strings, accepts exactly these (go/src/strconv/atob.go).
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
# go-yaml v2 (YAML 1.1) resolves these plain scalars to booleans, which a YAML 1.2 reader
# leaves as strings. They reach the agent only from YAML, never from an env var.
_YAML11_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "on", "On", "ON"})
_YAML11_FALSE = frozenset({"n", "N", "no", "No", "NO", "off", "Off", "OFF"})
_GO_INT = re.compile(r"^[+-]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)$")


def parse_go_bool(text: str) -> bool | None:
    """``strconv.ParseBool(text)``: the boolean Go reads, or ``None`` where Go returns an error.

    >>> from wpprotect.config import parse_go_bool
    >>> parse_go_bool("True"), parse_go_bool("0"), parse_go_bool("yes")
    (True, False, None)

    :param text: the string as the agent sees it (an env var's value, a quoted YAML scalar).
    """
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    return None


def parse_go_int(text: str) -> int | None:
    """``strconv.ParseInt(text, 0, 0)`` after cast's ``trimZeroDecimal``: the integer Go reads
    (base prefixes ``0x``/``0o``/``0b``, a leading ``0`` for octal, ``_`` separators, ``"4.0"``
    as 4), or ``None`` where Go returns an error.

    >>> from wpprotect.config import parse_go_int
    >>> parse_go_int("010"), parse_go_int("0x1f"), parse_go_int("4.0"), parse_go_int("four")
    (8, 31, 4, None)

    :param text: the string as the agent sees it.
    """
    s = text.strip()
    s = re.sub(r"\.0+$", "", s)  # cast.ToIntE: "4.0" -> "4"
    if not _GO_INT.match(s):
        return None
    sign = -1 if s.startswith("-") else 1
    body = s.lstrip("+-").replace("_", "")
    if len(body) > 1 and body[0] == "0" and body[1] not in "xXoObB":
        return sign * int(body, 8)  # Go's base 0: a leading 0 is octal
    return sign * int(body, 0)


def parse_agent_value(
    setting: Setting, raw: object, *, from_env: bool = False
) -> tuple[SettingValue, str | None]:
    """Convert a raw YAML or env value the way the agent's config getters do.

    Viper's ``GetBool``/``GetInt`` use ``cast``, which turns what it cannot parse into
    ``false``/``0`` silently; this returns that value plus a note saying so.

    :param setting: whose value it is.
    :param raw: the value as read (a YAML scalar, or an env var's string).
    :param from_env: the value is an env var's string (no YAML 1.1 booleans there).
    :returns: ``(value, note or None)``.
    """
    where = "env value" if from_env else "value"
    if setting.value_type is bool:
        if isinstance(raw, bool):
            return raw, None
        if isinstance(raw, int | float):
            return bool(raw), None
        if isinstance(raw, str):
            s = raw.strip() if from_env else raw
            parsed = parse_go_bool(s)
            if parsed is not None:
                return parsed, None
            if not from_env and s in _YAML11_TRUE:
                return True, None
            if not from_env and s in _YAML11_FALSE:
                return False, None
        return False, f"{where} {raw!r} is not a boolean: the agent reads it as false"
    # int settings
    value: int | None
    if isinstance(raw, bool):
        value = int(raw)
    elif isinstance(raw, int):
        value = raw
    elif isinstance(raw, float):
        value = int(raw)
    elif isinstance(raw, str):
        value = parse_go_int(raw)
    else:
        value = None
    if value is None:
        return 0, f"{where} {raw!r} is not an integer: the agent reads it as 0"
    if setting.name == "classifier_priority":
        cast16 = value & 0xFFFF  # uint16(getInt(...)) in pkg/security/probe/config/config.go
        if cast16 != value:
            return cast16, f"{value} does not fit uint16: the agent uses {cast16}"
        if value == 0:
            return 0, "priority 0 lets the kernel pick (ebpf-manager falls back to 50)"
    return value, None


def _fmt(raw: object) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return repr(raw) if isinstance(raw, str) else str(raw)


def _plain(raw: object) -> str | int | float | bool | None:
    """A raw YAML scalar as JSON (a date or a list, which no setting takes, as its text)."""
    if raw is None or isinstance(raw, str | int | float | bool):
        return raw
    return str(raw)


@attrs.frozen
class ShadowedValue:
    """A place that sets a setting but loses to the one in effect.

    :param source: the file (path or name) or ``env NAME``.
    :param key: the YAML key or env var.
    :param raw: the value as written there (a YAML scalar, or the env var's string).
    :param value: what the agent would read from it (see :func:`parse_agent_value`).
    :param from_env: it is an env var.
    """

    source: str
    key: str
    raw: object
    value: SettingValue
    from_env: bool = False

    def __str__(self) -> str:
        """``env NAME=raw`` or ``<source> <key>: <raw>``."""
        if self.from_env:
            return f"{self.source}={self.raw}"
        return f"{self.source} {self.key}: {_fmt(self.raw)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``source``, ``key``, ``raw``, ``value``, ``from_env``."""
        return {
            "source": self.source,
            "key": self.key,
            "raw": _plain(self.raw),
            "value": self.value,
            "from_env": self.from_env,
        }


@attrs.frozen
class SettingConflict:
    """Two agent components read one setting from different files and get different values
    (on a host, system-probe and security-agent both read ``runtime_security_config.enabled``).

    :param file: the file whose value is *not* the one reported (``security-agent.yaml``).
    :param value: the value that file gives.
    :param source: where in that file's reading order the value came from (a path, ``env
        NAME``, ``default``).
    :param other_file: the file whose value is reported (``system-probe.yaml``).
    :param other_value: the value reported.
    """

    file: str
    value: SettingValue
    source: str
    other_file: str
    other_value: SettingValue

    def __str__(self) -> str:
        """The disagreement in one sentence."""
        return (
            f"{self.file} gives {_fmt(self.value)} (from {self.source}) while "
            f"{self.other_file} gives {_fmt(self.other_value)}: on a host CWS runs only when "
            "both are true"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every field, and ``message`` (the sentence)."""
        return {
            "file": self.file,
            "value": self.value,
            "source": self.source,
            "other_file": self.other_file,
            "other_value": self.other_value,
            "message": str(self),
        }


def _shadowed_tuple(items: Iterable[ShadowedValue]) -> tuple[ShadowedValue, ...]:
    return tuple(items)


def _conflict_tuple(items: Iterable[SettingConflict]) -> tuple[SettingConflict, ...]:
    return tuple(items)


def _str_tuple(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


@attrs.frozen(repr=False)
class EffectiveValue:
    """The value the agent uses for one setting, and where it comes from.

    :param setting: the setting.
    :param value: the value in effect.
    :param source: a file path (``/etc/datadog-agent/system-probe.yaml``), ``env NAME``,
        ``fleet-policy <path>`` (the fleet policy layer), or ``default``.
    :param key: the YAML key or env var that set it (``None`` for the default).
    :param shadowed: the other places that set it but lose, in the agent's reading order.
    :param conflicts: components that read it from another file and get another value.
    :param notes: anything else worth knowing, for people (deprecated key, value the agent
        cannot parse...).
    """

    setting: Setting
    value: SettingValue
    source: str
    key: str | None = None
    shadowed: tuple[ShadowedValue, ...] = attrs.field(default=(), converter=_shadowed_tuple)
    conflicts: tuple[SettingConflict, ...] = attrs.field(default=(), converter=_conflict_tuple)
    notes: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)

    @property
    def is_default(self) -> bool:
        """True when nothing sets the value (the agent's default applies)."""
        return self.source == "default"

    @property
    def from_env(self) -> bool:
        """True when an environment variable sets the value."""
        return self.source.startswith("env ")

    @property
    def from_fleet_policy(self) -> bool:
        """True when the fleet policy layer (``fleet_policies_dir/system-probe.yaml``) sets the
        value: it is merged on top of the local file and the env vars."""
        return self.source.startswith(FLEET_POLICY_PREFIX)

    @property
    def ignored(self) -> tuple[ShadowedValue, ...]:
        """The shadowed places whose value differs from the one in effect: settings someone
        wrote that the agent silently ignores."""
        return tuple(s for s in self.shadowed if s.value != self.value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``setting``, ``value``, ``source``, ``key``, ``shadowed``,
        ``conflicts``, ``notes``."""
        return {
            "setting": self.setting.name,
            "value": self.value,
            "source": self.source,
            "key": self.key,
            "shadowed": [s.to_dict() for s in self.shadowed],
            "conflicts": [c.to_dict() for c in self.conflicts],
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        where = self.source if self.key is None or self.from_env else f"{self.source} {self.key}"
        extra = f", {len(self.shadowed)} shadowed" if self.shadowed else ""
        return f"<EffectiveValue {self.setting.name}={self.value!r} from {where}{extra}>"

    def _repr_html_(self) -> str:
        import html  # for notebooks only

        rows = [
            f"<b>{html.escape(self.setting.name)}</b> = <code>{html.escape(repr(self.value))}"
            f"</code> <small>from {html.escape(self.source)}"
            + (f" ({html.escape(self.key)})" if self.key else "")
            + "</small>"
        ]
        rows += [f"<br><s>{html.escape(str(s))}</s>" for s in self.shadowed]
        rows += [f"<br><b>{html.escape(str(c))}</b>" for c in self.conflicts]
        rows += [f"<br><i>{html.escape(n)}</i>" for n in self.notes]
        return "<p>" + "".join(rows) + "</p>"


# A host file as given to effective_value: a path to read, an already-parsed document
# (e.g. the ``.data`` of a ConfigEditor, or a ConfigMap's parsed system-probe.yaml), or None
# for "absent".
FileSource = str | os.PathLike[str] | Mapping[str, Any] | None


def load_yaml_document(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Read a YAML file with a plain (non round-trip) loader, for reading values.

    This is deliberately independent of :class:`~wpprotect.ConfigEditor` so that a plan's
    ``verify()`` checks the written bytes with a different parser than the one that wrote them.

    :returns: the root mapping (``{}`` for an empty or all-comment file), or ``None`` when the
        file does not exist.
    :raises ConfigFileError: not a regular file, unreadable, or too large.
    :raises ConfigParseError: not YAML.
    :raises ConfigStructureError: the root is not a mapping.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigFileError(f"cannot stat: {exc.strerror}", path=p) from exc
    if not stat.S_ISREG(st.st_mode):
        raise ConfigFileError("not a regular file", path=p)
    if st.st_size > _MAX_FILE_BYTES:
        raise ConfigFileError(f"too large for a config file ({st.st_size} bytes)", path=p)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigFileError(f"cannot read: {exc.strerror}", path=p) from exc
    doc: dict[str, Any] = parse_yaml_bytes(data, path=p)
    return doc


#: How many nodes a parsed document may stand for once its aliases are expanded.
MAX_ALIAS_EXPANSION = 100_000
#: How deeply a parsed document's mappings and lists may nest.
MAX_DEPTH = 100


def check_nodes(
    root: object,
    *,
    path: str | os.PathLike[str] | None = None,
    max_nodes: int = MAX_ALIAS_EXPANSION,
    max_depth: int = MAX_DEPTH,
) -> int:
    """Refuse a parsed document whose aliases expand it past ``max_nodes`` nodes ("billion
    laughs"), that contains itself, or that nests deeper than ``max_depth``.

    Each distinct node is visited once (an aliased node's expanded size is counted once and
    reused), so this takes time linear in the document's text, however far it would expand.

    :returns: the number of nodes the document stands for.
    :raises ConfigExpansionError: past the node limit, or a node containing itself.
    :raises ConfigParseError: nested too deeply.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[object, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, done = stack.pop()
        if isinstance(node, Mapping):
            children = [*node.keys(), *node.values()]
        elif isinstance(node, list):
            children = list(node)
        else:
            continue
        key = id(node)
        if done:
            active.discard(key)
            sizes[key] = 1 + sum(sizes.get(id(c), 1) for c in children)
            if sizes[key] > max_nodes:
                raise ConfigExpansionError(
                    f"the document's aliases expand it past {max_nodes:,} nodes", path=path
                )
            continue
        if key in sizes:
            continue
        if key in active:
            raise ConfigExpansionError("an alias refers to a node that contains it", path=path)
        if depth > max_depth:
            raise ConfigParseError(f"nested deeper than {max_depth} levels", path=path)
        active.add(key)
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in children if isinstance(c, Mapping | list))
    return sizes.get(id(root), 1)


def parse_yaml_bytes(data: bytes | str, *, path: str | Path | None = None) -> Any:
    """Parse one YAML document with ruamel's safe loader; ``{}`` when it is empty.

    :raises ConfigParseError: not UTF-8 or not YAML (the message keeps no file content).
    :raises ConfigStructureError: the root is not a mapping.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise ConfigParseError("not UTF-8 text", path=path) from exc
    loader = YAML(typ="safe", pure=True)
    # The error is raised outside the `except` block: no __cause__ or __context__ holds the
    # parser's message, which quotes the offending line (it may hold a secret).
    error: ConfigParseError | None = None
    try:
        doc = loader.load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else int(mark.line) + 1
        problem = redact_text(str(getattr(exc, "problem", None) or type(exc).__name__))
        if type(exc).__name__ == "DuplicateKeyError":  # its text quotes both values
            problem = "duplicate key"
        error = ConfigParseError(f"not valid YAML: {problem}", path=path, line=line)
    except RecursionError:
        error = ConfigParseError(f"nested deeper than {MAX_DEPTH} levels", path=path)
    if error is not None:
        raise error
    check_nodes(doc, path=path)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigStructureError(
            f"the document's root is a {type(doc).__name__}, not a mapping", path=path
        )
    return doc


def dotted_get(doc: Mapping[str, Any] | None, dotted: str) -> Any:
    """The value at ``a.b.c`` in nested mappings, or ``None`` when any part is absent.

    A path through a scalar or a list also gives ``None`` (the agent would not find it either).
    """
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _resolve(
    setting: Setting,
    doc: Mapping[str, Any] | None,
    source: str,
    env: Mapping[str, str],
    *,
    fleet: Mapping[str, Any] | None = None,
    fleet_source: str = "",
    version: VersionLike | None = None,
) -> EffectiveValue:
    """Apply the agent's precedence (at ``version``, when known) to one file (already parsed)
    plus the environment, and the fleet policy file merged on top of both when there is one."""
    # Walk Setting.precedence (the getter order of pkg/security/probe/config/config.go, then
    # viper's env-over-file rule for the key the env vars are bound to); the first hit wins.
    # A fleet policy value of a key beats the file's and the env vars' values of that same key
    # (the config sources rank file < env < fleet-policies:
    # docs/reference/agent-cli.md#cli-reenable).
    hits: list[tuple[str, str, object, bool]] = []  # (source, key, raw, from_env)
    fleet_bound = dotted_get(fleet, setting.env_key)
    for kind, name in setting.precedence_for(version):
        if kind == "env":
            if fleet_bound is not None:
                hits.append((fleet_source, setting.env_key, fleet_bound, False))
                fleet_bound = None  # once, ahead of every env var
            raw_env = env.get(name)
            # viper ignores an env var set to the empty string (AllowEmptyEnv is off).
            if raw_env is not None and raw_env != "":
                hits.append((f"env {name}", name, raw_env, True))
        else:
            from_fleet = dotted_get(fleet, name)
            if from_fleet is not None and not any(
                h[0] == fleet_source and h[1] == name for h in hits
            ):
                hits.append((fleet_source, name, from_fleet, False))
            raw = dotted_get(doc, name)
            # a key present with no value (``key:``) is null, which the agent treats as unset
            if raw is not None:
                hits.append((source, name, raw, False))
    notes: list[str] = []
    legacy_order = version is not None and setting.precedence_for(version) != setting.precedence
    if legacy_order and version is not None:
        notes.append(
            f"agent {_version_text(version)}: {setting.write_env} beats the YAML and "
            "event_monitoring_config.* is not read (docs/reference/agent-cli.md#cli-old-precedence)"
        )
    if not hits:
        if doc is None:
            notes.append(f"{source} not found: the agent's default applies")
        default = setting.default_for(version)
        if default != setting.default and version is not None:
            notes.append(
                f"agent {_version_text(version)} defaults to {default}, "
                f"not {setting.default} (docs/reference/agent-cli.md#cli-cilium-race)"
            )
        return EffectiveValue(setting, default, "default", notes=notes)
    src, key, raw, from_env = hits[0]
    value, note = parse_agent_value(setting, raw, from_env=from_env)
    if note:
        notes.append(f"{key}: {note}")
    if fleet_source and src == fleet_source:
        notes.append(
            f"set by the fleet policy layer ({src.removeprefix(FLEET_POLICY_PREFIX)}), merged on "
            "top of system-probe.yaml and the env vars: a local change does not override it"
        )
    if not from_env and key != setting.env_key and not legacy_order:
        new_key = setting.env_key
        notes.append(
            f"{key} is deprecated (the agent logs 'please set {new_key} instead') but it takes "
            "precedence over the env vars and the new key"
        )
    shadowed = [
        ShadowedValue(s, k, r, parse_agent_value(setting, r, from_env=fe)[0], from_env=fe)
        for s, k, r, fe in hits[1:]
    ]
    return EffectiveValue(setting, value, src, key, shadowed=shadowed, notes=notes)


def _version_text(version: VersionLike) -> str:
    return ".".join(str(p) for p in as_tuple(version))


def fleet_policy_path(
    system_probe: Mapping[str, Any] | None, env: Mapping[str, str] | None = None
) -> Path | None:
    """The fleet policy file system-probe merges on top of its own config, if any.

    ``fleet_policies_dir`` comes from ``DD_FLEET_POLICIES_DIR`` (when set and not empty), else
    from ``system-probe.yaml``; the file is ``<fleet_policies_dir>/system-probe.yaml``
    (docs/reference/agent-cli.md#cli-reenable).

    :param system_probe: the parsed ``system-probe.yaml`` (``None`` when absent).
    :param env: system-probe's environment, if known.
    :returns: the path, or ``None`` when no fleet policy directory is configured.
    """
    raw: object = (env or {}).get(_FLEET_DIR_ENV) or dotted_get(system_probe, _FLEET_DIR_KEY)
    if not isinstance(raw, str) or not raw.strip():
        return None
    return Path(raw.strip()) / SYSTEM_PROBE_YAML


def _load_sources(
    config_dir: str | os.PathLike[str] | None,
    files: Mapping[str, FileSource] | None,
    needed: Iterable[str],
    env: Mapping[str, str] | None = None,
) -> dict[str, tuple[Mapping[str, Any] | None, str]]:
    """``{file name: (parsed document or None, source label)}`` for the files ``needed``, plus
    :data:`FLEET_POLICY_FILE` when system-probe.yaml names a fleet policy directory (read from
    this machine only when system-probe.yaml was read from ``config_dir``; with ``files``, only
    when given there)."""
    out: dict[str, tuple[Mapping[str, Any] | None, str]] = {}
    base = (
        Path(config_dir)
        if config_dir is not None
        else (DEFAULT_CONFIG_DIR if files is None else None)
    )
    for name in needed:
        if files is not None and name in files:
            given = files[name]
            if given is None:
                out[name] = (None, name)
            elif isinstance(given, Mapping):
                out[name] = (given, name)
            else:
                out[name] = (load_yaml_document(given), str(given))
        elif base is not None:
            path = base / name
            out[name] = (load_yaml_document(path), str(path))
        else:
            out[name] = (None, name)
    fleet: FileSource = None
    label = ""
    if files is not None and FLEET_POLICY_FILE in files:
        fleet = files[FLEET_POLICY_FILE]
        label = FLEET_POLICY_PREFIX + (
            str(fleet)
            if fleet is not None and not isinstance(fleet, Mapping)
            else "system-probe.yaml"
        )
    elif (
        SYSTEM_PROBE_YAML in out and base is not None and not (files and SYSTEM_PROBE_YAML in files)
    ):
        fleet_path = fleet_policy_path(out[SYSTEM_PROBE_YAML][0], env)
        if fleet_path is not None:
            fleet, label = fleet_path, FLEET_POLICY_PREFIX + str(fleet_path)
    if fleet is not None:
        doc = fleet if isinstance(fleet, Mapping) else load_yaml_document(fleet)
        if doc is not None:
            out[FLEET_POLICY_FILE] = (doc, label)
    return out


def _effective(
    setting: Setting,
    sources: Mapping[str, tuple[Mapping[str, Any] | None, str]],
    env: Mapping[str, str],
    version: VersionLike | None = None,
) -> EffectiveValue:
    primary = setting.files[0]
    doc, label = sources[primary]
    fleet, fleet_label = (
        sources.get(FLEET_POLICY_FILE, (None, "")) if primary == SYSTEM_PROBE_YAML else (None, "")
    )
    result = _resolve(
        setting, doc, label, env, fleet=fleet, fleet_source=fleet_label, version=version
    )
    if setting is not CWS_ENABLED or SECURITY_AGENT_YAML not in sources:
        return result
    # On a host both system-probe (which runs the CWS module) and security-agent read
    # runtime_security_config.enabled; the docs ask for it in both files. Report
    # system-probe's view and say when security-agent's differs.
    sa_doc, sa_label = sources[SECURITY_AGENT_YAML]
    if sa_doc is None:
        return result
    sa = _resolve(setting, sa_doc, sa_label, env, version=version)
    if sa.value == result.value:
        return result
    conflict = SettingConflict(
        SECURITY_AGENT_YAML, sa.value, sa.source, SYSTEM_PROBE_YAML, result.value
    )
    return attrs.evolve(result, conflicts=(*result.conflicts, conflict))


def effective_value(
    setting: Setting,
    *,
    config_dir: str | os.PathLike[str] | None = None,
    files: Mapping[str, FileSource] | None = None,
    env: Mapping[str, str] | None = None,
    version: VersionLike | None = None,
) -> EffectiveValue:
    """The value the agent uses for ``setting``, following the agent's own reading order.

    For system-probe settings the file is ``system-probe.yaml``; the deprecated
    ``runtime_security_config.network.*`` key wins over env vars and over
    ``event_monitoring_config.network.*`` (see :attr:`Setting.precedence`); an env var beats
    the YAML of the key it is bound to; then the default. For :data:`CWS_ENABLED` the value is
    system-probe's, and :attr:`EffectiveValue.conflicts` says when ``security-agent.yaml``
    disagrees.

    :param setting: e.g. :data:`CLASSIFIER_PRIORITY`.
    :param config_dir: the host config directory; ``/etc/datadog-agent`` when neither it nor
        ``files`` is given. Missing files are fine (defaults apply).
    :param files: ``{"system-probe.yaml": path | parsed mapping | None, ...}``: read these
        instead (the rest come from ``config_dir`` if given, else count as absent). The key
        :data:`FLEET_POLICY_FILE` gives the fleet policy layer; without it, the file that
        ``fleet_policies_dir`` (or ``DD_FLEET_POLICIES_DIR``) names is read when system-probe.yaml
        comes from ``config_dir``, and its values win over the file's and the env vars'
        (the source is then ``fleet-policy <path>``).
    :param env: the agent process's environment (a container's env, a unit's
        ``Environment=``); ``None`` means no env var is set. wpprotect never reads its own
        ``os.environ`` here: it is not the agent's.
    :param version: the agent's version when known (an ``AgentVersion`` or a
        ``(major, minor, patch)`` tuple): agents of about 7.36 to 7.43 let the env var beat the
        YAML for ``runtime_security_config.network.*``, and 7.36 to 7.39.1 default the
        classifier priority to 1 (:meth:`Setting.precedence_for`, :meth:`Setting.default_for`).
        ``None``: today's order and defaults.
    :returns: an :class:`EffectiveValue`.
    :raises ConfigError: a file exists but cannot be read or parsed.
    """
    needed = (*setting.files, *((SECURITY_AGENT_YAML,) if setting is CWS_ENABLED else ()))
    sources = _load_sources(config_dir, files, dict.fromkeys(needed), env)
    return _effective(setting, sources, env or {}, version)


def effective_settings(
    *,
    config_dir: str | os.PathLike[str] | None = None,
    files: Mapping[str, FileSource] | None = None,
    env: Mapping[str, str] | None = None,
    version: VersionLike | None = None,
) -> dict[str, EffectiveValue]:
    """:func:`effective_value` for every setting in :data:`SETTINGS`, each file read once.

    :param version: the agent's version when known (see :func:`effective_value`).
    :returns: ``{setting name: EffectiveValue}``, in :data:`SETTINGS` order.
    :raises ConfigError: a file exists but cannot be read or parsed.
    """
    sources = _load_sources(config_dir, files, HOST_FILES, env)
    return {s.name: _effective(s, sources, env or {}, version) for s in SETTINGS}
