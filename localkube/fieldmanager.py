"""Field ownership: ``metadata.managedFields`` and a simplified server-side apply.

Owns the field sets (``fieldsV1``) of each manager, the merge of an applied configuration into the
live object, conflict detection, and the removal of fields a manager stopped applying. The
simplifications against the real structured-merge-diff library: lists are associative only where
a merge key is known (built-in ``patchMergeKey`` tags, or a CRD's ``x-kubernetes-list-type: map``
with ``x-kubernetes-list-map-keys``), ``set`` lists only for CRD ``x-kubernetes-list-type: set``
and ``metadata.finalizers``; every other list is atomic (owned and replaced whole). A conflict is
reported when another manager, whatever its operation, owns a leaf whose live value differs from
the applied one. Pure.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Conflict",
    "ListKeys",
    "apply_configuration",
    "field_set",
    "managed_paths",
    "render_conflicts",
    "track_update",
]

# A path element: ("f", name) map key, ("k", json keys) keyed list item, ("v", json) set item.
Element = tuple[str, str]
Path = tuple[Element, ...]
# Given the field names from the root (list items transparent), the key fields of an
# associative list, () for a set list, or None for an atomic list.
ListKeys = Callable[[tuple[str, ...]], tuple[str, ...] | None]

_UNTRACKED_META = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)
_MISSING = object()


@dataclass(frozen=True)
class Conflict:
    manager: str
    api_version: str
    path: str


def _trackable(obj: Mapping[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    meta = body.get("metadata")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k not in _UNTRACKED_META}
        if meta:
            body["metadata"] = meta
        else:
            body.pop("metadata")
    return body


def field_set(obj: Mapping[str, Any], list_keys: ListKeys) -> set[Path]:
    """Leaf paths of an object (server-owned metadata, apiVersion and kind excluded)."""
    out: set[Path] = set()
    _collect(_trackable(obj), (), (), list_keys, out)
    return out


def _collect(
    value: Any, path: Path, names: tuple[str, ...], list_keys: ListKeys, out: set[Path]
) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _collect(item, (*path, ("f", key)), (*names, key), list_keys, out)
        return
    if isinstance(value, list) and value:
        keys = list_keys(names)
        if keys is None:
            out.add(path)
            return
        for item in value:
            if keys == () or not isinstance(item, dict):
                out.add((*path, ("v", json.dumps(item, sort_keys=True))))
            else:
                ident = json.dumps(
                    {k: item.get(k) for k in keys}, sort_keys=True, separators=(",", ":")
                )
                element = (*path, ("k", ident))
                out.add((*element, ("f", ".")))
                _collect_item(item, element, names, list_keys, out, keys)
        return
    out.add(path)


def _collect_item(
    item: dict[str, Any],
    path: Path,
    names: tuple[str, ...],
    list_keys: ListKeys,
    out: set[Path],
    keys: tuple[str, ...],
) -> None:
    for key, sub in item.items():
        _collect(sub, (*path, ("f", key)), (*names, key), list_keys, out)


def _get(obj: Any, path: Path) -> Any:
    current = obj
    for kind, name in path:
        if kind == "f":
            if name == ".":
                return current
            if not isinstance(current, dict) or name not in current:
                return _MISSING
            current = current[name]
        elif kind == "k":
            keys = json.loads(name)
            if not isinstance(current, list):
                return _MISSING
            current = next(
                (
                    i
                    for i in current
                    if isinstance(i, dict) and all(i.get(k) == v for k, v in keys.items())
                ),
                _MISSING,
            )
            if current is _MISSING:
                return _MISSING
        else:
            value = json.loads(name)
            return value if isinstance(current, list) and value in current else _MISSING
    return current


def _remove(obj: Any, path: Path) -> None:
    if not path:
        return
    if path[-1] == ("f", "."):
        path = path[:-1]
    parent = _get(obj, path[:-1])
    kind, name = path[-1]
    if kind == "f" and isinstance(parent, dict):
        parent.pop(name, None)
    elif kind == "k" and isinstance(parent, list):
        keys = json.loads(name)
        parent[:] = [
            i
            for i in parent
            if not (isinstance(i, dict) and all(i.get(k) == v for k, v in keys.items()))
        ]
    elif kind == "v" and isinstance(parent, list):
        value = json.loads(name)
        parent[:] = [i for i in parent if i != value]


def render_path(path: Path) -> str:
    out = []
    for kind, name in path:
        if kind == "f":
            if name != ".":
                out.append(f".{name}")
        elif kind == "k":
            out.append(f"[{','.join(f'{k}={json.dumps(v)}' for k, v in json.loads(name).items())}]")
        else:
            out.append(f"[{name}]")
    return "".join(out)


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for kind, name in path:
            node = node.setdefault(f"{kind}:{name}" if name != "." or kind != "f" else ".", {})
    return root


def from_fields_v1(tree: Mapping[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, sub in tree.items():
        element: Element = ("f", ".") if key == "." else (key[0], key[2:])
        path = (*prefix, element)
        if isinstance(sub, Mapping) and sub:
            out |= from_fields_v1(sub, path)
        else:
            out.add(path)
    return out


def managed_paths(entry: Mapping[str, Any]) -> set[Path]:
    fields = entry.get("fieldsV1")
    return from_fields_v1(fields) if isinstance(fields, Mapping) else set()


def _entry(
    manager: str, operation: str, api_version: str, now: str, paths: set[Path], subresource: str
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(paths),
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


def _same_entry(entry: Mapping[str, Any], manager: str, operation: str, subresource: str) -> bool:
    return (
        entry.get("manager") == manager
        and entry.get("operation") == operation
        and entry.get("subresource", "") == subresource
    )


def _merge(live: Any, applied: Any, names: tuple[str, ...], list_keys: ListKeys) -> Any:
    if isinstance(applied, dict) and isinstance(live, dict):
        out = dict(live)
        for key, value in applied.items():
            out[key] = _merge(live.get(key), value, (*names, key), list_keys)
        return out
    if isinstance(applied, list) and isinstance(live, list):
        keys = list_keys(names)
        if keys is None:
            return copy.deepcopy(applied)
        if keys == ():
            return list(live) + [copy.deepcopy(v) for v in applied if v not in live]
        out_list = list(live)
        for item in applied:
            if not isinstance(item, dict):
                continue
            index = next(
                (
                    i
                    for i, cur in enumerate(out_list)
                    if isinstance(cur, dict) and all(cur.get(k) == item.get(k) for k in keys)
                ),
                None,
            )
            if index is None:
                out_list.append(copy.deepcopy(item))
            else:
                out_list[index] = _merge(out_list[index], item, names, list_keys)
        return out_list
    return copy.deepcopy(applied)


def apply_configuration(
    live: Mapping[str, Any],
    applied: Mapping[str, Any],
    *,
    manager: str,
    api_version: str,
    force: bool,
    now: str,
    list_keys: ListKeys,
) -> tuple[dict[str, Any], list[Conflict]]:
    """Merge ``applied`` into ``live`` for ``manager``; returns the object and any conflicts.

    The managedFields of the result already give ``manager`` the applied field set. With
    ``force`` conflicting fields are taken from their other owners instead of reported.
    """
    entries = [dict(e) for e in (live.get("metadata") or {}).get("managedFields") or []]
    new_paths = field_set(applied, list_keys)
    conflicts: list[Conflict] = []
    for entry in entries:
        if _same_entry(entry, manager, "Apply", ""):
            continue
        owned = managed_paths(entry)
        taken = set()
        for path in new_paths & owned:
            if path[-1:] == (("f", "."),):
                continue  # a list item's existence marker: only its fields can conflict
            if _get(live, path) != _get(applied, path):
                conflicts.append(
                    Conflict(
                        str(entry.get("manager")),
                        str(entry.get("apiVersion", "")),
                        render_path(path),
                    )
                )
                taken.add(path)
        if force and taken:
            entry["fieldsV1"] = to_fields_v1(owned - taken)
    if conflicts and not force:
        return dict(live), conflicts
    merged = _merge(copy.deepcopy(dict(live)), dict(applied), (), list_keys)
    previous = next((e for e in entries if _same_entry(e, manager, "Apply", "")), None)
    if previous is not None:
        others = set().union(*(managed_paths(e) for e in entries if e is not previous))
        for path in sorted(managed_paths(previous) - new_paths, key=len, reverse=True):
            if path not in others:
                _remove(merged, path)
    entries = [e for e in entries if e is not previous and managed_paths(e)]
    entries.insert(0, _entry(manager, "Apply", api_version, now, new_paths, ""))
    merged.setdefault("metadata", {})["managedFields"] = entries
    return merged, []


def track_update(
    old: Mapping[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    now: str,
    subresource: str,
    list_keys: ListKeys,
) -> None:
    """Record in ``new``'s managedFields the fields an Update by ``manager`` changed."""
    meta = new.setdefault("metadata", {})
    entries = [dict(e) for e in meta.get("managedFields") or []]
    before = _trackable(old or {})
    after = _trackable(new)
    new_paths = field_set(new, list_keys)
    changed = {p for p in new_paths if _get(before, p) != _get(after, p)}
    removed = field_set(old or {}, list_keys) - new_paths
    if not changed and not removed:
        meta["managedFields"] = entries
        if not entries:
            meta.pop("managedFields")
        return
    mine = next((e for e in entries if _same_entry(e, manager, "Update", subresource)), None)
    kept = []
    for entry in entries:
        if entry is mine:
            continue
        paths = managed_paths(entry) - changed - removed
        if paths:
            entry["fieldsV1"] = to_fields_v1(paths)
            kept.append(entry)
    owned = ((managed_paths(mine) if mine else set()) | changed) - removed
    if owned:
        kept.append(_entry(manager, "Update", api_version, now, owned, subresource))
    meta["managedFields"] = kept


def render_conflicts(conflicts: list[Conflict]) -> str:
    """The message kube-apiserver gives a 409 apply conflict."""
    by_manager: dict[tuple[str, str], list[str]] = {}
    for c in conflicts:
        by_manager.setdefault((c.manager, c.api_version), []).append(c.path)
    count = len(conflicts)
    head = f"Apply failed with {count} conflict{'s' if count != 1 else ''}: "
    parts = []
    for (manager, version), paths in by_manager.items():
        if len(paths) == 1:
            parts.append(f'conflict with "{manager}" using {version}: {paths[0]}')
        else:
            parts.append(
                f'conflicts with "{manager}" using {version}:\n'
                + "\n".join(f"- {p}" for p in paths)
            )
    return head + "\n".join(parts)
