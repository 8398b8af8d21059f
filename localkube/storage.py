"""Object storage, the global resourceVersion, and the bounded watch history.

Owns every stored object (in its storage version), the one counter that gives each persisted
change its resourceVersion (like an etcd revision, a delete included), the history of recent
changes that watches replay from, and the fan-out of new changes to open watches. Writes are
serialized: check the precondition, take the next revision, persist (optionally to SQLite through
:mod:`localkube.persistence`), then publish. It knows nothing of HTTP, admission or schemas.

Bounds: the history keeps ``history_size`` events (older ones are compacted and a watch from
before them is refused with :class:`Expired`); a watch that falls ``queue_size`` events behind
is closed, as kube-apiserver closes a watcher it cannot feed.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "AlreadyExists",
    "Conflict",
    "Event",
    "Expired",
    "Missing",
    "Persistence",
    "Store",
    "Watcher",
]

Key = tuple[str, str]  # (group, plural)
Obj = dict[str, Any]


class Missing(Exception):
    """The object does not exist."""


class AlreadyExists(Exception):
    """An object with that namespace and name exists."""


class Conflict(Exception):
    """The stored resourceVersion is not the one the write was based on."""


class Expired(Exception):
    """The requested resourceVersion is older than the retained history."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(frozen=True)
class Event:
    """A persisted change: ``obj`` is the new state (the final state for DELETED)."""

    type: str
    key: Key
    rv: int
    obj: Obj
    old: Obj | None


class Persistence(Protocol):
    """Durable storage behind the in-memory maps (see :mod:`localkube.persistence`)."""

    async def load(self) -> tuple[int, list[tuple[Key, Obj]]]: ...

    async def put(self, key: Key, obj: Obj, rv: int) -> None: ...

    async def remove(self, key: Key, namespace: str, name: str, rv: int) -> None: ...

    async def close(self) -> None: ...


@dataclass(eq=False)
class Watcher:
    """One open watch: a bounded buffer of events the HTTP layer drains."""

    key: Key | None
    namespace: str | None
    limit: int
    items: deque[Event | int] = field(default_factory=deque)
    closed: bool = False
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, item: Event | int) -> None:
        """Queue an event (or a bookmark revision); closes the watch when it falls behind."""
        if self.closed:
            return
        if self.limit and len(self.items) >= self.limit:
            self.close()
            return
        self.items.append(item)
        self._wakeup.set()

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()

    async def next(self) -> Event | int | None:
        """The next event or bookmark revision; ``None`` once the watch is closed and drained."""
        while not self.items:
            if self.closed:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        if self.closed and not self.items:
            return None
        return self.items.popleft()

    def wants(self, event: Event) -> bool:
        if self.key is not None and event.key != self.key:
            return False
        if self.namespace is None:
            return True
        meta = event.obj.get("metadata") or {}
        return bool(meta.get("namespace", "") == self.namespace)


async def _shielded(write: Coroutine[Any, Any, Obj]) -> Obj:
    """Run a write to completion even if the request that asked for it is cancelled (a client
    that disconnects must not leave memory and the SQLite file disagreeing)."""
    return await asyncio.shield(asyncio.ensure_future(write))


