"""The RayService's status, in KubeRay's shape, computed from what was observed (pure).

``serviceStatus``, ``numServeEndpoints``, ``observedGeneration``, ``conditions`` (``Ready``,
``UpgradeInProgress``, and raysvc's ``ServeConfigApplied`` and ``ClusterSpecApplied``),
``activeServiceStatus`` and ``pendingServiceStatus`` (``rayClusterName``, ``rayClusterStatus``,
``applicationStatuses`` with each deployment's status).

Nothing here ticks: every time in it is the time something changed (a condition's transition, an
application's status change, the first moment the dashboard or an application went bad). An idle
RayService therefore computes the status it already has, and the controller writes nothing.
raysvc adds two fields KubeRay keeps in memory, so a restart does not reset them:
``dashboardUnreachableSince`` on a cluster's status and ``unhealthySince`` on an application.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from reconciler.dashboard import ServeStatus
from reconciler.rayservice.observed import ClusterView, Observed
from reconciler.times import parse_time, rfc3339

__all__ = [
    "Condition",
    "cluster_status",
    "conditions",
    "desired_status",
    "rfc3339",
    "unhealthy_since",
]

UNHEALTHY_APP: Final = frozenset({"DEPLOY_FAILED", "UNHEALTHY"})


@dataclass(frozen=True, slots=True)
class Condition:
    """A metav1.Condition without its transition time (added by :func:`conditions`)."""

    type: str
    status: bool
    reason: str
    message: str = ""


def conditions(
    previous: object, wanted: list[Condition], *, generation: int, now: dt.datetime
) -> list[dict[str, Any]]:
    """The conditions list: ``lastTransitionTime`` kept unless the status flips."""
    before = (
        {c.get("type"): c for c in previous if isinstance(c, Mapping)}
        if isinstance(previous, list)
        else {}
    )
    out = []
    for condition in wanted:
        status = "True" if condition.status else "False"
        old = before.get(condition.type) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else None
        out.append(
            {
                "type": condition.type,
                "status": status,
                "reason": condition.reason,
                "message": condition.message,
                "observedGeneration": generation,
                "lastTransitionTime": since or rfc3339(now),
            }
        )
    return out


def _since(previous: Mapping[str, Any], key: str, now: dt.datetime) -> str:
    value = previous.get(key)
    return str(value) if value else rfc3339(now)


def _entry(
    status: str, message: str, previous: Mapping[str, Any], now: dt.datetime
) -> dict[str, Any]:
    entry: dict[str, Any] = {"status": status}
    if message:
        entry["message"] = message
    same = previous.get("status") == status
    entry["lastUpdateTime"] = (
        str(previous["lastUpdateTime"]) if same and previous.get("lastUpdateTime") else rfc3339(now)
    )
    return entry


def _applications(
    serve: ServeStatus, previous: Mapping[str, Any], now: dt.datetime
) -> dict[str, Any]:
    apps: dict[str, Any] = {}
    for name, app in sorted(serve.apps.items()):
        before = previous.get(name) if isinstance(previous.get(name), Mapping) else {}
        assert isinstance(before, Mapping)
        entry = _entry(app.status, app.message, before, now)
        if app.status in UNHEALTHY_APP:
            entry["unhealthySince"] = _since(before, "unhealthySince", now)
        old_deps = before.get("serveDeploymentStatuses")
        old_deps = old_deps if isinstance(old_deps, Mapping) else {}
        deps = {}
        for dep_name, dep in sorted(app.deployments.items()):
            old_dep = old_deps.get(dep_name)
            deps[dep_name] = _entry(
                dep.status, dep.message, old_dep if isinstance(old_dep, Mapping) else {}, now
            )
        if deps:
            entry["serveDeploymentStatuses"] = deps
        apps[name] = entry
    return apps


def cluster_status(cluster: ClusterView, previous: object, now: dt.datetime) -> dict[str, Any]:
    """``activeServiceStatus``/``pendingServiceStatus`` for ``cluster``.

    ``previous`` is the same section of the last status; its application statuses and times
    carry over while the dashboard does not answer, when they are about the same cluster.
    """
    before = previous if isinstance(previous, Mapping) else {}
    same_cluster = before.get("rayClusterName") == cluster.name
    old_apps = before.get("applicationStatuses") if same_cluster else None
    old_apps = old_apps if isinstance(old_apps, Mapping) else {}
    section: dict[str, Any] = {"rayClusterName": cluster.name}
    ray_status = cluster.obj.get("status")
    if isinstance(ray_status, Mapping) and ray_status:
        section["rayClusterStatus"] = dict(ray_status)
    if cluster.serve is not None:
        apps = _applications(cluster.serve, old_apps, now)
    else:
        apps = dict(old_apps)
    if apps:
        section["applicationStatuses"] = apps
    if cluster.serve is None and (cluster.dashboard_error is not None or not cluster.head_ready):
        section["dashboardUnreachableSince"] = _since(
            before if same_cluster else {}, "dashboardUnreachableSince", now
        )
    return section


def unhealthy_since(section: Mapping[str, Any]) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(dashboard unreachable since, earliest application unhealthy since) of a section."""
    dashboard = parse_time(section.get("dashboardUnreachableSince"))
    earliest: dt.datetime | None = None
    apps = section.get("applicationStatuses")
    for app in apps.values() if isinstance(apps, Mapping) else ():
        since = parse_time(app.get("unhealthySince")) if isinstance(app, Mapping) else None
        if since is not None and (earliest is None or since < earliest):
            earliest = since
    return dashboard, earliest


