"""Patch formats: JSON merge patch, JSON patch, strategic merge patch.

Owns decoding and applying a PATCH body to an object, each format as kube-apiserver does it:
RFC 7386 merge patch (``null`` deletes, lists replaced), RFC 6902 JSON patch (decode errors are
400, application errors 422) and the strategic merge patch kubectl sends for built-in types
(lists merged by their ``patchMergeKey``, ``$patch``, ``$retainKeys``, ``$setElementOrder`` and
``$deleteFromPrimitiveList`` directives). Merge keys are known for the built-in types served here.
Server-side apply lives in :mod:`localkube.fieldmanager`. Pure.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import jsonpatch
import jsonpointer

from localkube.errors import PatchError

__all__ = [
    "APPLY_PATCH",
    "JSON_PATCH",
    "MAX_JSON_PATCH_OPERATIONS",
    "MERGE_PATCH",
    "STRATEGIC_MERGE_PATCH",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
    "list_merge_key",
    "primitive_merge_list",
]

MAX_JSON_PATCH_OPERATIONS = 10_000
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# patchMergeKey of the list fields of the built-in types served here, by kind and field path
# (list elements are transparent in the path). From the Go struct tags of k8s.io/api/core/v1.
_CONTAINER_KEYS = {
    ("ports",): "containerPort",
    ("env",): "name",
    ("volumeMounts",): "mountPath",
    ("volumeDevices",): "devicePath",
}
_POD_KEYS: dict[tuple[str, ...], str] = {
    ("spec", "containers"): "name",
    ("spec", "initContainers"): "name",
    ("spec", "ephemeralContainers"): "name",
    ("spec", "volumes"): "name",
    ("spec", "imagePullSecrets"): "name",
    ("spec", "hostAliases"): "ip",
    ("spec", "topologySpreadConstraints"): "topologyKey",
    ("spec", "resourceClaims"): "name",
    ("status", "conditions"): "type",
    ("status", "podIPs"): "ip",
}
for _group in ("containers", "initContainers", "ephemeralContainers"):
    for _sub, _key in _CONTAINER_KEYS.items():
        _POD_KEYS[("spec", _group, *_sub)] = _key


def _under(prefix: tuple[str, ...]) -> dict[tuple[str, ...], str]:
    """The Pod spec's merge keys inside a pod template at ``prefix``."""
    return {(*prefix, *path[1:]): key for path, key in _POD_KEYS.items() if path[0] == "spec"}


_CONDITIONS: dict[tuple[str, ...], str] = {("status", "conditions"): "type"}
_TEMPLATE = _under(("spec", "template", "spec"))
_STATEFUL = {**_TEMPLATE, **_CONDITIONS}

MERGE_KEYS: dict[str, dict[tuple[str, ...], str]] = {
    "Pod": _POD_KEYS,
    "Deployment": _STATEFUL,
    "ReplicaSet": _STATEFUL,
    "StatefulSet": _STATEFUL,
    "DaemonSet": _STATEFUL,
    "Job": _STATEFUL,
    "CronJob": {**_under(("spec", "jobTemplate", "spec", "template", "spec")), **_CONDITIONS},
    "PodDisruptionBudget": _CONDITIONS,
    "Service": {("spec", "ports"): "port", ("status", "conditions"): "type"},
    "ServiceAccount": {("secrets",): "name", ("imagePullSecrets",): "name"},
    "Namespace": {("status", "conditions"): "type"},
    # admissionregistration/v1: listType=map, listMapKey=name
    "MutatingWebhookConfiguration": {("webhooks",): "name"},
    "ValidatingWebhookConfiguration": {("webhooks",): "name"},
}
_METADATA_KEYS = {("metadata", "ownerReferences"): "uid"}
_PRIMITIVE_MERGE = {("metadata", "finalizers")}


def list_merge_key(kind: str, path: tuple[str, ...]) -> str | None:
    """The patchMergeKey of a list field of a built-in kind, or ``None`` (atomic list)."""
    if path in _METADATA_KEYS:
        return _METADATA_KEYS[path]
    return MERGE_KEYS.get(kind, {}).get(path)


def primitive_merge_list(path: tuple[str, ...]) -> bool:
    """True for lists of scalars that strategic merge patch unions (``metadata.finalizers``)."""
    return path in _PRIMITIVE_MERGE


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise PatchError("error decoding patch: exceeded max depth", bad_body=True) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise PatchError(f"error decoding patch: {e}", bad_body=True) from e


def apply_merge_patch(target: Mapping[str, Any], body: bytes) -> dict[str, Any]:
    """RFC 7386 JSON merge patch."""
    patch = _decode(body)
    if not isinstance(patch, dict):
        raise PatchError(
            f"json: cannot unmarshal {_json_type(patch)} into "
            f"Go value of type map[string]interface {{}}",
            bad_body=True,
        )
    result = _merge(copy.deepcopy(dict(target)), patch)
    assert isinstance(result, dict)
    return result


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge(target.get(key), value)
    return target


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "null"


