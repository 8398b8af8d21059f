"""Defaults the mutating webhook applies, each a named rule that yields JSON Patch operations.

Rules work on the raw object (JSON data), never on the models, so nothing the models do not know
can be lost; they only *add* fields that are absent (or ``null``), which makes defaulting
idempotent: defaulting a defaulted object yields no operation. A rule skips parts of the object
whose shape is wrong; validation reports those.

The values are KubeRay's: the CRD's worker-group defaults, the controller's deletion delay, and
the health thresholds of the seed walkthrough (300 s and 900 s).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "DEFAULT_RULES",
    "DefaultRule",
    "PatchOp",
    "apply_defaults",
    "apply_ops",
    "default_ops",
    "pointer",
]

INT32_MAX: Final = 2**31 - 1

PointerPath = tuple[str | int, ...]


def pointer(path: PointerPath) -> str:
    """RFC 6901 JSON Pointer for a path: ``("metadata", "annotations", "a/b")`` →
    ``/metadata/annotations/a~1b``."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


@dataclass(frozen=True, slots=True)
class PatchOp:
    """One RFC 6902 operation; ``path`` is kept as parts so it can be applied without parsing."""

    op: Literal["add", "replace", "remove"]
    path: PointerPath
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        """The operation as JSON Patch wants it."""
        if self.op == "remove":
            return {"op": "remove", "path": pointer(self.path)}
        return {"op": self.op, "path": pointer(self.path), "value": self.value}


Finder = Callable[[Mapping[str, Any]], Iterator[tuple[PointerPath, Any]]]


@dataclass(frozen=True, slots=True)
class DefaultRule:
    """A named default: ``find`` yields ``(path, value)`` for every place the default is missing."""

    name: str
    summary: str
    find: Finder


def _dict(value: object) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _missing(container: Mapping[str, Any], key: str) -> bool:
    return container.get(key) is None


def _spec_field(key: str, value: Any, *, versions: Sequence[str]) -> Finder:
    def find(obj: Mapping[str, Any]) -> Iterator[tuple[PointerPath, Any]]:
        spec = _dict(obj.get("spec"))
        if spec is not None and obj.get("apiVersion") in versions and _missing(spec, key):
            yield ("spec", key), value

    return find


def _cluster(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    spec = _dict(obj.get("spec"))
    return _dict(spec.get("rayClusterConfig")) if spec is not None else None


def _head_ray_start_params(obj: Mapping[str, Any]) -> Iterator[tuple[PointerPath, Any]]:
    cluster = _cluster(obj)
    head = _dict(cluster.get("headGroupSpec")) if cluster is not None else None
    if head is not None and _missing(head, "rayStartParams"):
        yield ("spec", "rayClusterConfig", "headGroupSpec", "rayStartParams"), {}


def _worker_field(key: str, value: Any) -> Finder:
    def find(obj: Mapping[str, Any]) -> Iterator[tuple[PointerPath, Any]]:
        cluster = _cluster(obj)
        groups = cluster.get("workerGroupSpecs") if cluster is not None else None
        if not isinstance(groups, list):
            return
        for index, group in enumerate(groups):
            if isinstance(group, Mapping) and _missing(group, key):
                yield ("spec", "rayClusterConfig", "workerGroupSpecs", index, key), value

    return find


def _max_surge_percent(obj: Mapping[str, Any]) -> Iterator[tuple[PointerPath, Any]]:
    spec = _dict(obj.get("spec"))
    strategy = _dict(spec.get("upgradeStrategy")) if spec is not None else None
    options = _dict(strategy.get("clusterUpgradeOptions")) if strategy is not None else None
    if options is not None and _missing(options, "maxSurgePercent"):
        yield ("spec", "upgradeStrategy", "clusterUpgradeOptions", "maxSurgePercent"), 100


_BOTH: Final = ("ray.io/v1", "ray.io/v1alpha1")
_V1: Final = ("ray.io/v1",)

DEFAULT_RULES: Final[tuple[DefaultRule, ...]] = (
    DefaultRule(
        "service-unhealthy-threshold",
        "spec.serviceUnhealthySecondThreshold: 900 seconds",
        _spec_field("serviceUnhealthySecondThreshold", 900, versions=_BOTH),
    ),
    DefaultRule(
        "deployment-unhealthy-threshold",
        "spec.deploymentUnhealthySecondThreshold: 300 seconds",
        _spec_field("deploymentUnhealthySecondThreshold", 300, versions=_BOTH),
    ),
    DefaultRule(
        "cluster-deletion-delay",
        "spec.rayClusterDeletionDelaySeconds: 60 (ray.io/v1 only)",
        _spec_field("rayClusterDeletionDelaySeconds", 60, versions=_V1),
    ),
    DefaultRule(
        "max-surge-percent",
        "spec.upgradeStrategy.clusterUpgradeOptions.maxSurgePercent: 100",
        _max_surge_percent,
    ),
    DefaultRule(
        "head-ray-start-params",
        "headGroupSpec.rayStartParams: {} (required by KubeRay before 1.4)",
        _head_ray_start_params,
    ),
    DefaultRule(
        "worker-ray-start-params",
        "workerGroupSpecs[*].rayStartParams: {}",
        _worker_field("rayStartParams", {}),
    ),
    DefaultRule(
        "worker-replicas",
        "workerGroupSpecs[*].replicas: 0 (the CRD default; KubeRay raises it to minReplicas)",
        _worker_field("replicas", 0),
    ),
    DefaultRule(
        "worker-min-replicas",
        "workerGroupSpecs[*].minReplicas: 0",
        _worker_field("minReplicas", 0),
    ),
    DefaultRule(
        "worker-max-replicas",
        f"workerGroupSpecs[*].maxReplicas: {INT32_MAX}",
        _worker_field("maxReplicas", INT32_MAX),
    ),
    DefaultRule(
        "worker-num-of-hosts",
        "workerGroupSpecs[*].numOfHosts: 1",
        _worker_field("numOfHosts", 1),
    ),
)


def default_ops(obj: Mapping[str, Any]) -> list[PatchOp]:
    """The operations that default ``obj``; empty when it is already defaulted."""
    return [PatchOp("add", path, value) for rule in DEFAULT_RULES for path, value in rule.find(obj)]


def apply_defaults(obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[PatchOp]]:
    """Return the defaulted object and the operations that made it; ``obj`` is not modified."""
    ops = default_ops(obj)
    return apply_ops(obj, ops), ops


def apply_ops(obj: Mapping[str, Any], ops: Sequence[PatchOp]) -> dict[str, Any]:
    """Apply ``add``/``replace``/``remove`` operations copy-on-write.

    Only the containers on the way to a changed path are copied; the rest is shared with ``obj``,
    so defaulting a large object costs little. Intermediate objects must exist (as JSON Patch
    requires), except that ``add`` creates missing maps on its way.
    """
    root: dict[str, Any] = dict(obj)
    copied: set[int] = {id(root)}
    for op in ops:
        parent: Any = root
        for part in op.path[:-1]:
            child = parent[int(part)] if isinstance(parent, list) else parent.get(part)
            if child is None and op.op == "add":
                child = {}
            elif id(child) not in copied:
                child = list(child) if isinstance(child, list) else dict(child)
            copied.add(id(child))
            parent[part] = child
            parent = child
        last = op.path[-1]
        if op.op == "remove":
            del parent[last]
        elif isinstance(parent, list) and op.op == "add":
            parent.insert(int(last), op.value)
        else:
            parent[last] = op.value
    return root
