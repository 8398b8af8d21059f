"""Every object a RayCluster owns, as KubeRay would create it, from the RayCluster alone.

The manifests are what the controller POSTs: the head Pod, one worker Pod per group (every Pod
of a group is built the same; the API server names each from its ``generateName``), the head
Service, the headless Service when a group spans several hosts, and the autoscaler's
ServiceAccount, Role and RoleBinding with ``enableInTreeAutoscaling``. Each carries a controller
ownerReference to the RayCluster, so deleting the RayCluster deletes them.

Pure: the input is the RayCluster as the API returns it (a JSON object), the output plain JSON
objects; the same input always builds the same manifests. Check ``checks.spec_errors`` first:
building a cluster with errors raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.raycluster import pods, rbac, services

__all__ = ["Manifests", "build", "multi_host"]


@dataclass(frozen=True, slots=True)
class Manifests:
    """The objects of one RayCluster, ready to POST."""

    head_pod: dict[str, Any]
    worker_pods: tuple[tuple[str, dict[str, Any]], ...]
    """One Pod per worker group, with the group's name, in ``workerGroupSpecs`` order."""
    head_service: dict[str, Any]
    headless_service: dict[str, Any] | None
    """Only when a worker group has ``numOfHosts`` > 1."""
    service_account: dict[str, Any] | None
    """Only with the autoscaler, and when the head template names no ServiceAccount."""
    role: dict[str, Any] | None
    role_binding: dict[str, Any] | None


def multi_host(cluster: Mapping[str, Any]) -> bool:
    """Whether a worker group runs several Pods (hosts) per replica."""
    for group in pods.worker_groups(cluster):
        hosts = group.get("numOfHosts")
        if isinstance(hosts, int) and hosts > 1:
            return True
    return False


def build(cluster: Mapping[str, Any]) -> Manifests:
    """All the manifests of ``cluster``; raises ``ValueError`` if a template has no container."""
    spec = cluster.get("spec")
    autoscaling = isinstance(spec, Mapping) and spec.get("enableInTreeAutoscaling") is True
    return Manifests(
        head_pod=pods.build_head_pod(cluster),
        worker_pods=tuple(
            (str(group.get("groupName", "")), pods.build_worker_pod(cluster, group))
            for group in pods.worker_groups(cluster)
        ),
        head_service=services.build_head_service(cluster),
        headless_service=services.build_headless_service(cluster) if multi_host(cluster) else None,
        service_account=(
            rbac.build_service_account(cluster)
            if autoscaling and not rbac.user_service_account(cluster)
            else None
        ),
        role=rbac.build_role(cluster) if autoscaling else None,
        role_binding=rbac.build_role_binding(cluster) if autoscaling else None,
    )
