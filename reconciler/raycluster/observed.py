"""What one reconcile of one RayCluster reads: the input of ``plan``.

Every object is a JSON object as the API server returns it (what a kubernetes-asyncio informer
cache holds after ``ApiClient.sanitize_for_serialization``, or a raw watch event's ``object``).
Filling an :class:`Observed` from informer caches, for the RayCluster ``<ns>/<name>``:

=====================  ====================================================================
field                  where it comes from (all in namespace ``<ns>``)
=====================  ====================================================================
``cluster``            the RayCluster ``<name>`` (``ray.io/v1``, ``rayclusters``)
``pods``               Pods with label ``ray.io/cluster=<name>``; ``plan`` ignores any whose
                       controller ownerReference is not this RayCluster's uid
``head_service``       the Service named ``lookups(cluster).head_service``, or ``None``
``headless_service``   the Service named ``lookups(cluster).headless_service``, or ``None``
``service_account``    the ServiceAccount ``lookups(cluster).service_account``, or ``None``
``role``               the Role ``lookups(cluster).role`` (``rbac.authorization.k8s.io/v1``)
``role_binding``       the RoleBinding ``lookups(cluster).role_binding``
=====================  ====================================================================

Which RayCluster an event concerns: a Pod's ``ray.io/cluster`` label; a Service's,
ServiceAccount's, Role's or RoleBinding's controller ownerReference (kind ``RayCluster``).
Objects the controller creates carry both, so an informer filtered on the label
``app.kubernetes.io/created-by=kuberay-operator`` plus the ownerReference finds them all.

The cache may lag behind the controller's own writes. ``plan`` is written so that a stale read
costs at most a duplicate that the next reconcile removes (a second head Pod is deleted, surplus
workers are scaled down when the autoscaler is off), but the executor should still wait until
the cache has seen its creates and deletes before the next reconcile of the same key, as
controller-runtime's expectations do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.raycluster import names

__all__ = ["Lookups", "Observed", "lookups"]


@dataclass(frozen=True, slots=True)
class Observed:
    """A RayCluster and what it owns, as read at the start of one reconcile."""

    cluster: Mapping[str, Any]
    pods: tuple[Mapping[str, Any], ...] = ()
    head_service: Mapping[str, Any] | None = None
    headless_service: Mapping[str, Any] | None = None
    service_account: Mapping[str, Any] | None = None
    role: Mapping[str, Any] | None = None
    role_binding: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Lookups:
    """The names an observer reads for one RayCluster (all in its namespace)."""

    namespace: str
    pod_selector: Mapping[str, str]
    head_service: str
    headless_service: str
    service_account: str
    role: str
    role_binding: str


def lookups(cluster: Mapping[str, Any]) -> Lookups:
    """Where the objects of ``cluster`` are, for filling an :class:`Observed`."""
    meta = cluster.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name = str(meta.get("name", ""))
    return Lookups(
        namespace=str(meta.get("namespace", "")),
        pod_selector={names.CLUSTER_LABEL: name},
        head_service=names.head_service_name(cluster),
        headless_service=names.headless_service_name(name),
        service_account=names.autoscaler_account_name(cluster),
        role=names.check_name(name),
        role_binding=names.check_name(name),
    )
