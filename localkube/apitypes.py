"""The description of one served resource: names, scope, versions, subresources, columns.

Owns :class:`ResourceType` (what the HTTP layer, the pipeline, discovery and tables need to know
of a resource), :class:`VersionInfo`, :class:`PrinterColumn` and Kubernetes' version priority.
Pure data; the built-in catalogue is :mod:`localkube.catalog`, the lookup table
:mod:`localkube.resources`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "ALL_VERBS",
    "Cell",
    "PrinterColumn",
    "ResourceType",
    "VersionInfo",
    "version_priority",
]

# A computed Table cell (what kube-apiserver's Go printers derive from several fields), given
# the object and the time the Table is made.
Cell = Callable[[Mapping[str, Any], datetime], Any]

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
    cell: Cell | None = None


@dataclass(frozen=True)
class VersionInfo:
    """What one served version of a resource carries."""

    name: str
    schema: Mapping[str, Any] | None = None
    status: bool = False
    printer_columns: tuple[PrinterColumn, ...] = ()
    selectable_fields: tuple[str, ...] = ()
    deprecated: bool = False
    deprecation_warning: str = ""


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
    generation: bool = False

    @property
    def tracks_generation(self) -> bool:
        """True when ``metadata.generation`` counts spec changes (custom resources always)."""
        return self.custom or self.generation

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

    def deprecation(self, version: str) -> str:
        """The ``Warning`` every request to a deprecated served version gets (else ``""``)."""
        info = self.version(version)
        if info is None or not info.deprecated:
            return ""
        return info.deprecation_warning or f"{self.api_version(version)} {self.kind} is deprecated"

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
    match = _VERSION_RE.fullmatch(name)
    if match is None:
        return (3, 0, 0, name)
    major = int(match.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[match.group(2)]
    minor = int(match.group(3) or 0)
    return (stage, -major, -minor, "")
