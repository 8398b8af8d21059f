"""The status a RayCluster should show, computed from what was observed, in KubeRay's shape.

From ``ray-operator/controllers/ray/raycluster_controller.go`` (``calculateStatus``,
``updateEndpoints``, ``updateHeadInfo``) and ``utils/util.go`` (``CalculateDesiredResources``,
``FindHeadPodReadyCondition``). What ``kubectl get raycluster`` prints comes from here:
``desiredWorkerReplicas``, ``availableWorkerReplicas``, ``desiredCPU``, ``desiredMemory``,
``state``.

Nothing in it ticks: no ``lastUpdateTime``, and a condition's ``lastTransitionTime`` changes
only when its status does. So a cluster at rest computes the status it already has, and the
controller writes nothing. Where raysvc departs from KubeRay:

- ``state`` is ``ready`` while the head is Ready and the desired workers are running, and is
  left out otherwise (KubeRay keeps ``ready`` forever once reached); ``suspended`` as KubeRay;
- resources count each group at its clamped replica count, the count that actually runs
  (KubeRay multiplies the raw ``replicas``);
- Pods being deleted are not counted as available or ready.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from reconciler.raycluster import names, replicas
from reconciler.raycluster.quantity import ZERO, Quantity, parse
from reconciler.raycluster.raystart import is_gpu_resource
from reconciler.times import rfc3339

__all__ = ["HEAD_POD_READY", "PROVISIONED", "compute_status"]

HEAD_POD_READY: Final = "HeadPodReady"
PROVISIONED: Final = "RayClusterProvisioned"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _pod_resources(template: object) -> dict[str, Quantity]:
    """``CalculatePodResource``: per container, requests, then limits where no request."""
    total: dict[str, Quantity] = {}
    spec = _mapping(_mapping(template).get("spec"))
    for container in spec.get("containers") or ():
        resources = _mapping(_mapping(container).get("resources"))
        amounts = dict(_mapping(resources.get("requests")))
        for name, value in _mapping(resources.get("limits")).items():
            amounts.setdefault(name, value)
        for name, value in amounts.items():
            parsed = parse(value)
            if parsed is not None:
                total[str(name)] = total.get(str(name), ZERO) + parsed
    return total


def _desired_resources(cluster: Mapping[str, Any]) -> dict[str, Quantity]:
    spec = _mapping(cluster.get("spec"))
    parts = [_pod_resources(_mapping(spec.get("headGroupSpec")).get("template"))]
    for group in spec.get("workerGroupSpecs") or ():
        group = _mapping(group)
        if group.get("suspend") is True:
            continue
        pods = replicas.desired_workers(group)
        parts.append({k: v.times(pods) for k, v in _pod_resources(group.get("template")).items()})
    total: dict[str, Quantity] = {}
    for part in parts:
        for name, amount in part.items():
            total[name] = total.get(name, ZERO) + amount
    return total


def _condition(
    previous: Iterable[Any], kind: str, status: str, reason: str, message: str, now: str
) -> dict[str, Any]:
    """A ``metav1.Condition`` whose ``lastTransitionTime`` moves only when its status does."""
    since = now
    for old in previous:
        old = _mapping(old)
        if old.get("type") == kind and old.get("status") == status:
            since = str(old.get("lastTransitionTime") or now)
    return {
        "type": kind,
        "status": status,
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    }


def _head_pod_ready(head: Mapping[str, Any] | None) -> tuple[str, str, str]:
    """``FindHeadPodReadyCondition``: the head Pod's Ready condition, explained."""
    if head is None:
        return "False", "HeadPodNotFound", "Head Pod not found"
    status = _mapping(head.get("status"))
    for condition in status.get("conditions") or ():
        condition = _mapping(condition)
        if condition.get("type") != "Ready":
            continue
        value = str(condition.get("status", "False"))
        message = str(condition.get("message") or "")
        reason = str(condition.get("reason") or "")
        if value == "True" and not reason:
            reason = "HeadPodRunningAndReady"
        if reason == "ContainersNotReady":
            for container in status.get("containerStatuses") or ():
                state = _mapping(_mapping(container).get("state"))
                detail = _mapping(state.get("waiting") or state.get("terminated"))
                if detail:
                    text = f"{_mapping(container).get('name')}: {detail.get('message') or ''}"
                    message = f"{message}; {text}" if message else text
                    reason = str(detail.get("reason") or "")
                    break
        return value, reason or "Unknown", message
    return "False", "Unknown", ""


def _endpoints(service: Mapping[str, Any] | None) -> dict[str, str]:
    endpoints: dict[str, str] = {}
    for port in _mapping(_mapping(service).get("spec")).get("ports") or ():
        port = _mapping(port)
        name = port.get("name")
        if not name:
            continue
        # The API server defaults targetPort to port; a Service read before defaulting has none.
        value = port.get("nodePort") or port.get("targetPort") or port.get("port")
        if value:
            endpoints[str(name)] = str(value)
    return endpoints


