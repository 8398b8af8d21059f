"""Defaults and the mutating patch: named rules, idempotent, minimal, never losing a field."""

from __future__ import annotations

import copy

import jsonpatch
import pytest

from rayservice import DEFAULT_RULES, ChangeClass, apply_defaults, default_ops, evaluate
from rayservice.contract import CHANGE, CLUSTER_HASH, SERVE_HASH
from tests.builders import Obj, put, sample, worker


def bare() -> Obj:
    """The sample with every defaulted field removed."""
    obj = sample()
    spec = obj["spec"]
    del spec["serviceUnhealthySecondThreshold"], spec["deploymentUnhealthySecondThreshold"]
    del spec["rayClusterConfig"]["headGroupSpec"]["rayStartParams"]
    group = worker(obj)
    for key in ("replicas", "minReplicas", "maxReplicas", "rayStartParams"):
        del group[key]
    return obj


def test_every_default_rule_fills_its_field() -> None:
    defaulted, ops = apply_defaults(bare())
    spec = defaulted["spec"]
    group = spec["rayClusterConfig"]["workerGroupSpecs"][0]
    assert spec["serviceUnhealthySecondThreshold"] == 900
    assert spec["deploymentUnhealthySecondThreshold"] == 300
    assert spec["rayClusterDeletionDelaySeconds"] == 60
    assert spec["rayClusterConfig"]["headGroupSpec"]["rayStartParams"] == {}
    assert (group["replicas"], group["minReplicas"], group["maxReplicas"]) == (0, 0, 2**31 - 1)
    assert (group["numOfHosts"], group["rayStartParams"]) == (1, {})
    assert len(ops) == 9


def test_rules_have_unique_names_and_summaries() -> None:
    names = [rule.name for rule in DEFAULT_RULES]
    assert len(names) == len(set(names))
    assert all(rule.summary for rule in DEFAULT_RULES)


def test_defaulting_is_idempotent() -> None:
    once, _ = apply_defaults(bare())
    assert default_ops(once) == []


def test_defaulting_does_not_modify_its_input() -> None:
    obj = bare()
    before = copy.deepcopy(obj)
    apply_defaults(obj)
    assert obj == before


def test_explicit_values_are_kept() -> None:
    obj = put(sample(), "spec.serviceUnhealthySecondThreshold", 60)
    assert apply_defaults(obj)[0]["spec"]["serviceUnhealthySecondThreshold"] == 60


def test_v1alpha1_gets_no_v1_only_default() -> None:
    obj = put(bare(), "apiVersion", "ray.io/v1alpha1")
    assert "rayClusterDeletionDelaySeconds" not in apply_defaults(obj)[0]["spec"]


def test_surge_defaults_only_inside_given_upgrade_options() -> None:
    assert "upgradeStrategy" not in apply_defaults(sample())[0]["spec"]
    obj = put(sample(), "spec.upgradeStrategy", {"type": "NewCluster", "clusterUpgradeOptions": {}})
    options = apply_defaults(obj)[0]["spec"]["upgradeStrategy"]["clusterUpgradeOptions"]
    assert options == {"maxSurgePercent": 100}


@pytest.mark.parametrize(
    "spec",
    [None, [], "x", {"rayClusterConfig": []}, {"rayClusterConfig": {"workerGroupSpecs": {"a": 1}}}],
)
def test_defaulting_skips_parts_of_the_wrong_shape(spec: object) -> None:
    obj = {"apiVersion": "ray.io/v1", "kind": "RayService", "metadata": {"name": "x"}, "spec": spec}
    result = evaluate(obj)
    assert not result.allowed
    assert all(error.field.startswith("spec") for error in result.errors)


def test_the_patch_applies_cleanly_and_yields_the_mutated_object() -> None:
    original = bare()
    result = evaluate(original)
    patched = jsonpatch.apply_patch(original, result.patch_json())
    assert patched == result.mutated
    annotations = patched["metadata"]["annotations"]
    assert annotations[CHANGE] == "create"
    assert annotations[CLUSTER_HASH] == result.hashes.cluster
    assert annotations[SERVE_HASH] == result.hashes.serve


def test_mutating_the_mutated_object_again_yields_an_empty_patch() -> None:
    first = evaluate(bare())
    second = evaluate(dict(first.mutated))
    assert second.patch == ()


def test_the_patch_touches_only_the_annotations_it_owns() -> None:
    obj = put(sample(), "metadata.annotations", {"team": "search", CHANGE: "stale"})
    ops = evaluate(obj).patch_json()
    annotation_ops = [op for op in ops if op["path"].startswith("/metadata/annotations")]
    assert {op["path"] for op in annotation_ops} == {
        "/metadata/annotations/raysvc.io~1change",
        "/metadata/annotations/raysvc.io~1cluster-hash",
        "/metadata/annotations/raysvc.io~1serve-hash",
    }
    assert next(op for op in annotation_ops if op["path"].endswith("change"))["op"] == "replace"


def test_unknown_fields_survive_mutation() -> None:
    obj = sample()
    obj["spec"]["futureField"] = {"keep": True}
    worker(obj)["futureGroupField"] = 3
    obj["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    mutated = jsonpatch.apply_patch(obj, evaluate(obj).patch_json())
    assert mutated["spec"]["futureField"] == {"keep": True}
    assert mutated["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["futureGroupField"] == 3
    assert mutated["metadata"]["managedFields"] == [{"manager": "kubectl"}]


def test_a_hash_that_cannot_be_computed_is_removed_not_left_stale() -> None:
    stored = evaluate(sample()).mutated
    broken = copy.deepcopy(dict(stored))
    broken["spec"]["serveConfigV2"] = "applications: ["
    ops = evaluate(broken, dict(stored)).patch_json()
    assert {"op": "remove", "path": "/metadata/annotations/raysvc.io~1serve-hash"} in ops


def test_forged_annotations_are_denied_when_verifying() -> None:
    mutated = copy.deepcopy(dict(evaluate(sample()).mutated))
    mutated["metadata"]["annotations"][CLUSTER_HASH] = "0" * 64
    errors = [str(e) for e in evaluate(mutated, verify_annotations=True).errors]
    assert errors == [
        f'metadata.annotations[{CLUSTER_HASH}]: Invalid value: "{"0" * 64}": does not match the '
        f"spec (expected {evaluate(sample()).hashes.cluster!r}); only raysvc's mutating webhook sets it"
    ]


def test_stale_annotations_are_denied_when_verifying() -> None:
    stored = dict(evaluate(sample()).mutated)
    edited = copy.deepcopy(stored)
    edited["spec"]["rayClusterConfig"]["rayVersion"] = "2.53.0"  # annotations still say 2.52.0
    fields = {e.field for e in evaluate(edited, stored, verify_annotations=True).errors}
    assert fields == {f"metadata.annotations[{CHANGE}]", f"metadata.annotations[{CLUSTER_HASH}]"}


def test_the_mutated_object_passes_verification() -> None:
    stored = dict(evaluate(sample()).mutated)
    edited = copy.deepcopy(stored)
    edited["spec"]["rayClusterConfig"]["rayVersion"] = "2.53.0"
    mutated = dict(evaluate(edited, stored).mutated)
    result = evaluate(mutated, stored, verify_annotations=True)
    assert result.allowed
    assert result.change.kind is ChangeClass.CLUSTER_UPGRADE


def test_absent_annotations_pass_verification() -> None:
    assert evaluate(sample(), verify_annotations=True).allowed
