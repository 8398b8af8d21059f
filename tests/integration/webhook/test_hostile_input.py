"""``raysvc webhook`` fed hostile reviews: each gets an ordinary answer, and the server stays up."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import jsonpatch
import pytest

from rayservice import ChangeClass
from tests.builders import Obj, admission_review, head_container, sample
from tests.hostile_cases import HOSTILE
from tests.integration.webhook.support import Webhook, review_body

UID = "4b1f5a7e-0000-4000-8000-000000000001"
REQUESTS = "spec.rayClusterConfig.headGroupSpec.template.spec.containers[0].resources.requests"


def test_a_huge_quantity_exponent_is_denied_at_once_and_the_server_stays_healthy(
    webhook: Webhook,
) -> None:
    obj = sample()
    head_container(obj)["resources"]["requests"]["cpu"] = "1e999999999"
    conn = webhook.connect()
    conn.timeout = 10  # an unbounded computation would hold the event loop for good
    try:
        status, _, reply = webhook.post("/validate", review_body(admission_review(obj)), conn)
    finally:
        conn.close()
    assert status == 200
    response = reply["response"]
    assert response["uid"] == UID
    assert response["allowed"] is False
    assert response["status"]["code"] == 422
    assert response["status"]["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "field": f"{REQUESTS}[cpu]",
            "message": 'Invalid value: "1e999999999": '
            "must be no more than 9223372036854775807 in magnitude",
        }
    ]
    started = time.monotonic()
    assert webhook.health("/healthz") == (200, "ok\n")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("edit", "expected"), [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE]
)
def test_hostile_rayservices_get_their_field_error_and_mutate_still_annotates(
    webhook: Webhook, edit: Callable[[Obj], object], expected: str
) -> None:
    obj = sample()
    edit(obj)
    body = review_body(admission_review(obj, sample()))
    status, _, reply = webhook.post("/validate", body)
    assert status == 200
    response = reply["response"]
    assert (response["uid"], response["allowed"]) == (UID, False)
    assert response["status"]["code"] == 422
    assert (
        response["status"]["message"]
        == f'RayService.ray.io "rayservice-sample" is invalid: {expected}'
    )
    status, _, reply = webhook.post("/mutate", body)
    assert status == 200
    patch = json.loads(base64.b64decode(reply["response"]["patch"]))
    mutated = jsonpatch.apply_patch(obj, patch, in_place=True)
    assert mutated["metadata"]["annotations"]["raysvc.io/change"] in set(ChangeClass)
    assert mutated["spec"]["rayClusterDeletionDelaySeconds"] == 60


def deep(levels: int) -> str:
    return "[" * levels + '"x"' + "]" * levels


@pytest.mark.parametrize("field", ["namespace", "name", "kind", "operation", "subResource"])
def test_a_deep_request_field_gets_an_answer_that_echoes_the_uid(
    webhook: Webhook, field: str
) -> None:
    review = admission_review(sample())
    review["request"][field] = "@@"
    body = review_body(review).replace(b'"@@"', deep(1000).encode())
    for path in ("/validate", "/mutate"):
        status, _, reply = webhook.post(path, body)
        assert status in (200, 400), reply
        assert reply["response"]["uid"] == UID
        if status == 400:
            assert len(reply["response"]["status"]["message"]) < 300
        else:
            assert reply["response"].get("status", {}).get("code") != 500
