"""Merge patch, JSON patch and strategic merge patch on plain objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from localkube.errors import PatchError
from localkube.patches import apply_json_patch, apply_merge_patch, apply_strategic_merge_patch


def enc(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_merge_patch_deletes_with_null_and_replaces_lists() -> None:
    target = {"a": {"b": 1, "c": 2}, "l": [1, 2], "keep": True}
    patched = apply_merge_patch(target, enc({"a": {"b": None, "d": 3}, "l": [9]}))
    assert patched == {"a": {"c": 2, "d": 3}, "l": [9], "keep": True}
    assert target["a"] == {"b": 1, "c": 2}


def test_json_patch_must_be_an_array_and_failed_tests_are_application_errors() -> None:
    with pytest.raises(
        PatchError, match=r"cannot unmarshal object into Go value of type jsonpatch\.Patch"
    ) as caught:
        apply_json_patch({}, enc({"a": 1}))
    assert caught.value.bad_body
    with pytest.raises(PatchError) as caught:
        apply_json_patch({"a": 1}, enc([{"op": "test", "path": "/a", "value": 2}]))
    assert not caught.value.bad_body
    assert apply_json_patch({"a": 1}, enc([{"op": "replace", "path": "/a", "value": 2}])) == {
        "a": 2
    }


def test_strategic_merge_patch_merges_containers_by_name_and_ports_by_container_port() -> None:
    pod = {
        "spec": {
            "containers": [
                {"name": "a", "image": "a:1", "ports": [{"containerPort": 80, "name": "http"}]},
                {"name": "b", "image": "b:1"},
            ]
        }
    }
    patch = {
        "spec": {
            "containers": [
                {"name": "a", "ports": [{"containerPort": 81}]},
                {"name": "c", "image": "c:1"},
            ]
        }
    }
    patched = apply_strategic_merge_patch(pod, enc(patch), "Pod")
    containers = patched["spec"]["containers"]
    assert [c["name"] for c in containers] == ["a", "b", "c"]
    assert [p["containerPort"] for p in containers[0]["ports"]] == [80, 81]
    assert containers[0]["image"] == "a:1"


def test_strategic_merge_patch_directives_delete_replace_and_reorder() -> None:
    service = {"spec": {"ports": [{"port": 80}, {"port": 81}], "selector": {"a": "1", "b": "2"}}}
    patch = {
        "spec": {
            "ports": [{"$patch": "delete", "port": 80}, {"port": 82}],
            "$setElementOrder/ports": [{"port": 82}, {"port": 81}],
            "selector": {"$patch": "replace", "c": "3"},
        }
    }
    patched = apply_strategic_merge_patch(service, enc(patch), "Service")
    assert [p["port"] for p in patched["spec"]["ports"]] == [82, 81]
    assert patched["spec"]["selector"] == {"c": "3"}


def test_strategic_merge_patch_unions_finalizers_and_deletes_from_primitive_lists() -> None:
    obj = {"metadata": {"finalizers": ["a", "b"]}, "spec": {"args": ["x"]}}
    patched = apply_strategic_merge_patch(
        obj, enc({"metadata": {"finalizers": ["c"]}, "spec": {"args": ["y"]}}), "Pod"
    )
    assert patched["metadata"]["finalizers"] == ["a", "b", "c"]
    assert patched["spec"]["args"] == ["y"]
    removed = apply_strategic_merge_patch(
        patched, enc({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}), "Pod"
    )
    assert removed["metadata"]["finalizers"] == ["b", "c"]
