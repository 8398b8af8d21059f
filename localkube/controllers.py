"""The controller-manager work localkube does itself: garbage collection through
ownerReferences, namespace termination, and CRD instance cleanup.

Owns one task fed by an internal (unbounded) watch on every resource, plus a periodic resync:

- garbage collector: a dependent whose ownerReferences all name missing owners (by uid) is
  deleted (background); dangling references among live ones are removed. An owner deleted with
  ``propagationPolicy: Orphan`` has its dependents' references removed, then its ``orphan``
  finalizer; with ``Foreground``, its dependents are deleted and its ``foregroundDeletion``
  finalizer is removed once no dependent with ``blockOwnerDeletion: true`` remains.
- namespace controller: a terminating namespace has its content deleted, then goes away.
- CRD finalizer: a deleted CRD has its instances deleted, then its
  ``customresourcecleanup.apiextensions.k8s.io`` finalizer removed.

All changes go through :class:`localkube.pipeline.Pipeline` (so admission applies), as the real
controllers act through the API. Work is asynchronous, as in kube-controller-manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from localkube.errors import ApiError
from localkube.pipeline import Options, Pipeline
from localkube.resources import CRD_KEY, NAMESPACE_KEY, ResourceType
from localkube.storage import Event

__all__ = ["Controllers"]

log = logging.getLogger(__name__)

Key = tuple[str, str]
_CONTROLLER = Options(field_manager="localkube-controller-manager", field_validation="Ignore")
_CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


class Controllers:
    """Runs the controllers until cancelled (see the module docstring)."""

    def __init__(self, pipeline: Pipeline, *, resync_seconds: float = 1.0) -> None:
        self.pipeline = pipeline
        self.store = pipeline.store
        self.registry = pipeline.registry
        self.resync_seconds = resync_seconds

    async def run(self) -> None:
        watcher = self.store.watch(None, None, None, bounded=False)
        try:
            await self.resync()
            while True:
                try:
                    async with asyncio.timeout(self.resync_seconds):
                        item = await watcher.next()
                except TimeoutError:
                    try:
                        await self.resync()
                    except Exception:
                        log.exception("controller resync failed")
                    continue
                if item is None:
                    return
                if isinstance(item, Event):
                    try:
                        await self._react(item)
                    except Exception:  # a bug in one reaction must not stop the controllers
                        log.exception("controller reaction failed", extra={"event": item.type})
        finally:
            self.store.stop_watch(watcher)

    async def _react(self, event: Event) -> None:
        obj = event.obj
        if event.type == "DELETED":
            await self._owner_gone(str(_meta(obj).get("uid", "")))
            namespace = str(_meta(obj).get("namespace", ""))
            if namespace:
                await self._namespace(namespace)
            if event.key[0] and event.key != CRD_KEY:
                crd = self.store.get(CRD_KEY, "", f"{event.key[1]}.{event.key[0]}")
                if crd is not None and _meta(crd).get("deletionTimestamp"):
                    await self._crd(crd)
            return
        if _meta(obj).get("ownerReferences"):
            await self._dependent(event.key, obj)
        if _meta(obj).get("deletionTimestamp"):
            await self._deleting(event.key, obj)

    async def resync(self) -> None:
        """Look at every object once (catches work whose event was missed or failed)."""
        for key, obj in list(self.store.iter_objects()):
            if _meta(obj).get("ownerReferences"):
                await self._dependent(key, obj)
            if _meta(obj).get("deletionTimestamp"):
                await self._deleting(key, obj)

    # helpers ---------------------------------------------------------------------------------
    def _rt(self, key: Key) -> ResourceType | None:
        return self.registry.get(key)

    async def _call(self, what: str, coro: Any) -> bool:
        try:
            await coro
            return True
        except ApiError as e:
            if e.code not in (404, 409):
                log.warning("controller action failed", extra={"action": what, "error": e.message})
            return False

    async def _delete(self, key: Key, obj: Mapping[str, Any], policy: str = "Background") -> None:
        rt = self._rt(key)
        if rt is None or _meta(obj).get("deletionTimestamp"):
            return
        meta = _meta(obj)
        options = {"propagationPolicy": policy, "preconditions": {"uid": meta.get("uid")}}
        await self._call(
            "delete",
            self.pipeline.delete(
                rt,
                rt.storage_version,
                str(meta.get("namespace", "")),
                str(meta.get("name", "")),
                options,
                _CONTROLLER,
            ),
        )

    async def _merge_patch(
        self, key: Key, obj: Mapping[str, Any], patch: Mapping[str, Any]
    ) -> None:
        rt = self._rt(key)
        if rt is None:
            return
        meta = _meta(obj)
        body = json.dumps({"metadata": {"uid": meta.get("uid"), **patch}}).encode()
        await self._call(
            "patch",
            self.pipeline.patch(
                rt,
                rt.storage_version,
                str(meta.get("namespace", "")),
                str(meta.get("name", "")),
                body,
                "application/merge-patch+json",
                _CONTROLLER,
            ),
        )

    def _dependents(self, uid: str) -> list[tuple[Key, Mapping[str, Any]]]:
        return [
            (key, obj)
            for key, obj in self.store.iter_objects()
            if any(ref.get("uid") == uid for ref in _meta(obj).get("ownerReferences") or [])
        ]

    def _owner_exists(self, ref: Mapping[str, Any]) -> bool:
        found = self.store.find_uid(str(ref.get("uid", "")))
        return found is not None and found[2] == ref.get("name")

    # garbage collector -----------------------------------------------------------------------
    async def _owner_gone(self, uid: str) -> None:
        for key, dependent in self._dependents(uid):
            await self._dependent(key, dependent)
        # an owner deleting in the foreground may be waiting for this dependent
        for key, obj in list(self.store.iter_objects()):
            if "foregroundDeletion" in (_meta(obj).get("finalizers") or []) and _meta(obj).get(
                "deletionTimestamp"
            ):
                await self._foreground(key, obj)

    async def _dependent(self, key: Key, obj: Mapping[str, Any]) -> None:
        refs = list(_meta(obj).get("ownerReferences") or [])
        alive = [ref for ref in refs if self._owner_exists(ref)]
        if not alive:
            await self._delete(key, obj)
        elif len(alive) < len(refs):
            await self._merge_patch(key, obj, {"ownerReferences": alive})

    async def _deleting(self, key: Key, obj: Mapping[str, Any]) -> None:
        finalizers = list(_meta(obj).get("finalizers") or [])
        if "orphan" in finalizers:
            await self._orphan(key, obj)
        if "foregroundDeletion" in finalizers:
            await self._foreground(key, obj)
        if key == NAMESPACE_KEY:
            await self._namespace(str(_meta(obj).get("name", "")))
        if key == CRD_KEY and _CRD_FINALIZER in finalizers:
            await self._crd(obj)

    async def _remove_finalizer(self, key: Key, obj: Mapping[str, Any], finalizer: str) -> None:
        current = self.store.get(
            key, str(_meta(obj).get("namespace", "")), str(_meta(obj).get("name", ""))
        )
        if current is None:
            return
        remaining = [f for f in _meta(current).get("finalizers") or [] if f != finalizer]
        if len(remaining) != len(_meta(current).get("finalizers") or []):
            await self._merge_patch(key, current, {"finalizers": remaining or None})

    async def _orphan(self, key: Key, owner: Mapping[str, Any]) -> None:
        uid = str(_meta(owner).get("uid", ""))
        for dep_key, dependent in self._dependents(uid):
            refs = [r for r in _meta(dependent).get("ownerReferences") or [] if r.get("uid") != uid]
            await self._merge_patch(dep_key, dependent, {"ownerReferences": refs or None})
        if not self._dependents(uid):
            await self._remove_finalizer(key, owner, "orphan")

    async def _foreground(self, key: Key, owner: Mapping[str, Any]) -> None:
        uid = str(_meta(owner).get("uid", ""))
        blocking = False
        for dep_key, dependent in self._dependents(uid):
            ref = next(
                r for r in _meta(dependent).get("ownerReferences") or [] if r.get("uid") == uid
            )
            if ref.get("blockOwnerDeletion"):
                blocking = True
            if not _meta(dependent).get("deletionTimestamp"):
                await self._delete(
                    dep_key,
                    dependent,
                    "Foreground" if ref.get("blockOwnerDeletion") else "Background",
                )
        if not blocking:
            await self._remove_finalizer(key, owner, "foregroundDeletion")

    # namespaces and CRDs ---------------------------------------------------------------------
    async def _namespace(self, name: str) -> None:
        ns = self.store.get(NAMESPACE_KEY, "", name)
        if ns is None or not _meta(ns).get("deletionTimestamp"):
            return
        remaining = False
        for key, obj in list(self.store.iter_objects()):
            if key != NAMESPACE_KEY and _meta(obj).get("namespace") == name:
                remaining = True
                await self._delete(key, obj)
        if remaining or _meta(ns).get("finalizers"):
            return
        with contextlib.suppress(Exception):
            await self.store.delete(
                NAMESPACE_KEY, "", name, expected_rv=str(_meta(ns).get("resourceVersion"))
            )

    async def _crd(self, crd: Mapping[str, Any]) -> None:
        spec = crd.get("spec") or {}
        key = (str(spec.get("group", "")), str((spec.get("names") or {}).get("plural", "")))
        if self.store.count(key):
            for k, obj in list(self.store.iter_objects()):
                if k == key:
                    await self._delete(k, obj)
            return
        await self._remove_finalizer(CRD_KEY, crd, _CRD_FINALIZER)
