"""Defaults and checks of the built-in kinds beyond core ``v1``: workloads, RBAC, policy,
discovery and networking.

Owns what kube-apiserver's registry strategies and ``SetDefaults_*`` functions do for
``apps/v1`` (Deployment, ReplicaSet, StatefulSet, DaemonSet), ``batch/v1`` (Job, CronJob),
``rbac.authorization.k8s.io/v1``, ``policy/v1`` PodDisruptionBudget, ``discovery.k8s.io/v1``
EndpointSlice and ``networking.k8s.io/v1`` Ingress and NetworkPolicy: the defaults a manifest
omits, the required fields and shapes (``field.Error`` wording), and the fields an update may not
change. Also the Pod spec defaults and checks, shared by Pods and every pod template. No
controllers: nothing here makes a Deployment's Pods. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from localkube.errors import Cause
from localkube.selectors import match_label_selector_object

__all__ = [
    "default_pod_spec",
    "prepare_create",
    "prepare_update",
    "validate",
    "validate_pod_spec",
    "validate_update",
]

Obj = dict[str, Any]
RBAC_GROUP = "rbac.authorization.k8s.io"


def _required(path: str, detail: str = "") -> Cause:
    return Cause(
        "FieldValueRequired", f"Required value: {detail}" if detail else "Required value", path
    )


def _unsupported(path: str, value: Any, supported: tuple[str, ...]) -> Cause:
    listed = ", ".join(json.dumps(s) for s in supported)
    return Cause(
        "FieldValueNotSupported",
        f"Unsupported value: {json.dumps(value)}: supported values: {listed}",
        path,
    )


def _invalid(path: str, shown: str, detail: str) -> Cause:
    return Cause("FieldValueInvalid", f"Invalid value: {shown}: {detail}", path)


def _go_map(value: Any) -> str:
    """A string map as Go's ``%#v`` prints it (``map[string]string{"a":"b"}``)."""
    if not isinstance(value, Mapping) or not value:
        return "map[string]string(nil)"
    items = ", ".join(
        f"{json.dumps(str(k))}:{json.dumps(str(v))}" for k, v in sorted(value.items())
    )
    return "map[string]string{" + items + "}"


def _dict(parent: Obj, key: str) -> Obj:
    """``parent[key]`` as a dict, created when absent (a non-dict is left for validation)."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    return value if isinstance(value, dict) else {}


# pod specs ------------------------------------------------------------------------------------
def default_pod_spec(spec: Obj, *, restart_policy: str | None = "Always") -> None:
    """``SetDefaults_PodSpec`` and the container defaults, in place."""
    if restart_policy is not None:
        spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        if isinstance(container, dict):
            image = str(container.get("image", ""))
            latest = ":" not in image.rpartition("/")[2] or image.endswith(":latest")
            container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
            for port in container.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def validate_pod_spec(spec: Any, path: str) -> list[Cause]:
    """The Pod spec's required fields: at least one container, each with a name and image."""
    if not isinstance(spec, Mapping):
        return [_required(path)]
    containers = spec.get("containers")
    if not containers:
        return [_required(f"{path}.containers")]
    if not isinstance(containers, list):
        return [_invalid(f"{path}.containers", json.dumps(containers), "must be a list")]
    errors = []
    names: set[str] = set()
    for i, container in enumerate(containers):
        where = f"{path}.containers[{i}]"
        if not isinstance(container, Mapping):
            errors.append(_invalid(where, json.dumps(container), "must be an object"))
            continue
        name = container.get("name")
        if not name:
            errors.append(_required(f"{where}.name"))
        elif name in names:
            errors.append(
                Cause(
                    "FieldValueDuplicate", f"Duplicate value: {json.dumps(name)}", f"{where}.name"
                )
            )
        else:
            names.add(str(name))
        if not container.get("image"):
            errors.append(_required(f"{where}.image"))
    return errors


def _template(obj: Mapping[str, Any], prefix: tuple[str, ...] = ("spec", "template")) -> Any:
    current: Any = obj
    for part in prefix:
        current = current.get(part) if isinstance(current, Mapping) else None
    return current


# defaults -------------------------------------------------------------------------------------
def _default_template(template: Any, *, restart_policy: str | None = "Always") -> None:
    if isinstance(template, dict):
        spec = template.get("spec")
        if isinstance(spec, dict):
            default_pod_spec(spec, restart_policy=restart_policy)


