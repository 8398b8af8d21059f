"""What stops a RayCluster from being built, and what raysvc builds without.

The API server's schema has already checked types; these are the problems that remain and that
would otherwise fail every reconcile at the API (a template without a container, a quantity the
API server will refuse) or build a cluster that silently lacks something its spec asks for
(token authentication, TLS, a network policy). Errors stop the controller from creating
anything for the cluster; warnings are told once and the rest is built. Both are worded like
the API server's field errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rayservice.errors import FieldError, FieldWarning, Key, Path, Reason
from rayservice.quantity import QuantityError, quantity_value

__all__ = ["spec_errors", "spec_warnings"]

_REFUSED = (
    "raysvc's RayCluster controller cannot provide it; use KubeRay's operator for this cluster"
)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _container_errors(template: object, path: Path) -> list[FieldError]:
    spec = _mapping(_mapping(template).get("spec"))
    containers = spec.get("containers")
    containers_path = (*path, "spec", "containers")
    if not isinstance(containers, list) or not containers:
        return [
            FieldError(containers_path, Reason.REQUIRED, detail="the Ray container comes first")
        ]
    errors = []
    for index, container in enumerate(containers):
        resources = _mapping(_mapping(container).get("resources"))
        for source in ("limits", "requests"):
            for name, text in _mapping(resources.get(source)).items():
                try:
                    quantity_value(text)
                except QuantityError as e:  # the grammar's or the range's own detail
                    errors.append(
                        FieldError(
                            (*containers_path, index, "resources", source, Key(str(name))),
                            Reason.INVALID,
                            text,
                            str(e),
                        )
                    )
    return errors


def spec_errors(cluster: Mapping[str, Any]) -> list[FieldError]:
    """Everything that stops the controller from building ``cluster``; empty when it can."""
    spec = _mapping(cluster.get("spec"))
    errors = _container_errors(
        _mapping(spec.get("headGroupSpec")).get("template"),
        ("spec", "headGroupSpec", "template"),
    )
    seen: set[str] = set()
    groups = spec.get("workerGroupSpecs")
    for index, group in enumerate(groups if isinstance(groups, list) else ()):
        path: Path = ("spec", "workerGroupSpecs", index)
        group_name = _mapping(group).get("groupName")
        if not isinstance(group_name, str) or not group_name:
            errors.append(FieldError((*path, "groupName"), Reason.REQUIRED))
        elif group_name in seen:
            errors.append(FieldError((*path, "groupName"), Reason.DUPLICATE, group_name))
        else:
            seen.add(group_name)
        errors.extend(_container_errors(_mapping(group).get("template"), (*path, "template")))
    auth_mode = _mapping(spec.get("authOptions")).get("mode")
    if auth_mode not in (None, "disabled"):
        errors.append(
            FieldError(("spec", "authOptions", "mode"), Reason.UNSUPPORTED, auth_mode, _REFUSED)
        )
    backend = _mapping(spec.get("gcsFaultToleranceOptions")).get("backend")
    if backend not in (None, "", "redis"):
        errors.append(
            FieldError(
                ("spec", "gcsFaultToleranceOptions", "backend"),
                Reason.UNSUPPORTED,
                backend,
                _REFUSED,
            )
        )
    for key in ("tlsOptions", "networkPolicy", "historyServerOptions"):
        if spec.get(key) is not None:
            errors.append(FieldError(("spec", key), Reason.FORBIDDEN, detail=_REFUSED))
    return errors


def spec_warnings(cluster: Mapping[str, Any]) -> list[FieldWarning]:
    """What the spec asks for and raysvc leaves out while building the rest."""
    spec = _mapping(cluster.get("spec"))
    warnings = []
    if _mapping(spec.get("headGroupSpec")).get("enableIngress") is True:
        warnings.append(
            FieldWarning(
                ("spec", "headGroupSpec", "enableIngress"),
                "no Ingress is created; expose the head Service yourself",
            )
        )
    upgrade = _mapping(spec.get("upgradeStrategy")).get("type")
    if upgrade == "Recreate":
        warnings.append(
            FieldWarning(
                ("spec", "upgradeStrategy", "type"),
                "Recreate is not supported: template changes do not replace running Pods",
            )
        )
    annotations = _mapping(_mapping(cluster.get("metadata")).get("annotations"))
    if annotations.get("ray.io/enable-serve-service") == "true":
        warnings.append(
            FieldWarning(
                ("metadata", "annotations", Key("ray.io/enable-serve-service")),
                "no <cluster>-serve-svc is created; a RayService creates its own serve Service",
            )
        )
    return warnings
