"""Pure edit functions: put :class:`~wpprotect.config.Setting` values into each config surface.

Every ``edit_*`` function changes a loaded document in place and returns whether anything
changed. A document is either

- a plain nested ``MutableMapping`` (a ``dict`` from ``json.loads``, a Kubernetes object from the
  API server, or a ruamel ``CommentedMap``), or
- a round-trip editor with ``.data`` (the root mapping) and ``.set(dotted, value)`` (which creates
  missing parents), i.e. :class:`~wpprotect.ConfigEditor`. Scalars then go through ``.set`` so a
  commented-out default in the file is activated in place rather than appended at the end.

Lists are edited in place (``MutableSequence``): an existing env entry is updated, never
duplicated, and a new one is shaped like its siblings. Env values are always strings.

The ``read_*`` functions go the other way: the value each setting has on a surface, read with no
knowledge of how it was written, which is what a plan's ``verify()`` checks.
"""

from __future__ import annotations

from collections.abc import (
    Iterable,
    Mapping,
    MutableMapping,
    MutableSequence,
    Sequence,
)
from typing import Any, Protocol, runtime_checkable

from wpprotect.config._settings import (
    CWS_ENABLED,
    HOST_FILES,
    SECURITY_AGENT,
    SYSTEM_PROBE,
    Setting,
    SettingValue,
    _resolve,
    dotted_get,
    parse_agent_value,
    validate_settings,
)
from wpprotect.errors import ConfigStructureError, InvalidArgumentError

__all__ = [
    "DDA_OVERRIDE_CONTAINERS",
    "HELM_CONTAINER_KEYS",
    "EditableDocument",
    "edit_daemonset",
    "edit_datadogagent",
    "edit_helm_values",
    "edit_host_file",
    "env_changes",
    "read_daemonset",
    "read_datadogagent",
    "read_helm_values",
    "read_host_file",
]

#: Component -> the key under the Helm chart's ``agents.containers`` (values.yaml L2550-2623).
HELM_CONTAINER_KEYS: Mapping[str, str] = {
    SYSTEM_PROBE: "systemProbe",
    SECURITY_AGENT: "securityAgent",
}
#: Where a DatadogAgent takes per-container env overrides (``DatadogAgentGenericContainer.Env``);
#: a same-name override replaces the feature's value (``OverrideCurrentEnvVarMergeFunction``).
DDA_OVERRIDE_CONTAINERS = "spec.override.nodeAgent.containers"
# Env layers of a DatadogAgent that also reach the node agent's containers; the container-level
# override wins over them ("Priority is Container > Component"), so they are only kept
# consistent, never added to.
_DDA_ENV_LAYERS = ("spec.override.nodeAgent.env", "spec.global.env")


@runtime_checkable
class EditableDocument(Protocol):
    """A round-trip document editor, as :class:`~wpprotect.ConfigEditor` is."""

    @property
    def data(self) -> Any:
        """The root mapping, edited in place."""
        ...

    def set(self, dotted: str, value: Any) -> Any:
        """Set ``a.b.c`` to ``value``, creating missing parents."""
        ...


Document = MutableMapping[str, Any] | EditableDocument


# --- document access -------------------------------------------------------------------------


class _Doc:
    """Uniform access to either kind of document.

    :attr:`root` is fetched afresh on every use: a round-trip editor may re-parse its text when
    :meth:`set` activates a commented-out default, which replaces its ``.data``.
    """

    def __init__(self, doc: Document) -> None:
        self._doc = doc

    @property
    def root(self) -> MutableMapping[str, Any]:
        if isinstance(self._doc, MutableMapping):
            return self._doc
        data = self._doc.data
        if not isinstance(data, MutableMapping):
            raise ConfigStructureError(
                f"the document's root is a {type(data).__name__}, not a mapping"
            )
        return data

    def set(self, dotted: str, value: Any) -> None:
        if isinstance(self._doc, MutableMapping):
            _dset(self._doc, dotted, value)
        else:
            self._doc.set(dotted, value)


