"""A list-then-watch cache of one kind, with indexes and change handlers.

An :class:`Informer` lists the objects of one kind (all namespaces, or each namespace of a list),
keeps them in memory without ``managedFields`` (nobody here reads them; they are a third of a
typical object), then watches from the list's resourceVersion. A 410 (the version is too old for
the server to replay) means: list again, and report the difference as events, so no change is
lost. A stream that ends (the server's ``timeoutSeconds``) is re-opened from the last version
seen; any other failure re-lists after a jittered, growing delay.

Handlers are called for every change with the event type and the object (the previous object on
a DELETED event), in the order the server sent them; they must be quick (they enqueue keys).

``wait_for`` lets a writer read its own write: after a create or patch answered with version N, a
reconcile that waits until the cache holds version >= N never acts on a cache that predates it
(which would, for example, create a second RayCluster).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import aiohttp

from reconciler.kube import ApiError, KubeClient, ResourceKind

__all__ = ["Handler", "Informer", "Key", "key_of", "rv_int"]

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""(namespace, name)."""
Handler = Callable[[str, Mapping[str, Any]], None]
Indexer = Callable[[Mapping[str, Any]], Iterable[str]]

_RETRY_BASE: Final = 0.5
_RETRY_CAP: Final = 30.0


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def rv_int(value: object) -> int:
    """A resourceVersion as a number (they are etcd revisions); -1 when not numeric."""
    try:
        return int(str(value))
    except ValueError:
        return -1


