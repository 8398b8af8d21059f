"""What an admitted change will do, in short sentences for people.

Used for ``raysvc check``'s text output and, by the webhook, as admission warnings (kubectl prints
each as ``Warning: ...``), so every sentence stays within 120 characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from rayservice.classify import Aspect, Change
from rayservice.contract import ChangeClass
from rayservice.models import Container, RayClusterSpec, RayServiceV1, RayServiceV1Alpha1
from rayservice.quantity import format_cpu, format_memory, parse_quantity

__all__ = ["MAX_SENTENCE", "Capacity", "capacity", "explain", "summary"]

MAX_SENTENCE: Final = 120


@dataclass(frozen=True, slots=True)
class Capacity:
    """The pods a RayCluster starts with and what they request."""

    pods: int
    cpu: float
    """Cores."""
    memory: float
    """Bytes."""

    def __str__(self) -> str:
        noun = "pod" if self.pods == 1 else "pods"
        return (
            f"{self.pods} {noun} ({format_cpu(self.cpu)} CPU, {format_memory(self.memory)} memory)"
        )


def capacity(cluster: RayClusterSpec) -> Capacity:
    """Pods of a new cluster built from ``cluster`` (head + workers, replicas clamped to the
    bounds, times numOfHosts) and their CPU and memory requests (limits where requests are unset,
    as Kubernetes defaults them)."""
    head = cluster.head_group_spec.template.spec
    pods = 1
    cpu, memory = _requests(head.containers if head is not None else [])
    for group in cluster.worker_group_specs or []:
        replicas = group.replicas or 0
        low = group.min_replicas or 0
        high = group.max_replicas if group.max_replicas is not None else replicas
        count = max(low, min(replicas, high)) * (group.num_of_hosts or 1)
        spec = group.template.spec
        group_cpu, group_memory = _requests(spec.containers if spec is not None else [])
        pods += count
        cpu += group_cpu * count
        memory += group_memory * count
    return Capacity(pods, cpu, memory)


def _requests(containers: list[Container]) -> tuple[float, float]:
    cpu = memory = 0.0
    for container in containers:
        resources = container.resources
        if resources is None:
            continue
        requests = resources.requests or {}
        limits = resources.limits or {}
        cpu += parse_quantity(requests.get("cpu", limits.get("cpu", 0))) or 0
        memory += parse_quantity(requests.get("memory", limits.get("memory", 0))) or 0
    return cpu, memory


_SUMMARIES: Final = {
    ChangeClass.CREATE: (
        "a new RayCluster is created and the Serve config is submitted once its head is ready"
    ),
    ChangeClass.NONE: "no change to the spec: nothing to do",
    ChangeClass.SERVE_ONLY: "the Serve config is re-applied in place to the running RayCluster",
    ChangeClass.AUTOSCALER_OWNED: (
        "replicas/workersToDelete are owned by the Ray autoscaler: "
        "not propagated to the running RayCluster"
    ),
    ChangeClass.SCALE_BOUNDS: (
        "minReplicas/maxReplicas are patched into the running RayCluster in place"
    ),
    ChangeClass.SETTINGS: (
        "RayService settings are applied in place; the RayCluster and Serve apps are untouched"
    ),
    ChangeClass.CLUSTER_UPGRADE: (
        "zero-downtime upgrade: a new RayCluster is created, traffic moves to it once ready, "
        "then the old one is deleted"
    ),
}


def summary(change: Change) -> str:
    """One sentence for the change's class, e.g. for ``raysvc check``'s text output."""
    return _SUMMARIES[change.kind]


def explain(change: Change, rs: RayServiceV1 | RayServiceV1Alpha1 | None) -> list[str]:
    """Every consequence of the change, one sentence each (at most 120 characters)."""
    cluster = rs.spec.ray_cluster_config if rs is not None else None
    sentences: list[str] = []
    if change.kind is ChangeClass.CREATE:
        size = f" with {capacity(cluster)}" if cluster is not None else ""
        sentences.append(
            f"creates a RayCluster{size}; the Serve config is submitted when its head is ready"
        )
        return sentences
    if Aspect.CLUSTER in change.aspects:
        size = f" with {capacity(cluster)}" if cluster is not None else ""
        sentences.append(
            f"cluster upgrade: a new RayCluster{size} starts before the old one is deleted"
        )
        sentences.append(
            "capacity doubles during the upgrade; traffic moves when the new cluster's apps run"
        )
        if Aspect.SERVE in change.aspects:
            sentences.append("the new Serve config is applied to the new RayCluster only")
        return sentences
    if Aspect.SERVE in change.aspects:
        sentences.append(_SUMMARIES[ChangeClass.SERVE_ONLY])
    if Aspect.SCALE_BOUNDS in change.aspects:
        sentences.append(_SUMMARIES[ChangeClass.SCALE_BOUNDS])
    if Aspect.SETTINGS in change.aspects:
        sentences.append("RayService settings are applied in place")
    if Aspect.AUTOSCALER in change.aspects:
        sentences.append(_SUMMARIES[ChangeClass.AUTOSCALER_OWNED])
    return sentences
