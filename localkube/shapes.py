"""Go-typed shapes of the built-in kinds and of every object's metadata.

kube-apiserver decodes a built-in object into its Go struct, so a value of the wrong JSON type
(``spec: 5``, ``labels: ["a"]``, ``ownerReferences: "x"``, ``metadata.name: 5``) is a 400 before
anything else looks at it, worded by Go's ``encoding/json``: ``json: cannot unmarshal number into
Go struct field Deployment.spec of type v1.DeploymentSpec``. Owns that check, driven by the
protobuf field tables (:mod:`localkube.protoschema`, which name every field's Go type), for the
built-in kinds, and for the metadata of custom resources; CRDs, whose Go types have no table
here, get a hand-written check of the fields localkube reads. Also the ObjectMeta rules
kube-apiserver validates (422): label and annotation syntax, owner references, finalizers. Pure.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from localkube.errors import MAX_CAUSES, Cause
from localkube.protobuf import message_name
from localkube.protoschema import MESSAGES

__all__ = [
    "ShapeError",
    "check_binding",
    "check_crd",
    "check_metadata",
    "check_object",
    "validate_finalizers",
    "validate_metadata",
]

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_OBJECT_META = _META + "ObjectMeta"
_SCALAR_GO = {
    "string": "string",
    "bool": "bool",
    "int32": "int32",
    "int64": "int64",
    "uint32": "uint32",
    "double": "float64",
    "float": "float32",
    "bytes": "[]uint8",
}
_ANY = frozenset({"k8s.io.apimachinery.pkg.runtime.RawExtension", _META + "FieldsV1"})
_MAX_WALK = 200_000


_TIMES = {
    _META + "Time": "2006-01-02T15:04:05Z07:00",
    _META + "MicroTime": "2006-01-02T15:04:05.000000Z07:00",
}
"""The timestamp types, with the Go layout each parses its JSON string with."""
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


def _rfc3339(text: str) -> bool:
    """Whether ``text`` is an RFC 3339 timestamp Go's ``time.Parse`` reads (a real date)."""
    if not _RFC3339.fullmatch(text):
        return False
    date, _, rest = text.partition("T")
    try:
        datetime.fromisoformat(f"{date}T{rest[:8]}+00:00")
    except ValueError:
        return False
    zone = rest[-6:] if rest[-1] != "Z" else "+00:00"
    return int(zone[1:3]) < 24 and int(zone[4:6]) < 60


class ShapeError(ValueError):
    """A value whose JSON type does not fit the Go field (Go's decoder message)."""


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _go_name(kind: str) -> str:
    if kind in _SCALAR_GO:
        return _SCALAR_GO[kind]
    package, _, name = kind.rpartition(".")
    return f"{package.rpartition('.')[2]}.{name}"


def _go_type(kind: str, card: int) -> str:
    if card == 2:
        _, value = kind.split(",", 1)
        return f"map[string]{_go_name(value)}"
    return ("[]" if card == 1 else "") + _go_name(kind)