def _slim(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


class Informer:
    """The cache of one kind; run it with :meth:`run` (until cancelled)."""

    def __init__(
        self,
        kube: KubeClient,
        kind: ResourceKind,
        *,
        namespaces: Sequence[str] = (),
        label_selector: str = "",
        watch_timeout: int = 300,
    ) -> None:
        self.kube = kube
        self.kind = kind
        self.namespaces = tuple(namespaces) or ("",)
        self.label_selector = label_selector
        self.watch_timeout = watch_timeout
        self.synced = asyncio.Event()
        self._objects: dict[Key, dict[str, Any]] = {}
        self._handlers: list[Handler] = []
        self._indexers: dict[str, Indexer] = {}
        self._indexes: dict[str, dict[str, set[Key]]] = {}
        self._waiters: list[tuple[Key, int, bool, asyncio.Future[None]]] = []
        self._synced_namespaces: set[str] = set()

    # reading -------------------------------------------------------------------------------
    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The cached object (do not modify it)."""
        return self._objects.get((namespace, name))

    def objects(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return [
            obj for (ns, _), obj in self._objects.items() if namespace is None or ns == namespace
        ]

    def by_index(self, index: str, value: str) -> list[dict[str, Any]]:
        """Objects whose indexer named ``index`` yields ``value``."""
        keys = self._indexes.get(index, {}).get(value, ())
        return [self._objects[k] for k in keys if k in self._objects]

    def __len__(self) -> int:
        return len(self._objects)

    # wiring ------------------------------------------------------------------------------
    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def add_index(self, name: str, indexer: Indexer) -> None:
        """Keep objects findable by ``indexer(obj)`` values (e.g. a label's value)."""
        self._indexers[name] = indexer
        index: dict[str, set[Key]] = {}
        for key, obj in self._objects.items():
            for value in indexer(obj):
                index.setdefault(value, set()).add(key)
        self._indexes[name] = index

    async def wait_for(self, namespace: str, name: str, resource_version: str) -> None:
        """Return once the cache holds ``namespace/name`` at ``resource_version`` or newer.

        Callers bound it (``asyncio.timeout``): a watch can lag or be down.
        """
        await self._wait((namespace, name), rv_int(resource_version), False)

    async def wait_gone(self, namespace: str, name: str) -> None:
        """Return once the cache no longer holds ``namespace/name`` (bound it, as above)."""
        await self._wait((namespace, name), 0, True)

    async def _wait(self, key: Key, rv: int, gone: bool) -> None:
        if self._satisfied(key, rv, gone):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (key, rv, gone, future)
        self._waiters.append(entry)
        try:
            await future
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _satisfied(self, key: Key, rv: int, gone: bool) -> bool:
        obj = self._objects.get(key)
        if gone:
            return obj is None
        return obj is not None and rv_int(obj["metadata"].get("resourceVersion")) >= rv

    # applying changes ----------------------------------------------------------------------
    def _index(
        self, key: Key, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> None:
        for name, indexer in self._indexers.items():
            index = self._indexes[name]
            for value in indexer(old) if old is not None else ():
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
            for value in indexer(new) if new is not None else ():
                index.setdefault(value, set()).add(key)

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        old = self._objects.get(key)
        if kind == "DELETED":
            if old is None:
                return
            del self._objects[key]
            self._index(key, old, None)
            self._notify("DELETED", old)
        else:
            if old is not None and old["metadata"].get("resourceVersion") == obj["metadata"].get(
                "resourceVersion"
            ):
                return
            self._objects[key] = obj
            self._index(key, old, obj)
            self._notify("ADDED" if old is None else "MODIFIED", obj)
        if self._waiters:
            for waiter_key, rv, gone, future in list(self._waiters):
                if waiter_key == key and not future.done() and self._satisfied(key, rv, gone):
                    future.set_result(None)

    def _notify(self, kind: str, obj: Mapping[str, Any]) -> None:
        for handler in self._handlers:
            try:
                handler(kind, obj)
            except Exception:
                log.exception("informer handler failed", extra={"kind": self.kind.kind})

    def _replace(self, namespace: str, items: list[dict[str, Any]]) -> None:
        """A fresh list of one namespace (or all): report what changed since the last one."""
        fresh = {key_of(obj): obj for obj in items}
        for key in [k for k in self._objects if (not namespace or k[0] == namespace)]:
            if key not in fresh:
                self._apply("DELETED", self._objects[key])
        for obj in items:
            self._apply("MODIFIED", obj)

    # the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        """List and watch every configured namespace until cancelled."""
        async with asyncio.TaskGroup() as group:
            for namespace in self.namespaces:
                group.create_task(self._run_one(namespace))

    async def _run_one(self, namespace: str) -> None:
        failures = 0
        while True:
            try:
                items, rv = await self.kube.list(
                    self.kind, namespace=namespace, label_selector=self.label_selector
                )
                self._replace(namespace, [_slim(obj) for obj in items])
                self._synced_namespaces.add(namespace)
                if len(self._synced_namespaces) == len(self.namespaces):
                    self.synced.set()
                failures = 0
                while True:
                    rv = await self._watch(namespace, rv)
            except ApiError as e:
                if e.status == 410:
                    log.info(
                        "watch expired, listing again",
                        extra={"kind": self.kind.kind, "namespace": namespace},
                    )
                    continue
                failures += 1
                log.warning(
                    "list or watch failed",
                    extra={"kind": self.kind.kind, "namespace": namespace, "error": str(e)},
                )
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
                failures += 1
                log.warning(
                    "list or watch failed",
                    extra={"kind": self.kind.kind, "namespace": namespace, "error": repr(e)},
                )
            delay = min(_RETRY_CAP, _RETRY_BASE * 2 ** min(failures, 10))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def _watch(self, namespace: str, rv: str) -> str:
        """Follow one watch stream; returns the last version seen when it ends cleanly."""
        async for event in self.kube.watch(
            self.kind,
            resource_version=rv,
            namespace=namespace,
            label_selector=self.label_selector,
            timeout_seconds=self.watch_timeout,
        ):
            obj = event.get("object") or {}
            kind = event.get("type")
            rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                obj.setdefault("apiVersion", self.kind.api_version)
                obj.setdefault("kind", self.kind.kind)
                self._apply(str(kind), _slim(obj))
        return rv
