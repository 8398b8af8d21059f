"""Structural schema pruning, defaulting and validation as apiextensions-apiserver applies them."""

from __future__ import annotations

from typing import Any

from localkube.schema import apply_defaults, prune, validate, validate_name

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "maxLength": 5},
                "count": {"type": "integer", "minimum": 0, "default": 1},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "port": {"x-kubernetes-int-or-string": True},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "nested": {
                    "type": "object",
                    "properties": {"flag": {"type": "boolean", "default": False}},
                },
                "items": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"x": {"type": "integer"}}},
                },
                "pod": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object"}},
                },
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def test_pruning_drops_undeclared_fields_but_keeps_preserved_and_root_metadata() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {"name": "n", "labels": {"a": "b"}, "bogus": 1},
        "spec": {
            "name": "n",
            "extra": 1,
            "free": {"anything": {"goes": [1]}},
            "labels": {"k": "v"},
            "items": [{"x": 1, "y": 2}],
            "pod": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "odd": 1},
                "spec": {},
                "junk": 1,
            },
            "count": None,
        },
        "status": {"whatever": True},
        "top": 1,
    }
    unknown = prune(obj, SCHEMA)
    assert sorted(unknown) == [
        "metadata.bogus",
        "spec.extra",
        "spec.items[0].y",
        "spec.pod.junk",
        "spec.pod.metadata.odd",
        "top",
    ]
    assert obj["metadata"] == {"name": "n", "labels": {"a": "b"}}
    assert obj["spec"]["free"] == {"anything": {"goes": [1]}}
    assert obj["spec"]["items"] == [{"x": 1}]
    assert obj["spec"]["pod"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {},
    }
    assert "count" not in obj["spec"]
    assert obj["status"] == {"whatever": True}


def test_defaults_fill_absent_fields_of_present_objects_only() -> None:
    obj: dict[str, Any] = {"spec": {"name": "n", "nested": {}}}
    apply_defaults(obj, SCHEMA)
    assert obj["spec"]["count"] == 1
    assert obj["spec"]["nested"] == {"flag": False}
    bare: dict[str, Any] = {"spec": {"name": "n"}}
    apply_defaults(bare, SCHEMA)
    assert "nested" not in bare["spec"]


def test_validation_reports_every_error_with_its_path_in_kube_wording() -> None:
    obj = {
        "spec": {"count": -1, "mode": "c", "port": 1.5, "items": [{"x": "one"}], "labels": {"k": 3}}
    }
    errors = {(e.field, e.message) for e in validate(obj, SCHEMA)}
    assert errors == {
        ("spec.name", "Required value"),
        (
            "spec.count",
            "Invalid value: -1: spec.count in body should be greater than or equal to 0",
        ),
        ("spec.mode", 'Unsupported value: "c": supported values: "a", "b"'),
        (
            "spec.port",
            'Invalid value: "number": spec.port in body must be of type integer,string: "number"',
        ),
        (
            "spec.items[0].x",
            'Invalid value: "string": spec.items[0].x in body must be of type integer: "string"',
        ),
        (
            "spec.labels.k",
            'Invalid value: "integer": spec.labels.k in body must be of type string: "integer"',
        ),
    }
    assert validate({"spec": {"name": "ok", "port": "http"}}, SCHEMA) == []
    long = validate({"spec": {"name": "toolong"}}, SCHEMA)
    assert [(e.field, e.message) for e in long] == [
        ("spec.name", "Too long: may not be more than 5 bytes")
    ]


def test_names_follow_the_rules_of_their_kind() -> None:
    assert validate_name("ConfigMap", "a.b-c") == []
    assert validate_name("ConfigMap", "Upper")[0].field == "metadata.name"
    assert validate_name("Service", "1abc") != []
    assert validate_name("Namespace", "a.b") != []
