"""How many Pods each worker group should run, and what state an observed Pod is in.

From ``ray-operator/controllers/ray/utils/util.go`` (``GetWorkerGroupDesiredReplicas``,
``CalculateMinReplicas``, ``CalculateMaxReplicas``, ``IsRunningAndReady``) and
``raycluster_controller.go`` (``shouldDeletePod``):

- a group runs ``replicas`` clamped into [``minReplicas``, ``maxReplicas``] times ``numOfHosts``
  Pods (``replicas`` unset: ``minReplicas``; ``minReplicas`` unset: 0; ``maxReplicas`` unset:
  2^31-1; ``numOfHosts`` unset: 1); a suspended group runs none;
- a Pod that has ``Failed`` or ``Succeeded`` will never run again, nor will one whose Ray
  container has terminated under ``restartPolicy: Never``: both are replaced;
- a Pod with a ``deletionTimestamp`` is on its way out and no longer counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from reconciler.raycluster.names import NODE_TYPE_LABEL

__all__ = [
    "INT32_MAX",
    "Clamp",
    "age_key",
    "bound_workers",
    "choose_removals",
    "clamp",
    "desired_replicas",
    "desired_workers",
    "head_pod",
    "hosts",
    "is_active",
    "is_running",
    "is_running_and_ready",
    "owned_by",
    "replacement_reason",
]

INT32_MAX: Final = 2**31 - 1


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def hosts(group: Mapping[str, Any]) -> int:
    """Pods per replica (``numOfHosts``, 1 when unset)."""
    return _int(group.get("numOfHosts"), 1)


@dataclass(frozen=True, slots=True)
class Clamp:
    """A ``replicas`` value outside its group's bounds, and the count that runs instead."""

    replicas: int
    bound: int
    bound_name: str
    """``minReplicas`` or ``maxReplicas``."""

    @property
    def message(self) -> str:
        relation = "less" if self.bound_name == "minReplicas" else "more"
        return (
            f"{self.replicas} is {relation} than {self.bound_name} {self.bound}; "
            f"the group runs {self.bound} replicas"
        )


def _bounds(group: Mapping[str, Any]) -> tuple[int, int]:
    return _int(group.get("minReplicas"), 0), _int(group.get("maxReplicas"), INT32_MAX)


def clamp(group: Mapping[str, Any]) -> Clamp | None:
    """The clamp applied to ``replicas``, if any worth telling.

    An unset or zero ``replicas`` under ``minReplicas`` is not told: it is what a group without
    ``replicas`` becomes (the CRD defaults it to 0), and starting ``minReplicas`` is expected.
    """
    if group.get("suspend") is True:
        return None
    low, high = _bounds(group)
    replicas = group.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas == 0:
        return None
    if replicas < low:
        return Clamp(replicas, low, "minReplicas")
    if replicas > high:
        return Clamp(replicas, high, "maxReplicas")
    return None


def desired_replicas(group: Mapping[str, Any]) -> int:
    """Replicas the group runs: ``replicas`` clamped into its bounds; 0 when suspended."""
    if group.get("suspend") is True:
        return 0
    low, high = _bounds(group)
    replicas = group.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < low:
        return low
    return min(replicas, high)


def desired_workers(group: Mapping[str, Any]) -> int:
    """Pods the group runs: its replicas times ``numOfHosts``."""
    return desired_replicas(group) * hosts(group)


def bound_workers(group: Mapping[str, Any]) -> tuple[int, int]:
    """The group's ``minReplicas`` and ``maxReplicas`` in Pods (0, 0 when suspended)."""
    if group.get("suspend") is True:
        return 0, 0
    low, high = _bounds(group)
    return low * hosts(group), high * hosts(group)


def owned_by(pod: Mapping[str, Any], uid: str) -> bool:
    """Whether ``pod``'s controller is the object with ``uid`` (any Pod when ``uid`` is empty)."""
    if not uid:
        return True
    for ref in _mapping(pod.get("metadata")).get("ownerReferences") or ():
        ref = _mapping(ref)
        if ref.get("controller") is True and ref.get("uid") == uid:
            return True
    return False


def is_active(pod: Mapping[str, Any]) -> bool:
    """Not being deleted."""
    return not _mapping(pod.get("metadata")).get("deletionTimestamp")


def age_key(pod: Mapping[str, Any]) -> tuple[str, str]:
    """Oldest first: creation time, then name."""
    meta = _mapping(pod.get("metadata"))
    return str(meta.get("creationTimestamp", "")), str(meta.get("name", ""))


def head_pod(pods: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The head Pod a cluster keeps: the oldest head not being deleted (a second one is
    deleted), or ``None``."""
    heads = [
        p
        for p in pods
        if is_active(p)
        and _mapping(_mapping(p.get("metadata")).get("labels")).get(NODE_TYPE_LABEL) == "head"
    ]
    return min(heads, key=age_key) if heads else None


def is_running(pod: Mapping[str, Any]) -> bool:
    """Phase ``Running``."""
    return _mapping(pod.get("status")).get("phase") == "Running"


def is_running_and_ready(pod: Mapping[str, Any]) -> bool:
    """Phase ``Running`` and condition ``Ready`` true."""
    if not is_running(pod):
        return False
    for condition in _mapping(pod.get("status")).get("conditions") or ():
        condition = _mapping(condition)
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def _ray_container_terminated(pod: Mapping[str, Any]) -> bool:
    containers = _mapping(pod.get("spec")).get("containers") or ()
    if not containers:
        return False
    ray = _mapping(containers[0]).get("name")
    for status in _mapping(pod.get("status")).get("containerStatuses") or ():
        status = _mapping(status)
        if status.get("name") == ray:
            return bool(_mapping(status.get("state")).get("terminated"))
    return False


def replacement_reason(pod: Mapping[str, Any]) -> str | None:
    """Why ``pod`` must be deleted and replaced, or ``None`` if it may still run."""
    phase = _mapping(pod.get("status")).get("phase")
    if phase in ("Failed", "Succeeded"):
        return f"phase {phase}"
    restart = _mapping(pod.get("spec")).get("restartPolicy")
    if phase == "Running" and restart == "Never" and _ray_container_terminated(pod):
        return "the Ray container exited and restartPolicy is Never"
    return None


def _progress(pod: Mapping[str, Any]) -> int:
    if is_running(pod):
        return 3 if is_running_and_ready(pod) else 2
    return 1 if _mapping(pod.get("spec")).get("nodeName") else 0


def choose_removals(pods: Sequence[Mapping[str, Any]], count: int) -> list[Mapping[str, Any]]:
    """The ``count`` Pods to remove when a group has too many.

    KubeRay removes whichever its cache lists first; raysvc removes those doing the least work:
    unscheduled, then pending, then running but not ready, and among equals the newest.
    """
    ordered = sorted(pods, key=lambda p: str(_mapping(p.get("metadata")).get("name", "")))
    ordered.sort(
        key=lambda p: str(_mapping(p.get("metadata")).get("creationTimestamp", "")), reverse=True
    )
    ordered.sort(key=_progress)
    return ordered[: max(count, 0)]