def _default_apps(kind: str, obj: Obj) -> None:
    spec = _dict(obj, "spec")
    if kind in ("Deployment", "ReplicaSet", "StatefulSet"):
        spec.setdefault("replicas", 1)
    if kind in ("Deployment", "StatefulSet", "DaemonSet"):
        spec.setdefault("revisionHistoryLimit", 10)
    if kind == "Deployment":
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = _dict(spec, "strategy")
        strategy.setdefault("type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _dict(strategy, "rollingUpdate")
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
    elif kind == "StatefulSet":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        strategy = _dict(spec, "updateStrategy")
        strategy.setdefault("type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            _dict(strategy, "rollingUpdate").setdefault("partition", 0)
        retention = _dict(spec, "persistentVolumeClaimRetentionPolicy")
        retention.setdefault("whenDeleted", "Retain")
        retention.setdefault("whenScaled", "Retain")
    elif kind == "DaemonSet":
        strategy = _dict(spec, "updateStrategy")
        strategy.setdefault("type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _dict(strategy, "rollingUpdate")
            rolling.setdefault("maxUnavailable", 1)
            rolling.setdefault("maxSurge", 0)
    _default_template(spec.get("template"))


def _default_job_spec(spec: Obj) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    if spec.get("podFailurePolicy") is None:
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    spec.setdefault("manualSelector", None)
    if spec.get("manualSelector") is None:
        spec.pop("manualSelector")
    _default_template(spec.get("template"), restart_policy=None)


def _job_labels(obj: Obj) -> None:
    """The selector and template labels the Job strategy generates from the Job's uid."""
    spec = _dict(obj, "spec")
    meta = obj.get("metadata") or {}
    uid, name = str(meta.get("uid", "")), str(meta.get("name", ""))
    if spec.get("manualSelector") is True:
        return
    generated = {"batch.kubernetes.io/controller-uid": uid}
    if not spec.get("selector"):
        spec["selector"] = {"matchLabels": dict(generated)}
    template = _dict(spec, "template")
    labels = _dict(_dict(template, "metadata"), "labels")
    labels.update(
        {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
    )


def _default_subjects(obj: Obj) -> None:
    for subject in obj.get("subjects") or []:
        kind = subject.get("kind") if isinstance(subject, dict) else None
        if kind in ("User", "Group") and "apiGroup" not in subject:
            subject["apiGroup"] = RBAC_GROUP
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = RBAC_GROUP


def _default_ports(ports: Any) -> None:
    for port in ports or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def _default(kind: str, obj: Obj) -> None:
    if kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        _default_apps(kind, obj)
    elif kind == "Job":
        _default_job_spec(_dict(obj, "spec"))
    elif kind == "CronJob":
        spec = _dict(obj, "spec")
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        job = _dict(spec, "jobTemplate")
        _default_job_spec(_dict(job, "spec"))
    elif kind in ("RoleBinding", "ClusterRoleBinding"):
        _default_subjects(obj)
    elif kind == "EndpointSlice":
        _default_ports(obj.get("ports"))
    elif kind == "NetworkPolicy":
        spec = _dict(obj, "spec")
        spec.setdefault("podSelector", {})
        if not spec.get("policyTypes"):
            spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
        for rule in [*(spec.get("ingress") or []), *(spec.get("egress") or [])]:
            if isinstance(rule, dict):
                _default_ports(rule.get("ports"))


def prepare_create(kind: str, obj: Obj) -> None:
    """Defaults of a new object (after its uid and name are set), in place."""
    _default(kind, obj)
    if kind == "Job":
        _job_labels(obj)


def prepare_update(kind: str, old: Mapping[str, Any], new: Obj) -> None:
    """Defaults of an updated object, in place (the server-generated Job labels are kept)."""
    _default(kind, new)
    if kind == "Job":
        old_spec = old.get("spec") or {}
        spec = _dict(new, "spec")
        if not spec.get("selector") and old_spec.get("selector"):
            spec["selector"] = old_spec["selector"]


# validation -----------------------------------------------------------------------------------
def _validate_selected_template(
    kind: str, obj: Mapping[str, Any], *, selector_required: bool = True
) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return [_required("spec")]
    errors: list[Cause] = []
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        errors.append(
            _invalid("spec.replicas", str(replicas), "must be greater than or equal to 0")
        )
    selector = spec.get("selector")
    template = spec.get("template")
    if selector is None and selector_required:
        errors.append(_required("spec.selector"))
        if isinstance(template, Mapping):
            # a nil selector selects nothing, so no template labels match it either
            labels = (template.get("metadata") or {}).get("labels") or {}
            errors.append(
                _invalid(
                    "spec.template.metadata.labels",
                    _go_map(labels),
                    "`selector` does not match template `labels`",
                )
            )
    elif isinstance(selector, Mapping):
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            errors.append(
                _invalid(
                    "spec.selector",
                    "v1.LabelSelector{MatchLabels:map[string]string(nil), "
                    "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}",
                    f"empty selector is invalid for {kind.lower()}",
                )
            )
        elif isinstance(template, Mapping):
            labels = (template.get("metadata") or {}).get("labels") or {}
            if not match_label_selector_object(selector, labels):
                errors.append(
                    _invalid(
                        "spec.template.metadata.labels",
                        _go_map(labels),
                        "`selector` does not match template `labels`",
                    )
                )
    if not isinstance(template, Mapping):
        errors.append(_required("spec.template"))
    else:
        errors += validate_pod_spec(template.get("spec"), "spec.template.spec")
        if kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
            policy = (template.get("spec") or {}).get("restartPolicy")
            if policy not in (None, "Always"):
                errors.append(_unsupported("spec.template.spec.restartPolicy", policy, ("Always",)))
    return errors


def _validate_job_spec(spec: Any, path: str) -> list[Cause]:
    if not isinstance(spec, Mapping):
        return [_required(path)]
    template = spec.get("template")
    if not isinstance(template, Mapping):
        return [_required(f"{path}.template")]
    errors = validate_pod_spec(template.get("spec"), f"{path}.template.spec")
    policy = (template.get("spec") or {}).get("restartPolicy")
    where = f"{path}.template.spec.restartPolicy"
    if policy in (None, ""):
        errors.append(_required(where, 'valid values: "OnFailure", "Never"'))
    elif policy not in ("OnFailure", "Never"):
        errors.append(_unsupported(where, policy, ("OnFailure", "Never")))
    for key in ("parallelism", "completions", "backoffLimit"):
        value = spec.get(key)
        if isinstance(value, int) and value < 0:
            errors.append(
                _invalid(f"{path}.{key}", str(value), "must be greater than or equal to 0")
            )
    return errors


def _validate_rules(obj: Mapping[str, Any], *, namespaced: bool) -> list[Cause]:
    errors = []
    rules = obj.get("rules")
    if rules is not None and not isinstance(rules, list):
        return [_invalid("rules", json.dumps(rules), "must be a list")]
    for i, rule in enumerate(rules or []):
        where = f"rules[{i}]"
        if not isinstance(rule, Mapping):
            errors.append(_invalid(where, json.dumps(rule), "must be an object"))
            continue
        if not rule.get("verbs"):
            errors.append(_required(f"{where}.verbs", "verbs must contain at least one value"))
        urls = rule.get("nonResourceURLs") or []
        if urls and namespaced:
            errors.append(
                _invalid(
                    f"{where}.nonResourceURLs",
                    json.dumps(urls),
                    "namespaced rules cannot apply to non-resource URLs",
                )
            )
        if urls and (rule.get("resources") or rule.get("apiGroups")):
            errors.append(
                _invalid(
                    f"{where}.nonResourceURLs",
                    json.dumps(urls),
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        if not urls:
            if not rule.get("apiGroups"):
                errors.append(
                    _required(
                        f"{where}.apiGroups", "resource rules must supply at least one api group"
                    )
                )
            if not rule.get("resources"):
                errors.append(
                    _required(
                        f"{where}.resources", "resource rules must supply at least one resource"
                    )
                )
    return errors


def _validate_binding(obj: Mapping[str, Any], *, cluster: bool) -> list[Cause]:
    errors = []
    ref = obj.get("roleRef")
    kinds = ("ClusterRole",) if cluster else ("Role", "ClusterRole")
    if not isinstance(ref, Mapping):
        errors.append(_required("roleRef"))
    else:
        if ref.get("apiGroup") != RBAC_GROUP:
            errors.append(_unsupported("roleRef.apiGroup", ref.get("apiGroup", ""), (RBAC_GROUP,)))
        if ref.get("kind") not in kinds:
            errors.append(_unsupported("roleRef.kind", ref.get("kind", ""), kinds))
        if not ref.get("name"):
            errors.append(_required("roleRef.name"))
    for i, subject in enumerate(obj.get("subjects") or []):
        where = f"subjects[{i}]"
        if not isinstance(subject, Mapping):
            errors.append(_invalid(where, json.dumps(subject), "must be an object"))
            continue
        kind = subject.get("kind")
        if kind not in ("ServiceAccount", "User", "Group"):
            errors.append(
                _unsupported(f"{where}.kind", kind or "", ("ServiceAccount", "User", "Group"))
            )
        if not subject.get("name"):
            errors.append(_required(f"{where}.name"))
        if kind == "ServiceAccount" and cluster and not subject.get("namespace"):
            errors.append(_required(f"{where}.namespace"))
    return errors


def _validate_pdb(obj: Mapping[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    if (
        isinstance(spec, Mapping)
        and spec.get("minAvailable") is not None
        and (spec.get("maxUnavailable") is not None)
    ):
        return [
            _invalid(
                "spec",
                "policy.PodDisruptionBudgetSpec{...}",
                "minAvailable and maxUnavailable cannot be both set",
            )
        ]
    return []


def _validate_slice(obj: Mapping[str, Any]) -> list[Cause]:
    errors = []
    kind = obj.get("addressType")
    if not kind:
        errors.append(_required("addressType"))
    elif kind not in ("IPv4", "IPv6", "FQDN"):
        errors.append(_unsupported("addressType", kind, ("FQDN", "IPv4", "IPv6")))
    for i, endpoint in enumerate(obj.get("endpoints") or []):
        if not isinstance(endpoint, Mapping) or not endpoint.get("addresses"):
            errors.append(_required(f"endpoints[{i}].addresses", "must contain at least 1 address"))
    return errors


def _validate_ingress(obj: Mapping[str, Any]) -> list[Cause]:
    errors = []
    spec = obj.get("spec") or {}
    if not isinstance(spec, Mapping):
        return [_invalid("spec", json.dumps(spec), "must be an object")]
    if not spec.get("rules") and not spec.get("defaultBackend"):
        errors.append(
            _invalid("spec", "{}", "either `defaultBackend` or `rules` must be specified")
        )
    for i, rule in enumerate(spec.get("rules") or []):
        http = rule.get("http") if isinstance(rule, Mapping) else None
        if not isinstance(http, Mapping):
            continue
        for j, path in enumerate(http.get("paths") or []):
            where = f"spec.rules[{i}].http.paths[{j}]"
            if not isinstance(path, Mapping):
                continue
            kind = path.get("pathType")
            if not kind:
                errors.append(_required(f"{where}.pathType", "pathType must be specified"))
            elif kind not in ("Exact", "Prefix", "ImplementationSpecific"):
                errors.append(
                    _unsupported(
                        f"{where}.pathType", kind, ("Exact", "ImplementationSpecific", "Prefix")
                    )
                )
            if not path.get("backend"):
                errors.append(_required(f"{where}.backend"))
    return errors


_VALIDATORS: dict[str, Callable[[Mapping[str, Any]], list[Cause]]] = {
    "Deployment": lambda o: _validate_selected_template("Deployment", o),
    "ReplicaSet": lambda o: _validate_selected_template("ReplicaSet", o),
    "StatefulSet": lambda o: _validate_selected_template("StatefulSet", o),
    "DaemonSet": lambda o: _validate_selected_template("DaemonSet", o),
    "Job": lambda o: _validate_job_spec(o.get("spec"), "spec"),
    "CronJob": lambda o: (
        ([] if (o.get("spec") or {}).get("schedule") else [_required("spec.schedule")])
        + _validate_job_spec(
            ((o.get("spec") or {}).get("jobTemplate") or {}).get("spec"), "spec.jobTemplate.spec"
        )
    ),
    "Role": lambda o: _validate_rules(o, namespaced=True),
    "ClusterRole": lambda o: _validate_rules(o, namespaced=False),
    "RoleBinding": lambda o: _validate_binding(o, cluster=False),
    "ClusterRoleBinding": lambda o: _validate_binding(o, cluster=True),
    "PodDisruptionBudget": _validate_pdb,
    "EndpointSlice": _validate_slice,
    "Ingress": _validate_ingress,
}


def validate(kind: str, obj: Mapping[str, Any]) -> list[Cause]:
    """Required fields and shapes of ``kind`` (empty for the kinds this module does not own)."""
    check = _VALIDATORS.get(kind)
    return check(obj) if check is not None else []


def validate_update(kind: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    """Fields an update may not change: label selectors of workloads, a binding's roleRef."""
    errors = []
    if kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job"):
        before = (old.get("spec") or {}).get("selector")
        after = (new.get("spec") or {}).get("selector")
        if before != after:
            errors.append(_invalid("spec.selector", json.dumps(after), "field is immutable"))
    if kind in ("RoleBinding", "ClusterRoleBinding") and old.get("roleRef") != new.get("roleRef"):
        errors.append(_invalid("roleRef", json.dumps(new.get("roleRef")), "cannot change roleRef"))
    return errors
