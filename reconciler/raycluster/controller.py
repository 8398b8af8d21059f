"""The RayCluster controller's shell: which events wake which RayCluster, and one reconcile.

A reconcile fills :class:`Observed` from the shared caches (no API call: ``observed`` says where
each object is), asks ``plan`` and performs its actions. Events from what a RayCluster owns wake
it: a Pod by its ``ray.io/cluster`` label; a Service, ServiceAccount, Role or RoleBinding by its
controller ownerReference. The executor waits until the cache has seen each write before the
key can be reconciled again, so a lagging cache never makes a second head.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.caches import CLUSTER, Caches
from reconciler.events import EventRecorder
from reconciler.execute import Executor
from reconciler.informer import Informer, Key, key_of
from reconciler.kube import KubeClient
from reconciler.metrics import Metrics
from reconciler.raycluster import names
from reconciler.raycluster.observed import Observed, lookups
from reconciler.raycluster.plan import plan
from reconciler.runner import Runner

__all__ = ["RayClusterController"]


class RayClusterController:
    """Keeps every RayCluster's Pods, head Service, autoscaler RBAC and status."""

    name = "raycluster"

    def __init__(
        self,
        *,
        kube: KubeClient,
        caches: Caches,
        recorder: EventRecorder,
        metrics: Metrics,
        workers: int = 4,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.caches = caches
        self.clock = clock
        self.executor = Executor(
            kube,
            controller=self.name,
            recorder=recorder,
            caches=caches.by_kind(),
            metrics=metrics,
        )
        self.runner = Runner(self.name, self.reconcile, metrics=metrics, workers=workers)
        caches.rayclusters.add_handler(self._on_cluster)
        caches.pods.add_handler(self._on_pod)
        for informer in (caches.services, *caches.rbac()):
            informer.add_handler(self._on_owned)

    def _on_cluster(self, _kind: str, obj: Mapping[str, Any]) -> None:
        self.runner.enqueue(key_of(obj))

    def _on_pod(self, _kind: str, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        cluster = (meta.get("labels") or {}).get(names.CLUSTER_LABEL)
        if cluster:
            self.runner.enqueue((str(meta.get("namespace", "")), str(cluster)))

    def _on_owned(self, _kind: str, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") == "RayCluster":
                self.runner.enqueue((str(meta.get("namespace", "")), str(ref.get("name"))))

    def observe(self, key: Key) -> Observed | None:
        namespace, name = key
        cluster = self.caches.rayclusters.get(namespace, name)
        if cluster is None:
            return None
        where = lookups(cluster)
        serviceaccounts, roles, rolebindings = self.caches.rbac()

        def get(informer: Informer, object_name: str) -> Mapping[str, Any] | None:
            return informer.get(namespace, object_name)

        return Observed(
            cluster=cluster,
            pods=tuple(self.caches.pods.by_index(CLUSTER, f"{namespace}/{name}")),
            head_service=get(self.caches.services, where.head_service),
            headless_service=get(self.caches.services, where.headless_service),
            service_account=get(serviceaccounts, where.service_account),
            role=get(roles, where.role),
            role_binding=get(rolebindings, where.role_binding),
        )

    async def reconcile(self, key: Key) -> float | None:
        observed = self.observe(key)
        if observed is None:
            return None
        await self.executor.run(plan(observed, self.clock()).actions)
        return None
