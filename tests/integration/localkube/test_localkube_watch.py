"""Watch through kubernetes-asyncio: list-then-watch, replay in order, 410 after compaction,
bookmarks, timeoutSeconds, selectors (ADDED/DELETED as objects start and stop matching), and
dropped streams."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes_asyncio import client, watch

from localkube import LocalKube
from tests.integration.localkube.helpers import eventually, merge_patch, raw

pytestmark = pytest.mark.asyncio(loop_scope="session")


def configmap(name: str, **labels: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels or None))


async def collect(stream: watch.Watch, count: int) -> list[tuple[str, str, str]]:
    """The next ``count`` events as (type, name, resourceVersion)."""
    seen: list[tuple[str, str, str]] = []
    async for event in stream:
        obj = event["raw_object"]
        seen.append(
            (event["type"], obj["metadata"].get("name", ""), obj["metadata"]["resourceVersion"])
        )
        if len(seen) == count:
            break
    return seen


async def test_a_watch_from_a_list_resource_version_replays_every_later_change_in_order(
    core: client.CoreV1Api, kube_namespace: str
) -> None:
    listed = await core.list_namespaced_config_map(kube_namespace)
    await core.create_namespaced_config_map(kube_namespace, configmap("a"))
    await core.create_namespaced_config_map(kube_namespace, configmap("b"))
    await merge_patch(core.patch_namespaced_config_map, "a", kube_namespace, {"data": {"k": "v"}})
    await core.delete_namespaced_config_map("b", kube_namespace)
    async with watch.Watch() as stream:
        stream.stream(
            core.list_namespaced_config_map,
            kube_namespace,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=5,
        )
        events = await collect(stream, 4)
    assert [(t, n) for t, n, _ in events] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("MODIFIED", "a"),
        ("DELETED", "b"),
    ]
    versions = [int(rv) for _, _, rv in events]
    assert versions == sorted(versions)
    assert len(set(versions)) == 4


async def test_a_watch_without_resource_version_starts_with_the_current_state(
    core: client.CoreV1Api, kube_namespace: str
) -> None:
    await core.create_namespaced_config_map(kube_namespace, configmap("x"))
    await core.create_namespaced_config_map(kube_namespace, configmap("y"))
    async with watch.Watch() as stream:
        stream.stream(core.list_namespaced_config_map, kube_namespace, timeout_seconds=5)
        initial = await collect(stream, 2)
        await core.create_namespaced_config_map(kube_namespace, configmap("z"))
        later = await collect(stream, 1)
    assert sorted((t, n) for t, n, _ in initial) == [("ADDED", "x"), ("ADDED", "y")]
    assert [(t, n) for t, n, _ in later] == [("ADDED", "z")]


async def test_a_compacted_resource_version_ends_the_watch_with_a_410_error_event(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    created = await core.create_namespaced_config_map(kube_namespace, configmap("old"))
    await core.create_namespaced_config_map(kube_namespace, configmap("new"))
    localkube.compact()
    async with watch.Watch() as stream:
        stream.stream(
            core.list_namespaced_config_map,
            kube_namespace,
            resource_version=created.metadata.resource_version,
            timeout_seconds=5,
        )
        with pytest.raises(client.ApiException) as caught:
            await collect(stream, 1)
    assert caught.value.status == 410
    assert "Expired: too old resource version" in str(caught.value.reason)


async def test_the_410_arrives_as_an_error_event_on_a_200_stream(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    created = await core.create_namespaced_config_map(kube_namespace, configmap("o"))
    await core.create_namespaced_config_map(kube_namespace, configmap("p"))
    revision = localkube.compact()
    rv = created.metadata.resource_version
    status, event, _ = await raw(
        localkube.url,
        "GET",
        f"/api/v1/namespaces/{kube_namespace}/configmaps?watch=1&resourceVersion={rv}",
    )
    assert status == 200
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    assert event["object"]["reason"] == "Expired"
    assert event["object"]["message"] == f"too old resource version: {rv} ({revision + 1})"


async def test_bookmarks_carry_the_current_resource_version_at_the_configured_interval(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    localkube.bookmark_interval = 0.1
    await core.create_namespaced_config_map(kube_namespace, configmap("bm"))
    async with watch.Watch() as stream:
        stream.stream(
            core.list_namespaced_config_map,
            kube_namespace,
            allow_watch_bookmarks=True,
            timeout_seconds=5,
        )
        events = await collect(stream, 3)
    assert events[0][0] == "ADDED"
    assert {t for t, _, _ in events[1:]} == {"BOOKMARK"}
    assert int(events[-1][2]) >= int(events[0][2])
    assert stream.resource_version == events[-1][2]


async def test_timeout_seconds_ends_the_stream_cleanly(
    core: client.CoreV1Api, kube_namespace: str
) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with watch.Watch() as stream:
        stream.stream(core.list_namespaced_config_map, kube_namespace, timeout_seconds=1)
        events = [e async for e in stream]
    assert events == []
    assert 0.9 <= loop.time() - start < 5


async def test_label_selected_watches_see_objects_arrive_and_leave_as_labels_change(
    core: client.CoreV1Api, kube_namespace: str
) -> None:
    listed = await core.list_namespaced_config_map(kube_namespace)
    await core.create_namespaced_config_map(kube_namespace, configmap("s", app="other"))
    await merge_patch(
        core.patch_namespaced_config_map,
        "s",
        kube_namespace,
        {"metadata": {"labels": {"app": "x"}}},
    )
    await merge_patch(core.patch_namespaced_config_map, "s", kube_namespace, {"data": {"a": "b"}})
    await merge_patch(
        core.patch_namespaced_config_map,
        "s",
        kube_namespace,
        {"metadata": {"labels": {"app": "y"}}},
    )
    await core.create_namespaced_config_map(kube_namespace, configmap("t", app="x"))
    async with watch.Watch() as stream:
        stream.stream(
            core.list_namespaced_config_map,
            kube_namespace,
            label_selector="app=x",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=5,
        )
        events = await collect(stream, 4)
    assert [(t, n) for t, n, _ in events] == [
        ("ADDED", "s"),
        ("MODIFIED", "s"),
        ("DELETED", "s"),
        ("ADDED", "t"),
    ]


async def test_field_selected_watches_follow_one_name(
    core: client.CoreV1Api, kube_namespace: str
) -> None:
    listed = await core.list_namespaced_config_map(kube_namespace)
    await core.create_namespaced_config_map(kube_namespace, configmap("one"))
    await core.create_namespaced_config_map(kube_namespace, configmap("two"))
    await core.delete_namespaced_config_map("one", kube_namespace)
    async with watch.Watch() as stream:
        stream.stream(
            core.list_namespaced_config_map,
            kube_namespace,
            field_selector="metadata.name=one",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=5,
        )
        events = await collect(stream, 2)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "one"), ("DELETED", "one")]


async def test_a_deleted_event_carries_the_final_object_with_a_new_resource_version(
    core: client.CoreV1Api, kube_namespace: str
) -> None:
    created = await core.create_namespaced_config_map(kube_namespace, configmap("fin"))
    await core.delete_namespaced_config_map("fin", kube_namespace)
    async with watch.Watch() as stream:
        stream.stream(
            core.list_namespaced_config_map,
            kube_namespace,
            resource_version=created.metadata.resource_version,
            timeout_seconds=5,
        )
        events = await collect(stream, 1)
    assert events[0][:2] == ("DELETED", "fin")
    assert int(events[0][2]) > int(created.metadata.resource_version)


async def test_a_cluster_wide_watch_sees_every_namespace(
    core: client.CoreV1Api, kube_api: client.ApiClient, kube_namespace: str
) -> None:
    listed = await core.list_config_map_for_all_namespaces()
    await core.create_namespaced_config_map(kube_namespace, configmap("wide"))
    async with watch.Watch() as stream:
        stream.stream(
            core.list_config_map_for_all_namespaces,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=5,
        )
        events = await collect(stream, 1)
    assert events[0][:2] == ("ADDED", "wide")


async def test_dropped_watch_streams_end_and_a_watch_without_timeout_reconnects_from_its_last_version(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    seen: list[str] = []

    async def consume() -> None:
        async with watch.Watch() as stream:
            stream.stream(core.list_namespaced_config_map, kube_namespace)
            async for event in stream:
                seen.append(f"{event['type']} {event['raw_object']['metadata']['name']}")
                if len(seen) == 2:
                    return

    task = asyncio.create_task(consume())
    await core.create_namespaced_config_map(kube_namespace, configmap("before"))

    async def first_seen() -> bool:
        await asyncio.sleep(0)
        return bool(seen)

    await eventually(first_seen)
    assert localkube.faults.drop_watches() >= 1
    await core.create_namespaced_config_map(kube_namespace, configmap("after"))
    await asyncio.wait_for(task, 10)
    assert seen == ["ADDED before", "ADDED after"]


async def test_watch_events_are_served_in_the_requested_version(
    custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    listed: dict[str, Any] = await custom.list_namespaced_custom_object(
        "ray.io", "v1alpha1", kube_namespace, "rayservices"
    )
    await custom.create_namespaced_custom_object(
        "ray.io",
        "v1",
        kube_namespace,
        "rayservices",
        {"apiVersion": "ray.io/v1", "kind": "RayService", "metadata": {"name": "ver"}, "spec": {}},
    )
    async with watch.Watch() as stream:
        stream.stream(
            custom.list_namespaced_custom_object,
            "ray.io",
            "v1alpha1",
            kube_namespace,
            "rayservices",
            resource_version=listed["metadata"]["resourceVersion"],
            timeout_seconds=5,
        )
        async for event in stream:
            assert event["raw_object"]["apiVersion"] == "ray.io/v1alpha1"
            break


async def test_finalized_objects_are_modified_on_delete_and_deleted_in_their_final_state(
    core: client.CoreV1Api, kube_namespace: str
) -> None:
    held = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="held", finalizers=["example.com/x"])
    )
    created = await core.create_namespaced_config_map(kube_namespace, held)
    await core.delete_namespaced_config_map("held", kube_namespace)
    await merge_patch(
        core.patch_namespaced_config_map, "held", kube_namespace, {"metadata": {"finalizers": None}}
    )
    async with watch.Watch() as stream:
        stream.stream(
            core.list_namespaced_config_map,
            kube_namespace,
            resource_version=created.metadata.resource_version,
            timeout_seconds=5,
        )
        events = []
        async for event in stream:
            events.append((event["type"], event["raw_object"]["metadata"]))
            if len(events) == 2:
                break
    (modified, modified_meta), (deleted, deleted_meta) = events
    assert (modified, deleted) == ("MODIFIED", "DELETED")
    assert modified_meta["deletionTimestamp"]
    assert modified_meta["finalizers"] == ["example.com/x"]
    assert "finalizers" not in deleted_meta
    assert int(deleted_meta["resourceVersion"]) > int(modified_meta["resourceVersion"])


async def test_server_shutdown_ends_open_watch_streams(
    fresh_kube: Callable[..., LocalKube],
) -> None:
    kube = fresh_kube()
    await kube.start()
    async with client.ApiClient(client.Configuration(host=kube.url)) as api:
        core = client.CoreV1Api(api)
        seen: list[str] = []

        async def consume() -> None:
            async with watch.Watch() as stream:
                stream.stream(core.list_namespaced_config_map, "default", timeout_seconds=120)
                async for event in stream:
                    seen.append(event["type"])

        task = asyncio.create_task(consume())
        await core.create_namespaced_config_map("default", configmap("x"))

        async def watching() -> bool:
            await asyncio.sleep(0)
            return seen == ["ADDED"]

        await eventually(watching)
        await kube.stop()
        await asyncio.wait_for(task, 10)
    assert seen == ["ADDED"]


async def test_a_watch_from_before_the_servers_watch_cache_started_is_expired(
    fresh_kube: Callable[..., LocalKube],
) -> None:
    kube = fresh_kube()
    await kube.start()
    start = kube.revision  # the default namespaces were created before serving began
    async with client.ApiClient(client.Configuration(host=kube.url)) as api:
        core = client.CoreV1Api(api)
        async with watch.Watch() as stream:
            stream.stream(core.list_namespace, resource_version="1", timeout_seconds=2)
            with pytest.raises(client.ApiException) as caught:
                await collect(stream, 1)
        assert caught.value.status == 410
        status, event, _ = await raw(
            kube.url, "GET", "/api/v1/namespaces?watch=1&resourceVersion=1"
        )
        assert (status, event["type"]) == (200, "ERROR")
        assert event["object"]["message"] == f"too old resource version: 1 ({start})"
        await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="n")))
        async with watch.Watch() as stream:
            stream.stream(core.list_namespace, resource_version=str(start), timeout_seconds=2)
            assert [(t, n) for t, n, _ in await collect(stream, 1)] == [("ADDED", "n")]


async def test_a_custom_resources_watch_history_starts_when_its_crd_is_served(
    localkube: LocalKube, kube_api: client.ApiClient, kube_namespace: str
) -> None:
    group = f"{kube_namespace}.example.com"
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    crd = {
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": schema}],
        },
    }
    extensions = client.ApiextensionsV1Api(kube_api)
    before = localkube.revision
    created = await extensions.create_custom_resource_definition(crd)  # type: ignore[arg-type]
    established = int(created.metadata.resource_version)
    custom = client.CustomObjectsApi(kube_api)
    try:
        async with watch.Watch() as stream:
            stream.stream(
                custom.list_namespaced_custom_object,
                group,
                "v1",
                kube_namespace,
                "gadgets",
                resource_version=str(before),
                timeout_seconds=2,
            )
            with pytest.raises(client.ApiException) as caught:
                await collect(stream, 1)
        assert caught.value.status == 410
        await custom.create_namespaced_custom_object(
            group,
            "v1",
            kube_namespace,
            "gadgets",
            {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g"}},
        )
        async with watch.Watch() as stream:
            stream.stream(
                custom.list_namespaced_custom_object,
                group,
                "v1",
                kube_namespace,
                "gadgets",
                resource_version=str(established),
                timeout_seconds=2,
            )
            assert [(t, n) for t, n, _ in await collect(stream, 1)] == [("ADDED", "g")]
    finally:
        await extensions.delete_custom_resource_definition(f"gadgets.{group}")


async def test_a_bookmark_arrives_about_two_seconds_before_the_watch_deadline(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    assert localkube.bookmark_interval == 60  # far beyond this watch's 3 s
    created = await core.create_namespaced_config_map(kube_namespace, configmap("dl"))
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with watch.Watch() as stream:
        stream.stream(
            core.list_namespaced_config_map,
            kube_namespace,
            allow_watch_bookmarks=True,
            resource_version=created.metadata.resource_version,
            timeout_seconds=3,
        )
        events = []
        async for event in stream:
            events.append((event["type"], loop.time() - start))
    assert [kind for kind, _ in events] == ["BOOKMARK"]
    assert 0.5 <= events[0][1] <= 2.5
    assert int(stream.resource_version or 0) >= int(created.metadata.resource_version)
