"""Remote writes on a cluster as :class:`~wpprotect.Change` objects.

- :class:`DaemonSetEnvChange`: env vars on the agent DaemonSet's containers, written with a
  strategic merge patch (containers and env merged by ``name``) that carries
  ``metadata.resourceVersion`` as a precondition.
- :class:`DatadogAgentChange`: the ``DatadogAgent`` custom resource, for Operator-managed agents
  (the Operator would revert a DaemonSet patch), written with a JSON merge patch (custom
  resources take no strategic merge patch) with the same precondition.

Both re-read, recompute and re-patch when the object changed under them (HTTP 409), a bounded
number of times, then raise :class:`~wpprotect.RemoteConflictError`; a failed attempt changes
nothing because the precondition is checked by the API server. ``undo`` restores only what the
change wrote, against the live object, so other writers' edits are kept.
"""

from __future__ import annotations

import copy
import difflib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from wpprotect._redact import MASK, is_secret_key
from wpprotect.errors import PlanUndoError, PlanVerifyError, RemoteConflictError
from wpprotect.platforms._k8s_api import K8sAPI

__all__ = ["MAX_ATTEMPTS", "DaemonSetEnvChange", "DatadogAgentChange", "merge_diff"]

log = logging.getLogger(__name__)

#: Attempts (read, recompute, patch) before a persistent 409 becomes RemoteConflictError.
MAX_ATTEMPTS = 5
_SMP = "application/strategic-merge-patch+json"