def desired_status(
    o: Observed,
    *,
    active: ClusterView | None,
    pending: ClusterView | None,
    timed_out: Mapping[str, Any] | None,
    upgrades_enabled: bool,
    timeout_setting: int | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """The whole status after a plan's decisions (roles as the plan left them).

    ``timed_out`` is the record of an upgrade to the goal that timed out (kept while the goal
    and the timeout setting stay the same).
    """
    previous = o.status
    generation = int(o.meta.get("generation") or 0)
    status: dict[str, Any] = {"observedGeneration": generation}
    if o.goal.errors:
        for key in ("activeServiceStatus", "pendingServiceStatus"):
            if key in previous:
                status[key] = previous[key]
    else:
        for key, cluster in (("activeServiceStatus", active), ("pendingServiceStatus", pending)):
            if cluster is not None:
                status[key] = cluster_status(cluster, previous.get(key), now)
    endpoints = o.serve_endpoints.get(active.name, 0) if active else 0
    status["numServeEndpoints"] = endpoints
    status["serviceStatus"] = "Running" if endpoints > 0 else ""
    if timed_out:
        status["upgradeTimedOut"] = dict(timed_out)
    wanted = [_ready(o, endpoints), _upgrade(o, active, pending, timed_out, timeout_setting)]
    target = pending or active
    if target is not None and o.goal.serve_hash is not None and not o.goal.errors:
        wanted.append(_serve_applied(o, target))
    if active is not None and active.built_hash != o.goal.cluster_hash and not upgrades_enabled:
        wanted.append(
            Condition(
                "ClusterSpecApplied",
                False,
                "UpgradeStrategyNone",
                "upgradeStrategy.type is None: the cluster spec change is not applied; "
                "Serve config changes still are",
            )
        )
    status["conditions"] = conditions(
        previous.get("conditions"), wanted, generation=generation, now=now
    )
    return status


def _ready(o: Observed, endpoints: int) -> Condition:
    if o.goal.errors:
        return Condition("Ready", False, "ValidationFailed", "; ".join(o.goal.errors))
    if endpoints > 0:
        return Condition("Ready", True, "NonZeroServeEndpoints", f"{endpoints} serve endpoints")
    was_ready = any(
        isinstance(c, Mapping)
        and c.get("type") == "Ready"
        and c.get("reason") in ("NonZeroServeEndpoints", "ZeroServeEndpoints")
        for c in o.status.get("conditions") or []
    )
    if was_ready:
        return Condition("Ready", False, "ZeroServeEndpoints", "no serve endpoint is ready")
    return Condition("Ready", False, "Initializing", "waiting for the applications")


def _upgrade(
    o: Observed,
    active: ClusterView | None,
    pending: ClusterView | None,
    timed_out: Mapping[str, Any] | None,
    timeout_setting: int | None,
) -> Condition:
    if active is not None and pending is not None:
        why = (
            "replacing an unhealthy cluster"
            if pending.purpose == "replace"
            else "the cluster spec changed"
        )
        return Condition(
            "UpgradeInProgress",
            True,
            "BothActivePendingClustersExist",
            f"{pending.name} is prepared to replace {active.name}: {why}",
        )
    if timed_out and active is not None and active.built_hash != o.goal.cluster_hash:
        return Condition(
            "UpgradeInProgress",
            False,
            "UpgradeTimedOut",
            f"the new cluster was not ready within {timeout_setting}s; {active.name} keeps "
            "serving (change the spec or the timeout annotation to try again)",
        )
    if active is None:
        return Condition("UpgradeInProgress", False, "NoActiveCluster")
    return Condition("UpgradeInProgress", False, "NoPendingCluster")


def _serve_applied(o: Observed, target: ClusterView) -> Condition:
    if target.refused_serve == o.goal.serve_hash:
        return Condition("ServeConfigApplied", False, "Refused", target.refused_message)
    if target.applied_serve == o.goal.serve_hash:
        return Condition("ServeConfigApplied", True, "Applied", f"accepted by {target.name}")
    return Condition("ServeConfigApplied", False, "Pending", f"not yet submitted to {target.name}")
