"""Generate :mod:`localkube.protoschema` from the public Kubernetes API sources.

A development tool, not imported by the server. It reads the ``generated.proto`` files of
``k8s.io/api`` and ``k8s.io/apimachinery`` (field numbers, names and types are facts of the wire
protocol) and their ``types.go`` (which fields are Go pointers and which are ``omitempty``, the
two facts that decide how a decoded message reads as JSON), keeps the messages reachable from the
kinds localkube serves, and prints a Python module of tables::

    python -m localkube.protogen API_DIR APIMACHINERY_DIR > localkube/protoschema.py

``API_DIR`` and ``APIMACHINERY_DIR`` are checkouts of the two repositories (any layout where
``core/v1/generated.proto`` and ``pkg/apis/meta/v1/generated.proto`` are found under them).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOTS", "GoFacts", "main", "parse_go", "parse_proto", "render"]

# Messages localkube decodes or encodes at the top level (the built-in kinds, their lists, and
# the meta types clients send or receive). Everything they reference is kept as well.
ROOTS: tuple[str, ...] = (
    *(
        f"k8s.io.api.{package}.{kind}{suffix}"
        for package, kinds in (
            (
                "core.v1",
                "Namespace Pod Service Endpoints Secret ConfigMap Event ServiceAccount",
            ),
            ("apps.v1", "Deployment ReplicaSet StatefulSet DaemonSet"),
            ("batch.v1", "Job CronJob"),
            ("rbac.v1", "Role ClusterRole RoleBinding ClusterRoleBinding"),
            ("policy.v1", "PodDisruptionBudget"),
            ("discovery.v1", "EndpointSlice"),
            ("networking.v1", "Ingress NetworkPolicy"),
            ("coordination.v1", "Lease"),
            (
                "admissionregistration.v1",
                "MutatingWebhookConfiguration ValidatingWebhookConfiguration",
            ),
        )
        for kind in kinds.split()
        for suffix in ("", "List")
    ),
    "k8s.io.apimachinery.pkg.apis.meta.v1.Status",
    "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent",
    "k8s.io.apimachinery.pkg.runtime.Unknown",
)

_SCALARS = frozenset({"string", "bytes", "bool", "int32", "int64", "double", "float", "uint32"})
_MESSAGE_RE = re.compile(r"^message (\w+) \{")
_FIELD_RE = re.compile(r"^\s*(optional|repeated)\s+([.\w]+)\s+(\w+)\s*=\s*(\d+)\s*(?:\[[^\]]*\])?;")
_MAP_RE = re.compile(r"^\s*map<\s*(\w+)\s*,\s*([.\w]+)\s*>\s+(\w+)\s*=\s*(\d+)\s*;")
_GO_STRUCT_RE = re.compile(r"^type (\w+) struct \{")
_GO_FIELD_RE = re.compile(r"^\s*\w+\s+(\S+)\s+`([^`]*)`")


@dataclass(frozen=True)
class Field:
    """One field of a message: number, name, type, cardinality and Go facts."""

    number: int
    name: str
    type: str  # a scalar name or a fully qualified message name ("key,value" for maps)
    card: int  # 0 single, 1 repeated, 2 map
    pointer: bool = False
    omitempty: bool = True


def _qualify(type_name: str, package: str) -> str:
    if type_name in _SCALARS:
        return type_name
    if type_name.startswith("."):
        return type_name[1:]
    return f"{package}.{type_name}"


def parse_proto(text: str) -> dict[str, list[Field]]:
    """Messages of one ``generated.proto``, by fully qualified name."""
    package = ""
    messages: dict[str, list[Field]] = {}
    current: list[Field] | None = None
    for line in text.splitlines():
        if line.startswith("package "):
            package = line.split()[1].rstrip(";")
        elif match := _MESSAGE_RE.match(line):
            current = messages.setdefault(f"{package}.{match.group(1)}", [])
        elif line.startswith("}"):
            current = None
        elif current is not None and (match := _FIELD_RE.match(line)):
            label, type_name, name, number = match.groups()
            current.append(
                Field(int(number), name, _qualify(type_name, package), int(label == "repeated"))
            )
        elif current is not None and (match := _MAP_RE.match(line)):
            key, value, name, number = match.groups()
            pair = f"{_qualify(key, package)},{_qualify(value, package)}"
            current.append(Field(int(number), name, pair, 2))
    return messages


GoFacts = dict[tuple[str, str], tuple[str, bool, bool]]


def parse_go(text: str) -> GoFacts:
    """(struct, protobuf name) -> (JSON name, is a pointer, is omitempty) from a ``types.go``.

    The JSON name differs from the protobuf one now and then (``Webhooks`` vs ``webhooks``).
    """
    facts: GoFacts = {}
    struct = ""
    for line in text.splitlines():
        if match := _GO_STRUCT_RE.match(line):
            struct = match.group(1)
        elif line.startswith("}"):
            struct = ""
        elif struct and (match := _GO_FIELD_RE.match(line)):
            go_type, tags = match.groups()
            proto = re.search(r'protobuf:"[^"]*name=(\w+)', tags)
            json_tag = re.search(r'json:"([^"]*)"', tags)
            if proto is None:
                continue
            parts = json_tag.group(1).split(",") if json_tag else [""]
            options = parts[1:]
            facts[(struct, proto.group(1))] = (
                parts[0] or proto.group(1),
                go_type.startswith("*"),
                "omitempty" in options or "omitzero" in options,
            )
    return facts


def _reachable(messages: dict[str, list[Field]]) -> list[str]:
    seen: set[str] = set()
    todo = [r for r in ROOTS if r in messages]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for field in messages.get(name, []):
            for part in field.type.split(","):
                if part in messages and part not in seen:
                    todo.append(part)
    return sorted(seen)


def render(messages: dict[str, list[Field]]) -> str:
    """The Python source of :mod:`localkube.protoschema`."""
    lines = [
        '"""Protobuf field tables of the Kubernetes kinds localkube serves (generated).',
        "",
        "Generated by ``python -m localkube.protogen`` from the public ``generated.proto`` and",
        "``types.go`` files of k8s.io/api and k8s.io/apimachinery; do not edit by hand. Each",
        "message maps a field number to ``(json name, type, cardinality, flags)``: the type is a",
        "scalar name or a message name (``key,value`` for maps), cardinality 0 single, 1 repeated,",
        "2 map; flag 1 marks a Go pointer, flag 2 an ``omitempty`` field.",
        '"""',
        "",
        "# ruff: noqa: E501",
        "",
        "from __future__ import annotations",
        "",
        '__all__ = ["MESSAGES"]',
        "",
        "Row = tuple[str, str, int, int]",
        "",
        "# fmt: off",
        "MESSAGES: dict[str, dict[int, Row]] = {",
    ]
    kept = set(_reachable(messages))
    for name in sorted(kept):
        lines.append(f"    {name!r}: {{")
        for f in sorted(messages[name], key=lambda f: f.number):
            if any(p not in _SCALARS and p not in kept for p in f.type.split(",")):
                continue  # a type from an API group not read (alpha scheduling, say)
            flags = (1 if f.pointer else 0) | (2 if f.omitempty else 0)
            lines.append(f"        {f.number}: ({f.name!r}, {f.type!r}, {f.card}, {flags}),")
        lines.append("    },")
    lines += ["}", "# fmt: on", ""]
    return "\n".join(lines)


def _named(facts: tuple[str, bool, bool] | None, field: Field) -> tuple[str, str, int, bool, bool]:
    json_name, pointer, omitempty = facts or (field.name, False, True)
    return json_name, field.type, field.card, pointer, omitempty


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m localkube.protogen API_DIR APIMACHINERY_DIR", file=sys.stderr)
        return 2
    messages: dict[str, list[Field]] = {}
    for root in map(Path, args):
        for proto in sorted(root.rglob("generated.proto")):
            parsed = parse_proto(proto.read_text())
            go: GoFacts = {}
            for source in sorted(proto.parent.glob("*.go")):
                if not source.name.endswith("_test.go"):
                    go.update(parse_go(source.read_text()))
            for name, fields in parsed.items():
                struct = name.rsplit(".", 1)[1]
                messages[name] = [
                    Field(f.number, *_named(go.get((struct, f.name)), f)) for f in fields
                ]
    sys.stdout.write(render(messages))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
