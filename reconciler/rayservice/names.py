"""Names, labels, annotations and ports the RayService controller reads and writes (pure).

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

__all__ = [
    "APPLIED_SERVE_HASH",
    "BUILT_CLUSTER_HASH",
    "DEFAULT_PORTS",
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
    "head_ports",
    "head_service_name",
    "ray_container",
    "serve_port",
    "serve_ports",
    "serve_service_name",
]

FINALIZER: Final = "raysvc.io/rayservice-cleanup"
ORIGIN_NAME: Final = "ray.io/originated-from-cr-name"
ORIGIN_CRD: Final = "ray.io/originated-from-crd"
CLUSTER_LABEL: Final = "ray.io/cluster"
NODE_TYPE: Final = "ray.io/node-type"
SERVE_LABEL: Final = "ray.io/serve"

BUILT_CLUSTER_HASH: Final = "raysvc.io/cluster-hash"
APPLIED_SERVE_HASH: Final = "raysvc.io/serve-hash"
REFUSED_SERVE_HASH: Final = "raysvc.io/serve-refused-hash"
REFUSED_MESSAGE: Final = "raysvc.io/serve-refused-message"
PURPOSE: Final = "raysvc.io/purpose"
DELETE_AFTER: Final = "raysvc.io/delete-after"

DEFAULT_PORTS: Final = (
    ("client", 10001),
    ("gcs-server", 6379),
    ("dashboard", 8265),
    ("metrics", 8080),
    ("serve", 8000),
)
"""KubeRay's head ports when the head container declares none; ``metrics`` is always added."""


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


def ray_container(cluster_spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """The head's Ray container (the first one, as for KubeRay); empty if there is none."""
    template = (cluster_spec.get("headGroupSpec") or {}).get("template") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    first = containers[0] if containers else {}
    return first if isinstance(first, Mapping) else {}


def head_ports(cluster_spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The head Service's ports: the Ray container's, or KubeRay's defaults; metrics added."""
    declared = ray_container(cluster_spec).get("ports") or []
    ports: list[dict[str, Any]] = []
    for port in declared:
        number = port.get("containerPort")
        if not isinstance(number, int):
            continue
        entry: dict[str, Any] = {
            "name": str(port.get("name") or f"{number}-port"),
            "port": number,
            "targetPort": number,
            "protocol": str(port.get("protocol") or "TCP"),
        }
        if port.get("appProtocol"):
            entry["appProtocol"] = port["appProtocol"]
        ports.append(entry)
    if not ports:
        ports = [
            {"name": name, "port": number, "targetPort": number, "protocol": "TCP"}
            for name, number in DEFAULT_PORTS
        ]
    if not any(p["name"] == "metrics" for p in ports):
        ports.append({"name": "metrics", "port": 8080, "targetPort": 8080, "protocol": "TCP"})
    return ports


def serve_ports(cluster_spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The head ports named ``serve`` or ``serve-*`` (the serve Service's default ports)."""
    return [p for p in head_ports(cluster_spec) if p["name"].partition("-")[0] == "serve"]


def _port_named(cluster_spec: Mapping[str, Any], name: str, default: int) -> int:
    for port in head_ports(cluster_spec):
        if port["name"] == name:
            return int(port["port"])
    return default


def dashboard_port(cluster_spec: Mapping[str, Any]) -> int:
    """The head container's port named ``dashboard``, else 8265."""
    return _port_named(cluster_spec, "dashboard", 8265)


def serve_port(cluster_spec: Mapping[str, Any]) -> int:
    """The head container's port named ``serve``, else 8000."""
    return _port_named(cluster_spec, "serve", 8000)
