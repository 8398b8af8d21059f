"""The objects a RayService owns, as manifests (pure): its RayClusters and its two Services.

- A **RayCluster** from the defaulted ``rayClusterConfig``: generateName ``<rs>-raycluster-``,
  the RayService's labels plus the two origin labels, the cluster hash it was built from and why
  it exists (``reconciler.rayservice.names``), a controller ownerReference to the RayService.
- ``<rs>-head-svc``: the active cluster's head Pod, with its ports; headless unless the head group
  asks for another service type (KubeRay's default).
- ``<rs>-serve-svc`` (or ``spec.serveService``'s name): the active cluster's Pods labelled
  ``ray.io/serve=true``, on the ``serve`` ports (or ``spec.serveService``'s ports and type).

Only the fields built here are compared with the live objects (``owned_service_fields``), so what
the API server adds (a cluster IP, defaults) is never fought over.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from reconciler.raycluster.services import build_head_service
from reconciler.rayservice import names

__all__ = [
    "cluster_manifest",
    "head_service",
    "owner_reference",
    "serve_service",
    "service_patch",
]


def owner_reference(rayservice: Mapping[str, Any]) -> dict[str, Any]:
    meta = rayservice["metadata"]
    return {
        "apiVersion": str(rayservice.get("apiVersion", "ray.io/v1")),
        "kind": "RayService",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _origin_labels(rayservice: Mapping[str, Any]) -> dict[str, str]:
    return {names.ORIGIN_NAME: str(rayservice["metadata"]["name"]), names.ORIGIN_CRD: "RayService"}


def cluster_manifest(
    rayservice: Mapping[str, Any],
    cluster_spec: Mapping[str, Any],
    *,
    cluster_hash: str,
    purpose: str,
) -> dict[str, Any]:
    """A new RayCluster for ``rayservice`` from its defaulted ``cluster_spec``."""
    meta = rayservice["metadata"]
    labels = {**(meta.get("labels") or {}), **_origin_labels(rayservice)}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {
            "generateName": names.cluster_prefix(str(meta["name"])),
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": {names.BUILT_CLUSTER_HASH: cluster_hash, names.PURPOSE: purpose},
            "ownerReferences": [owner_reference(rayservice)],
        },
        "spec": copy.deepcopy(dict(cluster_spec)),
    }


def head_service(rayservice: Mapping[str, Any], cluster: Mapping[str, Any]) -> dict[str, Any]:
    """``<rs>-head-svc`` selecting ``cluster``'s head Pod: the cluster's own head Service
    (``reconciler.raycluster``), renamed, relabelled and owned by the RayService, as KubeRay
    builds it."""
    rs_name = str(rayservice["metadata"]["name"])
    service = build_head_service(cluster)
    meta = service["metadata"]
    meta["name"] = names.head_service_name(rs_name)
    meta["labels"] = {
        **_origin_labels(rayservice),
        names.NODE_TYPE: "head",
        "ray.io/identifier": f"{rs_name}-head",
    }
    meta["ownerReferences"] = [owner_reference(rayservice)]
    return service


def serve_service(rayservice: Mapping[str, Any], cluster: Mapping[str, Any]) -> dict[str, Any]:
    """The serve Service selecting ``cluster``'s serving Pods."""
    rs_name = str(rayservice["metadata"]["name"])
    spec = rayservice.get("spec") or {}
    template = spec.get("serveService") or {}
    template_meta = template.get("metadata") or {}
    template_spec = copy.deepcopy(dict(template.get("spec") or {}))
    cluster_spec = cluster.get("spec") or {}
    head_type = (cluster_spec.get("headGroupSpec") or {}).get("serviceType")
    template_spec["type"] = str(template_spec.get("type") or head_type or "ClusterIP")
    template_spec["selector"] = {
        names.CLUSTER_LABEL: str(cluster["metadata"]["name"]),
        names.SERVE_LABEL: "true",
    }
    if not template_spec.get("ports"):
        template_spec["ports"] = names.serve_ports(cluster) or [
            {"name": "serve", "port": 8000, "targetPort": 8000, "protocol": "TCP"}
        ]
    metadata: dict[str, Any] = {
        "name": names.serve_service_name(rayservice),
        "namespace": rayservice["metadata"]["namespace"],
        "labels": {
            **(template_meta.get("labels") or {}),
            **_origin_labels(rayservice),
            names.SERVE_LABEL: f"{rs_name}-serve",
        },
        "ownerReferences": [owner_reference(rayservice)],
    }
    if template_meta.get("annotations"):
        metadata["annotations"] = dict(template_meta["annotations"])
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": template_spec}


def _normal_ports(ports: object) -> list[dict[str, Any]]:
    out = []
    for port in ports if isinstance(ports, list) else []:
        if not isinstance(port, Mapping):
            continue
        entry = {k: v for k, v in port.items() if k != "nodePort"}
        entry.setdefault("protocol", "TCP")
        entry.setdefault("targetPort", entry.get("port"))
        out.append(entry)
    return out


def service_patch(desired: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch that brings ``live`` to ``desired`` in the fields this controller owns
    (selector, ports, type, its labels and annotations); None when nothing differs.

    Labels and annotations others added are left alone; a cluster IP or node ports the API
    server assigned are never compared.
    """
    want_meta, have_meta = desired.get("metadata") or {}, live.get("metadata") or {}
    want, have = desired.get("spec") or {}, live.get("spec") or {}
    patch_spec: dict[str, Any] = {}
    want_selector = dict(want.get("selector") or {})
    have_selector = dict(have.get("selector") or {})
    if want_selector != have_selector:
        patch_spec["selector"] = {
            **{key: None for key in have_selector if key not in want_selector},
            **want_selector,
        }
    if _normal_ports(want.get("ports")) != _normal_ports(have.get("ports")):
        patch_spec["ports"] = want.get("ports")
    if (want.get("type") or "ClusterIP") != (have.get("type") or "ClusterIP"):
        patch_spec["type"] = want.get("type")
    patch_meta: dict[str, Any] = {}
    for field in ("labels", "annotations"):
        wanted = want_meta.get(field) or {}
        present = have_meta.get(field) or {}
        missing = {k: v for k, v in wanted.items() if present.get(k) != v}
        if missing:
            patch_meta[field] = missing
    patch: dict[str, Any] = {}
    if patch_spec:
        patch["spec"] = patch_spec
    if patch_meta:
        patch["metadata"] = patch_meta
    return patch or None