def apply_json_patch(
    target: Mapping[str, Any], body: bytes, *, max_copy_bytes: int = 3 * 1024 * 1024
) -> dict[str, Any]:
    """RFC 6902 JSON patch: a body that is not an array is a decode error (400).

    At most :data:`MAX_JSON_PATCH_OPERATIONS` operations, and ``copy`` operations may add at
    most ``max_copy_bytes`` of JSON together (both 413), as kube-apiserver bounds them.
    """
    ops = _decode(body)
    if not isinstance(ops, list):
        raise PatchError(
            f"json: cannot unmarshal {_json_type(ops)} into Go value of type jsonpatch.Patch",
            bad_body=True,
        )
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
            f"got {len(ops)}",
            bad_body=True,
            too_large=True,
        )
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError("json: cannot unmarshal patch operation", bad_body=True)
    try:
        patched: Any = copy.deepcopy(dict(target))
        copied = 0
        for op in ops:
            if op.get("op") == "copy":
                # json-patch's AccumulatedCopySizeLimit: copies may not grow the object unboundedly
                source = jsonpointer.resolve_pointer(patched, str(op.get("from", "")))
                copied += len(json.dumps(source))
                if copied > max_copy_bytes:
                    raise PatchError(
                        "Unable to complete the copy, the accumulated size increase of copy is "
                        f"{copied}, exceeding the limit {max_copy_bytes}",
                        bad_body=False,
                        too_large=True,
                    )
            patched = jsonpatch.JsonPatch([op]).apply(patched, in_place=True)
    except jsonpatch.JsonPatchTestFailed as e:
        raise PatchError(f"testing value failed: {e}", bad_body=False) from e
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
        raise PatchError(str(e), bad_body=False) from e
    except (KeyError, IndexError, TypeError) as e:
        raise PatchError(f"unable to apply patch: {e}", bad_body=False) from e
    if not isinstance(patched, dict):
        raise PatchError("the patched document is not an object", bad_body=False)
    return patched


def apply_strategic_merge_patch(
    target: Mapping[str, Any], body: bytes, kind: str
) -> dict[str, Any]:
    """Strategic merge patch for a built-in ``kind`` (merge keys from :data:`MERGE_KEYS`)."""
    patch = _decode(body)
    if not isinstance(patch, dict):
        raise PatchError(
            f"json: cannot unmarshal {_json_type(patch)} into "
            f"Go value of type map[string]interface {{}}",
            bad_body=True,
        )
    result = _smp_map(copy.deepcopy(dict(target)), patch, kind, ())
    return result if isinstance(result, dict) else {}


def _strip(value: Any) -> Any:
    """Remove directive keys from a value that is set as a whole."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [
            _strip(v) for v in value if not (isinstance(v, dict) and v.get("$patch") == "delete")
        ]
    return copy.deepcopy(value)


def _smp_map(original: Any, patch: dict[str, Any], kind: str, path: tuple[str, ...]) -> Any:
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip(patch)
    if directive == "delete":
        return None
    if not isinstance(original, dict):
        original = {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.partition("/")[2]
            if isinstance(original.get(field), list) and isinstance(value, list):
                original[field] = [v for v in original[field] if v not in value]
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        sub = (*path, key)
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict):
            merged = _smp_map(original.get(key), value, kind, sub)
            if merged is None:
                original.pop(key, None)
            else:
                original[key] = merged
        elif isinstance(value, list):
            original[key] = _smp_list(original.get(key), value, kind, sub)
        else:
            original[key] = copy.deepcopy(value)
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") and isinstance(value, list):
            field = key.partition("/")[2]
            if isinstance(original.get(field), list):
                original[field] = _reorder(
                    original[field], value, list_merge_key(kind, (*path, field))
                )
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        original = {k: v for k, v in original.items() if k in retain}
    return original


def _smp_list(original: Any, patch: list[Any], kind: str, path: tuple[str, ...]) -> list[Any]:
    current = list(original) if isinstance(original, list) else []
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [_strip(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    key = list_merge_key(kind, path)
    if key is None:
        if primitive_merge_list(path):
            return current + [copy.deepcopy(p) for p in patch if p not in current]
        return _strip(patch)  # type: ignore[no-any-return]
    for item in patch:
        if not isinstance(item, dict):
            continue
        index = next(
            (
                i
                for i, c in enumerate(current)
                if isinstance(c, dict) and c.get(key) == item.get(key)
            ),
            None,
        )
        if item.get("$patch") == "delete":
            current = [
                c for c in current if not (isinstance(c, dict) and c.get(key) == item.get(key))
            ]
        elif index is None:
            current.append(_strip(item))
        else:
            current[index] = _smp_map(current[index], item, kind, path)
    return current


def _reorder(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    def ident(item: Any) -> Any:
        return item.get(key) if key is not None and isinstance(item, dict) else item

    wanted = [ident(o) for o in order]
    ranked = [i for w in wanted for i in items if ident(i) == w]
    rest = [i for i in items if ident(i) not in wanted]
    return ranked + rest