def _containers(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [c for c in spec.get("containers") or [] if isinstance(c, dict)]


def _env_by_name(container: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(e.get("name")): e for e in container.get("env") or [] if isinstance(e, dict)}


def _show_env(entry: Mapping[str, Any]) -> str:
    name = str(entry.get("name"))
    if "valueFrom" in entry:
        ref = entry["valueFrom"] or {}
        source = next(iter(ref), "valueFrom") if isinstance(ref, dict) else "valueFrom"
        return f"{name} <from {source}>"
    value = str(entry.get("value", ""))
    return f"{name}={MASK if is_secret_key(name) else json.dumps(value)}"


def _env_text(obj: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for container in _containers(obj):
        lines.append(f"container {container.get('name')}:\n")
        lines.extend(
            f"  {_show_env(e)}\n" for e in container.get("env") or [] if isinstance(e, dict)
        )
    return lines


def _resource_version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _pause(attempt: int) -> None:
    time.sleep(0.02 * attempt)  # a short, growing pause lets the other writer finish


def daemonset_env_patch(live: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The strategic merge patch turning ``live``'s container env into ``desired``'s.

    Changed or added entries are sent whole, with ``null`` for fields they drop (a ``value``
    replacing a ``valueFrom``); removed entries get ``$patch: delete``. The live
    ``resourceVersion`` rides along as the precondition.
    """
    live_by_name = {str(c.get("name")): c for c in _containers(live)}
    patches: list[dict[str, Any]] = []
    for container in _containers(desired):
        name = str(container.get("name"))
        old = _env_by_name(live_by_name.get(name, {}))
        new = _env_by_name(container)
        entries: list[dict[str, Any]] = []
        for env_name, entry in new.items():
            if old.get(env_name) != entry:
                patch_entry = copy.deepcopy(entry)
                for key in old.get(env_name, {}):
                    patch_entry.setdefault(key, None)
                entries.append(patch_entry)
        entries.extend({"name": n, "$patch": "delete"} for n in old if n not in new)
        if entries:
            patches.append({"name": name, "env": entries})
    return {
        "metadata": {"resourceVersion": _resource_version(live)},
        "spec": {"template": {"spec": {"containers": patches}}},
    }


class DaemonSetEnvChange:
    """Set env vars on the agent DaemonSet's containers (see the module docstring).

    :param api: the cluster.
    :param namespace: the DaemonSet's namespace.
    :param name: the DaemonSet's name.
    :param settings: ``{Setting: value}`` as :func:`wpprotect.config.scope_settings` returns.
    """

    def __init__(self, api: K8sAPI, namespace: str, name: str, settings: Mapping[Any, Any]) -> None:
        from wpprotect.config._surfaces import edit_daemonset

        self._api = api
        self.namespace = namespace
        self.name = name
        self._settings = dict(settings)
        self._edit = edit_daemonset
        self._snapshot = api.read_daemonset(namespace, name)
        self._planned = self._desired(self._snapshot)
        self._before: dict[str, dict[str, dict[str, Any] | None]] | None = None

    @property
    def target(self) -> str:
        """``daemonset/<namespace>/<name>``."""
        return f"daemonset/{self.namespace}/{self.name}"

    @property
    def description(self) -> str:
        """Which variables, on which containers."""
        pairs = ", ".join(
            f"{s.write_env}={s.env_value(v)} on {'+'.join(s.components)}"
            for s, v in self._settings.items()
        )
        return f"set {pairs} in DaemonSet {self.namespace}/{self.name}"

    def _desired(self, live: Mapping[str, Any]) -> dict[str, Any]:
        desired = copy.deepcopy(dict(live))
        self._edit(desired, self._settings)
        return desired

    def diff(self) -> str:
        """Unified diff of the containers' env, secret values masked."""
        return "".join(
            difflib.unified_diff(
                _env_text(self._snapshot),
                _env_text(self._planned),
                f"{self.target} (resourceVersion {_resource_version(self._snapshot)})",
                f"{self.target} (planned)",
            )
        )

    def is_satisfied(self) -> bool:
        """True when the live DaemonSet already carries every value."""
        live = self._api.read_daemonset(self.namespace, self.name)
        return self._desired(live) == live

    def _patch_until(self, compute: Any, what: str) -> dict[str, Any] | None:
        """Read, compute the desired object, patch with the precondition; retry on 409."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            live = self._api.read_daemonset(self.namespace, self.name)
            desired = compute(live)
            if desired == live:
                return None
            patch = daemonset_env_patch(live, desired)
            try:
                self._api.patch_daemonset(self.namespace, self.name, patch, _SMP)
            except RemoteConflictError:
                log.info(
                    "%s: %s changed meanwhile (attempt %d), retrying", what, self.target, attempt
                )
                _pause(attempt)
                continue
            return live
        raise RemoteConflictError(
            f"cannot {what}: the DaemonSet kept changing (409 Conflict on {MAX_ATTEMPTS} "
            "attempts); nothing was changed",
            target=self.target,
        )

    def apply(self) -> None:
        """Patch the DaemonSet; remember the entries it replaced for :meth:`undo`.

        :raises RemoteConflictError: still conflicting after the retries (nothing changed).
        """
        live = self._patch_until(self._desired, "patch the env")
        if live is None:
            return
        after = self._desired(live)
        before: dict[str, dict[str, dict[str, Any] | None]] = {}
        live_by_name = {str(c.get("name")): c for c in _containers(live)}
        for container in _containers(after):
            cname = str(container.get("name"))
            old = _env_by_name(live_by_name.get(cname, {}))
            new = _env_by_name(container)
            touched = {n for n in new.keys() | old.keys() if new.get(n) != old.get(n)}
            if touched:
                before[cname] = {n: copy.deepcopy(old.get(n)) for n in touched}
        self._before = before

    def verify(self) -> None:
        """Re-read the DaemonSet.

        :raises PlanVerifyError: some variable does not have its planned value.
        """
        if not self.is_satisfied():
            raise PlanVerifyError(
                "the DaemonSet does not carry the planned env after the patch", target=self.target
            )

    def _restore(self, live: Mapping[str, Any]) -> dict[str, Any]:
        desired = copy.deepcopy(dict(live))
        for container in _containers(desired):
            wanted = (self._before or {}).get(str(container.get("name")))
            if not wanted:
                continue
            env = [e for e in container.get("env") or [] if isinstance(e, dict)]
            for name, entry in wanted.items():
                index = next((i for i, e in enumerate(env) if e.get("name") == name), None)
                if entry is None and index is not None:
                    del env[index]
                elif entry is not None and index is None:
                    env.append(copy.deepcopy(entry))
                elif entry is not None and index is not None:
                    env[index] = copy.deepcopy(entry)
            container["env"] = env
        return desired

    def undo(self) -> None:
        """Put back the entries :meth:`apply` replaced (with the precondition, retrying).

        :raises PlanUndoError: nothing was applied.
        :raises RemoteConflictError: still conflicting after the retries.
        """
        if self._before is None:
            raise PlanUndoError("nothing to undo: the change was not applied", target=self.target)
        self._patch_until(self._restore, "restore the env")
        self._before = None


def merge_diff(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch turning ``old`` into ``new`` (lists are replaced whole)."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return copy.deepcopy(new)
    out: dict[str, Any] = {}
    for key in [*old, *(k for k in new if k not in old)]:
        if key not in new:
            out[key] = None
        elif key not in old:
            out[key] = copy.deepcopy(new[key])
        elif old[key] != new[key]:
            out[key] = merge_diff(old[key], new[key])
    return out


def _changed_paths(old: Any, new: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The topmost paths where ``new`` differs from ``old`` (an added subtree is one path)."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [] if old == new else [prefix]
    paths: list[tuple[str, ...]] = []
    for key in [*old, *(k for k in new if k not in old)]:
        if key not in old or key not in new:
            paths.append((*prefix, key))
        elif old[key] != new[key]:
            paths.extend(_changed_paths(old[key], new[key], (*prefix, key)))
    return paths


_MISSING = object()


def _get_path(doc: Any, path: tuple[str, ...]) -> Any:
    node = doc
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _set_path(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = doc
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    if value is _MISSING:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = _copy(value)


def _copy(value: Any) -> Any:
    return value if value is _MISSING else copy.deepcopy(value)


def _redacted(value: Any, key: str = "") -> Any:
    """A copy with secret-named keys and env entries masked (for diffs)."""
    if isinstance(value, dict):
        if isinstance(value.get("name"), str) and "value" in value and is_secret_key(value["name"]):
            return {**{k: _redacted(v, k) for k, v in value.items()}, "value": MASK}
        return {k: _redacted(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    if isinstance(value, str) and key and is_secret_key(key):
        return MASK
    return value


class DatadogAgentChange:
    """Write settings into a ``DatadogAgent`` (the Operator renders the DaemonSet from it).

    :param api: the cluster.
    :param namespace: the DatadogAgent's namespace.
    :param name: its name.
    :param settings: ``{Setting: value}``.
    """

    def __init__(self, api: K8sAPI, namespace: str, name: str, settings: Mapping[Any, Any]) -> None:
        from wpprotect.config._surfaces import edit_datadogagent

        self._api = api
        self.namespace = namespace
        self.name = name
        self._settings = dict(settings)
        self._edit = edit_datadogagent
        self._snapshot = api.read_datadogagent(namespace, name)
        self._planned = self._desired(self._snapshot)
        self._paths: list[tuple[str, ...]] | None = None
        self._before: Any = None

    @property
    def target(self) -> str:
        """``datadogagent/<namespace>/<name>``."""
        return f"datadogagent/{self.namespace}/{self.name}"

    @property
    def description(self) -> str:
        """Which fields change."""
        paths = _changed_paths(self._snapshot, self._planned)
        fields = ", ".join(".".join(p) for p in paths if p) or "nothing"
        return f"set {fields} in DatadogAgent {self.namespace}/{self.name}"

    def _desired(self, live: Mapping[str, Any]) -> dict[str, Any]:
        desired = copy.deepcopy(dict(live))
        self._edit(desired, self._settings)
        return desired

    def diff(self) -> str:
        """Unified diff of ``spec`` as JSON, secret values masked."""

        def text(obj: Mapping[str, Any]) -> list[str]:
            return [
                line + "\n"
                for line in json.dumps(_redacted(obj.get("spec") or {}), indent=2).splitlines()
            ]

        return "".join(
            difflib.unified_diff(
                text(self._snapshot),
                text(self._planned),
                f"{self.target} spec (resourceVersion {_resource_version(self._snapshot)})",
                f"{self.target} spec (planned)",
            )
        )

    def is_satisfied(self) -> bool:
        """True when the live object already carries every value."""
        live = self._api.read_datadogagent(self.namespace, self.name)
        return self._desired(live) == live

    def _patch_until(self, compute: Any, what: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            live = self._api.read_datadogagent(self.namespace, self.name)
            desired = compute(live)
            if desired == live:
                return None
            patch = merge_diff(live, desired)
            patch.setdefault("metadata", {})["resourceVersion"] = _resource_version(live)
            try:
                self._api.patch_datadogagent(self.namespace, self.name, patch)
            except RemoteConflictError:
                log.info(
                    "%s: %s changed meanwhile (attempt %d), retrying", what, self.target, attempt
                )
                _pause(attempt)
                continue
            return live, desired
        raise RemoteConflictError(
            f"cannot {what}: the DatadogAgent kept changing (409 Conflict on {MAX_ATTEMPTS} "
            "attempts); nothing was changed",
            target=self.target,
        )

    def apply(self) -> None:
        """Merge-patch the DatadogAgent; remember what it replaced for :meth:`undo`.

        :raises RemoteConflictError: still conflicting after the retries (nothing changed).
        """
        done = self._patch_until(self._desired, "patch the DatadogAgent")
        if done is None:
            return
        live, desired = done
        self._paths = _changed_paths(live, desired)
        self._before = {p: _copy(_get_path(live, p)) for p in self._paths}

    def verify(self) -> None:
        """Re-read the DatadogAgent.

        :raises PlanVerifyError: some field does not have its planned value.
        """
        if not self.is_satisfied():
            raise PlanVerifyError(
                "the DatadogAgent does not carry the planned values after the patch",
                target=self.target,
            )

    def undo(self) -> None:
        """Put back the fields :meth:`apply` replaced (precondition, retrying).

        :raises PlanUndoError: nothing was applied.
        """
        if self._paths is None:
            raise PlanUndoError("nothing to undo: the change was not applied", target=self.target)
        before = self._before

        def restore(live: Mapping[str, Any]) -> dict[str, Any]:
            desired = copy.deepcopy(dict(live))
            for path, value in before.items():
                _set_path(desired, path, value)
            return desired

        self._patch_until(restore, "restore the DatadogAgent")
        self._paths = None
