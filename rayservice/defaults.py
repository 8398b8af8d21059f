"""Defaults the mutating webhook applies, each a named rule that yields JSON Patch operations.

Rules work on the raw object (JSON data: exact ``dict`` and ``list``), never on the models,
so nothing the models do not know can be lost; they only *add* fields that are absent (or
``null``), which makes defaulting idempotent: defaulting a defaulted object yields no
operation. A rule skips parts of the object whose shape is wrong; validation reports those.

The values are KubeRay's: the CRD's worker-group defaults, the controller's deletion delay, and
the health thresholds of the seed walkthrough (300 s and 900 s).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
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


Scope = Literal["spec", "head", "worker", "upgrade-options"]
_SCOPE_PATHS: Final[dict[str, PointerPath]] = {
    "spec": ("spec",),
    "head": ("spec", "rayClusterConfig", "headGroupSpec"),
    "upgrade-options": ("spec", "upgradeStrategy", "clusterUpgradeOptions"),
}


@dataclass(frozen=True, slots=True)
class DefaultRule:
    """A named default: ``key`` in every ``scope`` mapping of the object gets ``value`` when it
    is absent or null (``worker`` means each worker group)."""

    name: str
    scope: Scope
    key: str
    value: Any
    summary: str
    versions: tuple[str, ...] = ("ray.io/v1", "ray.io/v1alpha1")


_V1: Final = ("ray.io/v1",)

DEFAULT_RULES: Final[tuple[DefaultRule, ...]] = (
    DefaultRule(
        "service-unhealthy-threshold",
        "spec",
        "serviceUnhealthySecondThreshold",
        900,
        "seconds an application may stay DEPLOY_FAILED or UNHEALTHY",
    ),
    DefaultRule(
        "deployment-unhealthy-threshold",
        "spec",
        "deploymentUnhealthySecondThreshold",
        300,
        "seconds the head's dashboard may stay unreachable",
    ),
    DefaultRule(
        "cluster-deletion-delay",
        "spec",
        "rayClusterDeletionDelaySeconds",
        60,
        "seconds an old cluster lives on after traffic left it (KubeRay's default)",
        versions=_V1,
    ),
    DefaultRule(
        "max-surge-percent",
        "upgrade-options",
        "maxSurgePercent",
        100,
        "the CRD's default, inside a given clusterUpgradeOptions",
        versions=_V1,
    ),
    DefaultRule(
        "head-ray-start-params",
        "head",
        "rayStartParams",
        {},
        "required by KubeRay before 1.4",
    ),
    DefaultRule("worker-ray-start-params", "worker", "rayStartParams", {}, "as for the head"),
    DefaultRule(
        "worker-replicas",
        "worker",
        "replicas",
        0,
        "the CRD default; KubeRay raises it to minReplicas",
    ),
    DefaultRule("worker-min-replicas", "worker", "minReplicas", 0, "the CRD default"),
    DefaultRule("worker-max-replicas", "worker", "maxReplicas", INT32_MAX, "the CRD default"),
    DefaultRule("worker-num-of-hosts", "worker", "numOfHosts", 1, "the CRD default"),
)


def _at(obj: Mapping[str, Any], path: PointerPath) -> dict[str, Any] | None:
    node: Any = obj
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _fresh(value: Any) -> Any:
    """A new copy of a mutable default, so no two places of an object share one."""
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


def default_ops(obj: Mapping[str, Any]) -> list[PatchOp]:
    """The operations that default ``obj``; empty when it is already defaulted.

    One walk of the object: each scope is found once and gets all of its rules.
    """
    api_version = obj.get("apiVersion")
    rules = [rule for rule in DEFAULT_RULES if api_version in rule.versions]
    ops: list[PatchOp] = []
    for scope, path in _SCOPE_PATHS.items():
        node = _at(obj, path)
        if node is None:
            continue
        for rule in rules:
            if rule.scope == scope and node.get(rule.key) is None:
                ops.append(PatchOp("add", (*path, rule.key), _fresh(rule.value)))
    groups = _at(obj, ("spec", "rayClusterConfig"))
    groups_list = groups.get("workerGroupSpecs") if groups is not None else None
    if isinstance(groups_list, list):
        worker_rules = [rule for rule in rules if rule.scope == "worker"]
        for index, group in enumerate(groups_list):
            if not isinstance(group, dict):
                continue
            for rule in worker_rules:
                if group.get(rule.key) is None:
                    path = ("spec", "rayClusterConfig", "workerGroupSpecs", index, rule.key)
                    ops.append(PatchOp("add", path, _fresh(rule.value)))
    return ops


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
