"""The resource types localkube serves: built-in ones and those CustomResourceDefinitions add.

Owns :class:`Registry`, the lookup table the HTTP layer and discovery use, and the conversion
of a stored CRD into a :class:`ResourceType` (defined in :mod:`localkube.apitypes`; the built-in
catalogue is :mod:`localkube.catalog`). It is pure: the server
rebuilds the registry from the stored CRDs whenever one changes. Version conversion between the
served versions of one resource is the identity (apiVersion is rewritten), as with a CRD whose
``conversion.strategy`` is ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from localkube.apitypes import (
    ALL_VERBS,
    PrinterColumn,
    ResourceType,
    VersionInfo,
    version_priority,
)
from localkube.catalog import BUILTINS, GROUP_ORDER

__all__ = [
    "ALL_VERBS",
    "BUILTINS",
    "CRD_KEY",
    "NAMESPACE_KEY",
    "PrinterColumn",
    "Registry",
    "ResourceType",
    "VersionInfo",
    "resource_type_from_crd",
    "version_priority",
]

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
                deprecated=bool(v.get("deprecated")),
                deprecation_warning=str(v.get("deprecationWarning") or ""),
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

        def rank(group: str) -> tuple[int, str]:
            if group in GROUP_ORDER:
                return (GROUP_ORDER.index(group), "")
            return (len(GROUP_ORDER), group)

        return {g: sorted(out[g], key=version_priority) for g in sorted(out, key=rank)}

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted(
            (rt for rt in self.types.values() if rt.group == group and rt.version(version)),
            key=lambda rt: rt.plural,
        )