def _fits(kind: str, value: Any) -> bool:
    """Whether a non-null JSON value can decode into a field of proto ``kind``."""
    if kind in _ANY:
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind in ("int32", "int64", "uint32"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in ("double", "float"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bytes":
        return isinstance(value, str)
    if kind.endswith(".Time") or kind.endswith(".MicroTime") or kind.endswith(".Duration"):
        return isinstance(value, str)
    if kind.endswith(".IntOrString"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    if kind.endswith("resource.Quantity"):
        return isinstance(value, (int, float, str)) and not isinstance(value, bool)
    return isinstance(value, dict)


class _Walker:
    def __init__(self, root: str) -> None:
        self.root = root
        self.steps = 0

    def fail(self, value: Any, path: str, go_type: str) -> ShapeError:
        return ShapeError(
            f"json: cannot unmarshal {_json_type(value)} into Go struct field "
            f"{self.root}.{path} of type {go_type}"
        )

    def message(self, name: str, obj: Mapping[str, Any], prefix: str) -> None:
        table = MESSAGES.get(name, {})
        for key, kind, card, _flags in table.values():
            if key not in obj or obj[key] is None:
                continue
            self.field(kind, card, obj[key], f"{prefix}{key}")

    def field(self, kind: str, card: int, value: Any, path: str) -> None:
        self.steps += 1
        if self.steps > _MAX_WALK:
            return  # bounded work; the size limits already bound the object
        if card == 2:
            _, value_kind = kind.split(",", 1)
            if not isinstance(value, dict):
                raise self.fail(value, path, _go_type(kind, card))
            for item in value.values():
                if item is not None:
                    self.single(value_kind, item, path)
        elif card == 1:
            if not isinstance(value, list):
                raise self.fail(value, path, _go_type(kind, card))
            for item in value:
                if item is not None:
                    self.single(kind, item, path)
        else:
            self.single(kind, value, path)

    def single(self, kind: str, value: Any, path: str) -> None:
        if not _fits(kind, value):
            raise self.fail(value, path, _go_name(kind))
        if kind in _TIMES and value and not _rfc3339(value):
            raise ShapeError(f'parsing time "{value}" as "{_TIMES[kind]}": cannot parse it')
        if kind == "bytes":
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ShapeError(
                    f"illegal base64 data in Go struct field {self.root}.{path}"
                ) from None
        elif kind in MESSAGES and kind not in _ANY and isinstance(value, dict):
            self.message(kind, value, f"{path}.")


def check_object(api_version: str, kind: str, obj: Mapping[str, Any]) -> None:
    """Raise :class:`ShapeError` when a built-in object does not fit its Go type."""
    name = message_name(api_version, kind)
    if name is None:
        check_metadata(kind, obj)
        return
    _Walker(kind).message(name, obj, "")


def check_metadata(kind: str, obj: Mapping[str, Any]) -> None:
    """Raise :class:`ShapeError` when ``metadata`` does not fit ``metav1.ObjectMeta``."""
    meta = obj.get("metadata")
    if meta is None:
        return
    walker = _Walker(kind)
    walker.field(_OBJECT_META, 0, meta, "metadata")


def check_binding(obj: Mapping[str, Any]) -> None:
    """Raise :class:`ShapeError` when a ``Binding`` does not fit ``v1.Binding``."""
    check_metadata("Binding", obj)
    target = obj.get("target")
    walker = _Walker("Binding")
    if target is None:
        return
    if not isinstance(target, dict):
        raise walker.fail(target, "target", "v1.ObjectReference")
    walker.message("k8s.io.api.core.v1.ObjectReference", target, "target.")


_CRD_SHAPE: dict[str, tuple[type, str]] = {
    "spec": (dict, "v1.CustomResourceDefinitionSpec"),
    "spec.names": (dict, "v1.CustomResourceDefinitionNames"),
    "spec.versions": (list, "[]v1.CustomResourceDefinitionVersion"),
    "spec.group": (str, "string"),
    "spec.scope": (str, "v1.ResourceScope"),
    "spec.conversion": (dict, "v1.CustomResourceConversion"),
    "spec.names.kind": (str, "string"),
    "spec.names.plural": (str, "string"),
    "spec.names.singular": (str, "string"),
    "spec.names.listKind": (str, "string"),
    "spec.names.shortNames": (list, "[]string"),
    "spec.names.categories": (list, "[]string"),
    "status": (dict, "v1.CustomResourceDefinitionStatus"),
}
_CRD_VERSION_SHAPE: dict[str, tuple[type, str]] = {
    "name": (str, "string"),
    "served": (bool, "bool"),
    "storage": (bool, "bool"),
    "deprecated": (bool, "bool"),
    "deprecationWarning": (str, "string"),
    "schema": (dict, "v1.CustomResourceValidation"),
    "subresources": (dict, "v1.CustomResourceSubresources"),
    "additionalPrinterColumns": (list, "[]v1.CustomResourceColumnDefinition"),
    "selectableFields": (list, "[]v1.SelectableField"),
}


def _lookup(obj: Mapping[str, Any], path: str) -> Any:
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def check_crd(obj: Mapping[str, Any]) -> None:
    """The fields of a CRD localkube reads must have their Go types (else :class:`ShapeError`)."""
    root = "CustomResourceDefinition"
    check_metadata(root, obj)
    walker = _Walker(root)
    for path, (python_type, go_type) in _CRD_SHAPE.items():
        value = _lookup(obj, path)
        if value is not None and not isinstance(value, python_type):
            raise walker.fail(value, path, go_type)
    for version in _lookup(obj, "spec.versions") or []:
        if not isinstance(version, dict):
            raise walker.fail(version, "spec.versions", "v1.CustomResourceDefinitionVersion")
        for key, (python_type, go_type) in _CRD_VERSION_SHAPE.items():
            value = version.get(key)
            if value is not None and not isinstance(value, python_type):
                raise walker.fail(value, f"spec.versions.{key}", go_type)
        schema = version.get("schema") or {}
        if schema.get("openAPIV3Schema") is not None and not isinstance(
            schema["openAPIV3Schema"], dict
        ):
            raise walker.fail(
                schema["openAPIV3Schema"],
                "spec.versions.schema.openAPIV3Schema",
                "v1.JSONSchemaProps",
            )
        for column in version.get("additionalPrinterColumns") or []:
            if not isinstance(column, dict):
                raise walker.fail(
                    column,
                    "spec.versions.additionalPrinterColumns",
                    "v1.CustomResourceColumnDefinition",
                )
            if column.get("priority") is not None and not isinstance(column["priority"], int):
                raise walker.fail(
                    column["priority"], "spec.versions.additionalPrinterColumns.priority", "int32"
                )


# ObjectMeta validation (422) ------------------------------------------------------------------
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_HELP = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_VALUE_HELP = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',"
    "  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_MAX_ANNOTATIONS = 256 * 1024


def _qualified_name_errors(key: str, path: str) -> list[Cause]:
    prefix, _, name = key.rpartition("/")
    errors = []
    shown = f'"{key}"'
    if key.count("/") > 1:
        return [
            Cause(
                "FieldValueInvalid",
                f"Invalid value: {shown}: a qualified name must consist of alphanumeric "
                "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                "character",
                path,
            )
        ]
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        errors.append(
            Cause(
                "FieldValueInvalid",
                f"Invalid value: {shown}: prefix part a lowercase RFC 1123 subdomain must "
                "consist of lower case alphanumeric characters, '-' or '.', and must start and "
                "end with an alphanumeric character",
                path,
            )
        )
    if not name or len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        detail = "name part must be no more than 63 characters" if len(name) > 63 else ""
        errors.append(
            Cause("FieldValueInvalid", f"Invalid value: {shown}: {detail or _QUALIFIED_HELP}", path)
        )
    return errors


def validate_metadata(obj: Mapping[str, Any], *, limit: int = MAX_CAUSES + 1) -> list[Cause]:
    """ObjectMeta checks kube-apiserver makes on every write (well-typed metadata assumed).

    Stops once ``limit`` causes are found: an answer reports no more than
    :data:`localkube.errors.MAX_CAUSES` of them, so finding the rest is wasted work.
    """
    meta = obj.get("metadata") or {}
    errors: list[Cause] = []
    for key, value in (meta.get("labels") or {}).items():
        if len(errors) >= limit:
            return errors[:limit]
        errors += _qualified_name_errors(str(key), "metadata.labels")
        if len(str(value)) > 63 or not _LABEL_VALUE.fullmatch(str(value)):
            detail = "must be no more than 63 characters" if len(str(value)) > 63 else _VALUE_HELP
            errors.append(
                Cause("FieldValueInvalid", f'Invalid value: "{value}": {detail}', "metadata.labels")
            )
    annotations = meta.get("annotations") or {}
    for key in annotations:
        if len(errors) >= limit:
            return errors[:limit]
        errors += [
            Cause(c.reason, c.message, "metadata.annotations")
            for c in _qualified_name_errors(str(key).lower(), "metadata.annotations")
        ]
    total = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
    if total > _MAX_ANNOTATIONS:
        errors.append(
            Cause(
                "FieldValueTooLong",
                f"Too long: may not be more than {_MAX_ANNOTATIONS} bytes",
                "metadata.annotations",
            )
        )
    for i, ref in enumerate(meta.get("ownerReferences") or []):
        if len(errors) >= limit:
            return errors[:limit]
        path = f"metadata.ownerReferences[{i}]"
        for key, label in (("apiVersion", "version"), ("kind", "kind"), ("name", "name")):
            if not ref.get(key):
                errors.append(
                    Cause(
                        "FieldValueInvalid",
                        f'Invalid value: "": {label} must not be empty',
                        f"{path}.{key}",
                    )
                )
        if not ref.get("uid"):
            errors.append(
                Cause(
                    "FieldValueInvalid", 'Invalid value: "": uid must not be empty', f"{path}.uid"
                )
            )
    for i, finalizer in enumerate(meta.get("finalizers") or []):
        if len(errors) >= limit:
            break
        errors += [
            Cause(c.reason, c.message, f"metadata.finalizers[{i}]")
            for c in _qualified_name_errors(str(finalizer), "")
        ]
    return errors[:limit]


def validate_finalizers(finalizers: list[Any], path: str) -> list[Cause]:
    """Each finalizer must be a qualified name (at most :data:`MAX_CAUSES` + 1 causes)."""
    errors: list[Cause] = []
    for i, finalizer in enumerate(finalizers):
        if len(errors) > MAX_CAUSES:
            break
        errors += [
            Cause(c.reason, c.message, f"{path}[{i}]")
            for c in _qualified_name_errors(str(finalizer), "")
        ]
    return errors