def _dset(root: MutableMapping[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested mappings, creating missing (or null) parents like their parent."""
    parts = dotted.split(".")
    node: MutableMapping[str, Any] = root
    walked: list[str] = []
    for part in parts[:-1]:
        walked.append(part)
        child = node.get(part)
        if child is None:
            child = _new_like(node)
            node[part] = child
        elif not isinstance(child, MutableMapping):
            raise ConfigStructureError(
                f"cannot set {dotted}: {'.'.join(walked)} is a {type(child).__name__}, "
                "not a mapping",
                key=dotted,
            )
        node = child
    node[parts[-1]] = value


def _new_like(mapping: Mapping[str, Any]) -> MutableMapping[str, Any]:
    """An empty mapping of the same type (a CommentedMap next to CommentedMaps), else a dict."""
    try:
        new = type(mapping)()
    except TypeError:
        return {}
    return new if isinstance(new, MutableMapping) else {}


def _same(current: object, value: SettingValue | str) -> bool:
    """Equal *and* of the same kind: ``0`` is not ``false``, ``"4"`` is not ``4``."""
    if isinstance(value, bool):
        return isinstance(current, bool) and current == value
    if isinstance(value, int):
        return isinstance(current, int) and not isinstance(current, bool) and current == value
    return isinstance(current, str) and current == value


def _set_scalar(d: _Doc, dotted: str, value: Any) -> bool:
    if _same(dotted_get(d.root, dotted), value):
        return False
    d.set(dotted, value)
    return True


def _as_str(like: object, value: str) -> str:
    """``value`` as the same str subclass as ``like`` (keeps a round-trip quoting style)."""
    if isinstance(like, str) and type(like) is not str:
        try:
            return type(like)(value)
        except TypeError:
            return value
    return value


# --- env lists -------------------------------------------------------------------------------


def _env_list(
    holder: MutableMapping[str, Any], field: str, where: str
) -> MutableSequence[Any] | None:
    env = holder.get(field)
    if env is None:
        return None
    if not isinstance(env, MutableSequence) or isinstance(env, str):
        raise ConfigStructureError(
            f"{where}.{field} is a {type(env).__name__}, not a list of env entries", key=where
        )
    return env


def _set_entry(entry: MutableMapping[str, Any], value: str) -> bool:
    if "valueFrom" in entry:
        del entry["valueFrom"]
        entry["value"] = value
        return True
    old = entry.get("value")
    if isinstance(old, str) and old == value:
        return False
    entry["value"] = _as_str(old, value) if isinstance(old, str) else value
    return True


def _new_entry(env: MutableSequence[Any], name: str, value: str) -> MutableMapping[str, Any]:
    """A ``{name, value}`` entry shaped like the last mapping in ``env``."""
    siblings = [e for e in env if isinstance(e, MutableMapping)]
    if not siblings:
        return {"name": name, "value": value}
    sib = siblings[-1]
    entry = _new_like(sib)
    entry["name"] = _as_str(sib.get("name"), name)
    # a value that must be quoted ("4", "false") takes the quoting style its siblings use
    quoted = [e.get("value") for e in siblings if type(e.get("value")) not in (str, type(None))]
    entry["value"] = _as_str(quoted[-1] if quoted else sib.get("value"), value)
    fa = getattr(sib, "fa", None)  # ruamel format attribute: keep a flow-style sibling's style
    if fa is not None and fa.flow_style():
        entry.fa.set_flow_style()  # type: ignore[attr-defined]
    return entry


def _upsert_env(
    env: MutableSequence[Any], names: Iterable[str], write_name: str, value: str, *, add: bool
) -> bool:
    """Update every entry named in ``names``; append ``write_name`` if none and ``add``."""
    names = set(names)
    changed = found = False
    for entry in env:
        if isinstance(entry, MutableMapping) and entry.get("name") in names:
            found = True
            changed |= _set_entry(entry, value)
    if found or not add:
        return changed
    was_empty = len(env) == 0
    env.append(_new_entry(env, write_name, value))
    fa = getattr(env, "fa", None)
    if was_empty and fa is not None:
        fa.set_block_style()  # `env: []` becomes a block list, like every other list
    return True


def _container_env(
    container: MutableMapping[str, Any],
    d: _Doc | None,
    path: str,
    setting: Setting,
    value: str,
    *,
    add: bool,
) -> bool:
    """Set the setting's env var in ``container['env']`` (``path`` names it in errors)."""
    env = _env_list(container, "env", path)
    if env is not None and (len(env) > 0 or d is None or not add):
        return _upsert_env(env, setting.env_vars, setting.write_env, value, add=add)
    if not add:
        return False
    entry = {"name": setting.write_env, "value": value}
    if d is not None:
        d.set(f"{path}.env", [entry])
    else:
        container["env"] = [entry]
    return True


# --- host files ------------------------------------------------------------------------------


def edit_host_file(doc: Document, file_kind: str, settings: Mapping[Setting, object]) -> bool:
    """Write settings into a host ``system-probe.yaml`` or ``security-agent.yaml``.

    Every YAML spelling of a setting already in the file (``runtime_security_config.*`` and
    its ``event_monitoring_config.*`` twin) is updated, so no stale value is left to win;
    when none is present, :attr:`Setting.write_key` is set (the key the docs name, which is
    also the one the agent reads first).

    :param doc: the parsed file (mapping or round-trip editor), edited in place.
    :param file_kind: ``"system-probe.yaml"`` or ``"security-agent.yaml"``.
    :param settings: ``{Setting: value}``; each must live in ``file_kind``.
    :returns: True if anything changed.
    :raises InvalidArgumentError: unknown file kind, or a setting that the file does not carry.
    :raises ConfigStructureError: a key path runs through a scalar or a list.
    """
    if file_kind not in HOST_FILES:
        raise InvalidArgumentError(
            f"unknown host file {file_kind!r}; valid: {', '.join(HOST_FILES)}"
        )
    d = _Doc(doc)
    changed = False
    for setting, value in validate_settings(settings).items():
        if file_kind not in setting.files:
            raise InvalidArgumentError(
                f"{setting.name} is read from {' and '.join(setting.files)}, not {file_kind}",
                key=setting.write_key,
            )
        present = [k for k in setting.yaml_keys if dotted_get(d.root, k) is not None]
        for key in present or [setting.write_key]:
            changed |= _set_scalar(d, key, value)
    return changed


def read_host_file(doc: Mapping[str, Any] | None, file_kind: str) -> dict[Setting, SettingValue]:
    """The value each setting carried by ``file_kind`` has in ``doc`` (no env vars).

    :param doc: the parsed file, or ``None`` if it does not exist.
    :returns: ``{Setting: value}`` following the agent's reading order (defaults included).
    """
    from wpprotect.config._settings import SETTINGS

    return {s: _resolve(s, doc, file_kind, {}).value for s in SETTINGS if file_kind in s.files}


# --- Helm values -----------------------------------------------------------------------------


def _helm_env(
    d: _Doc,
    component: str,
    setting: Setting,
    value: str,
    *,
    add: bool,
) -> bool:
    key = HELM_CONTAINER_KEYS[component]
    path = f"agents.containers.{key}"
    container = dotted_get(d.root, path)
    if container is None:
        if not add:
            return False
        d.set(f"{path}.env", [{"name": setting.write_env, "value": value}])
        return True
    if not isinstance(container, MutableMapping):
        raise ConfigStructureError(
            f"{path} is a {type(container).__name__}, not a mapping", key=path
        )
    changed = in_dict = False
    env_dict = container.get("envDict")
    if isinstance(env_dict, MutableMapping):
        for name in setting.env_vars:
            if name in env_dict:
                in_dict = True
                if not _same(env_dict[name], value):
                    env_dict[name] = _as_str(env_dict[name], value)
                    changed = True
    # an envDict entry is rendered after the env list, so it already carries the value
    return changed | _container_env(container, d, path, setting, value, add=add and not in_dict)


def edit_helm_values(doc: Document, settings: Mapping[Setting, object]) -> bool:
    """Write settings into a Helm values file of the ``datadog`` chart.

    Settings with a values key (:attr:`Setting.helm_path`) set it; env entries a user already
    added for them under ``agents.containers.{systemProbe,securityAgent}.env``/``envDict`` are
    updated to match. The classifier priority has no values key
    (docs/reference/deployments.md#deploy-helm-priority): it goes
    into ``agents.containers.systemProbe.env`` as
    ``{name: DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY, value: "<n>"}``, updating
    an existing entry (or ``envDict`` key) instead of adding one.

    :param doc: the parsed values file (mapping or round-trip editor), edited in place.
    :param settings: ``{Setting: value}``.
    :returns: True if anything changed.
    :raises ConfigStructureError: a key path runs through a scalar or a list.
    """
    d = _Doc(doc)
    changed = False
    for setting, value in validate_settings(settings).items():
        text = setting.env_value(value)
        if setting.helm_path is not None:
            changed |= _set_scalar(d, setting.helm_path, value)
            for component in setting.components:
                changed |= _helm_env(d, component, setting, text, add=False)
        else:
            component = next(
                c for c, k in HELM_CONTAINER_KEYS.items() if k == setting.helm_env_container
            )
            changed |= _helm_env(d, component, setting, text, add=True)
    return changed


def _env_value(env: object, setting: Setting) -> tuple[bool, SettingValue | None]:
    """(found, value) for the setting's env vars in a k8s env list, in viper's order."""
    if not isinstance(env, Sequence) or isinstance(env, str):
        return False, None
    by_name: dict[str, object] = {}
    for entry in env:
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            # Kubernetes: with duplicate names the last entry wins.
            by_name[entry["name"]] = entry.get("value") if "valueFrom" not in entry else ...
    for name in setting.env_vars:
        if name in by_name:
            raw = by_name[name]
            if raw is ...:
                return True, None  # valueFrom: not knowable from the manifest
            if raw is None or raw == "":
                continue
            return True, parse_agent_value(setting, str(raw), from_env=True)[0]
    return False, None


def read_helm_values(doc: Mapping[str, Any]) -> dict[Setting, SettingValue | None]:
    """The value each setting gets from a Helm values file (chart defaults when unset).

    ``None`` means the value comes from somewhere the file does not show (``valueFrom``).
    """
    from wpprotect.config._settings import SETTINGS

    chart_defaults: dict[str, SettingValue] = {
        "datadog.securityAgent.runtime.enabled": False,
        "datadog.securityAgent.runtime.network.enabled": True,
    }
    out: dict[Setting, SettingValue | None] = {}
    for setting in SETTINGS:
        if setting.helm_path is not None:
            raw = dotted_get(doc, setting.helm_path)
            out[setting] = (
                chart_defaults[setting.helm_path]
                if raw is None
                else parse_agent_value(setting, raw)[0]
            )
            continue
        container = dotted_get(doc, f"agents.containers.{setting.helm_env_container}")
        value: SettingValue | None = setting.default
        if isinstance(container, Mapping):
            found, v = _env_value(container.get("env"), setting)
            if found:
                value = v
            env_dict = container.get("envDict")
            if isinstance(env_dict, Mapping):  # rendered after env: a duplicate wins
                for name in setting.env_vars:
                    if env_dict.get(name) not in (None, ""):
                        value = parse_agent_value(setting, str(env_dict[name]), from_env=True)[0]
                        break
        out[setting] = value
    return out


# --- DatadogAgent (Operator) -----------------------------------------------------------------


def _check_kind(root: Mapping[str, Any], kind: str) -> None:
    seen = root.get("kind")
    if seen != kind:
        raise ConfigStructureError(f"expected a {kind} object, got kind {seen!r}", key="kind")


def edit_datadogagent(doc: Document, settings: Mapping[Setting, object]) -> bool:
    """Write settings into a ``DatadogAgent`` (``datadoghq.com/v2alpha1``) object.

    - :attr:`Setting.dda_path` (``spec.features.cws.enabled``,
      ``spec.features.cws.network.enabled``) is set when the CRD has a field.
    - The Operator only ever writes ``"true"`` env vars (``feature/cws/feature.go``), so turning
      network detection off also needs a container override,
      ``spec.override.nodeAgent.containers.system-probe.env`` with
      ``DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED: "false"``; the classifier priority has no
      field at all and is only that override.
    - Existing entries for the same variables (container overrides, ``nodeAgent.env``,
      ``global.env``) are updated so none contradicts the new value.

    :param doc: the object (mapping or round-trip editor), e.g. from the API server.
    :param settings: ``{Setting: value}``.
    :returns: True if anything changed.
    :raises ConfigStructureError: not a ``datadoghq.com/v2alpha1`` DatadogAgent, or a path runs
        through a scalar.
    """
    d = _Doc(doc)
    _check_kind(d.root, "DatadogAgent")
    api = d.root.get("apiVersion")
    if api is not None and api != "datadoghq.com/v2alpha1":
        # v1alpha1 (Operator < 1.0) has another schema (spec.agent.security.runtime...); the
        # fields written here exist only in v2alpha1 (api/datadoghq/v2alpha1).
        raise ConfigStructureError(
            f"DatadogAgent apiVersion {api!r} is not supported; convert it to "
            "datadoghq.com/v2alpha1 (Datadog Operator 1.0+)",
            key="apiVersion",
        )
    changed = False
    for setting, value in validate_settings(settings).items():
        text = setting.env_value(value)
        if setting.dda_path is not None:
            changed |= _set_scalar(d, setting.dda_path, value)
        add = setting.dda_override_env == "always" or (
            setting.dda_override_env == "when-false" and value is False
        )
        for component in setting.components:
            path = f"{DDA_OVERRIDE_CONTAINERS}.{component}"
            container = dotted_get(d.root, path)
            if isinstance(container, MutableMapping):
                changed |= _container_env(container, d, path, setting, text, add=add)
            elif container is not None:
                raise ConfigStructureError(
                    f"{path} is a {type(container).__name__}, not a mapping", key=path
                )
            elif add:
                d.set(f"{path}.env", [{"name": setting.write_env, "value": text}])
                changed = True
        for layer in _DDA_ENV_LAYERS:
            env = dotted_get(d.root, layer)
            if isinstance(env, MutableSequence) and not isinstance(env, str):
                changed |= _upsert_env(env, setting.env_vars, setting.write_env, text, add=False)
    return changed


def read_datadogagent(doc: Mapping[str, Any]) -> dict[Setting, SettingValue | None]:
    """The value each setting gets on system-probe from a DatadogAgent (defaults when unset).

    A container override env entry wins over the feature (the Operator's merge replaces a
    same-name variable); with no override, a CWS field gives its value and network detection
    stays on (the Operator writes no ``false`` env var, and the agent default is true).
    """
    from wpprotect.config._settings import SETTINGS

    out: dict[Setting, SettingValue | None] = {}
    for setting in SETTINGS:
        value: SettingValue | None = setting.default
        if setting.dda_path is not None:
            raw = dotted_get(doc, setting.dda_path)
            if raw is not None and (setting is CWS_ENABLED or raw is True):
                value = parse_agent_value(setting, raw)[0]
        for layer in reversed(_DDA_ENV_LAYERS):  # global, then nodeAgent: later wins
            found, v = _env_value(dotted_get(doc, layer), setting)
            if found:
                value = v
        found, v = _env_value(
            dotted_get(doc, f"{DDA_OVERRIDE_CONTAINERS}.{setting.components[0]}.env"), setting
        )
        if found:
            value = v
        out[setting] = value
    return out


# --- DaemonSet -------------------------------------------------------------------------------


def _containers(root: Mapping[str, Any]) -> MutableSequence[Any]:
    containers = dotted_get(root, "spec.template.spec.containers")
    if not isinstance(containers, MutableSequence) or isinstance(containers, str):
        raise ConfigStructureError(
            "the DaemonSet has no spec.template.spec.containers list",
            key="spec.template.spec.containers",
        )
    return containers


def _container_names(containers: Iterable[Any]) -> list[str]:
    return [str(c.get("name")) for c in containers if isinstance(c, Mapping)]


def edit_daemonset(doc: Document, settings: Mapping[Setting, object]) -> bool:
    """Write settings as env vars on a node-agent DaemonSet's containers.

    Each setting's variable is set on every container that reads it (both ``system-probe``
    and ``security-agent`` for :data:`CWS_ENABLED`; ``system-probe`` for network settings),
    updating an existing entry in place (a ``valueFrom`` is replaced by the value) and never
    adding a duplicate. Other containers that already carry the variable (the Operator also
    sets ``DD_RUNTIME_SECURITY_CONFIG_ENABLED`` on ``agent``) are updated too. Values are
    strings.

    :param doc: the DaemonSet (mapping or round-trip editor), e.g. from the API server.
    :param settings: ``{Setting: value}``.
    :returns: True if anything changed.
    :raises ConfigStructureError: not a DaemonSet, or none of the containers a setting needs
        is in it (the message lists the containers found).
    """
    root = _Doc(doc).root
    _check_kind(root, "DaemonSet")
    containers = _containers(root)
    by_name: dict[str, MutableMapping[str, Any]] = {
        str(c.get("name")): c for c in containers if isinstance(c, MutableMapping)
    }
    changed = False
    for setting, value in validate_settings(settings).items():
        text = setting.env_value(value)
        present = [c for c in setting.components if c in by_name]
        if not present:
            raise ConfigStructureError(
                f"no {' or '.join(setting.components)} container in this DaemonSet (containers: "
                f"{', '.join(_container_names(containers)) or 'none'})",
                key=setting.write_env,
            )
        for name, container in by_name.items():
            path = f"spec.template.spec.containers[{name}]"
            changed |= _container_env(
                container, None, path, setting, text, add=name in setting.components
            )
    return changed


def read_daemonset(doc: Mapping[str, Any]) -> dict[str, dict[Setting, SettingValue | None]]:
    """The value each setting gets from env on each container of a DaemonSet that reads it.

    :returns: ``{container name: {Setting: value}}``; a value is the agent default when no
        env var sets it, and ``None`` when it comes from a ``valueFrom``. Settings whose
        container is absent are left out.
    """
    from wpprotect.config._settings import SETTINGS

    out: dict[str, dict[Setting, SettingValue | None]] = {}
    for container in _containers(doc):
        if not isinstance(container, Mapping):
            continue
        name = str(container.get("name"))
        values: dict[Setting, SettingValue | None] = {}
        for setting in SETTINGS:
            if name not in setting.components:
                continue
            found, v = _env_value(container.get("env"), setting)
            values[setting] = v if found else setting.default
        if values:
            out[name] = values
    return out


# --- Docker ----------------------------------------------------------------------------------


def env_changes(
    settings: Mapping[Setting, object], current_env: Mapping[str, str] | None = None
) -> dict[str, dict[str, str]]:
    """The env vars each component needs, for a container where all components share one env.

    For every setting, each of its variables already in ``current_env`` is given the new value
    (viper takes the first one set, so a stale ``DD_EVENT_MONITORING_CONFIG_*`` would otherwise
    win); when none is, :attr:`Setting.write_env` is added.

    >>> from wpprotect.config import CWS_ENABLED
    >>> from wpprotect.config._surfaces import env_changes
    >>> env_changes({CWS_ENABLED: False})
    {'system-probe': {'DD_RUNTIME_SECURITY_CONFIG_ENABLED': 'false'}, \
'security-agent': {'DD_RUNTIME_SECURITY_CONFIG_ENABLED': 'false'}}

    :param settings: ``{Setting: value}``.
    :param current_env: the container's current environment, if known.
    :returns: ``{component: {name: value}}``; values are strings.
    """
    current = current_env or {}
    out: dict[str, dict[str, str]] = {}
    for setting, value in validate_settings(settings).items():
        names = [n for n in setting.env_vars if n in current] or [setting.write_env]
        for component in setting.components:
            target = out.setdefault(component, {})
            for name in names:
                target[name] = setting.env_value(value)
    return out
