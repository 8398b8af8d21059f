"""Which Pods back a Service, as pure functions: the endpoints and EndpointSlice controllers' view.

Owns the selection (same namespace, labels match ``spec.selector``, an IP, not finished), the
state of each address (serving: the Pod's Ready condition, terminating or not; ready: serving and
not terminating; both with ``publishNotReadyAddresses``), target ports (numbers, or names looked
up in each Pod's container ports) and the two API shapes built from them: ``v1`` Endpoints and
``discovery.k8s.io/v1`` EndpointSlices. Services without a selector are not managed (their
Endpoints are the user's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Address", "Backend", "endpoint_slice", "endpoints_object", "service_addresses"]

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Address:
    """One Pod behind a Service, with the target port of each Service port (by port name)."""

    ip: str
    ready: bool  # serving and not terminating (or published whatever its state)
    serving: bool  # the Pod is Ready, terminating or not (or published)
    terminating: bool
    pod: str
    uid: str
    node: str
    ports: tuple[tuple[str, int, str], ...]  # (service port name, target port, protocol)


@dataclass(frozen=True)
class Backend:
    ip: str
    port: int


def _ready(pod: Obj) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def _target(pod: Obj, target: Any) -> int | None:
    if isinstance(target, int):
        return target
    text = str(target)
    if text.isdigit():
        return int(text)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for declared in container.get("ports") or []:
            if declared.get("name") == text:
                return int(declared.get("containerPort", 0))
    return None


def service_addresses(service: Obj, pods: Iterable[Obj]) -> list[Address] | None:
    """The addresses behind ``service``, sorted by IP; ``None`` when it has no selector."""
    spec = service.get("spec") or {}
    selector = spec.get("selector") or {}
    if not selector:
        return None
    namespace = (service.get("metadata") or {}).get("namespace", "")
    publish = bool(spec.get("publishNotReadyAddresses"))
    out = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        status = pod.get("status") or {}
        if meta.get("namespace", "") != namespace:
            continue
        labels = meta.get("labels") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            continue
        ip = status.get("podIP")
        if not ip or status.get("phase") in ("Succeeded", "Failed"):
            continue
        terminating = bool(meta.get("deletionTimestamp"))
        serving = publish or _ready(pod)
        ports = []
        for port in spec.get("ports") or []:
            target = _target(pod, port.get("targetPort", port.get("port")))
            if target is not None:
                ports.append((str(port.get("name", "")), target, str(port.get("protocol", "TCP"))))
        out.append(
            Address(
                ip=str(ip),
                ready=publish or (serving and not terminating),
                serving=serving,
                terminating=terminating,
                pod=str(meta.get("name", "")),
                uid=str(meta.get("uid", "")),
                node=str((pod.get("spec") or {}).get("nodeName", "")),
                ports=tuple(ports),
            )
        )
    out.sort(key=lambda a: tuple(int(p) for p in a.ip.split(".")))
    return out


def backends(addresses: Iterable[Address], port_name: str) -> list[Backend]:
    """Ready ``ip:targetPort`` pairs for one Service port."""
    out = []
    for address in addresses:
        if not address.ready:
            continue
        for name, target, _ in address.ports:
            if name == port_name:
                out.append(Backend(address.ip, target))
    return out


def _reference(service: Obj, address: Address) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "namespace": (service.get("metadata") or {}).get("namespace", ""),
        "name": address.pod,
        "uid": address.uid,
    }


def endpoints_object(service: Obj, addresses: Iterable[Address]) -> dict[str, Any]:
    """The ``v1`` Endpoints of a Service (subsets grouped by identical port sets)."""
    meta = service.get("metadata") or {}
    groups: dict[tuple[tuple[str, int, str], ...], dict[str, list[dict[str, Any]]]] = {}
    for address in addresses:
        if address.terminating and not address.ready:
            continue
        group = groups.setdefault(address.ports, {"addresses": [], "notReadyAddresses": []})
        entry = {
            "ip": address.ip,
            "nodeName": address.node,
            "targetRef": _reference(service, address),
        }
        group["addresses" if address.ready else "notReadyAddresses"].append(entry)
    subsets = []
    for ports, group in groups.items():
        subset: dict[str, Any] = {
            "ports": [
                {**({"name": name} if name else {}), "port": port, "protocol": protocol}
                for name, port, protocol in ports
            ]
        }
        for kind in ("addresses", "notReadyAddresses"):
            if group[kind]:
                subset[kind] = group[kind]
        subsets.append(subset)
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "labels": dict(meta.get("labels") or {}),
        },
    }
    if subsets:
        body["subsets"] = subsets
    return body


def endpoint_slice(service: Obj, addresses: Iterable[Address]) -> dict[str, Any]:
    """One ``discovery.k8s.io/v1`` EndpointSlice for a Service (named after it)."""
    meta = service.get("metadata") or {}
    name = str(meta.get("name", ""))
    spec = service.get("spec") or {}
    listed = list(addresses)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-local",
            "namespace": meta.get("namespace", ""),
            "labels": {
                **dict(meta.get("labels") or {}),
                "kubernetes.io/service-name": name,
                "endpointslice.kubernetes.io/managed-by": "localkube-node",
            },
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "name": name,
                    "uid": meta.get("uid", ""),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [a.ip],
                "conditions": {
                    "ready": a.ready,
                    "serving": a.serving,
                    "terminating": a.terminating,
                },
                "targetRef": _reference(service, a),
                "nodeName": a.node,
            }
            for a in listed
        ],
        "ports": [
            {
                **({"name": str(p.get("name"))} if p.get("name") else {"name": ""}),
                "port": next(
                    (t for a in listed for n, t, _ in a.ports if n == str(p.get("name", ""))),
                    int(p["targetPort"]) if str(p.get("targetPort", "")).isdigit() else None,
                ),
                "protocol": str(p.get("protocol", "TCP")),
            }
            for p in spec.get("ports") or []
        ],
    }
