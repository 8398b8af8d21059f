"""The project's CustomResourceDefinitions for RayService and RayCluster, built from the models.

Used where raysvc runs without KubeRay (the ``standalone`` profile and local mode); beside
KubeRay, KubeRay's own CRDs stay in place. The schemas are structural (every node typed), so the
API server prunes unknown fields as it does for KubeRay's CRDs:

- fields of the models raysvc knows whole (``strict_fields``) are declared one by one;
- Kubernetes types raysvc only partly models (pod templates, Services) keep every field
  (``x-kubernetes-preserve-unknown-fields``), as do free-form maps and ``status``;
- the worker-group defaults are KubeRay's CRD defaults, so an object means the same under either
  CRD; the other defaults are the mutating webhook's (``rayservice.defaults``).
"""

from __future__ import annotations

import types
import typing
from typing import Any, Final

from annotated_types import Ge, Le
from pydantic import BaseModel

from rayservice.defaults import DEFAULT_RULES
from rayservice.models import (
    INT32_MAX,
    PodTemplateSpec,
    RayClusterSpec,
    RayServiceSpec,
    RayServiceSpecV1Alpha1,
)

__all__ = ["GROUP", "rayservice_crds"]

GROUP: Final = "ray.io"
Schema = dict[str, Any]

_PRESERVE: Final[Schema] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_INT_OR_STRING: Final[Schema] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
}
# Free-form Kubernetes objects: a schema of their own would only re-declare the core API.
_OPAQUE_MODELS: Final = (PodTemplateSpec,)
_WORKER_DEFAULTS: Final = {
    rule.key: rule.value
    for rule in DEFAULT_RULES
    if rule.scope == "worker"
    and rule.key in ("replicas", "minReplicas", "maxReplicas", "numOfHosts")
}


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _schema(annotation: Any, metadata: list[Any] | None = None) -> Schema:
    annotation = _unwrap_optional(annotation)
    constraints = list(metadata or [])
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        for item in extra:
            constraints.extend(getattr(item, "metadata", None) or [item])
        return _schema(base, constraints)
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in _OPAQUE_MODELS:
            return dict(_PRESERVE)
        return _object(annotation)
    if origin in (typing.Union, types.UnionType):
        return dict(_INT_OR_STRING)  # the only non-optional union: quantities
    if origin is list:
        (item,) = typing.get_args(annotation)
        return {"type": "array", "items": _schema(item)}
    if origin is dict:
        _, value = typing.get_args(annotation)
        if value is Any:
            return dict(_PRESERVE)
        return {"type": "object", "additionalProperties": _schema(value)}
    if origin is typing.Literal:
        return {"type": "string", "enum": list(typing.get_args(annotation))}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        schema: Schema = {"type": "integer", "format": "int32"}
        for item in constraints:
            low = item.ge if isinstance(item, Ge) else None
            high = item.le if isinstance(item, Le) else None
            if isinstance(low, int) and low > -(2**31):
                schema["minimum"] = low
            if isinstance(high, int) and high < INT32_MAX:
                schema["maximum"] = high
        return schema
    if annotation is float:
        return {"type": "number"}
    if annotation is str:
        return {"type": "string"}
    raise TypeError(f"no CRD schema for {annotation!r}")


def _object(model: type[BaseModel]) -> Schema:
    properties: dict[str, Schema] = {}
    required: list[str] = []
    for name, info in model.model_fields.items():
        alias = info.alias or name
        properties[alias] = _schema(info.annotation, list(info.metadata))
        if info.is_required():
            required.append(alias)
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if not getattr(model, "strict_fields", False):
        schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


def _cluster_spec_schema() -> Schema:
    schema = _object(RayClusterSpec)
    group = schema["properties"]["workerGroupSpecs"]["items"]
    for key, value in _WORKER_DEFAULTS.items():
        group["properties"][key]["default"] = value
    return schema


def _top(spec: Schema) -> Schema:
    return {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": dict(_PRESERVE),
        },
    }


def _with_cluster(spec_model: type[BaseModel]) -> Schema:
    spec = _object(spec_model)
    spec["properties"]["rayClusterConfig"] = _cluster_spec_schema()
    return spec


def _crd(kind: str, versions: list[dict[str, Any]]) -> dict[str, Any]:
    plural = f"{kind.lower()}s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "categories": ["all"],
            },
            "versions": versions,
        },
    }


def _version(
    name: str, spec: Schema, columns: list[dict[str, str]], **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "served": True,
        "storage": name == "v1",
        **extra,
        "subresources": {"status": {}},
        "additionalPrinterColumns": columns,
        "schema": {"openAPIV3Schema": _top(spec)},
    }


def _column(name: str, kind: str, path: str) -> dict[str, str]:
    return {"name": name, "type": kind, "jsonPath": path}


_AGE: Final = _column("Age", "date", ".metadata.creationTimestamp")


def rayservice_crds() -> list[dict[str, Any]]:
    """The RayService (v1 stored, v1alpha1 served and deprecated) and RayCluster CRDs."""
    service_columns = [
        _column("Service Status", "string", ".status.serviceStatus"),
        _column("Num Serve Endpoints", "integer", ".status.numServeEndpoints"),
        _AGE,
    ]
    cluster_columns = [
        _column("Desired Workers", "integer", ".status.desiredWorkerReplicas"),
        _column("Available Workers", "integer", ".status.availableWorkerReplicas"),
        _column("CPUs", "string", ".status.desiredCPU"),
        _column("Memory", "string", ".status.desiredMemory"),
        _column("Status", "string", ".status.state"),
        _AGE,
    ]
    rayservice = _crd(
        "RayService",
        [
            _version("v1", _with_cluster(RayServiceSpec), service_columns),
            _version(
                "v1alpha1",
                _with_cluster(RayServiceSpecV1Alpha1),
                service_columns,
                deprecated=True,
                deprecationWarning="ray.io/v1alpha1 RayService is deprecated; use ray.io/v1",
            ),
        ],
    )
    raycluster = _crd("RayCluster", [_version("v1", _cluster_spec_schema(), cluster_columns)])
    return [rayservice, raycluster]
