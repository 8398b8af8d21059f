"""The resource types localkube serves: built-in ones and those CustomResourceDefinitions add.

Owns :class:`ResourceType` (names, scope, versions, subresources, schemas, printer columns) and
:class:`Registry`, the lookup table the HTTP layer and discovery use. It is pure: the server
rebuilds the registry from the stored CRDs whenever one changes. Version conversion between the
served versions of one resource is the identity (apiVersion is rewritten), as with a CRD whose
``conversion.strategy`` is ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BUILTINS",
    "PrinterColumn",
    "Registry",
    "ResourceType",
    "VersionInfo",
    "resource_type_from_crd",
    "version_priority",
]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry (or a built-in column of the same shape)."""

    name: str
    type: str
    json_path: str
    format: str = ""
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class VersionInfo:
    """What one served version of a resource carries."""

    name: str
    schema: Mapping[str, Any] | None = None
    status: bool = False
    printer_columns: tuple[PrinterColumn, ...] = ()
    selectable_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResourceType:
    """One resource (``group``/``plural``), served in one or more versions."""

    group: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    versions: tuple[VersionInfo, ...]
    storage_version: str
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    custom: bool = False
    field_selectors: frozenset[str] = frozenset()
    return_deleted_object: bool = False
    list_kind: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def qualified(self) -> str:
        """``rayservices.ray.io`` or ``pods``: the name error messages use."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind_name(self) -> str:
        return self.list_kind or f"{self.kind}List"

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    def version(self, name: str) -> VersionInfo | None:
        return next((v for v in self.versions if v.name == name), None)

    @property
    def preferred_version(self) -> str:
        return self.versions[0].name

    def has_status(self, version: str) -> bool:
        info = self.version(version)
        if self.custom:
            return info is not None and info.status
        return "status" in self.subresources

    def selectable(self, version: str) -> frozenset[str]:
        """Field paths a field selector may name for this resource."""
        base = {"metadata.name", "metadata.namespace"} | set(self.field_selectors)
        info = self.version(version)
        if info is not None:
            base |= set(info.selectable_fields)
        return frozenset(base)


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(name: str) -> tuple[int, int, int, str]:
    """Sort key implementing Kubernetes version priority (GA > beta > alpha > others)."""
    match = _VERSION_RE.match(name)
    if match is None:
        return (3, 0, 0, name)
    major = int(match.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[match.group(2)]
    minor = int(match.group(3) or 0)
    return (stage, -major, -minor, "")


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
        subresources=frozenset({"status", "log", "binding"}),
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
            PrinterColumn("Status", "string", ".status.phase"),
            PrinterColumn("IP", "string", ".status.podIP", priority=1),
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
            PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
            PrinterColumn("Version", "string", ".status.nodeInfo.kubeletVersion"),
            PrinterColumn("Internal-IP", "string", ".status.addresses[0].address", priority=1),
        ),
    ),
    _builtin(
        "",
        "v1",
        "services",
        "Service",
        namespaced=True,
        short_names=("svc",),
        subresources=_STATUS,
        categories=("all",),
        return_deleted_object=True,
        columns=(
            PrinterColumn("Type", "string", ".spec.type"),
            PrinterColumn("Cluster-IP", "string", ".spec.clusterIP"),
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
        columns=(PrinterColumn("Type", "string", ".type"),),
    ),
    _builtin("", "v1", "configmaps", "ConfigMap", namespaced=True, short_names=("cm",)),
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
        columns=(PrinterColumn("Created At", "string", ".metadata.creationTimestamp"),),
    ),
)

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
NAMESPACE_KEY = ("", "namespaces")


def resource_type_from_crd(crd: Mapping[str, Any]) -> ResourceType:
    """Build the served resource of a stored ``apiextensions.k8s.io/v1`` CRD."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    served = [v for v in spec.get("versions") or [] if v.get("served")]
    served.sort(key=lambda v: version_priority(str(v.get("name"))))
    versions = []
    for v in served:
        columns = tuple(
            PrinterColumn(
                name=str(c.get("name", "")),
                type=str(c.get("type", "string")),
                json_path=str(c.get("jsonPath", "")),
                format=str(c.get("format", "")),
                description=str(c.get("description", "")),
                priority=int(c.get("priority", 0)),
            )
            for c in v.get("additionalPrinterColumns") or []
        )
        versions.append(
            VersionInfo(
                name=str(v["name"]),
                schema=(v.get("schema") or {}).get("openAPIV3Schema"),
                status="status" in (v.get("subresources") or {}),
                printer_columns=columns,
                selectable_fields=tuple(
                    str(f.get("jsonPath", "")).lstrip(".") for f in v.get("selectableFields") or []
                ),
            )
        )
    storage = next(
        (str(v["name"]) for v in spec.get("versions") or [] if v.get("storage")),
        versions[0].name if versions else "",
    )
    return ResourceType(
        group=str(spec.get("group", "")),
        plural=str(names.get("plural", "")),
        singular=str(names.get("singular") or str(names.get("kind", "")).lower()),
        kind=str(names.get("kind", "")),
        list_kind=str(names.get("listKind") or ""),
        namespaced=spec.get("scope") == "Namespaced",
        versions=tuple(versions),
        storage_version=storage,
        short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        subresources=frozenset({"status"} if any(v.status for v in versions) else frozenset[str]()),
        custom=True,
    )


@dataclass
class Registry:
    """Served resources by group and plural; rebuilt when CRDs change."""

    types: dict[tuple[str, str], ResourceType] = field(default_factory=dict)

    @classmethod
    def with_builtins(cls) -> Registry:
        return cls({rt.key: rt for rt in BUILTINS})

    def replace_custom(self, crds: Iterable[Mapping[str, Any]]) -> None:
        """Serve exactly the given CRDs (besides the built-ins)."""
        types = {rt.key: rt for rt in BUILTINS}
        for crd in crds:
            rt = resource_type_from_crd(crd)
            if rt.versions and rt.key not in types:
                types[rt.key] = rt
        self.types = types

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        rt = self.types.get((group, plural))
        if rt is None or rt.version(version) is None:
            return None
        return rt

    def get(self, key: tuple[str, str]) -> ResourceType | None:
        return self.types.get(key)

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for rt in self.types.values():
            if rt.group == group and rt.kind == kind and rt.version(version) is not None:
                return rt
        return None

    def groups(self) -> dict[str, list[str]]:
        """Group name -> served versions in priority order (the core group is ``""``)."""
        out: dict[str, set[str]] = {}
        for rt in self.types.values():
            out.setdefault(rt.group, set()).update(v.name for v in rt.versions)
        return {g: sorted(vs, key=version_priority) for g, vs in sorted(out.items())}

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted(
            (rt for rt in self.types.values() if rt.group == group and rt.version(version)),
            key=lambda rt: rt.plural,
        )
