"""What the RayService controller does next, decided from an :class:`Observed` snapshot (pure).

``plan(observed, now)`` returns the actions of one reconcile. It acts on hashes, never on diffs:
the goal is the RayService's ``raysvc.io/cluster-hash`` and ``raysvc.io/serve-hash``; each
RayCluster says which cluster hash it was built from and which serve hash Ray accepted on it.

Roles come from the status (``activeServiceStatus``/``pendingServiceStatus``), corrected by the
world: the serve Service's selector names the cluster that really takes traffic (a crash between
switching it and writing status loses nothing), and a cluster built for the goal that the status
does not name (a crash right after creating it) is adopted as pending instead of created twice.

1. clusters: no cluster -> create one; the active cluster's hash differs from the goal -> a
   pending cluster (``upgradeStrategy.type: None``: leave the cluster alone and say so); a newer
   goal replaces the pending cluster; the active hash coming back cancels it; a pending cluster
   slower than ``raysvc.io/upgrade-timeout-seconds`` is deleted; an active cluster whose dashboard
   or applications stay unhealthy past the thresholds gets a replacement (same hash);
2. Serve: the config goes to the pending cluster if there is one, else to the active one (never
   to the active one while a new cluster is about to be prepared); Ray's refusal is final for that
   serve hash;
3. Services: created when the first cluster is ready; moved to the pending cluster once its head
   is Ready and every application RUNNING, which promotes it;
4. the head Pods' ``ray.io/serve`` label from their proxy's health; worker-group bounds patched
   in place; clusters that serve nothing are deleted ``rayClusterDeletionDelaySeconds`` later
   (the deadline is stamped on the cluster, so a restart does not restart the delay);
5. the status, written only when it differs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from reconciler.actions import (
    Create,
    Delete,
    JsonPatch,
    MergePatch,
    Plan,
    RecordEvent,
    Ref,
    WriteStatus,
    ref_of,
)
from reconciler.rayservice import build, names, upkeep
from reconciler.rayservice.observed import ClusterView, Observed, PlanSettings
from reconciler.rayservice.status import cluster_status, desired_status
from reconciler.rayservice.status import unhealthy_since as _unhealthy_since
from reconciler.times import rfc3339

__all__ = ["SubmitServeConfig", "plan"]


@dataclass(frozen=True, slots=True)
class SubmitServeConfig:
    """PUT ``config`` to the cluster's dashboard, then stamp the outcome on the RayCluster."""

    rayservice: Ref
    cluster: Ref
    url: str
    config: Mapping[str, Any]
    serve_hash: str


def plan(observed: Observed, now: dt.datetime, settings: PlanSettings | None = None) -> Plan:
    """The actions of one reconcile of ``observed`` at ``now``."""
    return _Planner(observed, now, settings or PlanSettings()).run()


def _status_name(status: Mapping[str, Any], key: str) -> str | None:
    section = status.get(key)
    name = section.get("rayClusterName") if isinstance(section, Mapping) else None
    return str(name) if name else None


