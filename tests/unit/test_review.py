"""The webhook's decisions as pure functions: AdmissionReview in, AdmissionResponse out."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import jsonpatch
import pytest

from tests.builders import Obj, admission_review, put, sample, with_serve, worker
from tests.seed_cases import mango_price
from webhook.review import BadReviewError, decode_review, mutate, validate


def body(review: Obj) -> bytes:
    return json.dumps(review).encode()


def patch_of(response: Any) -> list[dict[str, Any]]:
    assert response["patchType"] == "JSONPatch"
    ops: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return ops


def stored(obj: Obj) -> Obj:
    """What the API server stores after a CREATE through the mutating webhook."""
    response, _ = mutate(decode_review(body(admission_review(obj))))
    patched: Obj = jsonpatch.apply_patch(obj, patch_of(response))
    return patched


def test_mutate_defaults_and_annotates_a_create() -> None:
    obj = sample()
    response, decision = mutate(decode_review(body(admission_review(obj))))
    assert response["allowed"] is True
    assert response["uid"] == "4b1f5a7e-0000-4000-8000-000000000001"
    patched = jsonpatch.apply_patch(obj, patch_of(response))
    assert patched["spec"]["rayClusterDeletionDelaySeconds"] == 60
    assert patched["metadata"]["annotations"]["raysvc.io/change"] == "create"
    assert decision["change"] == "create"
    assert "warnings" not in response


def test_mutating_a_mutated_object_again_sends_no_patch() -> None:
    response, _ = mutate(decode_review(body(admission_review(stored(sample())))))
    assert "patch" not in response


def test_validate_allows_the_sample_and_warns_what_happens() -> None:
    response, decision = validate(decode_review(body(admission_review(stored(sample())))))
    assert response["allowed"] is True
    assert decision["verdict"] == "allowed"
    assert response["warnings"] == [
        "creates a RayCluster with 2 pods (2.5 CPU, 4Gi memory); the Serve config is submitted "
        "when its head is ready"
    ]


def test_validate_denies_with_422_and_every_field_path() -> None:
    obj = sample()
    worker(obj)["minReplicas"] = 6
    with_serve(obj, lambda c: c["applications"][1].update(route_prefix="/fruit"))
    response, decision = validate(decode_review(body(admission_review(stored(obj)))))
    assert response["allowed"] is False
    assert decision["verdict"] == "denied"
    status = response["status"]
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert status["message"] == (
        'RayService.ray.io "rayservice-sample" is invalid: ['
        "spec.rayClusterConfig.workerGroupSpecs[0].minReplicas: Invalid value: 6: must be less "
        "than or equal to maxReplicas (5), "
        'spec.serveConfigV2.applications[1].route_prefix: Duplicate value: "/fruit": already used '
        "by applications[0]]"
    )
    assert [c["field"] for c in status["details"]["causes"]] == [
        "spec.rayClusterConfig.workerGroupSpecs[0].minReplicas",
        "spec.serveConfigV2.applications[1].route_prefix",
    ]


def test_one_error_is_not_bracketed() -> None:
    obj = sample()
    worker(obj)["minReplicas"] = 6
    response, _ = validate(decode_review(body(admission_review(stored(obj)))))
    assert response["status"]["message"].endswith(
        "is invalid: spec.rayClusterConfig.workerGroupSpecs[0].minReplicas: Invalid value: 6: "
        "must be less than or equal to maxReplicas (5)"
    )


def test_an_update_is_classified_and_explained() -> None:
    old = stored(sample())
    new = copy.deepcopy(old)
    mango_price(4)(new)
    request = decode_review(body(admission_review(new, old)))
    mutated_response, _ = mutate(request)
    mutated = jsonpatch.apply_patch(new, patch_of(mutated_response))
    assert mutated["metadata"]["annotations"]["raysvc.io/change"] == "serve-only"
    response, decision = validate(decode_review(body(admission_review(mutated, old))))
    assert response["allowed"] is True
    assert decision["change"] == "serve-only"
    assert response["warnings"] == [
        "the Serve config is re-applied in place to the running RayCluster"
    ]


def test_a_cluster_upgrade_warns_that_capacity_doubles() -> None:
    old = stored(sample())
    new = put(copy.deepcopy(old), "spec.rayClusterConfig.rayVersion", "2.100.0")
    mutated = jsonpatch.apply_patch(
        new, patch_of(mutate(decode_review(body(admission_review(new, old))))[0])
    )
    response, _ = validate(decode_review(body(admission_review(mutated, old))))
    assert response["allowed"] is True
    assert response["warnings"] == [
        "spec.rayClusterConfig.rayVersion: 2.100.0 does not match the head image tag 2.52.0",
        "cluster upgrade: a new RayCluster with 2 pods (2.5 CPU, 4Gi memory) starts before the "
        "old one is deleted",
        "capacity doubles during the upgrade; traffic moves when the new cluster's apps run",
    ]
    assert all(len(w) <= 120 for w in response["warnings"])


def test_an_autoscaler_owned_change_warns_it_is_not_propagated() -> None:
    old = stored(sample())
    new = put(copy.deepcopy(old), "spec.rayClusterConfig.workerGroupSpecs[0].replicas", 2)
    mutated = jsonpatch.apply_patch(
        new, patch_of(mutate(decode_review(body(admission_review(new, old))))[0])
    )
    response, _ = validate(decode_review(body(admission_review(mutated, old))))
    assert response["warnings"] == [
        "replicas/workersToDelete are owned by the Ray autoscaler: not propagated to the running "
        "RayCluster"
    ]


def test_forged_annotations_are_denied() -> None:
    obj = stored(sample())
    obj["metadata"]["annotations"]["raysvc.io/serve-hash"] = "f" * 64
    response, _ = validate(decode_review(body(admission_review(obj))))
    assert response["allowed"] is False
    assert (
        "metadata.annotations[raysvc.io/serve-hash]: Invalid value" in response["status"]["message"]
    )


def test_dry_run_gets_the_same_answer() -> None:
    obj = sample()
    real = mutate(decode_review(body(admission_review(obj))))[0]
    dry = mutate(decode_review(body(admission_review(obj, dry_run=True))))[0]
    assert real == dry
    mutated = stored(obj)
    assert (
        validate(decode_review(body(admission_review(mutated))))[0]
        == validate(decode_review(body(admission_review(mutated, dry_run=True))))[0]
    )


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_other_operations_pass_through(operation: str) -> None:
    request = decode_review(body(admission_review(None, sample(), operation=operation)))
    assert validate(request)[0] == {"uid": request["uid"], "allowed": True}
    assert mutate(request)[0] == {"uid": request["uid"], "allowed": True}


def test_status_subresource_updates_pass_through() -> None:
    review = admission_review(sample(), sample())
    review["request"]["subResource"] = "status"
    review["request"]["object"]["spec"]["rayClusterConfig"] = "broken"
    assert validate(decode_review(body(review)))[0]["allowed"] is True


BAD_BODIES = [
    (b"not json", "request body is not JSON"),
    (b"[]", "request body is not a JSON object"),
    (
        b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "u"}}',
        "expected kind AdmissionReview in admission.k8s.io/v1",
    ),
    (
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}',
        "the AdmissionReview has no request",
    ),
    (
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}',
        "the AdmissionReview request has no uid",
    ),
]


@pytest.mark.parametrize(("raw", "message"), BAD_BODIES)
def test_a_bad_review_is_a_bad_request(raw: bytes, message: str) -> None:
    with pytest.raises(BadReviewError, match=message):
        decode_review(raw)


def test_a_bad_review_keeps_its_uid_when_it_has_one() -> None:
    review = admission_review(sample())
    review["request"]["kind"] = {"group": "", "version": "v1", "kind": "Pod"}
    with pytest.raises(BadReviewError) as caught:
        decode_review(body(review))
    assert caught.value.uid == review["request"]["uid"]


def test_an_object_that_is_not_a_rayservice_is_a_bad_request() -> None:
    review = admission_review(sample())
    review["request"]["object"]["kind"] = "RayCluster"
    with pytest.raises(BadReviewError, match="expected kind RayService"):
        mutate(decode_review(body(review)))


def nested_review(depth: int) -> bytes:
    obj = sample()
    obj["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["x"] = "@@"
    return body(admission_review(obj)).replace(b'"@@"', b'{"a":' * depth + b"1" + b"}" * depth)


def test_nested_objects_within_the_bound_are_allowed() -> None:
    request = decode_review(nested_review(200))
    assert mutate(request)[0]["allowed"] is True
    assert validate(request)[0]["allowed"] is True


def test_objects_nested_past_the_bound_are_denied_with_the_field_that_nests() -> None:
    request = decode_review(nested_review(1015))
    mutated, _ = mutate(request)
    assert mutated["allowed"] is True
    patch = json.loads(base64.b64decode(mutated["patch"]))
    assert {
        "op": "add",
        "path": "/metadata/annotations",
        "value": {"raysvc.io/change": "create"},
    } in patch
    response, _ = validate(request)
    assert response["allowed"] is False
    assert response["status"]["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "field": "spec.rayClusterConfig.headGroupSpec.template.spec.x.a.a.a.a.a.a",
            "message": "Forbidden: lists and maps may not nest more than 254 levels deep",
        }
    ]


def test_nesting_past_1024_levels_is_a_bad_request() -> None:
    with pytest.raises(BadReviewError, match="not JSON"):  # orjson's limit: 400, not a crash
        decode_review(nested_review(5000))


def admit(obj: Obj, stored: Obj | None = None) -> Obj:
    """What the API server stores when ``obj`` replaces ``stored``: mutated, then validated."""
    response, _ = mutate(decode_review(body(admission_review(obj, stored))))
    patched = obj
    if "patch" in response:
        patched = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(response["patch"])))
    verdict, _ = validate(decode_review(body(admission_review(patched, stored))))
    assert verdict["allowed"] is True
    return patched


def stored_after(*objects: Obj) -> Obj:
    """The object the API server holds after admitting each of ``objects`` in turn."""
    stored: Obj | None = None
    for obj in objects:
        stored = admit(obj, stored)
    assert stored is not None
    return stored


def upgraded() -> Obj:
    return put(sample(), "spec.rayClusterConfig.rayVersion", "2.53.0")


def test_re_applying_an_unchanged_manifest_patches_nothing_and_keeps_the_last_change() -> None:
    stored = stored_after(sample(), upgraded())
    assert stored["metadata"]["annotations"]["raysvc.io/change"] == "cluster-upgrade"
    reapplied = copy.deepcopy(stored)  # kubectl apply keeps the annotations the webhook wrote
    response, decision = mutate(decode_review(body(admission_review(reapplied, stored))))
    assert decision["change"] == "none"
    assert "patch" not in response
    verdict, _ = validate(decode_review(body(admission_review(reapplied, stored))))
    assert verdict["allowed"] is True


def test_a_label_edit_keeps_the_class_of_the_last_spec_change() -> None:
    stored = stored_after(sample(), upgraded())
    labelled = put(copy.deepcopy(stored), "metadata.labels", {"team": "fruit"})
    assert admit(labelled, stored)["metadata"]["annotations"]["raysvc.io/change"] == (
        "cluster-upgrade"
    )


def test_a_manifest_without_the_annotations_gets_the_stored_ones_back() -> None:
    stored = stored_after(sample(), upgraded())
    bare = upgraded()  # kubectl replace of the file: no raysvc.io/ annotations
    response, _ = mutate(decode_review(body(admission_review(bare, stored))))
    patched = jsonpatch.apply_patch(bare, json.loads(base64.b64decode(response["patch"])))
    assert patched["metadata"]["annotations"] == stored["metadata"]["annotations"]


def test_on_an_unchanged_spec_a_forged_class_is_still_denied() -> None:
    stored = stored_after(sample(), upgraded())
    forged = put(
        copy.deepcopy(stored),
        "metadata.annotations",
        {**stored["metadata"]["annotations"], "raysvc.io/change": "serve-only"},
    )
    verdict, _ = validate(decode_review(body(admission_review(forged, stored))))
    assert verdict["allowed"] is False
    assert "expected 'cluster-upgrade'" in verdict["status"]["message"]
