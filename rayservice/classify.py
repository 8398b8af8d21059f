"""Change classification and the two canonical hashes.

``classify_change(old, new)`` compares two *defaulted* RayService objects (raw JSON data) aspect by
aspect and names the most far-reaching change (``ChangeClass``). Each aspect compares a canonical
view, so formatting never counts as a change:

==================  =============================================================================
aspect              view compared
==================  =============================================================================
serve               the parsed serveConfigV2 (``serve hash``); YAML formatting and comments vanish
cluster             rayClusterConfig without replicas, workersToDelete, minReplicas, maxReplicas
                    (``cluster hash``), nulls and empty collections dropped
scale bounds        minReplicas and maxReplicas of each worker group
autoscaler          replicas and scaleStrategy.workersToDelete of each worker group
settings            every other spec field (thresholds, serveService, upgradeStrategy, ...)
==================  =============================================================================

Metadata and status never count: a label-only edit is ``none``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from rayservice.contract import ChangeClass
from rayservice.hashing import canonical_json, digest, drop_empty
from rayservice.memo import TextMemo
from rayservice.serveconfig import parse_serve_config

__all__ = [
    "Aspect",
    "Change",
    "Hashes",
    "analyze",
    "classify_change",
    "cluster_hash",
    "compute_hashes",
    "serve_hash",
]

_AUTOSCALER_FIELDS: Final = ("replicas",)
_BOUND_FIELDS: Final = ("minReplicas", "maxReplicas")


class Aspect(enum.StrEnum):
    """One part of a RayService spec that can change independently."""

    SERVE = "serve"
    CLUSTER = "cluster"
    SCALE_BOUNDS = "scale-bounds"
    AUTOSCALER = "autoscaler"
    SETTINGS = "settings"


# Most far-reaching first; the first aspect present names the change.
_PRECEDENCE: Final = (
    (Aspect.CLUSTER, ChangeClass.CLUSTER_UPGRADE),
    (Aspect.SERVE, ChangeClass.SERVE_ONLY),
    (Aspect.SCALE_BOUNDS, ChangeClass.SCALE_BOUNDS),
    (Aspect.SETTINGS, ChangeClass.SETTINGS),
    (Aspect.AUTOSCALER, ChangeClass.AUTOSCALER_OWNED),
)


@dataclass(frozen=True, slots=True)
class Hashes:
    """The target hashes of a RayService; ``None`` when that part cannot be hashed (invalid)."""

    cluster: str | None
    serve: str | None


@dataclass(frozen=True, slots=True)
class Change:
    """What changed: the class for people, and every aspect for the detailed explanation."""

    kind: ChangeClass
    aspects: frozenset[Aspect]


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _groups(spec: Mapping[str, Any]) -> list[Any]:
    cluster = spec.get("rayClusterConfig")
    groups = cluster.get("workerGroupSpecs") if isinstance(cluster, dict) else None
    return groups if isinstance(groups, list) else []


def _cluster_view(cluster: Mapping[str, Any]) -> Any:
    view = dict(cluster)
    groups = view.get("workerGroupSpecs")
    if isinstance(groups, list):
        view["workerGroupSpecs"] = [_group_view(group) for group in groups]
    return drop_empty(view)


def _group_view(group: Any) -> Any:
    if not isinstance(group, dict):
        return group
    view = {
        key: value
        for key, value in group.items()
        if key not in _AUTOSCALER_FIELDS and key not in _BOUND_FIELDS
    }
    strategy = view.get("scaleStrategy")
    if isinstance(strategy, dict):
        view["scaleStrategy"] = {k: v for k, v in strategy.items() if k != "workersToDelete"}
    return view


_CLUSTER_HASHES: Final[TextMemo[str]] = TextMemo(max_chars=2 * 1024 * 1024, max_entries=512)


def cluster_hash(obj: Mapping[str, Any]) -> str | None:
    """The cluster hash of a defaulted RayService; ``None`` without a rayClusterConfig mapping.

    Memoized by the unsorted JSON text of the rayClusterConfig (orjson: a fraction of a
    microsecond per KiB): the canonical view (dropping fields and empties, sorting keys) costs
    far more, and the same cluster comes back in the validating admission and as the next
    UPDATE's ``oldObject``. The input is JSON data (no NaN, string keys), as the API server sends.
    """
    cluster = _spec(obj).get("rayClusterConfig")
    if not isinstance(cluster, dict):
        return None
    try:
        key = orjson.dumps(cluster).decode()
    except TypeError:
        return None
    found = _CLUSTER_HASHES.get(key)
    if found is None:
        try:
            found = digest(canonical_json(_cluster_view(cluster)))
        except (TypeError, ValueError):
            return None
        _CLUSTER_HASHES.put(key, found)
    return found


def serve_hash(obj: Mapping[str, Any]) -> str | None:
    """The serve hash; ``None`` when serveConfigV2 is not a string of valid YAML."""
    text = _spec(obj).get("serveConfigV2")
    if text is not None and not isinstance(text, str):
        return None
    return parse_serve_config(text).hash


def compute_hashes(obj: Mapping[str, Any]) -> Hashes:
    """Both target hashes of a defaulted RayService."""
    return Hashes(cluster=cluster_hash(obj), serve=serve_hash(obj))


def _scale(spec: Mapping[str, Any], fields: tuple[str, ...]) -> list[Any]:
    out: list[list[Any] | None] = []
    for group in _groups(spec):
        if not isinstance(group, dict):
            out.append(None)
            continue
        values = [group.get(field) for field in fields]
        if fields == _AUTOSCALER_FIELDS:
            strategy = group.get("scaleStrategy")
            doomed = strategy.get("workersToDelete") if isinstance(strategy, dict) else None
            values.append(doomed or None)
        out.append(values)
    return out


def _settings_view(spec: Mapping[str, Any]) -> Any:
    rest = {k: v for k, v in spec.items() if k not in ("serveConfigV2", "rayClusterConfig")}
    return drop_empty(rest)


def _serve_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    before, after = old.get("serveConfigV2"), new.get("serveConfigV2")
    if before == after:
        return False
    old_hash = serve_hash({"spec": old})
    new_hash = serve_hash({"spec": new})
    if old_hash is None or new_hash is None:
        return True  # at least one is unparseable and the texts differ
    return old_hash != new_hash


def classify_change(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> Change:
    """Classify the change from ``old`` to ``new`` (both defaulted); ``old=None`` is a create."""
    return analyze(old, new)[0]


def analyze(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> tuple[Change, Hashes]:
    """The change from ``old`` to ``new`` and the hashes of ``new``, each view computed once."""
    hashes = compute_hashes(new)
    if old is None:
        return Change(ChangeClass.CREATE, frozenset()), hashes
    before, after = _spec(old), _spec(new)
    aspects: set[Aspect] = set()
    if _serve_changed(before, after):
        aspects.add(Aspect.SERVE)
    # Hashes, not Python equality: 1 == 1.0 == True, but they hash differently.
    if hashes.cluster is None or cluster_hash(old) != hashes.cluster:
        aspects.add(Aspect.CLUSTER)
    elif before.get("rayClusterConfig") != after.get("rayClusterConfig"):
        if _scale(before, _BOUND_FIELDS) != _scale(after, _BOUND_FIELDS):
            aspects.add(Aspect.SCALE_BOUNDS)
        if _scale(before, _AUTOSCALER_FIELDS) != _scale(after, _AUTOSCALER_FIELDS):
            aspects.add(Aspect.AUTOSCALER)
    if _settings_view(before) != _settings_view(after):
        aspects.add(Aspect.SETTINGS)
    for aspect, kind in _PRECEDENCE:
        if aspect in aspects:
            return Change(kind, frozenset(aspects)), hashes
    return Change(ChangeClass.NONE, frozenset()), hashes
