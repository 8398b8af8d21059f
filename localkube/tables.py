"""Server-side printing: ``meta.k8s.io/v1`` Table answers for ``kubectl get``.

Owns the columns of each resource (NAME, the built-in columns or a CRD's
``additionalPrinterColumns``, AGE), the small JSONPath subset those columns use (``.a.b``,
``[n]``, ``[*]``, ``[?(@.k=="v")]``), and ``duration.HumanDuration``. Pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from localkube.apitypes import PrinterColumn, ResourceType

__all__ = ["human_duration", "jsonpath_values", "to_table", "wants_table"]


def wants_table(accept: str) -> bool:
    """True when the Accept header asks for ``as=Table`` first."""
    first = accept.split(",")[0]
    return "as=Table" in first


def human_duration(seconds: float) -> str:
    """``k8s.io/apimachinery/pkg/util/duration.HumanDuration``."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


_TOKEN = re.compile(
    r"\.([^.\[]+)|\[(\d+)\]|\[\*\]|\[\?\(@\.([\w.-]+)\s*==\s*[\"']([^\"']*)[\"']\)\]"
)


def jsonpath_values(obj: Any, path: str) -> list[Any]:
    """Evaluate a simple JSONPath (as printer columns use) to the list of matches."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    path = path.lstrip("$")
    current = [obj]
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if match is None:
            return []
        pos = match.end()
        nxt: list[Any] = []
        for value in current:
            if match.group(1) is not None:
                if isinstance(value, Mapping) and match.group(1) in value:
                    nxt.append(value[match.group(1)])
            elif match.group(2) is not None:
                if isinstance(value, list) and int(match.group(2)) < len(value):
                    nxt.append(value[int(match.group(2))])
            elif match.group(0) == "[*]":
                if isinstance(value, list):
                    nxt.extend(value)
            elif isinstance(value, list):
                key, wanted = match.group(3), match.group(4)
                for item in value:
                    found = jsonpath_values(item, "." + key)
                    if found and str(found[0]) == wanted:
                        nxt.append(item)
        current = nxt
    return current


def _age(timestamp: Any, now: datetime) -> str:
    if not isinstance(timestamp, str):
        return "<unknown>"
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    return human_duration((now - then).total_seconds())


def _cell(column: PrinterColumn, obj: Mapping[str, Any], now: datetime) -> Any:
    if column.cell is not None:
        return column.cell(obj, now)
    values = jsonpath_values(obj, column.json_path)
    if not values:
        return None
    if column.type == "date":
        return _age(values[0], now)
    if len(values) > 1:
        return ",".join(json.dumps(v) if isinstance(v, (dict, list)) else str(v) for v in values)
    value = values[0]
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if column.type == "string" and not isinstance(value, str):
        return json.dumps(value) if isinstance(value, bool) else str(value)
    return value


_AGE = PrinterColumn("Age", "string", "", description="CreationTimestamp")


def _columns(rt: ResourceType, version: str) -> tuple[list[PrinterColumn], bool]:
    info = rt.version(version)
    extra = list(info.printer_columns) if info is not None else []
    if rt.custom:
        return extra, not extra
    # the built-in printers of CRDs and RBAC roles show CREATED AT instead of AGE
    return extra, not any(c.name == "Created At" for c in extra)


def to_table(
    rt: ResourceType,
    version: str,
    objects: Sequence[Mapping[str, Any]],
    *,
    resource_version: str,
    include_object: str,
    now: datetime | None = None,
    continue_token: str = "",
) -> dict[str, Any]:
    """A Table of ``objects`` (rows carry PartialObjectMetadata unless asked otherwise)."""
    now = now or datetime.now(UTC)
    columns, with_age = _columns(rt, version)
    shown: list[PrinterColumn] = list(columns)
    if with_age:
        # built-in printers put AGE after the default columns, before the -o wide ones
        at = next((i for i, c in enumerate(shown) if c.priority > 0 and not rt.custom), None)
        shown.insert(len(shown) if at is None else at, _AGE)
    definitions = [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": "Name must be unique within a namespace.",
            "priority": 0,
        }
    ]
    definitions += [
        {
            "name": c.name,
            "type": c.type,
            "format": c.format,
            "description": c.description,
            "priority": c.priority,
        }
        for c in shown
    ]
    rows = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        cells: list[Any] = [meta.get("name", "")]
        cells += [
            _age(meta.get("creationTimestamp"), now) if c is _AGE else _cell(c, obj, now)
            for c in shown
        ]
        row: dict[str, Any] = {"cells": cells}
        if include_object == "Object":
            row["object"] = dict(obj)
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": dict(meta),
            }
        rows.append(row)
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    }
