"""Kubernetes' protobuf wire format for the built-in kinds, to and from the JSON objects
localkube stores.

Owns the envelope (the ``k8s\\x00`` magic, then a ``runtime.Unknown`` carrying the apiVersion and
kind and the object's message as ``raw``), the proto2 wire format (varints, length-delimited
fields, packed and unpacked repeated scalars, map entries), and the mapping of each message to
the JSON that Go's ``encoding/json`` would print for the same Go struct: ``omitempty`` scalars
that are zero are left out unless the Go field is a pointer, non-pointer structs are kept even
when empty, a zero ``metav1.Time`` is ``null``. The well-known apimachinery types are special:
``Time`` and ``MicroTime`` (RFC 3339), ``Duration`` (Go's duration text), ``Quantity`` (its
string), ``IntOrString``, ``RawExtension`` and ``FieldsV1`` (embedded JSON). Field tables come
from :mod:`localkube.protoschema`. Unknown fields are skipped, as Go's decoder does. Pure.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from localkube import decoding
from localkube.protoschema import MESSAGES

__all__ = [
    "MAGIC",
    "MEDIA_TYPE",
    "ProtobufError",
    "decode",
    "encode",
    "message_name",
]

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_TIME = _META + "Time"
_MICRO_TIME = _META + "MicroTime"
_DURATION = _META + "Duration"
_FIELDS = _META + "FieldsV1"
_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_RAW = "k8s.io.apimachinery.pkg.runtime.RawExtension"
_UNKNOWN = "k8s.io.apimachinery.pkg.runtime.Unknown"
_MAX_DEPTH = 64
_EMBEDDED_ESTIMATE = 6  # decoding.check_bounds' size estimate per byte of JSON, at most

# API group -> the proto package of its v1 messages
_PACKAGES = {
    "": "core",
    "apps": "apps",
    "batch": "batch",
    "rbac.authorization.k8s.io": "rbac",
    "policy": "policy",
    "discovery.k8s.io": "discovery",
    "networking.k8s.io": "networking",
    "coordination.k8s.io": "coordination",
    "admissionregistration.k8s.io": "admissionregistration",
}
_META_KINDS = frozenset({"Status", "DeleteOptions", "WatchEvent"})


class ProtobufError(ValueError):
    """A body that is not a well-formed Kubernetes protobuf message."""


def message_name(api_version: str, kind: str) -> str | None:
    """The proto message of ``apiVersion``/``kind``, or ``None`` when it has no table here."""
    group, _, version = api_version.rpartition("/")
    if kind in _META_KINDS and api_version in ("v1", "meta.k8s.io/v1"):
        name = _META + kind
    elif group in _PACKAGES:
        name = f"k8s.io.api.{_PACKAGES[group]}.{version}.{kind}"
    else:
        return None
    return name if name in MESSAGES else None


# wire format ------------------------------------------------------------------------------
def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("unexpected end of data in a varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError("varint overflows 64 bits")


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of each field: ints for varints and fixed, bytes else."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if number == 0:
            raise ProtobufError("field number 0 is invalid")
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("length-delimited field runs past the end of the data")
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            if pos + 8 > len(data):
                raise ProtobufError("unexpected end of data in a fixed64")
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            if pos + 4 > len(data):
                raise ProtobufError("unexpected end of data in a fixed32")
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        yield number, wire, value


def _signed(value: int, bits: int) -> int:
    value &= (1 << 64) - 1
    if bits == 32:
        value &= 0xFFFFFFFF
        return value - (1 << 32) if value >= 1 << 31 else value
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(kind: str, wire: int, value: Any) -> Any:
    if kind == "string":
        if not isinstance(value, bytes):
            raise ProtobufError("a string field is not length-delimited")
        try:
            return value.decode()
        except UnicodeDecodeError as e:
            raise ProtobufError(f"invalid UTF-8 in a string field: {e}") from e
    if kind == "bytes":
        if not isinstance(value, bytes):
            raise ProtobufError("a bytes field is not length-delimited")
        return base64.b64encode(value).decode()
    if kind == "bool":
        if not isinstance(value, int):
            raise ProtobufError("a bool field is not a varint")
        return bool(value)
    if kind in ("int32", "int64", "uint32"):
        if not isinstance(value, int):
            raise ProtobufError(f"an {kind} field is not a varint")
        return _signed(value, 32 if kind == "int32" else 64) if kind != "uint32" else value
    if kind == "double":
        return struct.unpack("<d", value)[0] if wire == 1 else 0.0
    if kind == "float":
        return struct.unpack("<f", value)[0] if wire == 5 else 0.0
    raise ProtobufError(f"unsupported scalar type {kind}")


def _packed(kind: str, data: bytes) -> list[Any]:
    out: list[Any] = []
    pos = 0
    width = {"double": 8, "float": 4}.get(kind, 0)
    if width and len(data) % width:
        raise ProtobufError(f"packed {kind} values do not fill whole {width}-byte units")
    while pos < len(data):
        if kind == "double":
            out.append(struct.unpack("<d", data[pos : pos + 8])[0])
            pos += 8
        elif kind == "float":
            out.append(struct.unpack("<f", data[pos : pos + 4])[0])
            pos += 4
        else:
            value, pos = _varint(data, pos)
            out.append(_scalar(kind, 0, value))
    return out


# decoding ---------------------------------------------------------------------------------
def _rfc3339(seconds: int, nanos: int, *, micro: bool) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{nanos // 1000:06d}Z" if micro else f"{text}Z"


def _go_duration(nanos: int) -> str:
    """Go's ``time.Duration.String``."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanos >= size:
                return f"{sign}{_trim(nanos / size)}{unit}"
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _trim(rest / 1_000_000_000)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"


