"""Gather what the RayService controller decides from: caches, then the Ray dashboards (I/O).

The objects come from the shared informer caches (no API call). For each cluster that may serve
(every owned cluster not yet marked for deletion) whose head Pod is Ready, the dashboard's Serve
status and the head proxy's health are asked for concurrently; a dashboard that does not answer
is recorded as such (the plan's health thresholds count it), not raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from reconciler.caches import CLUSTER, OWNER, Caches
from reconciler.dashboard import DashboardClient, DashboardError
from reconciler.informer import Key
from reconciler.raycluster import replicas
from reconciler.rayservice import names
from reconciler.rayservice.goal import goal_of
from reconciler.rayservice.observed import ClusterView, Head, Observed

__all__ = ["head_view", "observe", "pod_ready"]


def pod_ready(pod: Mapping[str, Any]) -> bool:
    """Running and Ready, and not being deleted."""
    return replicas.is_active(pod) and replicas.is_running_and_ready(pod)


def head_view(pods: list[dict[str, Any]]) -> Head | None:
    """The head Pod the RayCluster controller keeps (the one that will go on serving)."""
    pod = replicas.head_pod(pods)
    if pod is None:
        return None
    status = pod.get("status") or {}
    return Head(
        name=str(pod["metadata"]["name"]),
        ip=str(status.get("podIP") or ""),
        ready=pod_ready(pod),
        serve_label=(pod["metadata"].get("labels") or {}).get(names.SERVE_LABEL),
    )


async def _look(
    cluster: dict[str, Any], head: Head | None, dashboard: DashboardClient
) -> ClusterView:
    view = ClusterView(cluster, head=head)
    if view.delete_after is not None or view.deleting or not view.head_ready:
        return view
    assert head is not None
    base = f"http://{head.ip}:{names.dashboard_port(cluster)}"
    serve_status, proxy = await asyncio.gather(
        dashboard.applications(base),
        dashboard.proxy_healthy(head.ip, names.serve_port(cluster)),
        return_exceptions=True,
    )
    if isinstance(proxy, BaseException):
        raise proxy
    if isinstance(serve_status, DashboardError):
        return ClusterView(cluster, head, None, str(serve_status), proxy)
    if isinstance(serve_status, BaseException):
        raise serve_status
    return ClusterView(cluster, head, serve_status, None, proxy)


async def observe(key: Key, caches: Caches, dashboard: DashboardClient) -> Observed | None:
    """The snapshot of the RayService ``key``; None when it does not exist."""
    namespace, name = key
    rayservice = caches.rayservices.get(namespace, name)
    if rayservice is None:
        return None
    uid = str(rayservice["metadata"].get("uid", ""))
    clusters = caches.rayclusters.by_index(OWNER, uid)
    pods = {
        c["metadata"]["name"]: caches.pods.by_index(CLUSTER, f"{namespace}/{c['metadata']['name']}")
        for c in clusters
    }
    views = await asyncio.gather(
        *(_look(c, head_view(pods[c["metadata"]["name"]]), dashboard) for c in clusters)
    )
    endpoints = {
        cluster_name: sum(
            1
            for p in cluster_pods
            if (p["metadata"].get("labels") or {}).get(names.SERVE_LABEL) == "true" and pod_ready(p)
        )
        for cluster_name, cluster_pods in pods.items()
    }
    services = {s["metadata"]["name"]: s for s in caches.services.by_index(OWNER, uid)}
    return Observed(
        rayservice=rayservice,
        goal=goal_of(rayservice),
        clusters=tuple(sorted(views, key=lambda v: v.name)),
        services=services,
        serve_endpoints=endpoints,
    )
