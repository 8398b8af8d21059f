"""Names, labels, annotations and ports the RayService controller reads and writes (pure).

Labels and ports are the RayCluster controller's (``reconciler.raycluster``): both controllers
must agree on them, and KubeRay's RayService controller uses its RayCluster controller's.

Names and labels follow KubeRay's conventions, so dashboards, scripts and the Ray autoscaler keep
working: ``<rs>-raycluster-<5>``, ``<rs>-head-svc``, ``<rs>-serve-svc``, the ``ray.io/`` labels.

What the controller persists on each RayCluster it creates (so a restart loses nothing):

=====================================  =========================================================
annotation                             meaning
=====================================  =========================================================
``raysvc.io/cluster-hash``             the RayService cluster hash the RayCluster was built from
``raysvc.io/purpose``                  why it was created: ``create``, ``upgrade`` or ``replace``
                                       (an unhealthy active cluster is being replaced)
``raysvc.io/serve-hash``               the serve hash Ray accepted on this cluster
``raysvc.io/serve-refused-hash``       the serve hash Ray refused (4xx), and
``raysvc.io/serve-refused-message``    Ray's explanation; retried only for a new serve hash
``raysvc.io/delete-after``             when a cluster that serves nothing any more is deleted
=====================================  =========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from reconciler.raycluster import names as labels
from reconciler.raycluster.services import head_service_ports

__all__ = [
    "APPLIED_SERVE_HASH",
    "BUILT_CLUSTER_HASH",
    "DELETE_AFTER",
    "FINALIZER",
    "ORIGIN_CRD",
    "ORIGIN_NAME",
    "PURPOSE",
    "REFUSED_MESSAGE",
    "REFUSED_SERVE_HASH",
    "SERVE_LABEL",
    "cluster_prefix",
    "dashboard_port",
    "head_service_name",
    "serve_port",
    "serve_ports",
    "serve_service_name",
]

FINALIZER: Final = "raysvc.io/rayservice-cleanup"
ORIGIN_NAME: Final = "ray.io/originated-from-cr-name"
ORIGIN_CRD: Final = labels.ORIGINATED_FROM_CRD_LABEL
CLUSTER_LABEL: Final = labels.CLUSTER_LABEL
NODE_TYPE: Final = labels.NODE_TYPE_LABEL
SERVE_LABEL: Final = labels.SERVE_LABEL

BUILT_CLUSTER_HASH: Final = "raysvc.io/cluster-hash"
APPLIED_SERVE_HASH: Final = "raysvc.io/serve-hash"
REFUSED_SERVE_HASH: Final = "raysvc.io/serve-refused-hash"
REFUSED_MESSAGE: Final = "raysvc.io/serve-refused-message"
PURPOSE: Final = "raysvc.io/purpose"
DELETE_AFTER: Final = "raysvc.io/delete-after"


def cluster_prefix(rayservice: str) -> str:
    """The generateName of a RayService's clusters: the API server appends 5 characters."""
    return f"{rayservice}-raycluster-"


def head_service_name(rayservice: str) -> str:
    return f"{rayservice}-head-svc"


def serve_service_name(rayservice: Mapping[str, Any]) -> str:
    """``spec.serveService.metadata.name``, or ``<name>-serve-svc``."""
    spec = rayservice.get("spec") or {}
    custom = ((spec.get("serveService") or {}).get("metadata") or {}).get("name")
    return str(custom) if custom else f"{rayservice['metadata']['name']}-serve-svc"


def _port_named(cluster: Mapping[str, Any], name: str, default: int) -> int:
    return head_service_ports(cluster).get(name, default)


def dashboard_port(cluster: Mapping[str, Any]) -> int:
    """The head container's port named ``dashboard``, else 8265."""
    return _port_named(cluster, "dashboard", 8265)


def serve_port(cluster: Mapping[str, Any]) -> int:
    """The head container's port named ``serve``, else 8000."""
    return _port_named(cluster, "serve", 8000)


def serve_ports(cluster: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The head ports named ``serve`` or ``serve-*``: the serve Service's default ports."""
    return [
        {"name": name, "port": number, "targetPort": number, "protocol": "TCP"}
        for name, number in head_service_ports(cluster).items()
        if name.partition("-")[0] == "serve"
    ]
