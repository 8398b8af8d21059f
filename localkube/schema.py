"""Structural OpenAPI v3 schemas of CRDs: pruning, defaulting and validation.

Owns what apiextensions-apiserver does to a custom resource against its version's
``openAPIV3Schema``: drop fields the schema does not declare (unless
``x-kubernetes-preserve-unknown-fields``), drop ``null`` where the schema is not ``nullable``, fill
``default`` values, and check types, ``required``, ``enum``, bounds and lengths, reporting errors as
``field.Error`` renders them. ``x-kubernetes-int-or-string`` and
``x-kubernetes-embedded-resource`` (apiVersion/kind/metadata kept) are honoured. Patterns are
matched with RE2 (Go's regexp semantics, linear time), so no pattern can make a check hang. Also
validates object names. CEL rules and ``format`` are not evaluated. Pure.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Mapping
from typing import Any

import re2

from localkube.errors import Cause

__all__ = [
    "OBJECT_META_FIELDS",
    "apply_defaults",
    "invalid_patterns",
    "prune",
    "validate",
    "validate_name",
]

Schema = Mapping[str, Any]

OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _prune_meta(meta: Any, path: str, unknown: list[str]) -> Any:
    if not isinstance(meta, dict):
        return meta
    for key in list(meta):
        if key not in OBJECT_META_FIELDS:
            unknown.append(_join(path, key))
            del meta[key]
    return meta


def prune(obj: dict[str, Any], schema: Schema | None) -> list[str]:
    """Prune ``obj`` in place; returns the paths of the unknown fields that were dropped."""
    unknown: list[str] = []
    if schema is None:
        return unknown
    if isinstance(obj.get("metadata"), dict):
        _prune_meta(obj["metadata"], "metadata", unknown)
    _prune_value(obj, schema, "", unknown, root=True)
    return unknown


def _prune_value(
    value: Any, schema: Schema, path: str, unknown: list[str], *, root: bool = False
) -> None:
    if isinstance(value, dict):
        properties: Mapping[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        for key in list(value):
            sub = _join(path, key)
            if (root or embedded) and key in ("apiVersion", "kind", "metadata"):
                if key == "metadata" and embedded and not root:
                    _prune_meta(value[key], sub, unknown)
                continue
            child: Schema | None
            if key in properties:
                child = properties[key]
            elif isinstance(additional, Mapping):
                child = additional
            elif additional is True or preserve:
                continue
            else:
                unknown.append(sub)
                del value[key]
                continue
            assert child is not None
            if value[key] is None and not child.get("nullable"):
                del value[key]
                continue
            _prune_value(value[key], child, sub, unknown)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                _prune_value(item, items, f"{path}[{i}]", unknown)


def apply_defaults(obj: dict[str, Any], schema: Schema | None) -> None:
    """Fill schema ``default`` values into ``obj`` in place (structural defaulting)."""
    if schema is not None:
        _default_value(obj, schema)


def _default_value(value: Any, schema: Schema) -> None:
    if isinstance(value, dict):
        properties: Mapping[str, Any] = schema.get("properties") or {}
        for key, child in properties.items():
            if key not in value and "default" in child:
                value[key] = copy.deepcopy(child["default"])
        for key, item in value.items():
            if key in properties:
                _default_value(item, properties[key])
            elif isinstance(schema.get("additionalProperties"), Mapping):
                _default_value(item, schema["additionalProperties"])
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for item in value:
                _default_value(item, items)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _render(value: Any) -> str:
    """A value as Go's ``%#v`` roughly shows it in ``Invalid value: ...``."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return '"null"'
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(_type_name(value))


def _type_ok(value: Any, wanted: str) -> bool:
    if wanted == "object":
        return isinstance(value, dict)
    if wanted == "array":
        return isinstance(value, list)
    if wanted == "string":
        return isinstance(value, str)
    if wanted == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if wanted == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if wanted == "boolean":
        return isinstance(value, bool)
    return True


def validate(obj: Mapping[str, Any], schema: Schema | None) -> list[Cause]:
    """Check ``obj`` against ``schema``; returns every error with its field path."""
    errors: list[Cause] = []
    if schema is not None:
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        reduced = dict(schema)
        props = dict(schema.get("properties") or {})
        for key in ("apiVersion", "kind", "metadata"):
            props.pop(key, None)
        reduced["properties"] = props
        reduced["required"] = [r for r in schema.get("required") or [] if r not in ("metadata",)]
        _validate_value(body, reduced, "", errors)
    return errors


def _invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause("FieldValueInvalid", f"Invalid value: {_render(value)}: {detail}", path)


