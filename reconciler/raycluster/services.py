"""The Services of a RayCluster: ``<cluster>-head-svc`` and, for multi-host groups, a headless one.

From ``ray-operator/controllers/ray/common/service.go`` (``BuildServiceForHeadPod``,
``getServicePorts``, ``BuildHeadlessServiceForRayCluster``) and ``raycluster_controller.go``
(``reconcileHeadService``):

- ports: every port the head's Ray container declares (an unnamed one is named
  ``<port>-port``), or, when it declares none, the defaults ``client`` 10001, ``gcs-server``
  6379, ``dashboard`` 8265, ``metrics`` 8080, ``serve`` 8000; ``metrics`` 8080 is always there;
  each with ``appProtocol: tcp``, sorted by name;
- selector and labels: ``ray.io/cluster``, ``ray.io/node-type: head``, ``ray.io/identifier``,
  ``app.kubernetes.io/name`` (the head template's, else ``kuberay``), ``app.kubernetes.io/
  created-by``; annotations from ``headServiceAnnotations``;
- headless (``clusterIP: None``, ``publishNotReadyAddresses: true``) unless
  ``headGroupSpec.serviceType`` asks for another type: a cluster has one head, and workers must
  reach it while its readiness probe still fails;
- ``headGroupSpec.headService`` is a template: KubeRay's selector, labels and annotations win,
  its ports come first, its name, type and the rest are kept;
- the headless ``<cluster>-headless`` Service selects the workers, for multi-host groups.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from reconciler.raycluster import names

__all__ = ["build_head_service", "build_headless_service", "head_service_ports"]

_DEFAULT_PORTS: Final = {
    "client": 10001,
    "gcs-server": 6379,
    "dashboard": 8265,
    "metrics": 8080,
    "serve": 8000,
}


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _head_group(cluster: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(_mapping(cluster.get("spec")).get("headGroupSpec"))


def head_service_ports(cluster: Mapping[str, Any]) -> dict[str, int]:
    """Port name to number, as the head Service exposes them."""
    containers = _mapping(_mapping(_head_group(cluster).get("template")).get("spec")).get(
        "containers"
    )
    declared: dict[str, int] = {}
    if isinstance(containers, list) and containers and isinstance(containers[0], Mapping):
        for port in containers[0].get("ports") or ():
            number = _mapping(port).get("containerPort")
            if not isinstance(number, int):
                continue
            declared[str(_mapping(port).get("name") or f"{number}-port")] = number
    ports = declared or dict(_DEFAULT_PORTS)
    ports.setdefault("metrics", _DEFAULT_PORTS["metrics"])
    return ports


def build_head_service(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """The head Service of ``cluster``, ready to POST."""
    meta = _mapping(cluster.get("metadata"))
    name = str(meta.get("name", ""))
    head = _head_group(cluster)
    template_labels = _mapping(
        _mapping(_mapping(head.get("template")).get("metadata")).get("labels")
    )
    selector = {
        names.CLUSTER_LABEL: name,
        names.NODE_TYPE_LABEL: "head",
        names.IDENTIFIER_LABEL: names.identifier(name, "head"),
        names.NAME_LABEL: str(template_labels.get(names.NAME_LABEL, names.APP_NAME)),
        names.CREATED_BY_LABEL: names.CREATED_BY,
    }
    annotations = {
        str(k): str(v)
        for k, v in _mapping(_mapping(cluster.get("spec")).get("headServiceAnnotations")).items()
    }
    ports = [
        {"name": port_name, "port": number, "appProtocol": "tcp"}
        for port_name, number in head_service_ports(cluster).items()
    ]
    service_type = head.get("serviceType")
    owner = names.cluster_owner_reference(cluster)
    custom = head.get("headService")
    if isinstance(custom, Mapping):
        service = copy.deepcopy(dict(custom))
        service_meta = dict(_mapping(service.get("metadata")))
        service_meta["name"] = service_meta.get("name") or names.head_service_name(cluster)
        service_meta["namespace"] = meta.get("namespace", "")
        service_meta["labels"] = {**_mapping(service_meta.get("labels")), **selector}
        merged = {**_mapping(service_meta.get("annotations")), **annotations}
        if merged:
            service_meta["annotations"] = merged
        service_meta["ownerReferences"] = [owner]
        spec = dict(_mapping(service.get("spec")))
        spec["selector"] = dict(selector)
        spec["ports"] = [*(spec.get("ports") or ()), *ports]
        if not spec.get("type") and service_type:
            spec["type"] = service_type
        return {"apiVersion": "v1", "kind": "Service", "metadata": service_meta, "spec": spec}
    metadata: dict[str, Any] = {
        "name": names.head_service_name(cluster),
        "namespace": meta.get("namespace", ""),
        "labels": dict(selector),
    }
    if annotations:
        metadata["annotations"] = annotations
    metadata["ownerReferences"] = [owner]
    spec = {"selector": dict(selector), "ports": sorted(ports, key=lambda p: str(p["name"]))}
    if service_type:
        spec["type"] = service_type
    if service_type in (None, "", "ClusterIP"):
        spec["clusterIP"] = "None"
        spec["publishNotReadyAddresses"] = True
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def build_headless_service(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """``<cluster>-headless``: DNS names for the workers of multi-host groups, ready or not."""
    meta = _mapping(cluster.get("metadata"))
    name = str(meta.get("name", ""))
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": names.headless_service_name(name),
            "namespace": meta.get("namespace", ""),
            "labels": {names.HEADLESS_SERVICE_LABEL: name},
            "ownerReferences": [names.cluster_owner_reference(cluster)],
        },
        "spec": {
            "clusterIP": "None",
            "selector": {names.CLUSTER_LABEL: name, names.NODE_TYPE_LABEL: "worker"},
            "type": "ClusterIP",
            "publishNotReadyAddresses": True,
        },
    }
