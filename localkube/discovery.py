"""Discovery documents and OpenAPI v3, built from the registry.

Owns ``/version``, ``/api``, ``/apis``, ``/apis/{group}``, the ``APIResourceList`` of each group
version (with ``{plural}/status`` and the other subresources), and the OpenAPI v3 root and
per-group-version documents. kubectl 1.32 needs of the latter: a ``patch`` operation per resource
carrying ``x-kubernetes-group-version-kind`` and the ``fieldValidation`` query parameter (its
check for server-side validation). Patch request bodies do not list strategic merge patch, so
kubectl computes strategic patches for built-in types from its compiled-in types. Aggregated
discovery is not offered; kubectl falls back to these documents. Pure.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from localkube.resources import ALL_VERBS, Registry, ResourceType

__all__ = [
    "api_group",
    "api_group_list",
    "api_versions",
    "openapi_group_version",
    "openapi_root",
    "resource_list",
    "version_info",
]


# subresources a node answers: (name, kind, verbs) as kube-apiserver lists them ("" for proxy:
# PodProxyOptions or ServiceProxyOptions)
_NODE_SUBRESOURCES = (
    ("attach", "PodAttachOptions", ("create", "get")),
    ("exec", "PodExecOptions", ("create", "get")),
    ("log", "Pod", ("get",)),
    ("portforward", "PodPortForwardOptions", ("create", "get")),
    ("proxy", "", ("create", "delete", "get", "patch", "update")),
)


def version_info(git_version: str) -> dict[str, Any]:
    major, minor = git_version.lstrip("v").split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.groups().get(group)
    if not versions or not group:
        return None
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [api_group(registry, g) for g in registry.groups() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [g for g in groups if g]}


def _storage_hash(rt: ResourceType) -> str:
    digest = hashlib.sha256(f"{rt.group}/{rt.storage_version}/{rt.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rt in types:
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(ALL_VERBS),
            "storageVersionHash": _storage_hash(rt),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        if rt.has_status(version):
            resources.append(
                {
                    "name": f"{rt.plural}/status",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        for sub, kind, verbs in _NODE_SUBRESOURCES:
            if sub in rt.subresources:
                resources.append(
                    {
                        "name": f"{rt.plural}/{sub}",
                        "singularName": "",
                        "namespaced": rt.namespaced,
                        "kind": kind or f"{rt.kind}ProxyOptions",
                        "verbs": list(verbs),
                    }
                )
        if "finalize" in rt.subresources:
            resources.append(
                {
                    "name": f"{rt.plural}/finalize",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["update"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": rt.api_version(version),
        "resources": resources,
    }


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _schema_name(rt: ResourceType, version: str) -> str:
    if not rt.group:
        return f"io.k8s.api.core.{version}.{rt.kind}"
    reversed_group = ".".join(reversed(rt.group.split(".")))
    return f"{reversed_group}.{version}.{rt.kind}"


_QUERY = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")


def _operation(
    action: str,
    operation_id: str,
    gvk: dict[str, str],
    ref: dict[str, str],
    *,
    patch: bool = False,
    body: bool = False,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": operation_id,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": ref}}}
        },
        "parameters": [
            {"name": q, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for q in _QUERY
        ],
    }
    if patch:
        out["requestBody"] = {
            "content": {
                "application/json-patch+json": {"schema": {"type": "object"}},
                "application/merge-patch+json": {"schema": {"type": "object"}},
                "application/apply-patch+yaml": {"schema": {"type": "object"}},
            },
            "required": True,
        }
    elif body:
        out["requestBody"] = {"content": {"*/*": {"schema": ref}}, "required": True}
    return out


def openapi_group_version(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI v3 document of one group version."""
    types = registry.in_group_version(group, version)
    if not types:
        return None
    prefix = "/api/" + version if not group else f"/apis/{group}/{version}"
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rt in types:
        gvk = {"group": rt.group, "version": version, "kind": rt.kind}
        name = _schema_name(rt, version)
        ref = {"$ref": f"#/components/schemas/{name}"}
        info = rt.version(version)
        body_schema: dict[str, Any] = (
            dict(info.schema)
            if info is not None and info.schema
            else {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
            }
        )
        body_schema["x-kubernetes-group-version-kind"] = [gvk]
        schemas[name] = body_schema

        scope = (
            f"{prefix}/namespaces/{{namespace}}/{rt.plural}"
            if rt.namespaced
            else f"{prefix}/{rt.plural}"
        )
        tag = rt.kind
        paths[scope] = {
            "get": _operation("list", f"list{tag}", gvk, ref),
            "post": _operation("post", f"create{tag}", gvk, ref, body=True),
            "delete": _operation("deletecollection", f"deletecollection{tag}", gvk, ref),
        }
        paths[f"{scope}/{{name}}"] = {
            "get": _operation("get", f"read{tag}", gvk, ref),
            "put": _operation("put", f"replace{tag}", gvk, ref, body=True),
            "patch": _operation("patch", f"patch{tag}", gvk, ref, patch=True),
            "delete": _operation("delete", f"delete{tag}", gvk, ref),
        }
        if rt.has_status(version):
            paths[f"{scope}/{{name}}/status"] = {
                "get": _operation("get", f"read{tag}Status", gvk, ref),
                "put": _operation("put", f"replace{tag}Status", gvk, ref, body=True),
                "patch": _operation("patch", f"patch{tag}Status", gvk, ref, patch=True),
            }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def openapi_root(registry: Registry) -> dict[str, Any]:
    """``/openapi/v3``: one entry per group version, with a content hash in the URL."""
    paths: dict[str, Any] = {}
    for group, versions in registry.groups().items():
        for version in versions:
            doc = openapi_group_version(registry, group, version)
            digest = (
                hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
            )
            path = _gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}
