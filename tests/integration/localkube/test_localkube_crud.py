"""CRUD through kubernetes-asyncio: status codes, Status bodies, resourceVersion, generation,
the status subresource, patch types, dryRun and names."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client

from localkube import LocalKube
from tests.integration.localkube.helpers import body_of, merge_patch, raw, rayservice

pytestmark = pytest.mark.asyncio(loop_scope="session")

RS = ("ray.io", "v1")


async def create_rs(
    custom: client.CustomObjectsApi, ns: str, name: str, **spec: Any
) -> dict[str, Any]:
    created: dict[str, Any] = await custom.create_namespaced_custom_object(
        *RS, ns, "rayservices", rayservice(name, **spec)
    )
    return created


async def test_create_answers_201_with_server_fields_and_a_duplicate_answers_409_already_exists(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    created = await create_rs(custom, kube_namespace, "a")
    meta = created["metadata"]
    assert meta["generation"] == 1
    assert meta["uid"]
    assert meta["resourceVersion"]
    assert meta["creationTimestamp"].endswith("Z")
    assert len(meta["creationTimestamp"]) == 20
    with pytest.raises(client.ApiException) as caught:
        await create_rs(custom, kube_namespace, "a")
    assert caught.value.status == 409
    import json

    status = json.loads(body_of(caught.value))
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'rayservices.ray.io "a" already exists'
    assert status["details"] == {"name": "a", "group": "ray.io", "kind": "rayservices"}


async def test_get_of_a_missing_object_is_a_404_status_naming_the_resource(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    with pytest.raises(client.ApiException) as caught:
        await custom.get_namespaced_custom_object(*RS, kube_namespace, "rayservices", "nope")
    assert caught.value.status == 404
    assert '"message":"rayservices.ray.io \\"nope\\" not found"' in body_of(caught.value)
    assert '"reason":"NotFound"' in body_of(caught.value)


async def test_every_write_takes_the_next_global_resource_version(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    first = await create_rs(custom, kube_namespace, "rv")
    cm = await core.create_namespaced_config_map(
        kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="rv"))
    )
    assert int(cm.metadata.resource_version) > int(first["metadata"]["resourceVersion"])
    listed = await core.list_namespaced_config_map(kube_namespace)
    assert int(listed.metadata.resource_version) >= int(cm.metadata.resource_version)
    assert listed.kind == "ConfigMapList"
    assert listed.api_version == "v1"


async def test_a_stale_update_is_refused_with_409_conflict(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    created = await create_rs(custom, kube_namespace, "stale")
    updated = dict(created, spec={**created["spec"], "serviceUnhealthySecondThreshold": 5})
    await custom.replace_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", "stale", updated
    )
    with pytest.raises(client.ApiException) as caught:
        await custom.replace_namespaced_custom_object(
            *RS, kube_namespace, "rayservices", "stale", updated
        )
    assert caught.value.status == 409
    assert (
        'Operation cannot be fulfilled on rayservices.ray.io \\"stale\\": the object has been '
        "modified; please apply your changes to the latest version and try again"
    ) in body_of(caught.value)


async def test_an_update_of_a_custom_resource_without_resource_version_is_invalid(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    created = await create_rs(custom, kube_namespace, "norv")
    del created["metadata"]["resourceVersion"]
    with pytest.raises(client.ApiException) as caught:
        await custom.replace_namespaced_custom_object(
            *RS, kube_namespace, "rayservices", "norv", created
        )
    assert caught.value.status == 422
    assert (
        "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
        in body_of(caught.value)
    )


async def test_a_no_op_update_keeps_the_resource_version(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    created = await create_rs(custom, kube_namespace, "noop")
    same = await custom.replace_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", "noop", created
    )
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    patched = await merge_patch(
        custom.patch_namespaced_custom_object,
        *RS,
        kube_namespace,
        "rayservices",
        "noop",
        {"spec": {"serveConfigV2": "applications: []\n"}},
    )
    assert patched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_generation_moves_only_with_spec_changes(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    await create_rs(custom, kube_namespace, "gen")

    async def patch(body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await merge_patch(
            custom.patch_namespaced_custom_object, *RS, kube_namespace, "rayservices", "gen", body
        )
        return result

    labelled = await patch({"metadata": {"labels": {"a": "b"}, "annotations": {"c": "d"}}})
    assert labelled["metadata"]["generation"] == 1
    status = await merge_patch(
        custom.patch_namespaced_custom_object_status,
        *RS,
        kube_namespace,
        "rayservices",
        "gen",
        {"status": {"serviceStatus": "Running"}},
    )
    assert status["metadata"]["generation"] == 1
    changed = await patch({"spec": {"serviceUnhealthySecondThreshold": 9}})
    assert changed["metadata"]["generation"] == 2


async def test_the_status_subresource_splits_status_from_the_rest(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    body = rayservice("split")
    body["status"] = {"serviceStatus": "Forged"}
    created = await custom.create_namespaced_custom_object(*RS, kube_namespace, "rayservices", body)
    assert "status" not in created
    via_main = await merge_patch(
        custom.patch_namespaced_custom_object,
        *RS,
        kube_namespace,
        "rayservices",
        "split",
        {"status": {"serviceStatus": "Ignored"}},
    )
    assert "status" not in via_main
    via_status = await merge_patch(
        custom.patch_namespaced_custom_object_status,
        *RS,
        kube_namespace,
        "rayservices",
        "split",
        {"status": {"serviceStatus": "Running"}, "spec": {"serviceUnhealthySecondThreshold": 7}},
    )
    assert via_status["status"] == {"serviceStatus": "Running"}
    assert "serviceUnhealthySecondThreshold" not in via_status["spec"]
    current = await custom.get_namespaced_custom_object_status(
        *RS, kube_namespace, "rayservices", "split"
    )
    del current["status"]
    cleared = await custom.replace_namespaced_custom_object_status(
        *RS, kube_namespace, "rayservices", "split", current
    )
    assert "status" not in cleared


async def test_a_dict_patch_sent_as_json_patch_is_a_400_as_on_a_real_server(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    await create_rs(custom, kube_namespace, "jp")
    with pytest.raises(client.ApiException) as caught:
        await custom.patch_namespaced_custom_object(
            *RS, kube_namespace, "rayservices", "jp", {"spec": {}}
        )
    assert caught.value.status == 400
    assert "cannot unmarshal object into Go value of type jsonpatch.Patch" in body_of(caught.value)


async def test_json_patch_applies_and_a_failed_test_operation_is_422(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    await create_rs(custom, kube_namespace, "jp2")
    ops = [{"op": "add", "path": "/spec/serviceUnhealthySecondThreshold", "value": 3}]
    patched = await custom.patch_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", "jp2", ops
    )
    assert patched["spec"]["serviceUnhealthySecondThreshold"] == 3
    with pytest.raises(client.ApiException) as caught:
        await custom.patch_namespaced_custom_object(
            *RS,
            kube_namespace,
            "rayservices",
            "jp2",
            [{"op": "test", "path": "/spec/serveConfigV2", "value": "x"}],
        )
    assert caught.value.status == 422


async def test_strategic_merge_patch_is_415_on_custom_resources_and_merges_lists_on_pods(
    localkube: LocalKube,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    kube_namespace: str,
) -> None:
    await create_rs(custom, kube_namespace, "smp")
    status, body, _ = await raw(
        localkube.url,
        "PATCH",
        f"/apis/ray.io/v1/namespaces/{kube_namespace}/rayservices/smp",
        body={"spec": {}},
        content_type="application/strategic-merge-patch+json",
    )
    assert status == 415
    assert body["reason"] == "UnsupportedMediaType"
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="p"),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(name="a", image="img:1"),
                client.V1Container(name="b", image="img:1"),
            ]
        ),
    )
    await core.create_namespaced_pod(kube_namespace, pod)
    status, body, _ = await raw(
        localkube.url,
        "PATCH",
        f"/api/v1/namespaces/{kube_namespace}/pods/p",
        body={"spec": {"containers": [{"name": "b", "image": "img:2"}]}},
        content_type="application/strategic-merge-patch+json",
    )
    assert status == 200
    assert [(c["name"], c["image"]) for c in body["spec"]["containers"]] == [
        ("a", "img:1"),
        ("b", "img:2"),
    ]


async def test_an_unknown_patch_type_is_415(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    await core.create_namespaced_config_map(
        kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"))
    )
    status, body, _ = await raw(
        localkube.url,
        "PATCH",
        f"/api/v1/namespaces/{kube_namespace}/configmaps/c",
        body={},
        content_type="text/plain",
    )
    assert status == 415
    assert body["code"] == 415


async def test_a_resource_version_inside_a_patch_is_a_precondition(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    created = await create_rs(custom, kube_namespace, "pre")
    await merge_patch(
        custom.patch_namespaced_custom_object,
        *RS,
        kube_namespace,
        "rayservices",
        "pre",
        {"metadata": {"labels": {"x": "1"}}},
    )
    with pytest.raises(client.ApiException) as caught:
        await merge_patch(
            custom.patch_namespaced_custom_object,
            *RS,
            kube_namespace,
            "rayservices",
            "pre",
            {
                "metadata": {
                    "resourceVersion": created["metadata"]["resourceVersion"],
                    "labels": {"x": "2"},
                }
            },
        )
    assert caught.value.status == 409


async def test_generate_name_appends_five_characters(
    core: client.CoreV1Api, kube_namespace: str
) -> None:
    created = await core.create_namespaced_config_map(
        kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-"))
    )
    assert created.metadata.name.startswith("gen-")
    assert len(created.metadata.name) == 9


async def test_a_name_is_required_without_generate_name(
    core: client.CoreV1Api, kube_namespace: str
) -> None:
    with pytest.raises(client.ApiException) as caught:
        await core.create_namespaced_config_map(
            kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta())
        )
    assert caught.value.status == 422
    assert "metadata.name: Required value: name or generateName is required" in body_of(
        caught.value
    )


async def test_dry_run_answers_what_would_be_stored_and_stores_nothing(
    localkube: LocalKube, custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    before = localkube.revision
    created = await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("dry"), dry_run="All"
    )
    assert created["metadata"]["uid"]
    assert created["metadata"]["generation"] == 1
    assert not created["metadata"].get("resourceVersion")
    assert localkube.revision == before
    with pytest.raises(client.ApiException) as caught:
        await custom.get_namespaced_custom_object(*RS, kube_namespace, "rayservices", "dry")
    assert caught.value.status == 404
    status, _body, _ = await raw(
        localkube.url,
        "POST",
        f"/apis/ray.io/v1/namespaces/{kube_namespace}/rayservices?dryRun=Some",
        body=rayservice("dry"),
    )
    assert status == 400


async def test_body_and_url_must_agree_on_namespace_and_kind(
    localkube: LocalKube, kube_namespace: str, ray_crds: list[str]
) -> None:
    other = rayservice("x")
    other["metadata"]["namespace"] = "elsewhere"
    status, body, _ = await raw(
        localkube.url,
        "POST",
        f"/apis/ray.io/v1/namespaces/{kube_namespace}/rayservices",
        body=other,
    )
    assert status == 400
    assert "does not match the namespace" in body["message"]
    wrong = rayservice("x")
    wrong["kind"] = "RayCluster"
    status, body, _ = await raw(
        localkube.url,
        "POST",
        f"/apis/ray.io/v1/namespaces/{kube_namespace}/rayservices",
        body=wrong,
    )
    assert status == 400


async def test_creating_in_a_missing_namespace_is_404(core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as caught:
        await core.create_namespaced_config_map(
            "no-such-ns", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"))
        )
    assert caught.value.status == 404
    assert 'namespaces \\"no-such-ns\\" not found' in body_of(caught.value)


async def test_unknown_paths_are_404_and_wrong_verbs_405(
    localkube: LocalKube, kube_namespace: str
) -> None:
    status, body, _ = await raw(localkube.url, "GET", "/apis/nope.io/v1/things")
    assert status == 404
    assert body["kind"] == "Status"
    status, body, _ = await raw(
        localkube.url, "POST", f"/api/v1/namespaces/{kube_namespace}/configmaps/x", body={}
    )
    assert status == 405
    assert body["reason"] == "MethodNotAllowed"


async def test_lists_filter_by_label_and_field_selectors(
    core: client.CoreV1Api, kube_namespace: str
) -> None:
    for name, labels in (("a", {"app": "x", "tier": "web"}), ("b", {"app": "y"}), ("c", {})):
        await core.create_namespaced_config_map(
            kube_namespace,
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels)),
        )

    async def names(**kwargs: Any) -> list[str]:
        listed = await core.list_namespaced_config_map(kube_namespace, **kwargs)
        return [i.metadata.name for i in listed.items]

    assert await names(label_selector="app=x") == ["a"]
    assert await names(label_selector="app!=x") == ["b", "c"]
    assert await names(label_selector="app in (x,y)") == ["a", "b"]
    assert await names(label_selector="app notin (x)") == ["b", "c"]
    assert await names(label_selector="tier") == ["a"]
    assert await names(label_selector="!app") == ["c"]
    assert await names(label_selector="app,app!=y") == ["a"]
    assert await names(field_selector="metadata.name=b") == ["b"]
    assert await names(field_selector="metadata.name!=b") == ["a", "c"]
    with pytest.raises(client.ApiException) as caught:
        await names(label_selector="app in x,(")
    assert caught.value.status == 400
    with pytest.raises(client.ApiException) as caught:
        await names(field_selector="data.x=1")
    assert caught.value.status == 400


async def test_lists_page_with_limit_and_continue(
    core: client.CoreV1Api, kube_namespace: str
) -> None:
    for i in range(5):
        await core.create_namespaced_config_map(
            kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"p{i}"))
        )
    first = await core.list_namespaced_config_map(kube_namespace, limit=2)
    assert [i.metadata.name for i in first.items] == ["p0", "p1"]
    rest = await core.list_namespaced_config_map(
        kube_namespace, limit=10, _continue=first.metadata._continue
    )
    assert [i.metadata.name for i in rest.items] == ["p2", "p3", "p4"]
    assert not rest.metadata._continue


async def test_a_preset_resource_version_on_create_is_refused_like_the_etcd3_store_does(
    localkube: LocalKube, kube_namespace: str
) -> None:
    body = {"metadata": {"name": "rv", "resourceVersion": "42"}}
    status, answer, _ = await raw(
        localkube.url, "POST", f"/api/v1/namespaces/{kube_namespace}/configmaps", body=body
    )
    assert status == 500
    assert answer["message"] == "resourceVersion should not be set on objects to be created"


async def test_pod_logs_follow_new_lines_until_the_log_ends(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    from localkube import MemoryLogs

    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="talker"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
    )
    await core.create_namespaced_pod(kube_namespace, pod)
    logs = localkube.logs
    assert isinstance(logs, MemoryLogs)
    logs.append(kube_namespace, "talker", "c", "one\n")
    response: Any = await core.read_namespaced_pod_log(
        "talker", kube_namespace, follow=True, _preload_content=False
    )
    assert await response.content.readline() == b"one\n"
    logs.append(kube_namespace, "talker", "c", "two\n")
    assert await response.content.readline() == b"two\n"
    logs.close(kube_namespace, "talker", "c")
    assert await response.content.read() == b""
    response.release()
    with pytest.raises(client.ApiException) as caught:
        await core.read_namespaced_pod_log("talker", kube_namespace, container="nope")
    assert caught.value.status == 400


async def test_leases_round_trip_micro_time_for_leader_election(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    from datetime import UTC, datetime

    leases = client.CoordinationV1Api(kube_api)
    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    lease = client.V1Lease(
        metadata=client.V1ObjectMeta(name="leader"),
        spec=client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15, renew_time=now),
    )
    created = await leases.create_namespaced_lease(kube_namespace, lease)
    assert created.spec.renew_time == now
    created.spec.holder_identity = "b"
    replaced = await leases.replace_namespaced_lease("leader", kube_namespace, created)
    assert replaced.spec.holder_identity == "b"
    with pytest.raises(client.ApiException) as caught:
        await leases.replace_namespaced_lease("leader", kube_namespace, created)
    assert caught.value.status == 409
