"""Deletion: finalizers and deletionTimestamp, preconditions, garbage collection through
ownerReferences (background, foreground, orphan), namespace termination, and CRD removal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from kubernetes_asyncio import client

from localkube import LocalKube
from tests.integration.localkube.helpers import body_of, eventually, merge_patch, raw, rayservice

pytestmark = pytest.mark.asyncio(loop_scope="session")

RS = ("ray.io", "v1")


def owned_by(name: str, owner: dict[str, Any], *, block: bool = False) -> client.V1ConfigMap:
    ref = client.V1OwnerReference(
        api_version=owner["apiVersion"],
        kind=owner["kind"],
        name=owner["metadata"]["name"],
        uid=owner["metadata"]["uid"],
        block_owner_deletion=block or None,
    )
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, owner_references=[ref]))


async def answers_404(read: Callable[[], Awaitable[Any]]) -> bool:
    """Whether a read now answers 404 (the object is gone or not served)."""
    try:
        await read()
    except client.ApiException as e:
        return e.status == 404
    return False


async def test_deleting_without_finalizers_removes_the_object_and_answers_a_success_status(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    created = await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("d")
    )
    answer = await custom.delete_namespaced_custom_object(*RS, kube_namespace, "rayservices", "d")
    assert answer["kind"] == "Status"
    assert answer["status"] == "Success"
    assert answer["details"] == {
        "name": "d",
        "group": "ray.io",
        "kind": "rayservices",
        "uid": created["metadata"]["uid"],
    }
    with pytest.raises(client.ApiException) as caught:
        await custom.get_namespaced_custom_object(*RS, kube_namespace, "rayservices", "d")
    assert caught.value.status == 404


async def test_finalizers_hold_the_object_with_a_deletion_timestamp_until_the_last_one_goes(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    body = rayservice("f")
    body["metadata"]["finalizers"] = ["example.com/a", "example.com/b"]
    await custom.create_namespaced_custom_object(*RS, kube_namespace, "rayservices", body)
    answer = await custom.delete_namespaced_custom_object(*RS, kube_namespace, "rayservices", "f")
    assert answer["metadata"]["deletionTimestamp"]
    assert answer["metadata"]["deletionGracePeriodSeconds"] == 0
    assert answer["metadata"]["generation"] == 2
    with pytest.raises(client.ApiException) as caught:
        await merge_patch(
            custom.patch_namespaced_custom_object,
            *RS,
            kube_namespace,
            "rayservices",
            "f",
            {"metadata": {"finalizers": ["example.com/a", "example.com/b", "example.com/c"]}},
        )
    assert caught.value.status == 422
    assert "no new finalizers can be added if the object is being deleted" in body_of(caught.value)
    kept = await merge_patch(
        custom.patch_namespaced_custom_object,
        *RS,
        kube_namespace,
        "rayservices",
        "f",
        {"metadata": {"finalizers": ["example.com/b"]}},
    )
    assert kept["metadata"]["finalizers"] == ["example.com/b"]
    await merge_patch(
        custom.patch_namespaced_custom_object,
        *RS,
        kube_namespace,
        "rayservices",
        "f",
        {"metadata": {"finalizers": None}},
    )
    with pytest.raises(client.ApiException) as caught:
        await custom.get_namespaced_custom_object(*RS, kube_namespace, "rayservices", "f")
    assert caught.value.status == 404


async def test_delete_preconditions_that_do_not_hold_are_409(
    core: client.CoreV1Api, kube_namespace: str
) -> None:
    await core.create_namespaced_config_map(
        kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="p"))
    )
    options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="not-the-uid"))
    with pytest.raises(client.ApiException) as caught:
        await core.delete_namespaced_config_map("p", kube_namespace, body=options)
    assert caught.value.status == 409
    assert "Precondition failed: UID in precondition: not-the-uid" in body_of(caught.value)


async def test_background_deletion_collects_dependents_whose_owners_are_all_gone(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    owner = await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("owner")
    )
    other = await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("other")
    )
    await core.create_namespaced_config_map(kube_namespace, owned_by("only-child", owner))
    shared = owned_by("shared-child", owner)
    shared.metadata.owner_references.append(
        client.V1OwnerReference(
            api_version="ray.io/v1", kind="RayService", name="other", uid=other["metadata"]["uid"]
        )
    )
    await core.create_namespaced_config_map(kube_namespace, shared)
    await custom.delete_namespaced_custom_object(*RS, kube_namespace, "rayservices", "owner")
    await eventually(
        lambda: answers_404(lambda: core.read_namespaced_config_map("only-child", kube_namespace))
    )

    async def dangling_reference_removed() -> bool:
        cm = await core.read_namespaced_config_map("shared-child", kube_namespace)
        return [r.name for r in cm.metadata.owner_references] == ["other"]

    await eventually(dangling_reference_removed)


async def test_foreground_deletion_deletes_dependents_before_the_owner(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    owner = await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("fg")
    )
    child = owned_by("fg-child", owner, block=True)
    child.metadata.finalizers = ["example.com/hold"]
    await core.create_namespaced_config_map(kube_namespace, child)
    answer = await custom.delete_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", "fg", propagation_policy="Foreground"
    )
    assert "foregroundDeletion" in answer["metadata"]["finalizers"]

    async def child_terminating() -> bool:
        cm = await core.read_namespaced_config_map("fg-child", kube_namespace)
        return bool(cm.metadata.deletion_timestamp)

    await eventually(child_terminating)
    still = await custom.get_namespaced_custom_object(*RS, kube_namespace, "rayservices", "fg")
    assert still["metadata"]["deletionTimestamp"]
    await merge_patch(
        core.patch_namespaced_config_map,
        "fg-child",
        kube_namespace,
        {"metadata": {"finalizers": None}},
    )

    await eventually(
        lambda: answers_404(
            lambda: custom.get_namespaced_custom_object(*RS, kube_namespace, "rayservices", "fg")
        )
    )


async def test_orphan_deletion_keeps_dependents_and_removes_their_references(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    owner = await custom.create_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", rayservice("orph")
    )
    await core.create_namespaced_config_map(kube_namespace, owned_by("orph-child", owner))
    answer = await custom.delete_namespaced_custom_object(
        *RS, kube_namespace, "rayservices", "orph", propagation_policy="Orphan"
    )
    assert "orphan" in answer["metadata"]["finalizers"]

    await eventually(
        lambda: answers_404(
            lambda: custom.get_namespaced_custom_object(*RS, kube_namespace, "rayservices", "orph")
        )
    )
    child = await core.read_namespaced_config_map("orph-child", kube_namespace)
    assert not child.metadata.owner_references


async def test_a_deleted_namespace_terminates_then_disappears_with_its_content(
    localkube: LocalKube, core: client.CoreV1Api
) -> None:
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="doomed")))
    await core.create_namespaced_config_map(
        "doomed", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"))
    )
    code, answer, _ = await raw(localkube.url, "DELETE", "/api/v1/namespaces/doomed")
    assert code == 200
    assert answer["kind"] == "Namespace"
    assert answer["status"]["phase"] == "Terminating"

    await eventually(lambda: answers_404(lambda: core.read_namespace("doomed")))
    listed = await core.list_namespaced_config_map("doomed")
    assert listed.items == []


async def test_the_default_namespace_may_not_be_deleted(core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as caught:
        await core.delete_namespace("default")
    assert caught.value.status == 403
    assert 'namespaces \\"default\\" is forbidden: this namespace may not be deleted' in body_of(
        caught.value
    )


async def test_deleting_a_crd_removes_its_objects_and_stops_serving_it(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    ext = client.ApiextensionsV1Api(kube_api)
    custom = client.CustomObjectsApi(kube_api)
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    crd: dict[str, Any] = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }
    created = await ext.create_custom_resource_definition(cast(Any, crd))
    assert created.status.accepted_names.kind == "Widget"
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 3},
    }
    stored = await custom.create_namespaced_custom_object(
        "example.com", "v1", kube_namespace, "widgets", widget
    )
    assert stored["spec"] == {"size": 3}
    await ext.delete_custom_resource_definition("widgets.example.com")

    await eventually(
        lambda: answers_404(
            lambda: custom.list_namespaced_custom_object(
                "example.com", "v1", kube_namespace, "widgets"
            )
        )
    )


async def test_the_deprecated_orphan_dependents_false_answers_202_when_deletion_waits(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    held = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="held", finalizers=["example.com/x"])
    )
    await core.create_namespaced_config_map(kube_namespace, held)
    status, body, _ = await raw(
        localkube.url,
        "DELETE",
        f"/api/v1/namespaces/{kube_namespace}/configmaps/held",
        body={"kind": "DeleteOptions", "apiVersion": "v1", "orphanDependents": False},
    )
    assert status == 202
    assert body["metadata"]["deletionTimestamp"]
    await merge_patch(
        core.patch_namespaced_config_map, "held", kube_namespace, {"metadata": {"finalizers": None}}
    )


async def test_delete_collection_removes_only_the_selected_objects(
    core: client.CoreV1Api, kube_namespace: str
) -> None:
    for name, labels in (("a", {"x": "1"}), ("b", {"x": "1"}), ("c", {"x": "2"})):
        await core.create_namespaced_config_map(
            kube_namespace,
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels)),
        )
    await core.delete_collection_namespaced_config_map(kube_namespace, label_selector="x=1")
    listed = await core.list_namespaced_config_map(kube_namespace)
    assert [i.metadata.name for i in listed.items] == ["c"]


async def test_nothing_new_may_be_created_in_a_terminating_namespace(
    core: client.CoreV1Api,
) -> None:
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="closing")))
    held = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="held", finalizers=["example.com/x"])
    )
    await core.create_namespaced_config_map("closing", held)
    await core.delete_namespace("closing")
    with pytest.raises(client.ApiException) as caught:
        await core.create_namespaced_config_map(
            "closing", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="new"))
        )
    assert caught.value.status == 403
    assert (
        "unable to create new content in namespace closing because it is being terminated"
        in body_of(caught.value)
    )
    await merge_patch(
        core.patch_namespaced_config_map, "held", "closing", {"metadata": {"finalizers": None}}
    )

    await eventually(lambda: answers_404(lambda: core.read_namespace("closing")))


async def test_a_pod_bound_to_a_node_stays_terminating_through_status_writes_until_deleted_with_0(
    localkube: LocalKube, kube_namespace: str
) -> None:
    pods = f"/api/v1/namespaces/{kube_namespace}/pods"
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "graceful"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]},
    }
    status, created, _ = await raw(localkube.url, "POST", pods, body=body)
    assert status == 201
    status, deleting, _ = await raw(localkube.url, "DELETE", f"{pods}/graceful")
    assert (status, deleting["metadata"]["deletionGracePeriodSeconds"]) == (200, 30)
    # the node reports the containers stopping: the Pod stays (kube-apiserver's store deletes
    # during an update only when no grace period is left)
    patch = {"status": {"phase": "Running", "containerStatuses": []}}
    status, patched, _ = await raw(
        localkube.url,
        "PATCH",
        f"{pods}/graceful/status",
        body=patch,
        content_type="application/merge-patch+json",
    )
    assert status == 200
    assert patched["metadata"]["deletionTimestamp"]
    status, _, _ = await raw(localkube.url, "GET", f"{pods}/graceful")
    assert status == 200
    final = {"gracePeriodSeconds": 0, "preconditions": {"uid": created["metadata"]["uid"]}}
    status, _, _ = await raw(localkube.url, "DELETE", f"{pods}/graceful", body=final)
    assert status == 200
    status, _, _ = await raw(localkube.url, "GET", f"{pods}/graceful")
    assert status == 404
