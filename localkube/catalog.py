"""The built-in kinds localkube serves, with the columns ``kubectl get`` prints for them.

Owns the catalogue of built-in resources (core ``v1``, ``apps/v1``, ``batch/v1``,
``rbac.authorization.k8s.io/v1``, ``policy/v1``, ``discovery.k8s.io/v1``,
``networking.k8s.io/v1``, ``coordination.k8s.io/v1``, ``admissionregistration.k8s.io/v1``,
``apiextensions.k8s.io/v1``): names, short names, scope, subresources, field selectors and the
Table columns of kube-apiserver's printers (computed ones as small pure functions). The order
of the groups is the order discovery lists them in (built-in groups before custom ones, as
kube-apiserver does), which decides what a short name means to kubectl. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from localkube.apitypes import PrinterColumn, ResourceType, VersionInfo
from localkube.tables import human_duration

__all__ = ["BUILTINS", "GROUP_ORDER"]


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    current: Any = obj
    for part in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def _int(obj: Mapping[str, Any], *path: str) -> int:
    value = _get(obj, *path)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _ratio(obj: Mapping[str, Any], ready: tuple[str, ...], total: tuple[str, ...]) -> str:
    return f"{_int(obj, *ready)}/{_int(obj, *total)}"


def _ready(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    return _ratio(obj, ("status", "readyReplicas"), ("spec", "replicas"))


def _containers(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = _get(obj, "spec", "template", "spec") or _get(obj, "spec", "jobTemplate", "spec")
    containers = _get(spec or {}, "containers") if isinstance(spec, Mapping) else None
    if containers is None:
        containers = _get(obj, "spec", "jobTemplate", "spec", "template", "spec", "containers")
    return [c for c in containers or [] if isinstance(c, Mapping)]


def _container_names(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    return ",".join(str(c.get("name", "")) for c in _containers(obj))


def _images(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    return ",".join(str(c.get("image", "")) for c in _containers(obj))


def _selector(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    selector = _get(obj, "spec", "selector")
    if not isinstance(selector, Mapping):
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        if isinstance(expr, Mapping):
            op = str(expr.get("operator", "")).lower()
            values = ",".join(str(v) for v in expr.get("values") or [])
            parts.append(f"{expr.get('key')} {op} ({values})" if values else str(expr.get("key")))
    return ",".join(parts) or "<none>"


def _node_selector(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    selector = _get(obj, "spec", "template", "spec", "nodeSelector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>"


def _job_status(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    for condition in _get(obj, "status", "conditions") or []:
        if isinstance(condition, Mapping) and condition.get("status") == "True":
            kind = condition.get("type")
            if kind in ("Complete", "Failed", "Suspended"):
                return str(kind)
            if kind == "FailureTarget":
                return "FailureTarget"
    return "Running"


def _completions(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    completions = _get(obj, "spec", "completions")
    succeeded = _int(obj, "status", "succeeded")
    if completions is None:
        return f"{succeeded}/1 of {_int(obj, 'spec', 'parallelism')}"
    return f"{succeeded}/{completions}"


def _duration(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    """How long a Job ran: start to completion, or to ``now`` while it runs."""
    start = _time(_get(obj, "status", "startTime"))
    if start is None:
        return ""
    end = _time(_get(obj, "status", "completionTime")) or now or datetime.now(UTC)
    return human_duration((end - start).total_seconds())


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _pod_ready(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    statuses = [s for s in _get(obj, "status", "containerStatuses") or [] if isinstance(s, Mapping)]
    ready = sum(1 for s in statuses if s.get("ready") is True)
    return f"{ready}/{len(_get(obj, 'spec', 'containers') or [])}"


def _pod_status(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    if _get(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    reason = _get(obj, "status", "reason")
    for status in _get(obj, "status", "containerStatuses") or []:
        waiting = (
            _get(status, "state", "waiting", "reason") if isinstance(status, Mapping) else None
        )
        terminated = (
            _get(status, "state", "terminated", "reason") if isinstance(status, Mapping) else None
        )
        reason = waiting or terminated or reason
    return str(reason or _get(obj, "status", "phase") or "Unknown")


def _pod_restarts(obj: Mapping[str, Any], now: datetime | None = None) -> int:
    return sum(
        s.get("restartCount", 0)
        for s in _get(obj, "status", "containerStatuses") or []
        if isinstance(s, Mapping) and isinstance(s.get("restartCount", 0), int)
    )


def _external_ips(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    ips = [str(ip) for ip in _get(obj, "spec", "externalIPs") or []]
    ips += [
        str(e.get("ip") or e.get("hostname"))
        for e in _get(obj, "status", "loadBalancer", "ingress") or []
        if isinstance(e, Mapping)
    ]
    if ips:
        return ",".join(ips)
    return "<pending>" if _get(obj, "spec", "type") == "LoadBalancer" else "<none>"


def _service_ports(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    parts = []
    for port in _get(obj, "spec", "ports") or []:
        if isinstance(port, Mapping):
            node = f":{port['nodePort']}" if port.get("nodePort") else ""
            parts.append(f"{port.get('port')}{node}/{port.get('protocol', 'TCP')}")
    return ",".join(parts) or "<none>"


def _service_selector(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    selector = _get(obj, "spec", "selector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>"


def _data_count(obj: Mapping[str, Any], now: datetime | None = None) -> int:
    return len(obj.get("data") or {}) + len(obj.get("binaryData") or {})


def _role_ref(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    ref = obj.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}" if isinstance(ref, Mapping) else ""


def _subjects(kind: str) -> Any:
    def cell(obj: Mapping[str, Any], now: datetime | None = None) -> str:
        names = []
        for subject in obj.get("subjects") or []:
            if isinstance(subject, Mapping) and subject.get("kind") == kind:
                name = str(subject.get("name", ""))
                if kind == "ServiceAccount":
                    name = f"{subject.get('namespace', '')}/{name}"
                names.append(name)
        return ", ".join(names)

    return cell


def _int_or_string(*path: str) -> Any:
    def cell(obj: Mapping[str, Any], now: datetime | None = None) -> str:
        value = _get(obj, *path)
        return "N/A" if value is None else str(value)

    return cell


def _slice_ports(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    ports = [p for p in obj.get("ports") or [] if isinstance(p, Mapping)]
    if not ports:
        return "<unset>"
    return ",".join(str(p.get("port", "")) for p in ports)


def _slice_endpoints(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    addresses = [
        str(a)
        for e in obj.get("endpoints") or []
        if isinstance(e, Mapping)
        for a in e.get("addresses") or []
    ]
    if not addresses:
        return "<unset>"
    shown = ",".join(addresses[:3])
    return shown + (f" + {len(addresses) - 3} more..." if len(addresses) > 3 else "")


def _ingress_hosts(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    hosts = [
        str(r.get("host"))
        for r in _get(obj, "spec", "rules") or []
        if isinstance(r, Mapping) and r.get("host")
    ]
    return ",".join(hosts) or "*"


def _ingress_address(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    entries = _get(obj, "status", "loadBalancer", "ingress") or []
    return ",".join(
        str(e.get("ip") or e.get("hostname") or "") for e in entries if isinstance(e, Mapping)
    )


def _ingress_ports(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    return "80, 443" if _get(obj, "spec", "tls") else "80"


def _pod_selector(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    selector = _get(obj, "spec", "podSelector") or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    return ",".join(parts) or "<none>"


def _json_cell(*path: str) -> Any:
    def cell(obj: Mapping[str, Any], now: datetime | None = None) -> str:
        value = _get(obj, *path)
        if value is None:
            return "<none>"
        return value if isinstance(value, str) else json.dumps(value)

    return cell


def _node_status(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    for condition in _get(obj, "status", "conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return "Ready" if condition.get("status") == "True" else "NotReady"
    return "Unknown"


def _node_ip(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    for address in _get(obj, "status", "addresses") or []:
        if isinstance(address, Mapping) and address.get("type") == "InternalIP":
            return str(address.get("address", ""))
    return "<none>"


def _column(name: str, cell: Any, *, kind: str = "string", priority: int = 0) -> PrinterColumn:
    return PrinterColumn(name, kind, "", priority=priority, cell=cell)


def _created_at() -> PrinterColumn:
    return PrinterColumn("Created At", "string", ".metadata.creationTimestamp")


def _builtin(
    group: str,
    version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool,
    short_names: tuple[str, ...] = (),
    subresources: frozenset[str] = frozenset(),
    field_selectors: frozenset[str] = frozenset(),
    return_deleted_object: bool = False,
    categories: tuple[str, ...] = (),
    columns: tuple[PrinterColumn, ...] = (),
    generation: bool = False,
) -> ResourceType:
    return ResourceType(
        group=group,
        plural=plural,
        singular=kind.lower(),
        kind=kind,
        namespaced=namespaced,
        versions=(VersionInfo(version, printer_columns=columns),),
        storage_version=version,
        short_names=short_names,
        categories=categories,
        subresources=subresources,
        field_selectors=field_selectors,
        return_deleted_object=return_deleted_object,
        generation=generation,
    )


_STATUS = frozenset({"status"})

BUILTINS: tuple[ResourceType, ...] = (
    _builtin(
        "",
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        short_names=("ns",),
        subresources=frozenset({"status", "finalize"}),
        field_selectors=frozenset({"status.phase"}),
        return_deleted_object=True,
        columns=(PrinterColumn("Status", "string", ".status.phase"),),
    ),
    _builtin(
        "",
        "v1",
        "pods",
        "Pod",
        namespaced=True,
        short_names=("po",),
        subresources=frozenset(
            {"status", "log", "binding", "exec", "attach", "portforward", "proxy"}
        ),
        categories=("all",),
        field_selectors=frozenset(
            {
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            }
        ),
        return_deleted_object=True,
        columns=(
            _column("Ready", _pod_ready),
            _column("Status", _pod_status),
            _column("Restarts", _pod_restarts),
            _column("IP", _json_cell("status", "podIP"), priority=1),
            _column("Node", _json_cell("spec", "nodeName"), priority=1),
        ),
    ),
    _builtin(
        "",
        "v1",
        "services",
        "Service",
        namespaced=True,
        short_names=("svc",),
        subresources=frozenset({"status", "proxy"}),
        categories=("all",),
        return_deleted_object=True,
        columns=(
            PrinterColumn("Type", "string", ".spec.type"),
            PrinterColumn("Cluster-IP", "string", ".spec.clusterIP"),
            _column("External-IP", _external_ips),
            _column("Port(s)", _service_ports),
            _column("Selector", _service_selector, priority=1),
        ),
    ),
    _builtin(
        "",
        "v1",
        "nodes",
        "Node",
        namespaced=False,
        short_names=("no",),
        subresources=_STATUS,
        columns=(
            _column("Status", _node_status),
            _column("Version", _json_cell("status", "nodeInfo", "kubeletVersion")),
            _column("Internal-IP", _node_ip, priority=1),
        ),
    ),
    _builtin("", "v1", "endpoints", "Endpoints", namespaced=True, short_names=("ep",)),
    _builtin(
        "",
        "v1",
        "secrets",
        "Secret",
        namespaced=True,
        field_selectors=frozenset({"type"}),
        columns=(
            PrinterColumn("Type", "string", ".type"),
            _column("Data", _data_count, kind="integer"),
        ),
    ),
    _builtin(
        "",
        "v1",
        "configmaps",
        "ConfigMap",
        namespaced=True,
        short_names=("cm",),
        columns=(_column("Data", _data_count, kind="integer"),),
    ),
    _builtin(
        "",
        "v1",
        "events",
        "Event",
        namespaced=True,
        short_names=("ev",),
        field_selectors=frozenset(
            {
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            }
        ),
        columns=(
            PrinterColumn("Type", "string", ".type"),
            PrinterColumn("Reason", "string", ".reason"),
            PrinterColumn("Message", "string", ".message"),
        ),
    ),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", namespaced=True, short_names=("sa",)),
    _builtin(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        namespaced=True,
        columns=(PrinterColumn("Holder", "string", ".spec.holderIdentity"),),
    ),
    _builtin(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        namespaced=False,
        categories=("api-extensions",),
    ),
    _builtin(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        namespaced=False,
        categories=("api-extensions",),
    ),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short_names=("crd", "crds"),
        subresources=_STATUS,
        categories=("api-extensions",),
        generation=True,
        columns=(_created_at(),),
    ),
    # apps/v1 ------------------------------------------------------------------------------------
    _builtin(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        namespaced=True,
        short_names=("deploy",),
        subresources=_STATUS,
        categories=("all",),
        generation=True,
        columns=(
            _column("Ready", _ready),
            _column(
                "Up-to-date", lambda o, _: _int(o, "status", "updatedReplicas"), kind="integer"
            ),
            _column(
                "Available", lambda o, _: _int(o, "status", "availableReplicas"), kind="integer"
            ),
            _column("Containers", _container_names, priority=1),
            _column("Images", _images, priority=1),
            _column("Selector", _selector, priority=1),
        ),
    ),
    _builtin(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        namespaced=True,
        short_names=("rs",),
        subresources=_STATUS,
        categories=("all",),
        generation=True,
        field_selectors=frozenset({"status.replicas"}),
        columns=(
            _column("Desired", lambda o, _: _int(o, "spec", "replicas"), kind="integer"),
            _column("Current", lambda o, _: _int(o, "status", "replicas"), kind="integer"),
            _column("Ready", lambda o, _: _int(o, "status", "readyReplicas"), kind="integer"),
            _column("Containers", _container_names, priority=1),
            _column("Images", _images, priority=1),
            _column("Selector", _selector, priority=1),
        ),
    ),
    _builtin(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        namespaced=True,
        short_names=("sts",),
        subresources=_STATUS,
        categories=("all",),
        generation=True,
        columns=(
            _column("Ready", _ready),
            _column("Containers", _container_names, priority=1),
            _column("Images", _images, priority=1),
        ),
    ),
    _builtin(
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        namespaced=True,
        short_names=("ds",),
        subresources=_STATUS,
        categories=("all",),
        generation=True,
        columns=(
            _column(
                "Desired", lambda o, _: _int(o, "status", "desiredNumberScheduled"), kind="integer"
            ),
            _column(
                "Current", lambda o, _: _int(o, "status", "currentNumberScheduled"), kind="integer"
            ),
            _column("Ready", lambda o, _: _int(o, "status", "numberReady"), kind="integer"),
            _column(
                "Up-to-date",
                lambda o, _: _int(o, "status", "updatedNumberScheduled"),
                kind="integer",
            ),
            _column("Available", lambda o, _: _int(o, "status", "numberAvailable"), kind="integer"),
            _column("Node Selector", _node_selector),
            _column("Containers", _container_names, priority=1),
            _column("Images", _images, priority=1),
            _column("Selector", _selector, priority=1),
        ),
    ),
    # batch/v1 -----------------------------------------------------------------------------------
    _builtin(
        "batch",
        "v1",
        "jobs",
        "Job",
        namespaced=True,
        subresources=_STATUS,
        categories=("all",),
        generation=True,
        field_selectors=frozenset({"status.successful"}),
        columns=(
            _column("Status", _job_status),
            _column("Completions", _completions),
            _column("Duration", _duration),
            _column("Containers", _container_names, priority=1),
            _column("Images", _images, priority=1),
            _column("Selector", _selector, priority=1),
        ),
    ),
    _builtin(
        "batch",
        "v1",
        "cronjobs",
        "CronJob",
        namespaced=True,
        short_names=("cj",),
        subresources=_STATUS,
        categories=("all",),
        generation=True,
        columns=(
            PrinterColumn("Schedule", "string", ".spec.schedule"),
            _column("Timezone", _json_cell("spec", "timeZone")),
            _column("Suspend", lambda o, _: json.dumps(bool(_get(o, "spec", "suspend")))),
            _column("Active", lambda o, _: len(_get(o, "status", "active") or []), kind="integer"),
            PrinterColumn("Last Schedule", "date", ".status.lastScheduleTime"),
            _column("Containers", _container_names, priority=1),
            _column("Images", _images, priority=1),
        ),
    ),
    # rbac.authorization.k8s.io/v1 -------------------------------------------------------------
    _builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        namespaced=True,
        columns=(_created_at(),),
    ),
    _builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        namespaced=False,
        columns=(_created_at(),),
    ),
    _builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        namespaced=True,
        columns=(
            _column("Role", _role_ref),
            _column("Users", _subjects("User"), priority=1),
            _column("Groups", _subjects("Group"), priority=1),
            _column("ServiceAccounts", _subjects("ServiceAccount"), priority=1),
        ),
    ),
    _builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        namespaced=False,
        columns=(
            _column("Role", _role_ref),
            _column("Users", _subjects("User"), priority=1),
            _column("Groups", _subjects("Group"), priority=1),
            _column("ServiceAccounts", _subjects("ServiceAccount"), priority=1),
        ),
    ),
    # policy/v1 ------------------------------------------------------------------------------------
    _builtin(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        namespaced=True,
        short_names=("pdb",),
        subresources=_STATUS,
        generation=True,
        columns=(
            _column("Min Available", _int_or_string("spec", "minAvailable")),
            _column("Max Unavailable", _int_or_string("spec", "maxUnavailable")),
            _column(
                "Allowed Disruptions",
                lambda o, _: _int(o, "status", "disruptionsAllowed"),
                kind="integer",
            ),
        ),
    ),
    # discovery.k8s.io/v1 ------------------------------------------------------------------------
    _builtin(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        namespaced=True,
        field_selectors=frozenset({"addressType"}),
        columns=(
            PrinterColumn("AddressType", "string", ".addressType"),
            _column("Ports", _slice_ports),
            _column("Endpoints", _slice_endpoints),
        ),
    ),
    # networking.k8s.io/v1 -------------------------------------------------------------------------
    _builtin(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        namespaced=True,
        short_names=("ing",),
        subresources=_STATUS,
        generation=True,
        columns=(
            _column("Class", _json_cell("spec", "ingressClassName")),
            _column("Hosts", _ingress_hosts),
            _column("Address", _ingress_address),
            _column("Ports", _ingress_ports),
        ),
    ),
    _builtin(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        namespaced=True,
        short_names=("netpol",),
        generation=True,
        columns=(_column("Pod-Selector", _pod_selector),),
    ),
)

# Discovery order of the built-in groups (kube-apiserver lists built-in groups before any CRD's).
GROUP_ORDER: tuple[str, ...] = (
    "",
    "apps",
    "batch",
    "rbac.authorization.k8s.io",
    "policy",
    "discovery.k8s.io",
    "networking.k8s.io",
    "coordination.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
)
