"""The RayService controller's shell: which events wake which RayService, and one reconcile.

A reconcile is ``observe`` (caches and dashboards) -> ``plan`` (pure) -> the executor. Events
from what a RayService owns wake the RayService: a RayCluster by its origin label, a Pod through
its cluster's origin label, a Service through its controller ownerReference.

The Serve submission is this controller's own action: PUT the config, then stamp the outcome on
the RayCluster (the serve hash Ray accepted, or the one it refused with Ray's message) and record
an Event; a refused hash is never retried, a failed call is (with backoff).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from reconciler.actions import MergePatch, RecordEvent
from reconciler.caches import Caches
from reconciler.dashboard import DashboardClient, Refused
from reconciler.events import EventRecorder
from reconciler.execute import Executor
from reconciler.informer import Key, key_of
from reconciler.kube import KubeClient
from reconciler.metrics import Metrics
from reconciler.rayservice import names
from reconciler.rayservice.observe import observe
from reconciler.rayservice.observed import PlanSettings
from reconciler.rayservice.plan import SubmitServeConfig, plan
from reconciler.runner import Runner

__all__ = ["RayServiceController"]

log = logging.getLogger(__name__)

_UPGRADE_OUTCOMES: Final = {
    "TrafficSwitched": "switched",
    "UpgradeCancelled": "cancelled",
    "UpgradeSuperseded": "superseded",
    "UpgradeTimedOut": "timed-out",
}
_MAX_REFUSAL: Final = 1024


class RayServiceController:
    """Keeps every RayService's clusters, Serve config, Services and status."""

    name = "rayservice"

    def __init__(
        self,
        *,
        kube: KubeClient,
        caches: Caches,
        dashboard: DashboardClient,
        recorder: EventRecorder,
        metrics: Metrics,
        settings: PlanSettings | None = None,
        workers: int = 4,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.caches = caches
        self.dashboard = dashboard
        self.metrics = metrics
        self.settings = settings or PlanSettings()
        self.clock = clock
        self.executor = Executor(
            kube,
            controller=self.name,
            recorder=recorder,
            caches=caches.by_kind(),
            metrics=metrics,
            extra=self._perform,
        )
        self.runner = Runner(self.name, self.reconcile, metrics=metrics, workers=workers)
        caches.rayservices.add_handler(self._on_rayservice)
        caches.rayclusters.add_handler(self._on_raycluster)
        caches.pods.add_handler(self._on_pod)
        caches.services.add_handler(self._on_service)

    # events -> keys ----------------------------------------------------------------------
    def _on_rayservice(self, _kind: str, obj: Mapping[str, Any]) -> None:
        self.runner.enqueue(key_of(obj))

    def _origin(self, cluster: Mapping[str, Any] | None) -> Key | None:
        if cluster is None:
            return None
        meta = cluster.get("metadata") or {}
        labels = meta.get("labels") or {}
        if labels.get(names.ORIGIN_CRD) != "RayService" or not labels.get(names.ORIGIN_NAME):
            return None
        return (str(meta.get("namespace", "")), str(labels[names.ORIGIN_NAME]))

    def _on_raycluster(self, _kind: str, obj: Mapping[str, Any]) -> None:
        if (key := self._origin(obj)) is not None:
            self.runner.enqueue(key)

    def _on_pod(self, _kind: str, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        cluster_name = (meta.get("labels") or {}).get(names.CLUSTER_LABEL)
        if not cluster_name:
            return
        cluster = self.caches.rayclusters.get(str(meta.get("namespace", "")), str(cluster_name))
        if (key := self._origin(cluster)) is not None:
            self.runner.enqueue(key)

    def _on_service(self, _kind: str, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") == "RayService":
                self.runner.enqueue((str(meta.get("namespace", "")), str(ref.get("name"))))

    # one reconcile -------------------------------------------------------------------------
    async def reconcile(self, key: Key) -> float | None:
        observed = await observe(key, self.caches, self.dashboard)
        if observed is None:
            return None
        decided = plan(observed, self.clock(), self.settings)
        for action in decided.actions:
            await self.executor.perform(action)
            if isinstance(action, RecordEvent) and action.reason in _UPGRADE_OUTCOMES:
                self.metrics.upgrades.labels(_UPGRADE_OUTCOMES[action.reason]).inc()
        return decided.requeue_after

    async def _perform(self, action: Any) -> None:
        if not isinstance(action, SubmitServeConfig):
            raise TypeError(f"no executor for {type(action).__name__}")
        cluster = action.cluster
        try:
            await self.dashboard.submit(action.url, action.config)
        except Refused as e:
            message = e.message[:_MAX_REFUSAL]
            await self.executor.perform(
                MergePatch(
                    cluster,
                    {
                        "metadata": {
                            "annotations": {
                                names.REFUSED_SERVE_HASH: action.serve_hash,
                                names.REFUSED_MESSAGE: message,
                            }
                        }
                    },
                    why="Ray refused the Serve config",
                )
            )
            await self.executor.perform(
                RecordEvent(
                    action.rayservice,
                    "Warning",
                    "ServeConfigRefused",
                    f"Ray refused the Serve config on {cluster.name} (HTTP {e.status}): {message}",
                )
            )
            return
        await self.executor.perform(
            MergePatch(
                cluster,
                {
                    "metadata": {
                        "annotations": {
                            names.APPLIED_SERVE_HASH: action.serve_hash,
                            names.REFUSED_SERVE_HASH: None,
                            names.REFUSED_MESSAGE: None,
                        }
                    }
                },
                why="Ray accepted the Serve config",
            )
        )
        await self.executor.perform(
            RecordEvent(
                action.rayservice,
                "Normal",
                "ServeConfigSubmitted",
                f"the Serve config was submitted to {cluster.name}",
            )
        )
