"""Small requests that once earned a huge answer, a 500 or a stored malformed value: each is
answered as kube-apiserver answers it (400 or 422 with its wording), within bounded cost."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from localkube import LocalKube, Settings, protobuf
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


# protobuf bodies meet the bounds JSON bodies meet ---------------------------------------------
LIMIT = 3 * 1024 * 1024


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _envelope(api_version: str, kind: str, message: bytes) -> bytes:
    type_meta = _bytes_field(1, api_version.encode()) + _bytes_field(2, kind.encode())
    return protobuf.MAGIC + _bytes_field(1, type_meta) + _bytes_field(2, message)


def _configmap_with_meta(meta: bytes) -> bytes:
    """A protobuf ConfigMap named "pb" whose ObjectMeta also carries ``meta``."""
    return _envelope("v1", "ConfigMap", _bytes_field(1, _bytes_field(1, b"pb") + meta))


async def _post_protobuf(localkube: LocalKube, namespace: str, body: bytes) -> tuple[int, Any]:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    status, answer, _ = await raw(
        localkube.url, "POST", path, data=body, content_type=protobuf.MEDIA_TYPE
    )
    return status, answer


@pytest.mark.parametrize("depth", [300, 5000])
async def test_deeply_nested_json_inside_a_protobuf_body_is_400(
    localkube: LocalKube, kube_namespace: str, depth: int
) -> None:
    deep = b"[" * depth + b"]" * depth
    entry = _bytes_field(6, b"FieldsV1") + _bytes_field(7, _bytes_field(1, deep))
    status, answer = await _post_protobuf(
        localkube, kube_namespace, _configmap_with_meta(_bytes_field(17, entry))
    )
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert answer["message"].startswith("Object 'ConfigMap' cannot be decoded")
    assert answer["message"].endswith("exceeded max depth of 200")


async def test_a_protobuf_body_that_decodes_beyond_the_size_limit_is_413(
    localkube: LocalKube, kube_namespace: str
) -> None:
    value = b"\x00" * (LIMIT - 100_000)  # fits the body limit, base64 in JSON does not
    entry = _bytes_field(1, b"k") + _bytes_field(2, value)
    meta = _bytes_field(1, _bytes_field(1, b"big"))
    body = _envelope("v1", "ConfigMap", meta + _bytes_field(3, entry))
    assert len(body) < LIMIT
    status, answer = await _post_protobuf(localkube, kube_namespace, body)
    assert (status, answer["message"]) == (413, f"Request entity too large: limit is {LIMIT}")


@pytest.mark.parametrize("number", [1, 2])
async def test_a_time_whose_fields_are_not_varints_is_400(
    localkube: LocalKube, kube_namespace: str, number: int
) -> None:
    time = _bytes_field(number, b"12")  # seconds or nanos sent as bytes
    status, answer = await _post_protobuf(
        localkube, kube_namespace, _configmap_with_meta(_bytes_field(8, time))
    )
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert answer["message"] == (
        "Object 'ConfigMap' cannot be decoded from protobuf: "
        f"field {number} of k8s.io.apimachinery.pkg.apis.meta.v1.Time is not a varint"
    )


# numbers JSON cannot hold ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "content_type", "message"),
    [
        ("NaN", "application/json", "invalid character 'N' looking for beginning of value"),
        ("Infinity", "application/json", "invalid character 'I' looking for beginning of value"),
        ("-Infinity", "application/json", "invalid character '-' looking for beginning of value"),
        (
            "1e400",
            "application/json",
            "json: cannot unmarshal number 1e400 into Go value of type float64",
        ),
        (".nan", "application/yaml", "json: unsupported value: NaN"),
        (".inf", "application/yaml", "json: unsupported value: +Inf"),
        ("-.inf", "application/yaml", "json: unsupported value: -Inf"),
        ("1.0e+400", "application/yaml", "json: unsupported value: +Inf"),
    ],
)
async def test_a_number_json_cannot_hold_is_400(
    localkube: LocalKube, kube_namespace: str, text: str, content_type: str, message: str
) -> None:
    rs = f'{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"n"}},"x":{text}}}'
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps"
    status, answer, _ = await raw(
        localkube.url, "POST", path, data=rs.encode(), content_type=content_type
    )
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert answer["message"].endswith(message)
    status, listed, _ = await raw(localkube.url, "GET", path)
    assert status == 200
    assert "n" not in [item["metadata"]["name"] for item in listed["items"]]
    json.dumps(listed, allow_nan=False)


# integers in the query stay within int64 ------------------------------------------------------
HUGE = "9" * 400


async def _bound_pod(localkube: LocalKube, namespace: str, name: str) -> str:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": "nowhere", "containers": [{"name": "main", "image": "x"}]},
    }
    path = f"/api/v1/namespaces/{namespace}/pods"
    status, answer, _ = await raw(localkube.url, "POST", path, body=body)
    assert status == 201, answer
    return f"{path}/{name}"


@pytest.mark.parametrize(
    ("suffix", "parameter", "value"),
    [
        ("?watch=1&timeoutSeconds={}", "timeoutSeconds", HUGE),
        ("?gracePeriodSeconds={}", "gracePeriodSeconds", "9" * 30),
        ("?gracePeriodSeconds={}", "gracePeriodSeconds", "-9223372036854775809"),
        ("/log?sinceSeconds={}", "sinceSeconds", HUGE),
        ("/log?tailLines={}", "tailLines", "9223372036854775808"),
    ],
)
async def test_an_integer_parameter_beyond_int64_is_400(
    localkube: LocalKube, kube_namespace: str, suffix: str, parameter: str, value: str
) -> None:
    pod = await _bound_pod(localkube, kube_namespace, "huge")
    method = "DELETE" if parameter == "gracePeriodSeconds" else "GET"
    path = (pod.rpartition("/")[0] if "watch" in suffix else pod) + suffix.format(value)
    status, answer, _ = await raw(localkube.url, method, path)
    assert (status, answer["message"]) == (
        400,
        f'strconv.ParseInt: parsing "{value}": value out of range for parameter {parameter}',
    )
    status, _, _ = await raw(localkube.url, "DELETE", f"{pod}?gracePeriodSeconds=0")
    assert status == 200


async def test_the_longest_int64_grace_period_deletes_a_bound_pod_gracefully(
    localkube: LocalKube, kube_namespace: str
) -> None:
    pod = await _bound_pod(localkube, kube_namespace, "patient")
    status, answer, _ = await raw(localkube.url, "DELETE", f"{pod}?gracePeriodSeconds={2**63 - 1}")
    assert status == 200, answer
    assert answer["metadata"]["deletionGracePeriodSeconds"] == 2**63 - 1
    assert answer["metadata"]["deletionTimestamp"].startswith("9999-12-31T")
    status, answer, _ = await raw(localkube.url, "DELETE", pod, body={"gracePeriodSeconds": 10**30})
    assert (status, answer["message"]) == (
        400,
        f"json: cannot unmarshal number {10**30} into Go struct field "
        "DeleteOptions.gracePeriodSeconds of type int64",
    )
    status, _, _ = await raw(localkube.url, "DELETE", f"{pod}?gracePeriodSeconds=0")
    assert status == 200


async def _get_protobuf(url: str, path: str) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            url + path,
            headers={"Accept": protobuf.MEDIA_TYPE},
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response,
    ):
        return response.status, await response.read()


# timestamps are RFC 3339 ------------------------------------------------------------------------
def _lease(name: str, renew: str) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": "me", "renewTime": renew},
    }


@pytest.mark.parametrize("renew", ["garbage", "2024-13-01T00:00:00.000000Z", "2024-01-01"])
async def test_a_lease_whose_renew_time_is_not_rfc3339_is_400(
    localkube: LocalKube, kube_namespace: str, renew: str
) -> None:
    path = f"/apis/coordination.k8s.io/v1/namespaces/{kube_namespace}/leases"
    status, answer, _ = await raw(localkube.url, "POST", path, body=_lease("l", renew))
    assert (status, answer["message"]) == (
        400,
        'Lease in version "v1" cannot be handled as a Lease: parsing time '
        f'"{renew}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse it',
    )
    good = _lease("l", "2024-01-02T03:04:05.123456Z")
    status, answer, _ = await raw(localkube.url, "POST", path, body=good)
    assert status == 201, answer
    status, body = await _get_protobuf(localkube.url, f"{path}/l")
    assert status == 200
    assert protobuf.decode(body)["spec"]["renewTime"] == "2024-01-02T03:04:05.123456Z"


async def test_a_stored_object_protobuf_cannot_encode_is_answered_with_a_status(
    fresh_kube: Callable[..., LocalKube], tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    kube = fresh_kube(settings=Settings(state_file=state))
    await kube.start()
    path = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
    status, _, _ = await raw(kube.url, "POST", path, body=_lease("old", "2024-01-02T03:04:05Z"))
    assert status == 201
    stored = {"name": "old", "namespace": "default", "uid": "u", "resourceVersion": "9"}
    await kube.stop()
    with sqlite3.connect(state) as db:  # as a state file an older localkube accepted holds it
        db.execute(
            "UPDATE objects SET body = ? WHERE name = 'old'",
            (json.dumps(_lease("old", "garbage") | {"metadata": stored}),),
        )
    kube = fresh_kube(settings=Settings(state_file=state))
    await kube.start()
    for suffix in ("/old", ""):
        status, body = await _get_protobuf(kube.url, path + suffix)
        assert status == 500
        answer = protobuf.decode(body)
        assert (answer["kind"], answer["reason"]) == ("Status", "InternalError")


# binding and finalize bodies are checked as other writes ------------------------------------
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"metadata": "x", "target": {"name": "n"}},
            "json: cannot unmarshal string into Go struct field Binding.metadata of type "
            "v1.ObjectMeta",
        ),
        (
            {"target": "x"},
            "json: cannot unmarshal string into Go struct field Binding.target of type "
            "v1.ObjectReference",
        ),
        (
            {"target": {"name": 5}},
            "json: cannot unmarshal number into Go struct field Binding.target.name of type string",
        ),
    ],
)
async def test_a_binding_of_the_wrong_shape_is_400(
    localkube: LocalKube, kube_namespace: str, body: dict[str, Any], message: str
) -> None:
    path = f"/api/v1/namespaces/{kube_namespace}/pods"
    pod = {"metadata": {"name": "unbound"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    status, _, _ = await raw(localkube.url, "POST", path, body=pod)
    assert status in (201, 409)
    status, answer, _ = await raw(localkube.url, "POST", f"{path}/unbound/binding", body=body)
    assert (status, answer["message"]) == (
        400,
        f'Binding in version "v1" cannot be handled as a Binding: {message}',
    )


@pytest.mark.parametrize(
    ("spec", "status", "message"),
    [
        (
            "x",
            400,
            "json: cannot unmarshal string into Go struct field Namespace.spec of type "
            "v1.NamespaceSpec",
        ),
        (
            {"finalizers": 5},
            400,
            "json: cannot unmarshal number into Go struct field Namespace.spec.finalizers of "
            "type []string",
        ),
        (
            {"finalizers": "abc"},
            400,
            "json: cannot unmarshal string into Go struct field Namespace.spec.finalizers of "
            "type []string",
        ),
        ({"finalizers": ["bad name!"]}, 422, "spec.finalizers[0]: Invalid value"),
    ],
)
async def test_a_namespace_finalize_body_of_the_wrong_shape_is_refused(
    localkube: LocalKube, kube_namespace: str, spec: Any, status: int, message: str
) -> None:
    path = f"/api/v1/namespaces/{kube_namespace}/finalize"
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": kube_namespace}}
    code, answer, _ = await raw(localkube.url, "PUT", path, body={**body, "spec": spec})
    assert code == status, answer
    assert message in answer["message"]
    code, answer, _ = await raw(localkube.url, "GET", f"/api/v1/namespaces/{kube_namespace}")
    assert answer["spec"]["finalizers"] == ["kubernetes"]
