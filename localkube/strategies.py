"""Per-kind behaviour of the built-in types: defaults set at create, validation, and the
fields the server keeps across updates.

Owns what each registry strategy of kube-apiserver adds for the kinds served here: Namespaces
(``kubernetes`` finalizer, ``Active`` phase, the ``kubernetes.io/metadata.name`` label), Pods
(a few spec defaults, ``Pending`` status), Services (type, ports and a cluster IP from the
service CIDR), Secrets (``stringData`` folded into ``data``), CRDs (names defaults and the
``Established`` status) and webhook configurations (v1 defaults and the checks that keep the
admission chain callable). Pure except for the cluster IP allocator's state.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from localkube import workloads
from localkube.apitypes import version_priority
from localkube.errors import Cause
from localkube.schema import invalid_patterns

__all__ = [
    "ClusterIPs",
    "pod_grace_seconds",
    "prepare_create",
    "prepare_update",
    "validate_builtin",
    "validate_builtin_update",
]

Obj = dict[str, Any]


class ClusterIPs:
    """Hands out Service cluster IPs from a CIDR (skipping the network and first address)."""

    def __init__(self, cidr: str) -> None:
        self._network = ipaddress.ip_network(cidr)
        self._used: set[str] = set()

    def reserve(self, ips: Iterable[str]) -> None:
        self._used.update(ips)

    def release(self, ip: str) -> None:
        self._used.discard(ip)

    def allocate(self) -> str:
        for index, host in enumerate(self._network.hosts()):
            if index == 0:
                continue  # the first address is the kubernetes Service's
            if str(host) not in self._used:
                self._used.add(str(host))
                return str(host)
        raise RuntimeError("service CIDR exhausted")


def prepare_create(kind: str, obj: Obj, ips: ClusterIPs) -> None:
    """Fill the server-side defaults of a new object of a built-in ``kind`` in place."""
    meta = obj.setdefault("metadata", {})
    if kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
    elif kind == "Pod":
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            workloads.default_pod_spec(spec)
            spec.setdefault("serviceAccountName", "default")
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
        if spec.get("clusterIP") in (None, ""):
            spec["clusterIP"] = ips.allocate()
        else:
            ips.reserve([str(spec["clusterIP"])])
        spec["clusterIPs"] = [spec["clusterIP"]]
        obj["status"] = {"loadBalancer": {}}
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        _fold_string_data(obj)
    elif kind == "CustomResourceDefinition":
        _default_crd(obj)
    elif kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        _default_webhooks(obj, mutating=kind.startswith("Mutating"))
    else:
        workloads.prepare_create(kind, obj)


def pod_grace_seconds(pod: Mapping[str, Any], options: Mapping[str, Any]) -> int:
    """The grace period a DELETE gives a Pod (the Pod registry's ``CheckGracefulDelete``).

    ``gracePeriodSeconds`` from the options, else ``terminationGracePeriodSeconds`` (else 30);
    0 for a Pod not bound to a node or already Succeeded or Failed.
    """
    spec = pod.get("spec") or {}
    if not spec.get("nodeName") or (pod.get("status") or {}).get("phase") in (
        "Succeeded",
        "Failed",
    ):
        return 0
    requested = options.get("gracePeriodSeconds")
    if requested is None:
        requested = spec.get("terminationGracePeriodSeconds")
    try:
        return max(0, int(30 if requested is None else requested))
    except (TypeError, ValueError):
        return 0


def prepare_update(kind: str, old: Mapping[str, Any], new: Obj) -> None:
    """Keep what the server owns across an update of a built-in ``kind``, in place."""
    if kind == "Namespace":
        new.setdefault("spec", {}).setdefault(
            "finalizers", (old.get("spec") or {}).get("finalizers", [])
        )
        new.setdefault("metadata", {}).setdefault("labels", {})["kubernetes.io/metadata.name"] = (
            old["metadata"]["name"]
        )
    elif kind == "Service":
        spec = new.setdefault("spec", {})
        old_spec = old.get("spec") or {}
        if spec.get("clusterIP") in (None, "") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
            spec["clusterIPs"] = old_spec.get("clusterIPs", [old_spec["clusterIP"]])
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
    elif kind == "Secret":
        new.setdefault("type", old.get("type", "Opaque"))
        _fold_string_data(new)
    elif kind == "CustomResourceDefinition":
        _default_crd(new, old)
    elif kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        _default_webhooks(new, mutating=kind.startswith("Mutating"))
    else:
        workloads.prepare_update(kind, old, new)


def _fold_string_data(obj: Obj) -> None:
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _default_crd(obj: Obj, old: Mapping[str, Any] | None = None) -> None:
    spec = obj.setdefault("spec", {})
    names = spec.setdefault("names", {})
    kind = str(names.get("kind", ""))
    names.setdefault("singular", kind.lower())
    names.setdefault("listKind", f"{kind}List")
    spec.setdefault("conversion", {"strategy": "None"})
    versions = spec.get("versions") or []
    storage = next(
        (v.get("name") for v in versions if isinstance(v, dict) and v.get("storage")), None
    )
    stored = list(((old or {}).get("status") or {}).get("storedVersions") or [])
    if storage and storage not in stored:
        stored.append(storage)
    obj["status"] = {
        "acceptedNames": dict(names),
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
            },
        ],
        "storedVersions": stored,
    }
    terminating = ((old or obj).get("metadata") or {}).get("deletionTimestamp")
    if terminating:
        obj["status"]["conditions"].append(
            {
                "type": "Terminating",
                "status": "True",
                "reason": "InstanceDeletionInProgress",
                "message": "CustomResource deletion is in progress",
            }
        )


def _default_webhooks(obj: Obj, *, mutating: bool) -> None:
    for hook in obj.get("webhooks") or []:
        if not isinstance(hook, dict):
            continue
        hook.setdefault("failurePolicy", "Fail")
        hook.setdefault("matchPolicy", "Equivalent")
        hook.setdefault("namespaceSelector", {})
        hook.setdefault("objectSelector", {})
        hook.setdefault("timeoutSeconds", 10)
        if mutating:
            hook.setdefault("reinvocationPolicy", "Never")
        for rule in hook.get("rules") or []:
            if isinstance(rule, dict):
                rule.setdefault("scope", "*")
        service = (hook.get("clientConfig") or {}).get("service")
        if isinstance(service, dict):
            service.setdefault("port", 443)


def validate_builtin(kind: str, obj: Mapping[str, Any]) -> list[Cause]:
    """The checks kube-apiserver makes that the project relies on for a built-in ``kind``."""
    if kind == "Pod":
        return _validate_pod(obj)
    if kind == "CustomResourceDefinition":
        return _validate_crd(obj)
    if kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        return _validate_webhooks(obj)
    return workloads.validate(kind, obj)


def validate_builtin_update(
    kind: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[Cause]:
    """What an update of a built-in ``kind`` may not change (immutable fields)."""
    return workloads.validate_update(kind, old, new)


def _validate_pod(obj: Mapping[str, Any]) -> list[Cause]:
    return workloads.validate_pod_spec(obj.get("spec"), "spec")


def _validate_crd(obj: Mapping[str, Any]) -> list[Cause]:
    errors = []
    spec = obj.get("spec") or {}
    group = str(spec.get("group", ""))
    names = spec.get("names") or {}
    plural = str(names.get("plural", ""))
    name = str((obj.get("metadata") or {}).get("name", ""))
    if name != f"{plural}.{group}":
        errors.append(
            Cause(
                "FieldValueInvalid",
                f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
                "metadata.name",
            )
        )
    if "." not in group:
        errors.append(
            Cause(
                "FieldValueInvalid",
                f'Invalid value: "{group}": should be a domain with at least one dot',
                "spec.group",
            )
        )
    if not names.get("kind"):
        errors.append(Cause("FieldValueRequired", "Required value", "spec.names.kind"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errors.append(
            Cause(
                "FieldValueNotSupported",
                f'Unsupported value: "{spec.get("scope", "")}": '
                'supported values: "Cluster", "Namespaced"',
                "spec.scope",
            )
        )
    versions = spec.get("versions") or []
    if not versions:
        errors.append(
            Cause(
                "FieldValueInvalid",
                "Invalid value: null: must have exactly one version marked as storage version",
                "spec.versions",
            )
        )
    elif sum(1 for v in versions if v.get("storage")) != 1:
        errors.append(
            Cause(
                "FieldValueInvalid",
                "Invalid value: must have exactly one version marked as storage version",
                "spec.versions",
            )
        )
    for i, version in enumerate(versions):
        errors += invalid_patterns(
            (version.get("schema") or {}).get("openAPIV3Schema"),
            f"spec.versions[{i}].schema.openAPIV3Schema",
        )
        if not (version.get("schema") or {}).get("openAPIV3Schema"):
            errors.append(
                Cause(
                    "FieldValueRequired",
                    "Required value: schemas are required",
                    f"spec.versions[{i}].schema.openAPIV3Schema",
                )
            )
        if version_priority(str(version.get("name", "")))[0] == 3:
            errors.append(
                Cause(
                    "FieldValueInvalid",
                    f'Invalid value: "{version.get("name", "")}": must be a valid version name',
                    f"spec.versions[{i}].name",
                )
            )
    return errors


def _validate_webhooks(obj: Mapping[str, Any]) -> list[Cause]:
    errors = []
    seen = set()
    for i, hook in enumerate(obj.get("webhooks") or []):
        path = f"webhooks[{i}]"
        name = str(hook.get("name", ""))
        if name.count(".") < 2:
            errors.append(
                Cause(
                    "FieldValueInvalid",
                    f'Invalid value: "{name}": should be a domain '
                    "with at least three segments separated by dots",
                    f"{path}.name",
                )
            )
        if name in seen:
            errors.append(
                Cause("FieldValueDuplicate", f'Duplicate value: "{name}"', f"{path}.name")
            )
        seen.add(name)
        if hook.get("sideEffects") not in ("None", "NoneOnDryRun"):
            if hook.get("sideEffects") is None:
                errors.append(
                    Cause(
                        "FieldValueRequired",
                        "Required value: must specify one of None, NoneOnDryRun",
                        f"{path}.sideEffects",
                    )
                )
            else:
                errors.append(
                    Cause(
                        "FieldValueNotSupported",
                        f'Unsupported value: "{hook.get("sideEffects")}": '
                        'supported values: "None", "NoneOnDryRun"',
                        f"{path}.sideEffects",
                    )
                )
        if "v1" not in (hook.get("admissionReviewVersions") or []):
            errors.append(
                Cause(
                    "FieldValueRequired",
                    "Required value: must specify one of v1, v1beta1",
                    f"{path}.admissionReviewVersions",
                )
            )
        timeout = hook.get("timeoutSeconds", 10)
        if not isinstance(timeout, int) or not 1 <= timeout <= 30:
            errors.append(
                Cause(
                    "FieldValueInvalid",
                    f"Invalid value: {timeout}: the timeout value must be between 1 and 30 seconds",
                    f"{path}.timeoutSeconds",
                )
            )
        client = hook.get("clientConfig") or {}
        if bool(client.get("url")) == bool(client.get("service")):
            errors.append(
                Cause(
                    "FieldValueRequired",
                    "Required value: exactly one of url or service is required",
                    f"{path}.clientConfig",
                )
            )
        url = str(client.get("url") or "")
        if url and not url.startswith("https://"):
            errors.append(
                Cause(
                    "FieldValueInvalid",
                    f"Invalid value: \"{url}\": 'https' is the only allowed URL scheme",
                    f"{path}.clientConfig.url",
                )
            )
        if hook.get("failurePolicy") not in ("Fail", "Ignore"):
            errors.append(
                Cause(
                    "FieldValueNotSupported",
                    f'Unsupported value: "{hook.get("failurePolicy")}": '
                    'supported values: "Fail", "Ignore"',
                    f"{path}.failurePolicy",
                )
            )
    return errors
