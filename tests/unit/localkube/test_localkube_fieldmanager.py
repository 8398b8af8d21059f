"""Simplified server-side apply: merging, removal of dropped fields, conflicts, managedFields."""

from __future__ import annotations

from typing import Any

from localkube.fieldmanager import apply_configuration, field_set, render_conflicts, track_update


def keys(names: tuple[str, ...]) -> tuple[str, ...] | None:
    return ("name",) if names == ("spec", "items") else None


NOW = "2026-01-01T00:00:00Z"


def apply(live: dict[str, Any], config: dict[str, Any], manager: str, force: bool = False) -> Any:
    return apply_configuration(
        live, config, manager=manager, api_version="v1", force=force, now=NOW, list_keys=keys
    )


def test_apply_merges_keyed_lists_and_replaces_atomic_ones() -> None:
    live = {"spec": {"items": [{"name": "a", "v": 1}], "atomic": [1, 2]}}
    merged, conflicts = apply(
        live, {"spec": {"items": [{"name": "b", "v": 2}], "atomic": [3]}}, "m"
    )
    assert conflicts == []
    assert merged["spec"]["items"] == [{"name": "a", "v": 1}, {"name": "b", "v": 2}]
    assert merged["spec"]["atomic"] == [3]
    assert merged["metadata"]["managedFields"][0]["manager"] == "m"


def test_fields_a_manager_stops_applying_are_removed_unless_someone_else_owns_them() -> None:
    first, _ = apply({}, {"spec": {"a": 1, "b": 2}}, "alice")
    shared, _ = apply(first, {"spec": {"b": 2}}, "bob")
    dropped, _ = apply(shared, {"spec": {}}, "alice")
    assert dropped["spec"] == {"b": 2}


def test_a_different_value_for_a_field_owned_by_another_manager_conflicts_unless_forced() -> None:
    first, _ = apply({}, {"spec": {"a": 1}}, "alice")
    _, conflicts = apply(first, {"spec": {"a": 1}}, "bob")
    assert conflicts == []
    _, conflicts = apply(first, {"spec": {"a": 2}}, "bob")
    assert (
        render_conflicts(conflicts)
        == 'Apply failed with 1 conflict: conflict with "alice" using v1: .spec.a'
    )
    forced, conflicts = apply(first, {"spec": {"a": 2}}, "bob", force=True)
    assert conflicts == []
    assert forced["spec"]["a"] == 2
    assert [e["manager"] for e in forced["metadata"]["managedFields"]] == ["bob"]


def test_updates_give_their_manager_the_fields_they_changed() -> None:
    old = {"metadata": {"name": "x"}, "spec": {"a": 1}}
    new: dict[str, Any] = {"metadata": {"name": "x", "labels": {"l": "1"}}, "spec": {"a": 1}}
    track_update(
        old, new, manager="labeller", api_version="v1", now=NOW, subresource="", list_keys=keys
    )
    (entry,) = new["metadata"]["managedFields"]
    assert entry["manager"] == "labeller"
    assert entry["operation"] == "Update"
    assert entry["fieldsV1"] == {"f:metadata": {"f:labels": {"f:l": {}}}}


def test_field_sets_skip_server_owned_metadata() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "X",
        "metadata": {"name": "n", "uid": "u", "labels": {"a": "b"}},
    }
    assert field_set(obj, keys) == {(("f", "metadata"), ("f", "labels"), ("f", "a"))}
