"""The verdict memo of the webhook: answers from it are the answers made afresh, uid aside."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import jsonpatch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import Obj, admission_review, put, sample
from tests.unit.test_properties import json_values, rayservices
from webhook.review import AdmissionResponse, decode_review, forget, mutate, validate

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

MANGLE_PATHS = [
    ("metadata",),
    ("metadata", "annotations"),
    ("metadata", "annotations", "raysvc.io/change"),
    ("metadata", "name"),
    ("spec", "serveConfigV2"),
    ("spec", "rayClusterConfig", "workerGroupSpecs"),
    ("spec", "rayClusterDeletionDelaySeconds"),
    ("status",),
]


def body(review: Obj) -> bytes:
    return json.dumps(review).encode()


def as_sent_by_the_api_server(obj: Obj) -> Obj:
    """``obj`` with the metadata the API server maintains, and its keys sorted."""
    obj = copy.deepcopy(obj)
    if isinstance(obj.get("metadata"), dict):
        obj["metadata"]["resourceVersion"] = "4242"
        obj["metadata"]["generation"] = 7
        obj["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Update"}]
    sent: Obj = json.loads(json.dumps(obj, sort_keys=True))
    return sent


def mutated(obj: Obj, old: Obj | None, uid: str) -> tuple[AdmissionResponse, Obj]:
    response, _ = mutate(decode_review(body(admission_review(obj, old, uid=uid))))
    if "patch" not in response:
        return response, obj
    patch = json.loads(base64.b64decode(response["patch"]))
    return response, jsonpatch.apply_patch(obj, patch)


def without_uid(response: AdmissionResponse) -> dict[str, Any]:
    return {key: value for key, value in response.items() if key != "uid"}


@st.composite
def mangled(draw: st.DrawFn) -> Obj:
    obj = draw(rayservices())
    if draw(st.booleans()):
        path = draw(st.sampled_from(MANGLE_PATHS))
        node: Any = obj
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[path[-1]] = draw(json_values)
    return obj


@SETTINGS
@given(mangled(), st.booleans())
def test_the_validating_answer_filed_by_the_mutation_is_the_answer_made_afresh(
    obj: Obj, update: bool
) -> None:
    forget()
    old = mutated(sample(), None, "old")[1] if update else None
    _, patched = mutated(obj, old, "m")
    request = decode_review(body(admission_review(as_sent_by_the_api_server(patched), old)))
    remembered, _ = validate(request)
    forget()
    fresh, _ = validate(request)
    assert remembered == fresh


@SETTINGS
@given(mangled())
def test_a_repeat_gets_the_first_answer_with_its_own_uid(obj: Obj) -> None:
    forget()
    old = sample()
    for decide in (mutate, validate):
        first, _ = decide(decode_review(body(admission_review(obj, old, uid="first"))))
        again, _ = decide(decode_review(body(admission_review(obj, old, uid="again"))))
        assert (first["uid"], again["uid"]) == ("first", "again")
        assert without_uid(first) == without_uid(again)


def test_metadata_the_api_server_keeps_does_not_change_the_answer() -> None:
    forget()
    obj = put(sample(), "metadata.annotations", {"ray.io/initializing-timeout": "0s"})
    plain, _ = validate(decode_review(body(admission_review(obj))))
    assert plain["allowed"] is False
    kept = as_sent_by_the_api_server(obj)
    again, _ = validate(decode_review(body(admission_review(kept))))
    assert without_uid(again) == without_uid(plain)


def test_a_change_to_what_the_decision_reads_is_decided_anew() -> None:
    forget()
    valid = sample()
    invalid = put(sample(), "spec.rayClusterConfig.workerGroupSpecs[0].minReplicas", 6)
    for obj, allowed in ((valid, True), (invalid, False), (valid, True)):
        response, _ = validate(decode_review(body(admission_review(obj))))
        assert response["allowed"] is allowed
