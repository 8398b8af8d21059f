"""``raysvc webhook`` fed hostile reviews: each gets an ordinary answer, and the server stays up."""

from __future__ import annotations

import time

from tests.builders import admission_review, head_container, sample
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
