"""The admission chain against a real HTTPS webhook server: what each webhook receives, and how
localkube acts on its answer (denials, warnings, patches, failure policies, timeouts, dry run,
rule and selector matching), with kube-apiserver's wording."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trustme
from kubernetes_asyncio import client, watch

from localkube import LocalKube, ServiceRef
from tests.integration.localkube.helpers import body_of, merge_patch, raw, rayservice
from tests.integration.localkube.hookserver import SERVICE_NAMESPACE, HookServer, Registrar

pytestmark = pytest.mark.asyncio(loop_scope="session")

RS = ("ray.io", "v1")


async def keep_existing(creation: Awaitable[Any]) -> None:
    """Create something shared by several runs; an AlreadyExists answer is fine."""
    try:
        await creation
    except client.ApiException as e:
        if e.status != 409:
            raise


def rs_path(namespace: str, name: str = "") -> str:
    return f"/apis/ray.io/v1/namespaces/{namespace}/rayservices" + (f"/{name}" if name else "")


async def test_a_create_reaches_the_webhook_as_kube_apiserver_builds_the_review(
    custom: client.CustomObjectsApi, hooks: HookServer, register: Registrar, kube_namespace: str
) -> None:
    await register("/allow/create")
    await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("r")
    )
    (request,) = [r for r in hooks.seen("/allow/create") if r["namespace"] == kube_namespace]
    assert request["uid"]
    assert request["kind"] == {"group": "ray.io", "version": "v1", "kind": "RayService"}
    assert request["resource"] == {"group": "ray.io", "version": "v1", "resource": "rayservices"}
    assert request["requestKind"] == request["kind"]
    assert request["requestResource"] == request["resource"]
    assert "subResource" not in request
    assert request["name"] == "r"
    assert request["operation"] == "CREATE"
    assert request["userInfo"]["username"]
    assert request["object"]["metadata"]["name"] == "r"
    assert request["oldObject"] is None
    assert request["dryRun"] is False
    assert request["options"]["kind"] == "CreateOptions"
    assert request["options"]["apiVersion"] == "meta.k8s.io/v1"
    assert hooks.reviews[-1]["_query"] == {"timeout": "10s"}


async def test_a_patch_reaches_webhooks_as_an_update_with_the_whole_patched_object(
    custom: client.CustomObjectsApi, hooks: HookServer, register: Registrar, kube_namespace: str
) -> None:
    await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("p")
    )
    await register("/allow/patch")
    await merge_patch(
        custom.patch_namespaced_custom_object,
        *RS,
        kube_namespace,
        "rayservices",
        "p",
        {"spec": {"serviceUnhealthySecondThreshold": 4}},
    )
    (request,) = hooks.seen("/allow/patch")
    assert request["operation"] == "UPDATE"
    assert request["options"]["kind"] == "PatchOptions"
    assert request["object"]["spec"]["serviceUnhealthySecondThreshold"] == 4
    assert request["object"]["spec"]["serveConfigV2"] == "applications: []\n"
    assert "serviceUnhealthySecondThreshold" not in request["oldObject"]["spec"]


async def test_a_delete_reaches_webhooks_with_a_null_object_and_the_old_one(
    custom: client.CustomObjectsApi, hooks: HookServer, register: Registrar, kube_namespace: str
) -> None:
    await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("gone")
    )
    await register("/allow/delete")
    await custom.delete_namespaced_custom_object(*RS, kube_namespace, "rayservices", "gone")
    (request,) = hooks.seen("/allow/delete")
    assert request["operation"] == "DELETE"
    assert request["object"] is None
    assert request["oldObject"]["metadata"]["name"] == "gone"
    assert request["options"]["kind"] == "DeleteOptions"


async def test_a_denial_is_a_403_worded_as_kube_apiserver_words_it(
    localkube: LocalKube, register: Registrar, kube_namespace: str, ray_crds: list[str]
) -> None:
    name = await register("/deny?msg=replicas+must+be+positive")
    status, body, _ = await raw(
        localkube.url, "POST", rs_path(kube_namespace), body=rayservice("no")
    )
    assert status == 403
    assert (
        body["message"]
        == f'admission webhook "{name}" denied the request: replicas must be positive'
    )
    assert body["code"] == 403
    assert body["status"] == "Failure"


async def test_a_denial_keeps_the_code_and_reason_the_webhook_chose(
    localkube: LocalKube, register: Registrar, kube_namespace: str, ray_crds: list[str]
) -> None:
    name = await register("/deny?msg=bad+spec&code=422&reason=Invalid")
    status, body, _ = await raw(
        localkube.url, "POST", rs_path(kube_namespace), body=rayservice("no")
    )
    assert status == 422
    assert body["reason"] == "Invalid"
    assert body["message"] == f'admission webhook "{name}" denied the request: bad spec'


async def test_warnings_come_back_as_warning_headers(
    localkube: LocalKube, register: Registrar, kube_namespace: str, ray_crds: list[str]
) -> None:
    await register("/warn?msg=serve+config+changed", mutating=True)
    status, _, warnings = await raw(
        localkube.url, "POST", rs_path(kube_namespace), body=rayservice("w")
    )
    assert status == 201
    assert warnings == ['299 - "serve config changed"', '299 - "second \\"quoted\\" warning"']


async def test_mutating_patches_are_applied_then_pruned_against_the_schema(
    custom: client.CustomObjectsApi, register: Registrar, kube_namespace: str
) -> None:
    ops = [
        {"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}},
        {"op": "add", "path": "/spec/notInSchema", "value": 1},
        {"op": "add", "path": "/spec/upgradeStrategy", "value": {}},
    ]
    await register("/patch?ops=" + json.dumps(ops), mutating=True)
    created = await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("m")
    )
    assert created["metadata"]["labels"] == {"mutated": "yes"}
    assert "notInSchema" not in created["spec"]
    assert created["spec"]["upgradeStrategy"] == {"type": "NewCluster"}


async def test_mutating_webhooks_run_serially_by_configuration_name_and_validating_ones_see_the_result(
    custom: client.CustomObjectsApi, hooks: HookServer, register: Registrar, kube_namespace: str
) -> None:
    await register("/order?step=2", mutating=True, name=f"b-{kube_namespace}")
    await register("/order?step=1", mutating=True, name=f"a-{kube_namespace}")
    await register("/allow/after-order")
    created = await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("o")
    )
    assert created["metadata"]["annotations"]["trail"] == "12"
    (request,) = hooks.seen("/allow/after-order")
    assert request["object"]["metadata"]["annotations"]["trail"] == "12"


async def test_names_are_generated_after_mutating_and_before_validating_admission(
    core: client.CoreV1Api, hooks: HookServer, register: Registrar, kube_namespace: str
) -> None:
    await register("/allow/mutating-name", mutating=True)
    await register("/allow/validating-name")
    created = await core.create_namespaced_config_map(
        kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="g-"))
    )
    (mutating,) = hooks.seen("/allow/mutating-name")
    (validating,) = hooks.seen("/allow/validating-name")
    assert "name" not in mutating
    assert "name" not in mutating["object"]["metadata"]
    assert validating["name"] == created.metadata.name
    assert validating["object"]["metadata"]["uid"] == created.metadata.uid


async def test_an_unreachable_webhook_fails_closed_with_kube_apiserver_wording(
    localkube: LocalKube,
    register: Registrar,
    kube_namespace: str,
    hooks: HookServer,
    ray_crds: list[str],
) -> None:
    name = await register(
        "/allow", clientConfig={"url": "https://127.0.0.1:1/nothing", "caBundle": hooks.ca_bundle}
    )
    status, body, _ = await raw(
        localkube.url, "POST", rs_path(kube_namespace), body=rayservice("u")
    )
    assert status == 500
    assert body["reason"] == "InternalError"
    assert body["message"] == (
        f'Internal error occurred: failed calling webhook "{name}": failed to call webhook: '
        'Post "https://127.0.0.1:1/nothing?timeout=10s": dial tcp 127.0.0.1:1: connect: connection refused'
    )


async def test_an_unreachable_webhook_is_skipped_under_failure_policy_ignore(
    custom: client.CustomObjectsApi, register: Registrar, hooks: HookServer, kube_namespace: str
) -> None:
    await register(
        "/allow",
        failurePolicy="Ignore",
        clientConfig={"url": "https://127.0.0.1:1/nothing", "caBundle": hooks.ca_bundle},
    )
    created = await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("i")
    )
    assert created["metadata"]["name"] == "i"


async def test_a_webhook_slower_than_its_timeout_fails_with_context_deadline_exceeded(
    localkube: LocalKube, register: Registrar, kube_namespace: str, ray_crds: list[str]
) -> None:
    name = await register("/slow?seconds=3", timeoutSeconds=1)
    status, body, _ = await raw(
        localkube.url, "POST", rs_path(kube_namespace), body=rayservice("s")
    )
    assert status == 500
    assert body["message"].startswith(
        f'Internal error occurred: failed calling webhook "{name}": failed to call'
    )
    assert body["message"].endswith('?seconds=3&timeout=1s": context deadline exceeded')


async def test_a_webhook_with_an_untrusted_certificate_fails(
    localkube: LocalKube,
    register: Registrar,
    kube_namespace: str,
    hooks: HookServer,
    ray_crds: list[str],
) -> None:
    other = base64.b64encode(trustme.CA().cert_pem.bytes()).decode()
    await register("/allow", clientConfig={"url": hooks.url("/allow"), "caBundle": other})
    status, body, _ = await raw(
        localkube.url, "POST", rs_path(kube_namespace), body=rayservice("t")
    )
    assert status == 500
    assert "tls: failed to verify certificate: x509:" in body["message"]


async def test_a_response_with_the_wrong_uid_is_a_webhook_failure(
    localkube: LocalKube, register: Registrar, kube_namespace: str, ray_crds: list[str]
) -> None:
    await register("/bad-uid")
    status, body, _ = await raw(
        localkube.url, "POST", rs_path(kube_namespace), body=rayservice("b")
    )
    assert status == 500
    assert 'expected response.uid="' in body["message"]


async def test_dry_run_runs_admission_with_dry_run_true_persists_nothing_and_emits_nothing(
    localkube: LocalKube,
    custom: client.CustomObjectsApi,
    hooks: HookServer,
    register: Registrar,
    kube_namespace: str,
) -> None:
    await register("/allow/dry", mutating=True)
    listed = await custom.list_namespaced_custom_object(*RS, kube_namespace, "rayservices")
    before = localkube.revision
    created = await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("dry"), dry_run="All"
    )
    assert created["metadata"]["name"] == "dry"
    (request,) = hooks.seen("/allow/dry")
    assert request["dryRun"] is True
    assert request["options"]["dryRun"] == ["All"]
    assert localkube.revision == before
    await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("real")
    )
    async with watch.Watch() as stream:
        stream.stream(
            custom.list_namespaced_custom_object,
            *RS,
            kube_namespace,
            "rayservices",
            resource_version=listed["metadata"]["resourceVersion"],
            timeout_seconds=5,
        )
        async for event in stream:
            assert event["raw_object"]["metadata"]["name"] == "real"
            break


async def test_a_webhook_with_side_effects_refuses_dry_run_requests(
    localkube: LocalKube, hooks: HookServer, kube_namespace: str, ray_crds: list[str]
) -> None:
    # v1 validation refuses sideEffects Some/Unknown, so store a legacy configuration directly.
    legacy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": f"legacy-{kube_namespace}", "uid": "legacy"},
        "webhooks": [
            {
                "name": "legacy.example.com",
                "clientConfig": {"url": hooks.url("/allow"), "caBundle": hooks.ca_bundle},
                "rules": [
                    {
                        "apiGroups": ["ray.io"],
                        "apiVersions": ["*"],
                        "operations": ["*"],
                        "resources": ["*"],
                    }
                ],
                "sideEffects": "Some",
                "admissionReviewVersions": ["v1"],
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": kube_namespace}
                },
            }
        ],
    }
    key = ("admissionregistration.k8s.io", "validatingwebhookconfigurations")
    await localkube.kube.store.create(key, legacy)
    try:
        status, body, _ = await raw(
            localkube.url, "POST", rs_path(kube_namespace) + "?dryRun=All", body=rayservice("x")
        )
        assert status == 400
        assert body["message"] == 'admission webhook "legacy.example.com" does not support dry run'
    finally:
        await localkube.kube.store.delete(key, "", f"legacy-{kube_namespace}", expected_rv=None)


async def test_status_updates_match_only_rules_naming_the_status_subresource(
    custom: client.CustomObjectsApi, hooks: HookServer, register: Registrar, kube_namespace: str
) -> None:
    await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("st")
    )
    rule = {"apiGroups": ["ray.io"], "apiVersions": ["v1"], "operations": ["UPDATE"]}
    await register("/allow/main", rules=[{**rule, "resources": ["rayservices"]}])
    await register("/allow/star", rules=[{**rule, "resources": ["*"]}])
    await register("/allow/status", rules=[{**rule, "resources": ["rayservices/status"]}])
    await register("/allow/all", rules=[{**rule, "resources": ["*/*"]}])
    await merge_patch(
        custom.patch_namespaced_custom_object_status,
        *RS,
        kube_namespace,
        "rayservices",
        "st",
        {"status": {"serviceStatus": "Running"}},
    )
    assert hooks.seen("/allow/main") == []
    assert hooks.seen("/allow/star") == []
    (status_request,) = hooks.seen("/allow/status")
    assert status_request["subResource"] == "status"
    assert status_request["requestSubResource"] == "status"
    assert len(hooks.seen("/allow/all")) == 1


async def test_object_and_namespace_selectors_limit_which_requests_a_webhook_sees(
    core: client.CoreV1Api, hooks: HookServer, register: Registrar, kube_namespace: str
) -> None:
    await register("/allow/labelled", objectSelector={"matchLabels": {"watched": "yes"}})
    await register(
        "/allow/other-ns",
        namespaceSelector={"matchLabels": {"kubernetes.io/metadata.name": "elsewhere"}},
    )
    for name, labels in (("plain", None), ("watched", {"watched": "yes"})):
        await core.create_namespaced_config_map(
            kube_namespace,
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels)),
        )
    assert [r["name"] for r in hooks.seen("/allow/labelled")] == ["watched"]
    assert hooks.seen("/allow/other-ns") == []


async def test_equivalent_match_policy_calls_a_v1_webhook_for_a_v1alpha1_request(
    custom: client.CustomObjectsApi, hooks: HookServer, register: Registrar, kube_namespace: str
) -> None:
    await register("/allow/equivalent")
    body = rayservice("eq")
    body["apiVersion"] = "ray.io/v1alpha1"
    await custom.create_namespaced_custom_object(
        "ray.io", "v1alpha1", kube_namespace, "rayservices", body
    )
    (request,) = hooks.seen("/allow/equivalent")
    assert request["kind"]["version"] == "v1"
    assert request["requestKind"]["version"] == "v1alpha1"
    assert request["object"]["apiVersion"] == "ray.io/v1"


async def test_a_service_reference_is_resolved_through_the_services_endpoints(
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    hooks: HookServer,
    register: Registrar,
    kube_namespace: str,
) -> None:
    await keep_existing(
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=SERVICE_NAMESPACE))
        )
    )
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name="hook"),
        spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=443, target_port=hooks.port)]),
    )
    endpoints = client.V1Endpoints(
        metadata=client.V1ObjectMeta(name="hook"),
        subsets=[
            client.V1EndpointSubset(
                addresses=[client.V1EndpointAddress(ip="127.0.0.1")],
                ports=[client.CoreV1EndpointPort(port=hooks.port)],
            )
        ],
    )
    await keep_existing(core.create_namespaced_service(SERVICE_NAMESPACE, service))
    await keep_existing(core.create_namespaced_endpoints(SERVICE_NAMESPACE, endpoints))
    await register(
        "/unused",
        clientConfig={
            "service": {"namespace": SERVICE_NAMESPACE, "name": "hook", "path": "/allow/service"},
            "caBundle": hooks.ca_bundle,
        },
    )
    await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("svc")
    )
    assert len(hooks.seen("/allow/service")) == 1


async def test_a_webhook_answering_http_500_fails_the_request(
    localkube: LocalKube, register: Registrar, kube_namespace: str, ray_crds: list[str]
) -> None:
    await register("/http500")
    status, body, _ = await raw(
        localkube.url, "POST", rs_path(kube_namespace), body=rayservice("h")
    )
    assert status == 500
    assert body["reason"] == "InternalError"


async def test_kubernetes_asyncio_sees_a_denial_as_an_api_exception(
    custom: client.CustomObjectsApi, register: Registrar, kube_namespace: str
) -> None:
    name = await register("/deny?msg=nope")
    with pytest.raises(client.ApiException) as caught:
        await custom.create_namespaced_custom_object(
            *RS, kube_namespace, "rayservices", rayservice("k")
        )
    assert caught.value.status == 403
    assert f'admission webhook \\"{name}\\" denied the request: nope' in body_of(caught.value)


async def test_if_needed_reinvocation_calls_a_webhook_again_after_a_later_one_changed_the_object(
    custom: client.CustomObjectsApi, hooks: HookServer, register: Registrar, kube_namespace: str
) -> None:
    await register(
        "/order?step=1", mutating=True, name=f"a-{kube_namespace}", reinvocationPolicy="IfNeeded"
    )
    await register("/order?step=2", mutating=True, name=f"b-{kube_namespace}")
    created = await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("re")
    )
    assert created["metadata"]["annotations"]["trail"] == "121"


async def test_a_service_resolver_hook_maps_service_references_to_addresses(
    fresh_kube: Callable[..., LocalKube], hooks: HookServer
) -> None:
    asked: list[ServiceRef] = []

    async def resolve(ref: ServiceRef) -> str | None:
        asked.append(ref)
        return f"127.0.0.1:{hooks.port}"

    kube = fresh_kube(service_resolver=resolve)
    await kube.start()
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "resolved"},
        "webhooks": [
            {
                "name": "resolved.example.com",
                "clientConfig": {
                    "service": {
                        "namespace": SERVICE_NAMESPACE,
                        "name": "hook",
                        "path": "/allow/resolved",
                    },
                    "caBundle": hooks.ca_bundle,
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["configmaps"],
                    }
                ],
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
            }
        ],
    }
    path = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
    status, _, _ = await raw(kube.url, "POST", path, body=config)
    assert status == 201
    status, _, _ = await raw(
        kube.url, "POST", "/api/v1/namespaces/default/configmaps", body={"metadata": {"name": "c"}}
    )
    assert status == 201
    assert asked == [
        ServiceRef(namespace=SERVICE_NAMESPACE, name="hook", port=443, path="/allow/resolved")
    ]
    assert len(hooks.seen("/allow/resolved")) == 1


async def test_mutating_webhooks_see_the_object_as_sent_before_the_server_prepares_it(
    custom: client.CustomObjectsApi, hooks: HookServer, register: Registrar, kube_namespace: str
) -> None:
    await register("/allow/as-sent", mutating=True)
    await register("/allow/prepared")
    body = rayservice("sent")
    body["status"] = {"serviceStatus": "FromClient"}
    created = await custom.create_namespaced_custom_object(*RS, kube_namespace, "rayservices", body)
    (mutating,) = hooks.seen("/allow/as-sent")
    (validating,) = hooks.seen("/allow/prepared")
    assert mutating["object"]["status"] == {"serviceStatus": "FromClient"}
    assert "uid" not in mutating["object"]["metadata"]
    assert "status" not in validating["object"]
    assert validating["object"]["metadata"]["generation"] == 1
    assert "status" not in created