def _head_info(head: Mapping[str, Any] | None, service: Mapping[str, Any] | None) -> dict[str, str]:
    info: dict[str, str] = {}
    head_ip = str(_mapping(_mapping(head).get("status")).get("podIP") or "")
    if head_ip:
        info["podIP"] = head_ip
    if service is not None:
        cluster_ip = str(_mapping(service.get("spec")).get("clusterIP") or "")
        service_ip = head_ip if cluster_ip == "None" else cluster_ip
        if service_ip:
            info["serviceIP"] = service_ip
    if head is not None:
        info["podName"] = str(_mapping(head.get("metadata")).get("name", ""))
    if service is not None:
        info["serviceName"] = str(_mapping(service.get("metadata")).get("name", ""))
    return info


def compute_status(
    cluster: Mapping[str, Any],
    *,
    pods: Sequence[Mapping[str, Any]],
    head_service: Mapping[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """The status ``cluster`` should have, given its Pods (all of them, this cluster's only)."""
    spec = _mapping(cluster.get("spec"))
    meta = _mapping(cluster.get("metadata"))
    previous = _mapping(cluster.get("status"))
    stamp = rfc3339(now)
    groups = [_mapping(g) for g in spec.get("workerGroupSpecs") or ()]
    suspended = spec.get("suspend") is True

    active = [p for p in pods if replicas.is_active(p)]
    heads = [p for p in pods if _node_type(p) == "head"]
    # the head the controller keeps; while every head is going, the oldest of them
    head = replicas.head_pod(pods) or min(heads, key=replicas.age_key, default=None)
    workers = [p for p in active if _node_type(p) == "worker"]
    desired = sum(replicas.desired_workers(g) for g in groups)
    bounds = [replicas.bound_workers(g) for g in groups]
    ready_workers = sum(1 for p in workers if replicas.is_running_and_ready(p))
    available = sum(1 for p in workers if replicas.is_running(p))
    head_ready = (
        head is not None and replicas.is_active(head) and replicas.is_running_and_ready(head)
    )

    resources = _desired_resources(cluster)
    gpus = ZERO
    for name, amount in resources.items():
        if is_gpu_resource(name) and amount.value != 0:
            gpus = gpus + amount

    old_conditions = previous.get("conditions") or ()
    head_status, head_reason, head_message = _head_pod_ready(head)
    conditions = [
        _condition(old_conditions, HEAD_POD_READY, head_status, head_reason, head_message, stamp)
    ]
    was_provisioned = any(
        _mapping(c).get("type") == PROVISIONED and _mapping(c).get("status") == "True"
        for c in old_conditions
    )
    if suspended and not pods:
        provisioned = ("False", "RayClusterPodsProvisioning", "RayCluster has been suspended")
    elif was_provisioned or (head_ready and ready_workers >= desired and not suspended):
        provisioned = (
            "True",
            "AllPodRunningAndReadyFirstTime",
            "All Ray Pods are ready for the first time",
        )
    else:
        provisioned = (
            "False",
            "RayClusterPodsProvisioning",
            "RayCluster Pods are being provisioned for first time",
        )
    conditions.append(_condition(old_conditions, PROVISIONED, *provisioned, stamp))

    if suspended and not pods:
        state = "suspended"
    elif not suspended and head_ready and available >= desired:
        state = "ready"
    else:
        state = ""

    status: dict[str, Any] = {}
    if state:
        status["state"] = state
    status["desiredCPU"] = str(resources.get("cpu", ZERO))
    status["desiredMemory"] = str(resources.get("memory", ZERO))
    status["desiredGPU"] = str(gpus)
    status["desiredTPU"] = str(resources.get("google.com/tpu", ZERO))
    transitions = dict(_mapping(previous.get("stateTransitionTimes")))
    if state and previous.get("state") != state:
        transitions[state] = stamp
    if transitions:
        status["stateTransitionTimes"] = transitions
    endpoints = _endpoints(head_service)
    if endpoints:
        status["endpoints"] = endpoints
    info = _head_info(head, head_service)
    if info:
        status["head"] = info
    status["conditions"] = conditions
    counts = {
        "readyWorkerReplicas": ready_workers,
        "availableWorkerReplicas": available,
        "desiredWorkerReplicas": desired,
        "minWorkerReplicas": sum(low for low, _ in bounds),
        "maxWorkerReplicas": min(sum(high for _, high in bounds), replicas.INT32_MAX),
        "observedGeneration": meta.get("generation", 0),
    }
    # KubeRay's integer status fields are omitempty: zero is left out.
    status.update({key: value for key, value in counts.items() if value})
    return status


def _node_type(pod: Mapping[str, Any]) -> str:
    return str(_mapping(_mapping(pod.get("metadata")).get("labels")).get(names.NODE_TYPE_LABEL, ""))