def _trim(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")


def _number(fields: Mapping[int, Any], number: int, name: str) -> int:
    """Field ``number`` of a well-known message, which must be a varint (0 when absent)."""
    value = fields.get(number, 0)
    if not isinstance(value, int):
        raise ProtobufError(f"field {number} of {name} is not a varint")
    return value


def _special(name: str, data: bytes, depth: int) -> Any:
    """Decode a well-known apimachinery message to its JSON form."""
    fields = {number: value for number, _, value in _fields(data)}
    if name in (_TIME, _MICRO_TIME):
        if not data:
            return None
        seconds = _signed(_number(fields, 1, name), 64)
        nanos = _signed(_number(fields, 2, name), 32)
        try:
            return _rfc3339(seconds, nanos, micro=name == _MICRO_TIME)
        except (OverflowError, OSError, ValueError) as e:
            raise ProtobufError(f"time out of range: {seconds}") from e
    if name == _DURATION:
        return _go_duration(_signed(_number(fields, 1, name), 64))
    if name == _QUANTITY:
        return _scalar("string", 2, fields.get(1, b""))
    if name == _INT_OR_STRING:
        if _number(fields, 1, name) == 1:
            return _scalar("string", 2, fields.get(3, b""))
        return _signed(_number(fields, 2, name), 32)
    raw = fields.get(1 if name != _UNKNOWN else 2, b"")
    if not raw:
        return None
    if not isinstance(raw, bytes):
        raise ProtobufError(f"{name} carries no bytes")
    if raw.startswith(MAGIC):
        return decode(raw, depth=depth + 1)
    try:
        # bounded as a JSON body is; the whole object's size is checked once it is decoded
        return decoding.load_json(raw, max_bytes=_EMBEDDED_ESTIMATE * len(raw) + 16)
    except decoding.DecodeError as e:
        raise ProtobufError(f"embedded JSON does not parse: {e}") from e


_SPECIAL = frozenset({_TIME, _MICRO_TIME, _DURATION, _QUANTITY, _INT_OR_STRING, _RAW, _FIELDS})


def _value(kind: str, wire: int, value: Any, depth: int) -> Any:
    if kind in _SPECIAL:
        if not isinstance(value, bytes):
            raise ProtobufError(f"{kind} is not length-delimited")
        return _special(kind, value, depth)
    if kind in MESSAGES:
        if not isinstance(value, bytes):
            raise ProtobufError(f"{kind} is not length-delimited")
        return _message(kind, value, depth + 1)
    return _scalar(kind, wire, value)


def _zero(value: Any) -> bool:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return bool(value == 0)
    return bool(value == "")


def _message(name: str, data: bytes, depth: int) -> dict[str, Any]:
    if depth > _MAX_DEPTH:
        raise ProtobufError("message nesting is too deep")
    table = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, wire, value in _fields(data):
        row = table.get(number)
        if row is None:
            continue
        key, kind, card, flags = row
        if card == 2:
            key_kind, value_kind = kind.split(",", 1)
            if not isinstance(value, bytes):
                raise ProtobufError(f"map entry of {key} is not length-delimited")
            entry = {n: (w, v) for n, w, v in _fields(value)}
            k = _value(key_kind, *entry.get(1, (2, b"")), depth) if 1 in entry else ""
            default = (2, b"") if value_kind in ("string", "bytes") or "." in value_kind else (0, 0)
            v = _value(value_kind, *entry.get(2, default), depth)
            out.setdefault(key, {})[str(k)] = v
        elif card == 1:
            items = out.setdefault(key, [])
            if wire == 2 and kind not in MESSAGES and kind not in ("string", "bytes"):
                items.extend(_packed(kind, value))
            else:
                items.append(_value(kind, wire, value, depth))
        else:
            decoded = _value(kind, wire, value, depth)
            pointer, omitempty = bool(flags & 1), bool(flags & 2)
            scalar = kind not in MESSAGES
            if scalar and kind not in _SPECIAL and omitempty and not pointer and _zero(decoded):
                out.pop(key, None)
                continue
            out[key] = decoded
    return out


def decode(data: bytes, *, depth: int = 0) -> dict[str, Any]:
    """The JSON object of an enveloped protobuf body (``apiVersion`` and ``kind`` set).

    Raises :class:`ProtobufError` for a malformed body or a kind without a table.
    """
    if not data.startswith(MAGIC):
        raise ProtobufError("the body does not start with the k8s protobuf prefix")
    envelope = {number: value for number, _, value in _fields(data[len(MAGIC) :])}
    type_meta = envelope.get(1, b"")
    raw = envelope.get(2, b"")
    if not isinstance(type_meta, bytes) or not isinstance(raw, bytes):
        raise ProtobufError("the envelope is not a runtime.Unknown")
    meta = {n: v for n, _, v in _fields(type_meta)}
    api_version = _scalar("string", 2, meta.get(1, b""))
    kind = _scalar("string", 2, meta.get(2, b""))
    name = message_name(str(api_version), str(kind))
    if name is None:
        raise ProtobufError(f"no protobuf message is known for {api_version}, Kind={kind}")
    obj = {"kind": kind, "apiVersion": api_version}
    obj.update(_message(name, raw, depth))
    return obj


# encoding ---------------------------------------------------------------------------------
def _key(number: int, wire: int) -> bytes:
    return _put_varint((number << 3) | wire)


def _put_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _delimited(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _put_varint(len(payload)) + payload


def _parse_time(value: str) -> tuple[int, int]:
    text = value.replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() // 1), moment.microsecond * 1000


def _encode_special(kind: str, value: Any) -> bytes:
    if kind in (_TIME, _MICRO_TIME):
        if not isinstance(value, str) or not value:
            return b""
        seconds, nanos = _parse_time(value)
        out = _key(1, 0) + _put_varint(seconds)
        return out + (_key(2, 0) + _put_varint(nanos) if nanos else b"")
    if kind == _QUANTITY:
        return _delimited(1, str(value).encode())
    if kind == _INT_OR_STRING:
        if isinstance(value, str):
            return _key(1, 0) + _put_varint(1) + _delimited(3, value.encode())
        return _key(1, 0) + _put_varint(0) + _key(2, 0) + _put_varint(int(value))
    if kind == _DURATION:
        return b""  # durations are only read here
    return _delimited(1, json.dumps(value, separators=(",", ":")).encode())


def _encode_value(number: int, kind: str, value: Any) -> bytes:
    if kind in _SPECIAL:
        return _delimited(number, _encode_special(kind, value))
    if kind in MESSAGES:
        return _delimited(
            number, _encode_message(kind, value if isinstance(value, Mapping) else {})
        )
    if kind == "string":
        text = value if isinstance(value, str) else json.dumps(value)
        return _delimited(number, text.encode())
    if kind == "bytes":
        return _delimited(number, base64.b64decode(str(value)))
    if kind == "bool":
        return _key(number, 0) + _put_varint(1 if value else 0)
    if kind in ("int32", "int64", "uint32"):
        return _key(number, 0) + _put_varint(int(value))
    if kind == "double":
        return _key(number, 1) + struct.pack("<d", float(value))
    if kind == "float":
        return _key(number, 5) + struct.pack("<f", float(value))
    return b""


def _encode_message(name: str, obj: Mapping[str, Any]) -> bytes:
    out = bytearray()
    for number, (key, kind, card, _flags) in sorted(MESSAGES[name].items()):
        value = obj.get(key)
        if value is None:
            continue
        if card == 2 and isinstance(value, Mapping):
            key_kind, value_kind = kind.split(",", 1)
            for k, v in value.items():
                entry = _encode_value(1, key_kind, k)
                if v is not None:
                    entry += _encode_value(2, value_kind, v)
                out += _delimited(number, entry)
        elif card == 1 and isinstance(value, list):
            for item in value:
                if item is not None:
                    out += _encode_value(number, kind, item)
        elif card == 0:
            out += _encode_value(number, kind, value)
    return bytes(out)


def encode(obj: Mapping[str, Any]) -> bytes | None:
    """The enveloped protobuf body of ``obj``, or ``None`` when its kind has no table here."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    name = message_name(api_version, kind)
    if name is None:
        return None
    type_meta = _delimited(1, api_version.encode()) + _delimited(2, kind.encode())
    envelope = (
        _delimited(1, type_meta)
        + _delimited(2, _encode_message(name, obj))
        + _delimited(3, b"")
        + _delimited(4, b"")
    )
    return MAGIC + envelope
