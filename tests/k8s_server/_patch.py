"""The three PATCH flavours the Kubernetes API server accepts, on plain JSON values.

- JSON Patch (RFC 6902), ``application/json-patch+json``, including ``test``;
- JSON Merge Patch (RFC 7386), ``application/merge-patch+json``;
- Strategic merge patch, ``application/strategic-merge-patch+json``: lists with a patch merge key
  (``containers`` and ``env`` by ``name``...) are merged item by item, with the ``$patch``
  directives ``delete`` / ``replace`` / ``merge`` and ``$setElementOrder``
  (``staging/src/k8s.io/apimachinery/pkg/util/strategicpatch`` in kubernetes/kubernetes). Only
  the merge keys of the fields a DaemonSet and a Pod use are known here.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PatchError", "json_patch", "merge_patch", "strategic_merge_patch"]


class PatchError(Exception):
    """The patch cannot be applied; ``code`` is the HTTP status the API server answers."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


# Field name -> patch merge key, from the `patchMergeKey` tags of k8s.io/api/core/v1/types.go.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "tolerations": "key",
    "hostAliases": "ip",
}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """A strategic merge of ``patch`` into ``target`` (returns a new value)."""
    return _smp_map(target if isinstance(target, dict) else {}, patch)


def _smp_map(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch type {directive!r}", 400)
    result = copy.deepcopy(target)
    orders = {
        k[len("$setElementOrder/") :]: v
        for k, v in patch.items()
        if k.startswith("$setElementOrder/")
    }
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _smp_map(result.get(key) or {}, value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and key in MERGE_KEYS:
            result[key] = _smp_list(result.get(key) or [], value, MERGE_KEYS[key])
        else:
            result[key] = copy.deepcopy(value)
    for key, order in orders.items():
        if key in result and key in MERGE_KEYS:
            result[key] = _order(result[key], order, MERGE_KEYS[key])
    return result


def _smp_list(target: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    result = copy.deepcopy(target)
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise PatchError(f"map in a list is missing its merge key {merge_key!r}", 422)
        key = item[merge_key]
        index = next(
            (i for i, t in enumerate(result) if isinstance(t, dict) and t.get(merge_key) == key),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append({k: copy.deepcopy(v) for k, v in item.items() if not k.startswith("$")})
        else:
            merged = _smp_map(result[index], item)
            if merged is None:
                del result[index]
            else:
                result[index] = merged
    return result


def _order(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    rank = {o.get(merge_key): i for i, o in enumerate(order) if isinstance(o, dict)}
    return sorted(items, key=lambda it: rank.get(it.get(merge_key), len(rank)))


# -- RFC 6902 -----------------------------------------------------------------------------------


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"JSON pointer {pointer!r} does not start with '/'", 400)
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _parent(doc: Any, tokens: list[str], pointer: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        node = _child(node, token, pointer)
    return node


def _child(node: Any, token: str, pointer: str) -> Any:
    if isinstance(node, dict):
        if token not in node:
            raise PatchError(f"path {pointer!r} not found", 422)
        return node[token]
    if isinstance(node, list):
        index = _index(node, token, pointer, allow_end=False)
        return node[index]
    raise PatchError(f"path {pointer!r} goes through a scalar", 422)


def _index(node: list[Any], token: str, pointer: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(node)
    if not token.isdigit():
        raise PatchError(f"bad array index in {pointer!r}", 422)
    index = int(token)
    if index > len(node) or (index == len(node) and not allow_end):
        raise PatchError(f"array index out of range in {pointer!r}", 422)
    return index


def _get(doc: Any, pointer: str) -> Any:
    node = doc
    for token in _tokens(pointer):
        node = _child(node, token, pointer)
    return node


def _add(doc: Any, pointer: str, value: Any) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return copy.deepcopy(value)
    parent = _parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, pointer, allow_end=True), copy.deepcopy(value))
    else:
        raise PatchError(f"path {pointer!r} goes through a scalar", 422)
    return doc


def _remove(doc: Any, pointer: str) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        raise PatchError("cannot remove the whole document", 422)
    parent = _parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {pointer!r} not found", 422)
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, pointer, allow_end=False)]
    else:
        raise PatchError(f"path {pointer!r} goes through a scalar", 422)
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    """Apply an RFC 6902 operation list to a copy of ``target``.

    :raises PatchError: a malformed op, a missing path, or a failed ``test`` (422).
    """
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations", 400)
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"malformed JSON patch operation {op!r}", 400)
        name, path = op["op"], op["path"]
        if name == "add":
            doc = _add(doc, path, op.get("value"))
        elif name == "remove":
            doc = _remove(doc, path)
        elif name == "replace":
            _get(doc, path)
            doc = _add(_remove(doc, path), path, op.get("value")) if _tokens(path) else op["value"]
        elif name in ("move", "copy"):
            value = copy.deepcopy(_get(doc, op["from"]))
            if name == "move":
                doc = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif name == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"test operation failed at {path!r}", 422)
        else:
            raise PatchError(f"unknown JSON patch operation {name!r}", 400)
    return doc
