"""The store: one global revision, optimistic concurrency, bounded history and watch fan-out."""

from __future__ import annotations

from typing import Any

import pytest

from localkube.storage import AlreadyExists, Conflict, Event, Expired, Missing, Store

KEY = ("", "configmaps")
OTHER = ("ray.io", "rayservices")


def cm(name: str, namespace: str = "ns", **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "data": data}


async def test_every_change_takes_the_next_revision_across_resources() -> None:
    store = Store(history_size=10, queue_size=10)
    a = await store.create(KEY, cm("a"))
    b = await store.create(OTHER, cm("b"))
    updated = await store.update(
        KEY, {**a, "data": {"x": "1"}}, expected_rv=a["metadata"]["resourceVersion"]
    )
    deleted = await store.delete(KEY, "ns", "a", expected_rv=None)
    revisions = [int(o["metadata"]["resourceVersion"]) for o in (a, b, updated, deleted)]
    assert revisions == [1, 2, 3, 4]
    assert store.revision == 4


async def test_writes_check_existence_and_the_expected_revision() -> None:
    store = Store(history_size=10, queue_size=10)
    a = await store.create(KEY, cm("a"))
    with pytest.raises(AlreadyExists):
        await store.create(KEY, cm("a"))
    with pytest.raises(Conflict):
        await store.update(KEY, a, expected_rv="999")
    with pytest.raises(Missing):
        await store.update(KEY, cm("zzz"), expected_rv="1")
    with pytest.raises(Conflict):
        await store.delete(KEY, "ns", "a", expected_rv="999")


async def test_a_watch_replays_later_events_of_its_resource_and_namespace_then_follows() -> None:
    store = Store(history_size=10, queue_size=10)
    await store.create(KEY, cm("a"))
    await store.create(KEY, cm("b", namespace="other"))
    await store.create(OTHER, cm("c"))
    await store.create(KEY, cm("d"))
    watcher = store.watch(KEY, "ns", since=1)
    await store.create(KEY, cm("e"))
    seen = []
    for _ in range(2):
        item = await watcher.next()
        assert isinstance(item, Event)
        seen.append((item.type, item.obj["metadata"]["name"], item.rv))
    assert seen == [("ADDED", "d", 4), ("ADDED", "e", 5)]


async def test_history_is_bounded_and_older_revisions_expire() -> None:
    store = Store(history_size=2, queue_size=10)
    for name in "abcd":
        await store.create(KEY, cm(name))
    with pytest.raises(Expired, match=r"too old resource version: 1 \(3\)"):
        store.watch(KEY, None, since=1)
    store.watch(KEY, None, since=2)
    store.compact()
    with pytest.raises(Expired):
        store.watch(KEY, None, since=3)


async def test_a_watch_that_falls_behind_its_queue_is_closed() -> None:
    store = Store(history_size=100, queue_size=2)
    watcher = store.watch(KEY, None, since=None)
    for name in "abc":
        await store.create(KEY, cm(name))
    assert watcher.closed
    assert [getattr(await watcher.next(), "rv", None) for _ in range(3)] == [1, 2, None]


async def test_bookmarks_queue_behind_pending_events() -> None:
    store = Store(history_size=10, queue_size=10)
    watcher = store.watch(KEY, None, since=None)
    await store.create(KEY, cm("a"))
    watcher.push(store.revision)
    first, second = await watcher.next(), await watcher.next()
    assert isinstance(first, Event)
    assert second == 1