def _validate_value(value: Any, schema: Schema, path: str, errors: list[Cause]) -> None:
    shown = path or "<root>"
    if value is None:
        if not schema.get("nullable") and schema.get("type"):
            errors.append(
                _invalid(path, value, f'{shown} in body must be of type {schema["type"]}: "null"')
            )
        return
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _type_ok(value, "integer")):
            errors.append(
                _invalid(
                    path,
                    _type_name(value),
                    f'{shown} in body must be of type integer,string: "{_type_name(value)}"',
                )
            )
            return
    elif (wanted := schema.get("type")) and not _type_ok(value, str(wanted)):
        errors.append(
            _invalid(
                path,
                _type_name(value),
                f'{shown} in body must be of type {wanted}: "{_type_name(value)}"',
            )
        )
        return
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        supported = ", ".join(json.dumps(e) for e in enum)
        errors.append(
            Cause(
                "FieldValueNotSupported",
                f"Unsupported value: {_render(value)}: supported values: {supported}",
                path,
            )
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "maximum" in schema and (
            value > schema["maximum"]
            or (schema.get("exclusiveMaximum") and value >= schema["maximum"])
        ):
            errors.append(
                _invalid(
                    path,
                    value,
                    f"{shown} in body should be less than or equal to {schema['maximum']}",
                )
            )
        if "minimum" in schema and (
            value < schema["minimum"]
            or (schema.get("exclusiveMinimum") and value <= schema["minimum"])
        ):
            errors.append(
                _invalid(
                    path,
                    value,
                    f"{shown} in body should be greater than or equal to {schema['minimum']}",
                )
            )
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(
                Cause(
                    "FieldValueTooLong",
                    f"Too long: may not be more than {schema['maxLength']} bytes",
                    path,
                )
            )
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(
                _invalid(
                    path,
                    value,
                    f"{shown} in body should be at least {schema['minLength']} chars long",
                )
            )
        if "pattern" in schema and not _matches(str(schema["pattern"]), value):
            errors.append(
                _invalid(path, value, f"{shown} in body should match '{schema['pattern']}'")
            )
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(
                Cause(
                    "FieldValueTooMany",
                    f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
                    path,
                )
            )
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(
                _invalid(
                    path,
                    len(value),
                    f"{shown} in body should have at least {schema['minItems']} items",
                )
            )
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                _validate_value(item, items, f"{path}[{i}]", errors)
    if isinstance(value, dict):
        if schema.get("x-kubernetes-embedded-resource") and path:
            value = {k: v for k, v in value.items() if k not in ("apiVersion", "kind", "metadata")}
        for key in schema.get("required") or []:
            if key not in value:
                errors.append(Cause("FieldValueRequired", "Required value", _join(path, key)))
        properties: Mapping[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                _validate_value(item, properties[key], _join(path, key), errors)
            elif isinstance(additional, Mapping):
                _validate_value(item, additional, _join(path, key), errors)


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@functools.lru_cache(maxsize=512)
def _pattern(pattern: str) -> Any:
    """A compiled RE2 pattern (Go's regexp syntax, linear time), or ``None`` if invalid."""
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error:
        return None


def _matches(pattern: str, value: str) -> bool:
    """``pattern`` found in ``value`` with RE2's linear-time semantics, as kube-apiserver's Go
    regexp does (an invalid pattern, which kube-apiserver refuses in the CRD, matches)."""
    compiled = _pattern(pattern)
    return compiled is None or compiled.search(value) is not None


def invalid_patterns(schema: Any, path: str) -> list[Cause]:
    """``pattern``s in a structural schema that Go's regexp (RE2) cannot compile."""
    causes: list[Cause] = []
    stack: list[tuple[Any, str]] = [(schema, path)]
    while stack:
        node, where = stack.pop()
        if not isinstance(node, Mapping):
            continue
        pattern = node.get("pattern")
        if isinstance(pattern, str) and _pattern(pattern) is None:
            causes.append(
                Cause(
                    "FieldValueInvalid",
                    f"Invalid value: {json.dumps(pattern)}: must be a valid regular expression, "
                    "but isn't",
                    f"{where}.pattern",
                )
            )
        for key, child in (node.get("properties") or {}).items():
            stack.append((child, f"{where}.properties[{key}]"))
        for key in ("items", "additionalProperties", "not"):
            if isinstance(node.get(key), Mapping):
                stack.append((node[key], f"{where}.{key}"))
        for key in ("allOf", "anyOf", "oneOf"):
            for i, child in enumerate(node.get(key) or []):
                stack.append((child, f"{where}.{key}[{i}]"))
    return sorted(causes, key=lambda c: c.field)


_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

_LABEL_KINDS = frozenset({"Namespace"})
_DNS1035_KINDS = frozenset({"Service"})


def validate_name(kind: str, name: str) -> list[Cause]:
    """``metadata.name`` rules of a kind (DNS-1123 subdomain unless the kind is stricter)."""
    if kind in _DNS1035_KINDS:
        if len(name) > 63 or not _DNS1035_LABEL.fullmatch(name):
            return [
                _invalid(
                    "metadata.name",
                    name,
                    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                    "start with an alphabetic character, and end with an alphanumeric character "
                    "(e.g. 'my-name',  or 'abc-123', regex used for validation is "
                    "'[a-z]([-a-z0-9]*[a-z0-9])?')",
                )
            ]
        return []
    if kind in _LABEL_KINDS:
        if len(name) > 63 or not _DNS1123_LABEL.fullmatch(name):
            return [
                _invalid(
                    "metadata.name",
                    name,
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                    "or '-', and must start and end with an alphanumeric character (e.g. 'my-name',"
                    "  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                )
            ]
        return []
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(name):
        return [
            _invalid(
                "metadata.name",
                name,
                "a lowercase RFC 1123 subdomain must consist "
                "of lower case alphanumeric characters, "
                "'-' or '.', and must start and end with an alphanumeric character (e.g. "
                "'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            )
        ]
    return []
