"""Small requests that once hung localkube, grew it without bound, stored malformed metadata or
answered 500: each is bounded and answered 4xx as kube-apiserver answers it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes_asyncio import client

from localkube import LocalKube
from tests.integration.localkube.helpers import raw

pytestmark = pytest.mark.asyncio(loop_scope="session")

LIMIT = 3 * 1024 * 1024


async def _configmap(core: client.CoreV1Api, namespace: str, name: str) -> None:
    await core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"a": "x" * 1000}),
    )


# bounds ------------------------------------------------------------------------------------------
async def test_doubling_json_patch_copies_stop_at_the_accumulated_copy_limit(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    await _configmap(core, kube_namespace, "grow")
    doubling = [{"op": "add", "path": "/x", "value": ["y" * 1000]}]
    doubling += [{"op": "copy", "from": "/x", "path": "/x/-"} for _ in range(40)]
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps/grow"
    status, body, _ = await raw(
        localkube.url, "PATCH", path, body=doubling, content_type="application/json-patch+json"
    )
    assert (status, body["reason"]) == (413, "RequestEntityTooLarge")
    assert body["message"].startswith("Unable to complete the copy, the accumulated size increase")
    assert body["message"].endswith(f"exceeding the limit {LIMIT}")
    too_many = [{"op": "test", "path": "/kind", "value": "ConfigMap"}] * 10_001
    status, body, _ = await raw(
        localkube.url, "PATCH", path, body=too_many, content_type="application/json-patch+json"
    )
    assert (status, body["message"]) == (
        413,
        "The allowed maximum operations in a JSON patch is 10000, got 10001",
    )
    stored = await core.read_namespaced_config_map("grow", kube_namespace)
    assert stored.data == {"a": "x" * 1000}


async def test_a_yaml_alias_bomb_is_limited_by_the_size_it_expands_to(
    localkube: LocalKube, kube_namespace: str
) -> None:
    lines = [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata: {name: bomb}",
        'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    lines += [
        f"a{i}: &a{i} [*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1}]"
        for i in range(1, 9)
    ]
    body = "\n".join(lines).encode()
    assert len(body) < 1024
    status, answer, _ = await raw(
        localkube.url,
        "POST",
        f"/api/v1/namespaces/{kube_namespace}/configmaps",
        data=body,
        content_type="application/yaml",
    )
    assert (status, answer["message"]) == (413, f"Request entity too large: limit is {LIMIT}")


async def test_a_crd_pattern_is_matched_in_linear_time_as_go_regexp_does(
    localkube: LocalKube, kube_api: client.ApiClient, kube_namespace: str
) -> None:
    group = f"{kube_namespace}.example.com"
    schema = {
        "openAPIV3Schema": {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {"word": {"type": "string", "pattern": "(a+)+$"}},
                }
            },
        }
    }
    crd = {
        "metadata": {"name": f"words.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "words", "kind": "Word"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": schema}],
        },
    }
    extensions = client.ApiextensionsV1Api(kube_api)
    await extensions.create_custom_resource_definition(crd)  # type: ignore[arg-type]
    try:
        word = {
            "apiVersion": f"{group}/v1",
            "kind": "Word",
            "metadata": {"name": "w"},
            "spec": {"word": "a" * 40 + "!"},
        }
        async with asyncio.timeout(2):  # a backtracking engine takes minutes on this
            status, body, _ = await raw(
                localkube.url,
                "POST",
                f"/apis/{group}/v1/namespaces/{kube_namespace}/words",
                body=word,
            )
        assert status == 422
        assert "spec.word in body should match '(a+)+$'" in body["message"]
    finally:
        await extensions.delete_custom_resource_definition(f"words.{group}")


@pytest.mark.parametrize("value", ["nan", "inf", "1e309", "abc", "1.5"])
async def test_a_watch_timeout_must_be_an_integer(
    localkube: LocalKube, kube_namespace: str, value: str
) -> None:
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps?watch=1&timeoutSeconds={value}"
    status, body, _ = await raw(localkube.url, "GET", path)
    assert (status, body["message"]) == (
        400,
        f'strconv.ParseInt: parsing "{value}": invalid syntax for parameter timeoutSeconds',
    )


# malformed metadata and shapes --------------------------------------------------------------------
def _cm(**metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m", **metadata}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            _cm(ownerReferences="x"),
            "json: cannot unmarshal string into Go struct field ConfigMap.metadata.ownerReferences of type []v1.OwnerReference",
        ),
        (
            _cm(labels={"a": {"x": 1}}),
            "json: cannot unmarshal object into Go struct field ConfigMap.metadata.labels of type string",
        ),
        (
            _cm(labels=["a"]),
            "json: cannot unmarshal array into Go struct field ConfigMap.metadata.labels of type map[string]string",
        ),
        (
            {**_cm(), "metadata": {"name": 5}},
            "json: cannot unmarshal number into Go struct field ConfigMap.metadata.name of type string",
        ),
        (
            {**_cm(), "data": {"a": 1}},
            "json: cannot unmarshal number into Go struct field ConfigMap.data of type string",
        ),
    ],
)
async def test_metadata_of_the_wrong_type_is_refused_as_go_decoding_refuses_it(
    localkube: LocalKube, kube_namespace: str, body: dict[str, Any], message: str
) -> None:
    status, answer, _ = await raw(
        localkube.url, "POST", f"/api/v1/namespaces/{kube_namespace}/configmaps", body=body
    )
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert (
        answer["message"]
        == f'ConfigMap in version "v1" cannot be handled as a ConfigMap: {message}'
    )


async def test_malformed_labels_and_owner_references_are_invalid(
    localkube: LocalKube, kube_namespace: str
) -> None:
    body = _cm(labels={"bad key!": "v", "k": "bad value!"}, ownerReferences=[{"kind": "X"}])
    status, answer, _ = await raw(
        localkube.url, "POST", f"/api/v1/namespaces/{kube_namespace}/configmaps", body=body
    )
    assert (status, answer["reason"]) == (422, "Invalid")
    fields = [c["field"] for c in answer["details"]["causes"]]
    assert fields == [
        "metadata.labels",
        "metadata.labels",
        "metadata.ownerReferences[0].apiVersion",
        "metadata.ownerReferences[0].name",
        "metadata.ownerReferences[0].uid",
    ]


async def test_a_label_selector_on_a_list_still_works_after_a_refused_malformed_label(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str, ray_crds: list[str]
) -> None:
    rs = {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "r", "labels": {"a": {"x": 1}}},
        "spec": {"serveConfigV2": ""},
    }
    path = f"/apis/ray.io/v1/namespaces/{kube_namespace}/rayservices"
    status, answer, _ = await raw(localkube.url, "POST", path, body=rs)
    assert status == 400
    assert "Go struct field RayService.metadata.labels of type string" in answer["message"]
    status, answer, _ = await raw(localkube.url, "GET", f"{path}?labelSelector=a>1")
    assert (status, answer["items"]) == (200, [])


# 400 where kube-apiserver answers 400 -------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=abc", 'strconv.ParseInt: parsing "abc": invalid syntax for parameter limit'),
        ("limit=1e3", 'strconv.ParseInt: parsing "1e3": invalid syntax for parameter limit'),
        ("continue=abc", "continue key is not valid: "),
        (
            "continue=eyJydiI6IDEsICJzdGFydCI6IDV9",
            "continue key is not valid: start is not a namespace and a name",
        ),
        (
            "continue=eyJydiI6ICJ4IiwgInN0YXJ0IjogWyIiLCAiIl19",
            "continue key is not valid: rv is not an integer",
        ),
        ("continue=W10=", "continue key is not valid: "),
    ],
)
async def test_malformed_list_parameters_are_400(
    localkube: LocalKube, kube_namespace: str, query: str, message: str
) -> None:
    status, body, _ = await raw(
        localkube.url, "GET", f"/api/v1/namespaces/{kube_namespace}/configmaps?{query}"
    )
    assert (status, body["reason"]) == (400, "BadRequest")
    assert body["message"].startswith(message)


async def test_json_nested_a_hundred_thousand_deep_is_400(
    localkube: LocalKube, kube_namespace: str
) -> None:
    body = (
        b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d"},"x":'
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}"
    )
    status, answer, _ = await raw(
        localkube.url, "POST", f"/api/v1/namespaces/{kube_namespace}/configmaps", data=body
    )
    assert (status, answer["message"]) == (
        400,
        "Object 'ConfigMap' cannot be decoded: exceeded max depth of 200",
    )


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (
            "binaryData: {a: !!binary aGk=}",
            "cannot convert the tag tag:yaml.org,2002:binary to JSON",
        ),
        ("x: !!set {a, b}", "cannot convert the tag tag:yaml.org,2002:set to JSON"),
        ("x: &r [*r]", "the document refers to itself"),
    ],
)
async def test_yaml_that_json_cannot_hold_is_400(
    localkube: LocalKube, kube_namespace: str, extra: str, fragment: str
) -> None:
    body = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: y}}\n{extra}\n".encode()
    status, answer, _ = await raw(
        localkube.url,
        "POST",
        f"/api/v1/namespaces/{kube_namespace}/configmaps",
        data=body,
        content_type="application/yaml",
    )
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert fragment in answer["message"]


async def test_yaml_timestamps_stay_strings(localkube: LocalKube, kube_namespace: str) -> None:
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ts}\ndata: {when: 2024-01-01}\n"
    status, answer, _ = await raw(
        localkube.url,
        "POST",
        f"/api/v1/namespaces/{kube_namespace}/configmaps",
        data=body,
        content_type="application/yaml",
    )
    assert (status, answer["data"]) == (201, {"when": "2024-01-01"})


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            {"metadata": {"name": "xs.example.com"}, "spec": 5},
            'CustomResourceDefinition in version "v1" cannot be handled as a CustomResourceDefinition: '
            "json: cannot unmarshal number into Go struct field CustomResourceDefinition.spec of type v1.CustomResourceDefinitionSpec",
        ),
        (
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
            {"metadata": {"name": "w"}, "webhooks": 5},
            'ValidatingWebhookConfiguration in version "v1" cannot be handled as a ValidatingWebhookConfiguration: '
            "json: cannot unmarshal number into Go struct field ValidatingWebhookConfiguration.webhooks of type []v1.ValidatingWebhook",
        ),
    ],
)
async def test_wrongly_typed_specs_of_built_in_kinds_are_400(
    localkube: LocalKube, path: str, body: dict[str, Any], message: str
) -> None:
    status, answer, _ = await raw(localkube.url, "POST", path, body=body)
    assert (status, answer["message"]) == (400, message)


async def test_a_merge_patch_cannot_give_a_field_the_wrong_type(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    await _configmap(core, kube_namespace, "typed")
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps/typed"
    status, answer, _ = await raw(
        localkube.url,
        "PATCH",
        path,
        body={"metadata": {"labels": ["x"]}},
        content_type="application/merge-patch+json",
    )
    assert status == 400
    assert json.dumps(answer).count("map[string]string") == 1
    stored = await core.read_namespaced_config_map("typed", kube_namespace)
    assert not stored.metadata.labels  # nothing was written


async def test_a_crd_whose_pattern_go_regexp_cannot_compile_is_invalid(
    localkube: LocalKube, kube_namespace: str
) -> None:
    group = f"{kube_namespace}.example.com"
    schema = {
        "openAPIV3Schema": {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {"w": {"type": "string", "pattern": "(?=a)"}},
                }
            },
        }
    }
    crd = {
        "metadata": {"name": f"looks.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "looks", "kind": "Look"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": schema}],
        },
    }
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    status, answer, _ = await raw(localkube.url, "POST", path, body=crd)
    assert (status, answer["reason"]) == (422, "Invalid")
    assert answer["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "(?=a)": must be a valid regular expression, but isn\'t',
            "field": "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[w].pattern",
        }
    ]