def _ident(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


class Store:
    """The objects, their revisions and the watch fan-out (see the module docstring)."""

    def __init__(
        self, *, history_size: int, queue_size: int, persistence: Persistence | None = None
    ) -> None:
        self.revision = 0
        self._objects: dict[Key, dict[tuple[str, str], Obj]] = {}
        self._uids: dict[str, tuple[Key, str, str]] = {}
        self._history: deque[Event] = deque()
        self._history_size = history_size
        self._compacted = 0
        # where each resource's watch history starts (a watch cache initialised then): the
        # revision the server started serving at, or when a CRD made its resource served
        self._watch_start = 0
        self._watch_floors: dict[Key, int] = {}
        self._queue_size = queue_size
        self._watchers: set[Watcher] = set()
        self._lock = asyncio.Lock()
        self._persistence = persistence
        # called synchronously with every committed event, before watches see it
        self.listeners: list[Callable[[Event], None]] = []

    async def load(self) -> None:
        """Fill memory from the persistence layer; the history starts empty (compacted)."""
        if self._persistence is None:
            return
        revision, rows = await self._persistence.load()
        for key, obj in rows:
            self._put(key, obj)
        self.revision = revision
        self._compacted = revision

    async def close(self) -> None:
        for watcher in list(self._watchers):
            watcher.close()
        self._watchers.clear()
        if self._persistence is not None:
            await self._persistence.close()

    @property
    def compacted_revision(self) -> int:
        """Revisions at or below this are no longer in the history."""
        return self._compacted

    # reads -------------------------------------------------------------------------------
    def get(self, key: Key, namespace: str, name: str) -> Obj | None:
        obj = self._objects.get(key, {}).get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, key: Key, namespace: str | None = None) -> tuple[builtins.list[Obj], int]:
        """Objects of a resource (in one namespace, or all), sorted, and the current revision."""
        objects = self._objects.get(key, {})
        items = [
            copy.deepcopy(obj)
            for (ns, _), obj in sorted(objects.items())
            if namespace is None or ns == namespace
        ]
        return items, self.revision

    def count(self, key: Key, namespace: str | None = None) -> int:
        return sum(
            1 for ns, _ in self._objects.get(key, {}) if namespace is None or ns == namespace
        )

    def find_uid(self, uid: str) -> tuple[Key, str, str] | None:
        return self._uids.get(uid)

    def iter_objects(self) -> Iterator[tuple[Key, Obj]]:
        """Every stored object (shallow references: callers must not mutate them)."""
        for key, objects in list(self._objects.items()):
            for obj in list(objects.values()):
                yield key, obj

    # writes ------------------------------------------------------------------------------
    def _put(self, key: Key, obj: Obj) -> None:
        ident = _ident(obj)
        self._objects.setdefault(key, {})[ident] = obj
        uid = (obj.get("metadata") or {}).get("uid")
        if uid:
            self._uids[str(uid)] = (key, *ident)

    def _drop(self, key: Key, ident: tuple[str, str]) -> Obj | None:
        obj = self._objects.get(key, {}).pop(ident, None)
        if obj is not None:
            self._uids.pop(str((obj.get("metadata") or {}).get("uid", "")), None)
        return obj

    async def create(self, key: Key, obj: Obj) -> Obj:
        """Store a new object; raises :class:`AlreadyExists`."""
        return await _shielded(self._create(key, obj))

    async def _create(self, key: Key, obj: Obj) -> Obj:
        async with self._lock:
            ident = _ident(obj)
            if ident in self._objects.get(key, {}):
                raise AlreadyExists
            return await self._commit("ADDED", key, copy.deepcopy(obj), None)

    async def update(self, key: Key, obj: Obj, *, expected_rv: str) -> Obj:
        """Replace an object whose stored revision is ``expected_rv``."""
        return await _shielded(self._update(key, obj, expected_rv))

    async def _update(self, key: Key, obj: Obj, expected_rv: str) -> Obj:
        async with self._lock:
            ident = _ident(obj)
            old = self._objects.get(key, {}).get(ident)
            if old is None:
                raise Missing
            if str(old["metadata"].get("resourceVersion")) != expected_rv:
                raise Conflict
            return await self._commit("MODIFIED", key, copy.deepcopy(obj), old)

    async def delete(
        self,
        key: Key,
        namespace: str,
        name: str,
        *,
        expected_rv: str | None,
        final: Obj | None = None,
    ) -> Obj:
        """Remove an object (only at revision ``expected_rv`` when given); returns its final state.

        ``final`` is the state the DELETED event carries (default: the stored one), e.g. the
        object after the update that removed its last finalizer.
        """
        return await _shielded(self._delete(key, namespace, name, expected_rv, final))

    async def _delete(
        self, key: Key, namespace: str, name: str, expected_rv: str | None, final: Obj | None
    ) -> Obj:
        async with self._lock:
            old = self._objects.get(key, {}).get((namespace, name))
            if old is None:
                raise Missing
            if (
                expected_rv is not None
                and str(old["metadata"].get("resourceVersion")) != expected_rv
            ):
                raise Conflict
            last = copy.deepcopy(final if final is not None else old)
            return await self._commit("DELETED", key, last, old)

    async def _commit(self, kind: str, key: Key, obj: Obj, old: Obj | None) -> Obj:
        rv = self.revision + 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
        if self._persistence is not None:
            if kind == "DELETED":
                ns, name = _ident(obj)
                await self._persistence.remove(key, ns, name, rv)
            else:
                await self._persistence.put(key, obj, rv)
        self.revision = rv
        if kind == "DELETED":
            self._drop(key, _ident(obj))
        else:
            self._put(key, obj)
        event = Event(kind, key, rv, obj, old)
        for listener in self.listeners:
            listener(event)
        self._history.append(event)
        while len(self._history) > self._history_size:
            self._compacted = self._history.popleft().rv
        for watcher in list(self._watchers):
            if watcher.closed:
                self._watchers.discard(watcher)
            elif watcher.wants(event):
                watcher.push(event)
        return copy.deepcopy(obj)

    # watch -------------------------------------------------------------------------------
    def watch(
        self, key: Key | None, namespace: str | None, since: int | None, *, bounded: bool = True
    ) -> Watcher:
        """Open a watch on changes after revision ``since`` (``None``: from now on).

        Raises :class:`Expired` when ``since`` is older than the retained history.
        """
        watcher = Watcher(key, namespace, self._queue_size if bounded else 0)
        if since is not None:
            if since < self._compacted:
                raise Expired(since, self._compacted + 1)
            floor = self._watch_floors.get(key, self._watch_start) if key else 0
            if since < floor:
                raise Expired(since, floor)
            for event in self._history:
                if event.rv > since and watcher.wants(event):
                    watcher.items.append(event)
        self._watchers.add(watcher)
        return watcher

    def start_watch_history(self, key: Key | None = None) -> None:
        """Start the watch history of ``key`` (all resources without one) at the current
        revision: a watch from an older revision is then :class:`Expired`, as one from before
        a kube-apiserver watch cache was initialised."""
        if key is None:
            self._watch_start = self.revision
            self._watch_floors.clear()
        else:
            self._watch_floors[key] = self.revision

    def stop_watch(self, watcher: Watcher) -> None:
        watcher.close()
        self._watchers.discard(watcher)

    def compact(self) -> int:
        """Test hook: forget the history, as an etcd compaction would; returns the revision."""
        self._history.clear()
        self._compacted = self.revision
        return self.revision

    def drop_watches(self) -> int:
        """Close every open (bounded, i.e. client) watch; returns how many were closed."""
        dropped = [w for w in self._watchers if w.limit]
        for watcher in dropped:
            self.stop_watch(watcher)
        return len(dropped)
