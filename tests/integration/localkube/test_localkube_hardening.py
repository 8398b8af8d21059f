"""Small requests that once earned a huge answer, a 500 or a stored malformed value: each is
answered as kube-apiserver answers it (400 or 422 with its wording), within bounded cost."""

from __future__ import annotations

from typing import Any

import pytest

from localkube import LocalKube
from tests.integration.localkube.helpers import raw

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _cm(name: str, **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **metadata}}


# answers stay small --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("metadata", "first_field"),
    [
        ({"ownerReferences": [{}] * 20_000}, "metadata.ownerReferences[0].apiVersion"),
        ({"finalizers": [""] * 100_000}, "metadata.finalizers[0]"),
    ],
)
async def test_a_body_with_thousands_of_invalid_entries_gets_an_answer_of_bounded_size(
    localkube: LocalKube, kube_namespace: str, metadata: dict[str, Any], first_field: str
) -> None:
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps"
    status, body, _ = await raw(localkube.url, "POST", path, body=_cm("many", **metadata))
    assert (status, body["reason"]) == (422, "Invalid")
    causes = body["details"]["causes"]
    assert len(causes) == 100
    assert causes[0]["field"] == first_field
    assert body["message"].startswith(f'ConfigMap "many" is invalid: [{first_field}: ')
    assert body["message"].endswith(", too many errors, only the first 100 are reported]")
    assert len(body["message"]) < 40_000


# one-line values pass, values with a newline do not ----------------------------------------
@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"labels": {"a\n": "v"}}, "metadata.labels"),
        ({"labels": {"a": "v\n"}}, "metadata.labels"),
        ({"finalizers": ["example.com/f\n"]}, "metadata.finalizers[0]"),
        ({"annotations": {"example.com\n/a": "v"}}, "metadata.annotations"),
    ],
)
async def test_a_trailing_newline_makes_a_label_annotation_or_finalizer_invalid(
    localkube: LocalKube, kube_namespace: str, metadata: dict[str, Any], field: str
) -> None:
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps"
    status, body, _ = await raw(localkube.url, "POST", path, body=_cm("nl", **metadata))
    assert (status, body["reason"]) == (422, "Invalid")
    assert [c["field"] for c in body["details"]["causes"]] == [field]


async def test_a_name_with_a_trailing_newline_is_invalid(
    localkube: LocalKube, kube_namespace: str
) -> None:
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps"
    status, body, _ = await raw(localkube.url, "POST", path, body=_cm("a\n"))
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"
