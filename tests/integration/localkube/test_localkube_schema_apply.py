"""CRD schemas (pruning, defaults, validation, fieldValidation), served versions, server-side
apply and managedFields, SQLite persistence across restarts, fault injection, discovery and
OpenAPI, and Table output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes_asyncio import client

from localkube import LocalKube, Settings
from tests.integration.localkube.conftest import crd_documents
from tests.integration.localkube.helpers import body_of, merge_patch, raw, rayservice

pytestmark = pytest.mark.asyncio(loop_scope="session")

RS = ("ray.io", "v1")
APPLY = "application/apply-patch+yaml"


async def test_unknown_fields_are_pruned_and_defaults_filled_on_create(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    body = rayservice(
        "pr",
        upgradeStrategy={},
        unknown={"x": 1},
        rayClusterConfig={
            "headGroupSpec": {"anything": {"kept": True}, "template": {"spec": {"free": "form"}}},
            "workerGroupSpecs": [{"groupName": "g", "bogus": 1, "port": "http"}],
        },
    )
    created = await custom.create_namespaced_custom_object(*RS, kube_namespace, "rayservices", body)
    spec = created["spec"]
    assert "unknown" not in spec
    assert spec["upgradeStrategy"] == {"type": "NewCluster"}
    assert spec["rayClusterConfig"]["enableInTreeAutoscaling"] is False
    assert spec["rayClusterConfig"]["headGroupSpec"]["anything"] == {"kept": True}
    assert spec["rayClusterConfig"]["headGroupSpec"]["template"]["spec"] == {"free": "form"}
    worker = spec["rayClusterConfig"]["workerGroupSpecs"][0]
    assert worker == {
        "groupName": "g",
        "port": "http",
        "replicas": 1,
        "minReplicas": 0,
        "maxReplicas": 2147483647,
    }


async def test_unknown_fields_are_reported_as_warnings_by_default_and_refused_when_strict(
    localkube: LocalKube, kube_namespace: str, ray_crds: list[str]
) -> None:
    path = f"/apis/ray.io/v1/namespaces/{kube_namespace}/rayservices"
    status, _, warnings = await raw(localkube.url, "POST", path, body=rayservice("warn", unknown=1))
    assert status == 201
    assert warnings == ['299 - "unknown field \\"spec.unknown\\""']
    status, body, _ = await raw(
        localkube.url,
        "POST",
        path + "?fieldValidation=Strict",
        body=rayservice("strict", unknown=1),
    )
    assert status == 400
    assert body["message"] == (
        'RayService in version "v1" cannot be handled as a RayService: strict decoding error: '
        'unknown field "spec.unknown"'
    )


async def test_schema_violations_are_422_with_every_field_path(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    body = rayservice(
        "bad",
        serviceUnhealthySecondThreshold="soon",
        upgradeStrategy={"type": "Sideways"},
        rayClusterConfig={"workerGroupSpecs": [{"replicas": 1}]},
    )
    with pytest.raises(client.ApiException) as caught:
        await custom.create_namespaced_custom_object(*RS, kube_namespace, "rayservices", body)
    assert caught.value.status == 422
    status = json.loads(body_of(caught.value))
    assert status["reason"] == "Invalid"
    fields = {c["field"] for c in status["details"]["causes"]}
    assert fields == {
        "spec.serviceUnhealthySecondThreshold",
        "spec.upgradeStrategy.type",
        "spec.rayClusterConfig.workerGroupSpecs[0].groupName",
    }
    assert status["message"].startswith('RayService.ray.io "bad" is invalid: [')
    assert (
        'spec.serviceUnhealthySecondThreshold: Invalid value: "string": '
        'spec.serviceUnhealthySecondThreshold in body must be of type integer: "string"'
    ) in status["message"]
    assert (
        'spec.upgradeStrategy.type: Unsupported value: "Sideways": supported values: '
        '"NewCluster", "NewClusterWithIncrementalUpgrade", "None"'
    ) in status["message"]


async def test_an_invalid_name_is_422(custom: client.CustomObjectsApi, kube_namespace: str) -> None:
    with pytest.raises(client.ApiException) as caught:
        await custom.create_namespaced_custom_object(
            *RS, kube_namespace, "rayservices", rayservice("Bad_Name")
        )
    assert caught.value.status == 422
    assert "a lowercase RFC 1123 subdomain must consist of" in body_of(caught.value)


async def test_objects_are_served_in_every_served_version(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("both")
    )
    old = await custom.get_namespaced_custom_object(
        "ray.io", "v1alpha1", kube_namespace, "rayservices", "both"
    )
    assert old["apiVersion"] == "ray.io/v1alpha1"
    listed = await custom.list_namespaced_custom_object(
        "ray.io", "v1alpha1", kube_namespace, "rayservices"
    )
    assert listed["apiVersion"] == "ray.io/v1alpha1"
    assert listed["kind"] == "RayServiceList"
    assert [i["apiVersion"] for i in listed["items"]] == ["ray.io/v1alpha1"]


async def test_server_side_apply_creates_with_201_then_merges_and_tracks_managed_fields(
    localkube: LocalKube, custom: client.CustomObjectsApi, kube_namespace: str, ray_crds: list[str]
) -> None:
    path = f"/apis/ray.io/v1/namespaces/{kube_namespace}/rayservices/ssa"
    config = rayservice("ssa", serviceUnhealthySecondThreshold=5)
    status, created, _ = await raw(
        localkube.url,
        "PATCH",
        path + "?fieldManager=alice",
        data=yaml.safe_dump(config).encode(),
        content_type=APPLY,
    )
    assert status == 201
    assert created["metadata"]["managedFields"][0]["manager"] == "alice"
    assert created["metadata"]["managedFields"][0]["operation"] == "Apply"
    status, body, _ = await raw(
        localkube.url, "PATCH", path, data=yaml.safe_dump(config).encode(), content_type=APPLY
    )
    assert status == 422
    assert "fieldManager: Required value: is required for apply patch" in body["message"]
    bob = rayservice("ssa", serviceUnhealthySecondThreshold=9)
    del bob["spec"]["serveConfigV2"]
    status, body, _ = await raw(
        localkube.url,
        "PATCH",
        path + "?fieldManager=bob",
        data=yaml.safe_dump(bob).encode(),
        content_type=APPLY,
    )
    assert status == 409
    assert body["message"] == (
        'Apply failed with 1 conflict: conflict with "alice" using ray.io/v1: .spec.serviceUnhealthySecondThreshold'
    )
    status, forced, _ = await raw(
        localkube.url,
        "PATCH",
        path + "?fieldManager=bob&force=true",
        data=yaml.safe_dump(bob).encode(),
        content_type=APPLY,
    )
    assert status == 200
    assert forced["spec"]["serviceUnhealthySecondThreshold"] == 9
    alice_drops = rayservice("ssa")
    del alice_drops["spec"]["serveConfigV2"]
    status, dropped, _ = await raw(
        localkube.url,
        "PATCH",
        path + "?fieldManager=alice",
        data=yaml.safe_dump(alice_drops).encode(),
        content_type=APPLY,
    )
    assert status == 200
    assert "serveConfigV2" not in dropped["spec"]
    assert dropped["spec"]["serviceUnhealthySecondThreshold"] == 9


async def test_an_apply_that_creates_returns_none_through_kubernetes_asyncio(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    created = await custom.patch_namespaced_custom_object(
        *RS,
        kube_namespace,
        "rayservices",
        "ssa2",
        rayservice("ssa2"),
        field_manager="me",
        _content_type=APPLY,  # type: ignore[call-arg]
    )
    assert created is None
    stored = await custom.get_namespaced_custom_object(*RS, kube_namespace, "rayservices", "ssa2")
    assert stored["metadata"]["managedFields"][0]["manager"] == "me"


async def test_updates_record_the_manager_of_the_fields_they_change(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("mf"), field_manager="creator"
    )
    patched = await merge_patch(
        custom.patch_namespaced_custom_object,
        *RS,
        kube_namespace,
        "rayservices",
        "mf",
        {"metadata": {"labels": {"l": "1"}}},
        field_manager="labeller",
    )
    managers = {e["manager"]: e["fieldsV1"] for e in patched["metadata"]["managedFields"]}
    assert managers["labeller"] == {"f:metadata": {"f:labels": {"f:l": {}}}}
    assert "f:spec" in managers["creator"]


async def test_state_survives_a_restart_with_sqlite_and_resource_versions_continue(
    tmp_path: Path, fresh_kube: Callable[..., LocalKube]
) -> None:
    state = tmp_path / "state.db"
    first = fresh_kube(settings=Settings(state_file=state, garbage_collection=False))
    await first.start()
    async with client.ApiClient(client.Configuration(host=first.url)) as api:
        ext = client.ApiextensionsV1Api(api)
        for doc in crd_documents():
            await ext.create_custom_resource_definition(cast(Any, doc))
        custom = client.CustomObjectsApi(api)
        created = await custom.create_namespaced_custom_object(
            *RS, "default", "rayservices", rayservice("kept")
        )
        await client.CoreV1Api(api).create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="gone"))
        )
        await client.CoreV1Api(api).delete_namespaced_config_map("gone", "default")
    revision = first.revision
    await first.stop()
    second = fresh_kube(settings=Settings(state_file=state, garbage_collection=False))
    await second.start()
    assert second.revision == revision
    async with client.ApiClient(client.Configuration(host=second.url)) as api:
        custom = client.CustomObjectsApi(api)
        kept = await custom.get_namespaced_custom_object(*RS, "default", "rayservices", "kept")
        assert kept["metadata"]["uid"] == created["metadata"]["uid"]
        listed = await client.CoreV1Api(api).list_namespaced_config_map("default")
        assert listed.items == []
        updated = await merge_patch(
            custom.patch_namespaced_custom_object,
            *RS,
            "default",
            "rayservices",
            "kept",
            {"metadata": {"labels": {"a": "b"}}},
        )
        assert int(updated["metadata"]["resourceVersion"]) == revision + 1


async def test_injected_faults_answer_chosen_requests_a_limited_number_of_times(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    await core.create_namespaced_config_map(
        kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="f"))
    )
    localkube.faults.fail(409, verb="update", resource="configmaps", name="f", times=1)
    localkube.faults.fail(500, verb="get", resource="configmaps", name="f", times=2)
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="f"), data={"a": "b"})
    with pytest.raises(client.ApiException) as caught:
        await core.replace_namespaced_config_map("f", kube_namespace, body)
    assert caught.value.status == 409
    assert json.loads(body_of(caught.value))["reason"] == "Conflict"
    await core.replace_namespaced_config_map("f", kube_namespace, body)
    for _ in range(2):
        with pytest.raises(client.ApiException) as caught:
            await core.read_namespaced_config_map("f", kube_namespace)
        assert caught.value.status == 500
    read = await core.read_namespaced_config_map("f", kube_namespace)
    assert read.data == {"a": "b"}


async def test_injected_delays_and_timeouts_hold_the_request(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    localkube.faults.delay(
        0.3, verb="list", resource="configmaps", namespace=kube_namespace, times=1
    )
    loop = asyncio.get_running_loop()
    start = loop.time()
    await core.list_namespaced_config_map(kube_namespace)
    assert loop.time() - start >= 0.3
    localkube.faults.timeout(0.1, verb="create", resource="configmaps")
    with pytest.raises(client.ApiException) as caught:
        await core.create_namespaced_config_map(
            kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="late"))
        )
    assert caught.value.status == 504
    localkube.faults.timeout(5, verb="get", resource="configmaps", name="slow")
    with pytest.raises(asyncio.TimeoutError):
        await core.read_namespaced_config_map("slow", kube_namespace, _request_timeout=0.2)


async def test_discovery_documents_describe_the_served_resources(
    localkube: LocalKube, ray_crds: list[str]
) -> None:
    status, version, _ = await raw(localkube.url, "GET", "/version")
    assert (status, version["major"], version["minor"]) == (200, "1", "32")
    _, api, _ = await raw(localkube.url, "GET", "/api")
    assert api["kind"] == "APIVersions"
    assert api["versions"] == ["v1"]
    _, groups, _ = await raw(localkube.url, "GET", "/apis")
    ray = next(g for g in groups["groups"] if g["name"] == "ray.io")
    assert ray["preferredVersion"]["version"] == "v1"
    assert [v["version"] for v in ray["versions"]] == ["v1", "v1alpha1"]
    _, resources, _ = await raw(localkube.url, "GET", "/apis/ray.io/v1")
    by_name = {r["name"]: r for r in resources["resources"]}
    assert by_name["rayservices"]["shortNames"] == ["rs"]
    assert by_name["rayservices"]["namespaced"] is True
    assert by_name["rayservices"]["kind"] == "RayService"
    assert by_name["rayservices/status"]["verbs"] == ["get", "patch", "update"]
    _, core_resources, _ = await raw(localkube.url, "GET", "/api/v1")
    assert {"pods", "pods/log", "pods/status", "namespaces", "leases"} - {
        r["name"] for r in core_resources["resources"]
    } == {"leases"}


async def test_openapi_v3_carries_what_kubectl_checks_for_server_side_validation(
    localkube: LocalKube, ray_crds: list[str]
) -> None:
    _, root, _ = await raw(localkube.url, "GET", "/openapi/v3")
    url = root["paths"]["apis/ray.io/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/ray.io/v1?hash=")
    _, doc, _ = await raw(localkube.url, "GET", url)
    patch = doc["paths"]["/apis/ray.io/v1/namespaces/{namespace}/rayservices/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "ray.io",
        "version": "v1",
        "kind": "RayService",
    }
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}


async def test_tables_show_the_crd_printer_columns(
    localkube: LocalKube, custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("tab")
    )
    await merge_patch(
        custom.patch_namespaced_custom_object_status,
        *RS,
        kube_namespace,
        "rayservices",
        "tab",
        {
            "status": {
                "serviceStatus": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        },
    )
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    _, table, _ = await raw(
        localkube.url,
        "GET",
        f"/apis/ray.io/v1/namespaces/{kube_namespace}/rayservices",
        headers={"Accept": accept},
    )
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Service Status",
        "Ready",
        "Age",
    ]
    (row,) = table["rows"]
    assert row["cells"][:3] == ["tab", "Running", "True"]
    assert row["object"]["kind"] == "PartialObjectMetadata"


async def test_oversized_bodies_are_refused_with_413(fresh_kube: Callable[..., LocalKube]) -> None:
    kube = fresh_kube(settings=Settings(max_body_bytes=2048))
    await kube.start()
    big = {"metadata": {"name": "big"}, "data": {"x": "y" * 4096}}
    status, body, _ = await raw(kube.url, "POST", "/api/v1/namespaces/default/configmaps", body=big)
    assert status == 413
    assert body["code"] == 413
    small = {"metadata": {"name": "small"}, "data": {"x": "y"}}
    status, _, _ = await raw(kube.url, "POST", "/api/v1/namespaces/default/configmaps", body=small)
    assert status == 201


async def test_server_side_apply_to_the_status_subresource_changes_only_status(
    localkube: LocalKube, custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("sst")
    )
    config = {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "sst"},
        "spec": {"serviceUnhealthySecondThreshold": 99},
        "status": {"serviceStatus": "Running"},
    }
    status, body, _ = await raw(
        localkube.url,
        "PATCH",
        f"/apis/ray.io/v1/namespaces/{kube_namespace}/rayservices/sst/status?fieldManager=reconciler",
        data=yaml.safe_dump(config).encode(),
        content_type=APPLY,
    )
    assert status == 200
    assert body["status"] == {"serviceStatus": "Running"}
    assert "serviceUnhealthySecondThreshold" not in body["spec"]
    assert body["metadata"]["generation"] == 1
    entry = next(e for e in body["metadata"]["managedFields"] if e["manager"] == "reconciler")
    assert entry["operation"] == "Apply"
