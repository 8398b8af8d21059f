"""The reconciler's Prometheus metrics, in a registry of their own (one per process)."""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Counters and histograms every controller shares, labelled by controller name."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.reconciles = Counter(
            "raysvc_reconciles",
            "Reconciles finished, by controller and result (done, requeue, error).",
            ["controller", "result"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "raysvc_reconcile_duration_seconds",
            "Time one reconcile took, observe and act included.",
            ["controller"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "raysvc_queue_depth",
            "Keys waiting to be reconciled now (timers excluded).",
            ["controller"],
            registry=self.registry,
        )
        self.api_writes = Counter(
            "raysvc_api_writes",
            "Writes to the Kubernetes API, by controller and verb.",
            ["controller", "verb"],
            registry=self.registry,
        )
        self.dashboard_calls = Counter(
            "raysvc_dashboard_calls",
            "Calls to Ray dashboards, by call (get, put, proxy-health) and outcome.",
            ["call", "outcome"],
            registry=self.registry,
        )
        self.upgrades = Counter(
            "raysvc_upgrades",
            "Cluster upgrades ended, by outcome (switched, cancelled, superseded, timed-out).",
            ["outcome"],
            registry=self.registry,
        )
        self.leader = Gauge(
            "raysvc_leader",
            "1 while this replica holds the leader Lease (or runs without leader election).",
            registry=self.registry,
        )
