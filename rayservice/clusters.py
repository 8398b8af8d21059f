"""Validated ``rayClusterConfig``s, and what the rules find in them, kept by content.

Most of a large RayService is its cluster, and most admissions of one RayService carry the same
cluster (a serve-only change, a retry, the validating admission after the mutating one, the
next UPDATE's ``oldObject``). So a cluster is validated into its model once per distinct JSON
(``validated_cluster``), from its second sighting on, and the rules' findings on a kept model
are kept beside it, for the few annotations the rules read (``cluster_findings``). Both are
dropped together; a cluster too large to keep is validated and checked afresh every time, and
nothing of it is held.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from pydantic import ValidationError

from rayservice.cluster_rules import (
    EXTERNAL_STORAGE_NAMESPACE,
    FT_ENABLED,
    cluster_errors,
    cluster_warnings,
)
from rayservice.errors import FieldError, FieldWarning, Path
from rayservice.models import RayClusterSpec
from rayservice.shape import unknown_fields

__all__ = ["ClusterFindings", "cluster_findings", "validated_cluster"]

MAX_KEPT: Final = 32
"""Clusters kept: one per RayService in use, and a few versions."""
MAX_KEPT_BYTES: Final = 2 * 1024 * 1024
"""Bytes of cluster JSON kept in all; a cluster of more than a quarter of it is never kept."""


@dataclass(frozen=True, slots=True)
class ClusterFindings:
    """Everything the rules find in one rayClusterConfig: errors, the paths of fields the
    models do not know, warnings."""

    errors: tuple[FieldError, ...]
    unknown: tuple[Path, ...]
    warnings: tuple[FieldWarning, ...]


@dataclass(slots=True)
class _Kept:
    model: RayClusterSpec
    size: int
    findings: dict[object, ClusterFindings] = field(default_factory=dict)


_BY_JSON: Final[OrderedDict[bytes, _Kept]] = OrderedDict()
_BY_MODEL: Final[dict[int, _Kept]] = {}
_kept_bytes = 0


def validated_cluster(cluster: dict[str, Any]) -> RayClusterSpec | None:
    """The model of a rayClusterConfig, kept by its JSON; ``None`` if it is invalid."""
    global _kept_bytes
    try:
        key = orjson.dumps(cluster)
    except orjson.JSONEncodeError:
        return None
    kept = _BY_JSON.get(key)
    if kept is not None:
        _BY_JSON.move_to_end(key)
        return kept.model
    try:
        model = RayClusterSpec.model_validate(cluster)
    except ValidationError:
        return None
    if len(key) <= MAX_KEPT_BYTES // 4 and _seen_before(key):
        kept = _Kept(model, len(key))
        _BY_JSON[key] = kept
        _BY_MODEL[id(model)] = kept
        _kept_bytes += len(key)
        while len(_BY_JSON) > MAX_KEPT or _kept_bytes > MAX_KEPT_BYTES:
            _, dropped = _BY_JSON.popitem(last=False)
            del _BY_MODEL[id(dropped.model)]
            _kept_bytes -= dropped.size
    return model


def _seen_before(key: bytes) -> bool:
    """True from a cluster's second sighting on. A model is kept only then: one that never
    comes back (a cluster upgrade per UPDATE) would cost the garbage collector a full pass over
    everything kept, every few admissions, for nothing."""
    digest = hash(key)
    if digest in _SEEN:
        return True
    _SEEN[digest] = None
    if len(_SEEN) > _SEEN_KEPT:
        _SEEN.popitem(last=False)
    return False


_SEEN: Final[OrderedDict[int, None]] = OrderedDict()
_SEEN_KEPT: Final = 1024


def cluster_findings(
    cluster: RayClusterSpec, annotations: Mapping[str, str], path: Path
) -> ClusterFindings:
    """The rules' findings on ``cluster`` at ``path``; kept beside a kept model."""
    key = (
        path,
        FT_ENABLED in annotations,
        annotations.get(FT_ENABLED),
        EXTERNAL_STORAGE_NAMESPACE in annotations,
    )
    kept = _BY_MODEL.get(id(cluster))
    if kept is not None and kept.model is cluster:
        found = kept.findings.get(key)
        if found is not None:
            return found
    found = ClusterFindings(
        errors=tuple(cluster_errors(cluster, annotations, path)),
        unknown=tuple(found_path for found_path, _ in unknown_fields(cluster, path)),
        warnings=tuple(cluster_warnings(cluster, path)),
    )
    if kept is not None and kept.model is cluster and len(kept.findings) < 8:
        kept.findings[key] = found
    return found