def _seconds(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


class _Planner:
    def __init__(self, o: Observed, now: dt.datetime, settings: PlanSettings) -> None:
        self.o, self.now, self.s = o, now, settings
        self.actions: list[Any] = []
        self.wakeups: list[float] = []
        self.busy = False
        self.rs_ref = ref_of(o.rayservice, precondition=True)
        self.live = {c.name: c for c in o.clusters if not c.deleting}
        self.active = self.live.get(_status_name(o.status, "activeServiceStatus") or "")
        self.pending = self.live.get(_status_name(o.status, "pendingServiceStatus") or "")
        self.goal = o.goal.cluster_hash
        self.deleted: set[str] = set()
        self.creating = False
        self.timed_out = o.status.get("upgradeTimedOut")
        strategy = (o.spec.get("upgradeStrategy") or {}).get("type")
        self.upgrades_enabled = strategy != "None"

    # helpers -----------------------------------------------------------------------------
    def event(self, kind: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.actions.append(RecordEvent(self.rs_ref, kind, reason, message))

    def create_cluster(self, purpose: str, why: str) -> None:
        assert self.goal is not None
        manifest = build.cluster_manifest(
            self.o.rayservice, self.o.goal.cluster_spec, cluster_hash=self.goal, purpose=purpose
        )
        self.actions.append(Create(manifest, why=why))
        self.creating = True
        self.busy = True

    def delete_now(self, cluster: ClusterView, why: str) -> None:
        self.actions.append(Delete(ref_of(cluster.obj, precondition=True), why=why))
        self.deleted.add(cluster.name)

    def ready(self, cluster: ClusterView | None) -> bool:
        """Head Ready, every application RUNNING, on the current serve config."""
        return (
            cluster is not None
            and cluster.head_ready
            and cluster.serve is not None
            and cluster.serve.all_running
            and cluster.applied_serve == self.o.goal.serve_hash
        )

    @property
    def timeout_setting(self) -> int | None:
        raw = (self.o.meta.get("annotations") or {}).get("raysvc.io/upgrade-timeout-seconds")
        try:
            value = int(str(raw))
        except ValueError:
            return None
        return value if value > 0 else None

    def abandoned(self) -> bool:
        """The goal's upgrade timed out before, under the same timeout setting."""
        record = self.timed_out if isinstance(self.timed_out, Mapping) else {}
        return (
            bool(record)
            and record.get("clusterHash") == self.goal
            and record.get("timeoutSeconds") == self.timeout_setting
        )

    # the steps ---------------------------------------------------------------------------
    def run(self) -> Plan:
        o = self.o
        finalizers = list(o.meta.get("finalizers") or [])
        if o.meta.get("deletionTimestamp"):
            return self.deletion(finalizers)
        if names.FINALIZER not in finalizers:
            self.actions.append(
                MergePatch(
                    self.rs_ref,
                    {"metadata": {"finalizers": [*finalizers, names.FINALIZER]}},
                    why="clean up the RayClusters before the RayService goes",
                )
            )
        new_generation = o.status.get("observedGeneration") != o.meta.get("generation")
        if o.goal.errors:
            if new_generation:
                self.event("Warning", "ValidationFailed", "; ".join(o.goal.errors))
            return self.finish()
        if o.goal.computed and new_generation:
            self.event(
                "Normal",
                "AnnotationsComputed",
                "the raysvc.io/ hash annotations are missing (admitted without raysvc's "
                "webhook): the reconciler computed them from the spec",
            )
        self.recover_switch()
        self.adopt()
        self.clusters()
        self.submit()
        self.services()
        self.actions.extend(upkeep.head_labels(self.o, (self.active, self.pending)))
        self.actions.extend(upkeep.bounds(self.o, (self.active, self.pending), self.rs_ref))
        self.dangling()
        return self.finish()

    def deletion(self, finalizers: list[str]) -> Plan:
        if names.FINALIZER not in finalizers:
            return Plan()
        remaining = list(self.o.clusters)
        for cluster in remaining:
            if not cluster.deleting:
                self.delete_now(cluster, "the RayService is being deleted")
        if remaining:
            return Plan(tuple(self.actions), self.s.busy_poll)
        index = finalizers.index(names.FINALIZER)
        path = f"/metadata/finalizers/{index}"
        self.actions.append(
            JsonPatch(
                self.rs_ref,
                [
                    {"op": "test", "path": path, "value": names.FINALIZER},
                    {"op": "remove", "path": path},
                ],
                why="every RayCluster is gone",
            )
        )
        return Plan(tuple(self.actions))

    def recover_switch(self) -> None:
        """The serve Service decides who serves: fix the roles if status lags behind it."""
        service = self.o.services.get(names.serve_service_name(self.o.rayservice))
        selected = ((service or {}).get("spec") or {}).get("selector") or {}
        serving = self.live.get(str(selected.get(names.CLUSTER_LABEL, "")))
        if serving is None or serving is self.active:
            return
        if serving is self.pending or self.active is None:
            self.active, self.pending = serving, None

    def adopt(self) -> None:
        """A cluster built for the goal that the status does not name becomes pending."""
        if self.pending is not None or self.goal is None:
            return
        candidates = [
            c
            for c in self.live.values()
            if c is not self.active and c.delete_after is None and c.built_hash == self.goal
        ]
        if not candidates:
            return
        newest = max(candidates, key=lambda c: (c.created or self.now, c.name))
        wanted = (
            self.active is None
            or newest.purpose == "replace"
            or (self.active.built_hash != self.goal and self.upgrades_enabled)
        )
        if wanted:
            self.pending = newest

    def clusters(self) -> None:
        goal, active, pending = self.goal, self.active, self.pending
        if goal is None:
            return
        if active is None:
            if pending is None:
                self.create_cluster("create", "the RayService has no RayCluster")
            elif pending.built_hash != goal:
                self.delete_now(pending, "the cluster spec changed before it was ready")
                self.pending = None
                self.create_cluster("create", "the cluster spec changed before it was ready")
            return
        if pending is None:
            if active.built_hash != goal:
                if not self.upgrades_enabled or self.abandoned():
                    return
                self.create_cluster("upgrade", "the cluster spec changed")
                self.event(
                    "Normal",
                    "UpgradeStarted",
                    f"the cluster spec changed: a new RayCluster is prepared beside {active.name}; "
                    "traffic moves when its applications run",
                )
            elif (reason := self.unhealthy(active)) is not None:
                self.create_cluster("replace", reason)
                self.event(
                    "Warning",
                    "UnhealthyClusterReplaced",
                    f"{reason}: a new RayCluster is prepared to replace {active.name}",
                )
            return
        if pending.purpose != "replace" and active.built_hash == goal:
            self.delete_now(pending, "the cluster spec is back to the active cluster's")
            self.pending = None
            self.event(
                "Normal",
                "UpgradeCancelled",
                f"the cluster spec is back to {active.name}'s: {pending.name} is deleted",
            )
        elif pending.built_hash != goal:
            self.delete_now(pending, "a newer cluster spec replaces it")
            self.pending = None
            self.event(
                "Normal", "UpgradeSuperseded", f"a newer cluster spec replaces {pending.name}"
            )
            if active.built_hash != goal and self.upgrades_enabled:
                self.create_cluster("upgrade", "a newer cluster spec")
        elif (timeout := self.timeout_setting) is not None and not self.ready(pending):
            created = pending.created or self.now
            deadline = created + dt.timedelta(seconds=timeout)
            if self.now >= deadline:
                self.delete_now(pending, "the upgrade timed out")
                self.pending = None
                self.timed_out = {"clusterHash": goal, "timeoutSeconds": timeout}
                self.event(
                    "Warning",
                    "UpgradeTimedOut",
                    f"{pending.name} was not ready within {timeout}s: it is deleted and "
                    f"{active.name} keeps serving",
                )
            else:
                self.wakeups.append((deadline - self.now).total_seconds())

    def unhealthy(self, active: ClusterView) -> str | None:
        """Why the active cluster must be replaced, per the thresholds; None if it need not."""
        section = cluster_status(active, self.o.status.get("activeServiceStatus"), self.now)
        dashboard, app = _unhealthy_since(section)
        spec = self.o.spec
        for since, limit, what in (
            (
                dashboard,
                _seconds(
                    spec.get("deploymentUnhealthySecondThreshold"),
                    self.s.deployment_unhealthy_default,
                ),
                "the dashboard is unreachable",
            ),
            (
                app,
                _seconds(
                    spec.get("serviceUnhealthySecondThreshold"), self.s.service_unhealthy_default
                ),
                "an application is unhealthy",
            ),
        ):
            if since is None:
                continue
            self.busy = True
            elapsed = (self.now - since).total_seconds()
            if elapsed > limit:
                return f"{what} for more than {limit}s"
            self.wakeups.append(limit - elapsed + 1)
        return None

    def submit(self) -> None:
        goal = self.o.goal
        target = self.pending
        if target is None and not self.creating:
            target = self.active
        if target is None or goal.serve_config is None or goal.serve_hash is None:
            return
        if not target.head_ready:
            self.busy = True
            return
        if target.serve is None or not target.serve.all_running:
            self.busy = True
        if (
            target.applied_serve == goal.serve_hash
            and target.serve is not None
            and not target.serve.settled
        ):
            self.wakeups.append(self.s.settle_poll)
        if target.refused_serve == goal.serve_hash:
            return
        vanished = target.serve is not None and not target.serve.apps
        if target.applied_serve == goal.serve_hash and not vanished:
            return
        if target.serve is not None and target.serve.runs(goal.serve_config):
            # Accepted before a crash lost the stamp: record it, do not submit twice.
            self.actions.append(
                MergePatch(
                    ref_of(target.obj, precondition=True),
                    {"metadata": {"annotations": {names.APPLIED_SERVE_HASH: goal.serve_hash}}},
                    why="Ray already runs this Serve config",
                )
            )
            return
        assert target.head is not None
        port = names.dashboard_port(target.obj)
        self.actions.append(
            SubmitServeConfig(
                rayservice=self.rs_ref,
                cluster=ref_of(target.obj, precondition=True),
                url=f"http://{target.head.ip}:{port}",
                config=goal.serve_config,
                serve_hash=goal.serve_hash,
            )
        )
        self.busy = True

    def services(self) -> None:
        pending, active = self.pending, self.active
        target = pending if pending is not None and self.ready(pending) else active
        if target is None:
            return
        self.actions.extend(upkeep.route(self.o, target))
        if target is not pending:
            return
        self.active, self.pending = pending, None
        if active is None:
            self.event(
                "Normal",
                "ServiceReady",
                f"the applications run on {pending.name}: the head and serve Services point at it",
            )
        else:
            self.event(
                "Normal",
                "TrafficSwitched",
                f"traffic moved from {active.name} to {pending.name}; {active.name} is deleted "
                f"in {self.deletion_delay}s",
            )

    @property
    def deletion_delay(self) -> int:
        return _seconds(
            self.o.spec.get("rayClusterDeletionDelaySeconds"), self.s.deletion_delay_default
        )

    def dangling(self) -> None:
        keep = {c.name for c in (self.active, self.pending) if c is not None}
        delay = self.deletion_delay
        for cluster in self.live.values():
            if cluster.name in keep or cluster.name in self.deleted:
                continue
            deadline = cluster.delete_after
            if deadline is None:
                deadline = self.now + dt.timedelta(seconds=delay)
                self.actions.append(
                    MergePatch(
                        ref_of(cluster.obj, precondition=True),
                        {"metadata": {"annotations": {names.DELETE_AFTER: rfc3339(deadline)}}},
                        why="it serves nothing any more",
                    )
                )
            if self.now >= deadline:
                self.delete_now(cluster, "its deletion delay is over")
                self.event("Normal", "RayClusterDeleted", f"{cluster.name} serves nothing: deleted")
            else:
                self.wakeups.append((deadline - self.now).total_seconds())

    # status ------------------------------------------------------------------------------
    def finish(self) -> Plan:
        status = desired_status(
            self.o,
            active=self.active,
            pending=self.pending,
            timed_out=self.timed_out if self.abandoned() else None,
            upgrades_enabled=self.upgrades_enabled,
            timeout_setting=self.timeout_setting,
            now=self.now,
        )
        if status != dict(self.o.status):
            self.actions.append(WriteStatus(self.rs_ref, status))
        wakeups = list(self.wakeups)
        if self.busy:
            wakeups.append(self.s.busy_poll)
        elif self.active is not None:
            wakeups.append(self.s.idle_poll)
        return Plan(tuple(self.actions), min(wakeups) if wakeups else None)
