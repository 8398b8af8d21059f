"""What the RayService controller observes about one RayService: a frozen snapshot (pure).

``reconciler.rayservice.observe`` fills it from the informer caches and the Ray dashboards;
``reconciler.rayservice.plan`` decides from it alone. Everything a decision needs is here, so a
plan is a function of this value and the time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.dashboard import ServeStatus
from reconciler.rayservice import names
from reconciler.times import parse_time

__all__ = ["ClusterView", "Goal", "Head", "Observed", "PlanSettings", "parse_time"]


@dataclass(frozen=True, slots=True)
class Head:
    """A cluster's head Pod as the controller needs it."""

    name: str
    ip: str
    ready: bool
    serve_label: str | None
    """The Pod's current ``ray.io/serve`` label."""


@dataclass(frozen=True, slots=True)
class ClusterView:
    """One RayCluster owned by the RayService, with what its annotations and its head say."""

    obj: Mapping[str, Any]
    head: Head | None = None
    serve: ServeStatus | None = None
    """Serve's answer; None when it was not asked (head not ready) or did not answer."""
    dashboard_error: str | None = None
    """Why the dashboard did not answer, when it was asked."""
    proxy_healthy: bool | None = None
    """The head's Serve proxy health; None when not probed."""

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def uid(self) -> str:
        return str(self.obj["metadata"].get("uid", ""))

    def _annotation(self, key: str) -> str | None:
        value = (self.obj["metadata"].get("annotations") or {}).get(key)
        return str(value) if value is not None else None

    @property
    def built_hash(self) -> str | None:
        return self._annotation(names.BUILT_CLUSTER_HASH)

    @property
    def applied_serve(self) -> str | None:
        return self._annotation(names.APPLIED_SERVE_HASH)

    @property
    def refused_serve(self) -> str | None:
        return self._annotation(names.REFUSED_SERVE_HASH)

    @property
    def refused_message(self) -> str:
        return self._annotation(names.REFUSED_MESSAGE) or ""

    @property
    def purpose(self) -> str:
        return self._annotation(names.PURPOSE) or "create"

    @property
    def delete_after(self) -> dt.datetime | None:
        return parse_time(self._annotation(names.DELETE_AFTER))

    @property
    def created(self) -> dt.datetime | None:
        return parse_time(self.obj["metadata"].get("creationTimestamp"))

    @property
    def deleting(self) -> bool:
        return bool(self.obj["metadata"].get("deletionTimestamp"))

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.obj.get("spec") or {}

    @property
    def head_ready(self) -> bool:
        return self.head is not None and self.head.ready and bool(self.head.ip)


@dataclass(frozen=True, slots=True)
class Goal:
    """What the RayService asks for: the target hashes and what to build and submit."""

    cluster_hash: str | None
    serve_hash: str | None
    cluster_spec: Mapping[str, Any]
    """The defaulted ``rayClusterConfig``."""
    serve_config: Mapping[str, Any] | None
    """The Serve config to submit (serveConfigV2 as JSON); None when there is none."""
    computed: bool = False
    """The ``raysvc.io/`` hash annotations were absent and the hashes were computed here."""
    errors: tuple[str, ...] = ()
    """Validation errors (only checked when the webhook did not annotate the object)."""


@dataclass(frozen=True, slots=True)
class PlanSettings:
    """Timings of the RayService controller (seconds)."""

    busy_poll: float = 2.0
    """Look again this soon while something is moving (an upgrade, a head starting, bad health)."""
    settle_poll: float = 0.5
    """Look again this soon while the Serve config just applied settles, so the status shows
    each deployment's moves (MangoStand UPDATING, then HEALTHY) as they happen."""
    idle_poll: float = 60.0
    """Look again this late when all is well (health thresholds are minutes long)."""
    deployment_unhealthy_default: int = 300
    service_unhealthy_default: int = 900
    deletion_delay_default: int = 60


@dataclass(frozen=True, slots=True)
class Observed:
    """One RayService and everything it owns, as last seen."""

    rayservice: Mapping[str, Any]
    goal: Goal
    clusters: tuple[ClusterView, ...] = ()
    services: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Services owned by the RayService, by name."""
    serve_endpoints: Mapping[str, int] = field(default_factory=dict)
    """Ready Pods labelled ``ray.io/serve=true``, by cluster name."""

    @property
    def meta(self) -> Mapping[str, Any]:
        meta: Mapping[str, Any] = self.rayservice["metadata"]
        return meta

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.rayservice.get("spec") or {}

    @property
    def status(self) -> Mapping[str, Any]:
        return self.rayservice.get("status") or {}

    def cluster(self, name: str | None) -> ClusterView | None:
        return next((c for c in self.clusters if c.name == name), None) if name else None
