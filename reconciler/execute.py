"""The thin layer that performs a plan: one API call per action, then read-your-writes.

:class:`Executor` runs a plan's actions in order and stops at the first failure (the error goes to
the work queue, which retries with backoff; the next ``observe`` sees whatever did succeed). After
each write it waits, briefly, until the informer cache holds the written version, so the next
reconcile of the same object never decides from a cache older than its own write: that is what
keeps a generateName create from happening twice, and an idle object from being written twice.

Create of an existing object (409 AlreadyExists) and Delete of a missing one (404) are done, not
failures: the world already is as the plan wanted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

from reconciler.actions import (
    Create,
    Delete,
    JsonPatch,
    MergePatch,
    RecordEvent,
    Ref,
    WriteStatus,
)
from reconciler.events import EventRecorder
from reconciler.informer import Informer
from reconciler.kube import ApiError, KubeClient
from reconciler.metrics import Metrics

__all__ = ["Executor", "ExtraAction"]

log = logging.getLogger(__name__)

ExtraAction = Callable[[Any], Awaitable[None]]
"""Performs a controller's own action type (e.g. a Serve submission)."""

_READ_YOUR_WRITES_SECONDS: Final = 3.0


class Executor:
    """Performs the generic actions of ``reconciler.actions`` for one controller."""

    def __init__(
        self,
        kube: KubeClient,
        *,
        controller: str,
        recorder: EventRecorder,
        caches: Mapping[tuple[str, str], Informer],
        metrics: Metrics,
        extra: ExtraAction | None = None,
    ) -> None:
        self.kube = kube
        self.controller = controller
        self.recorder = recorder
        self.caches = caches
        self.metrics = metrics
        self.extra = extra

    async def run(self, actions: Iterable[Any]) -> None:
        """Perform ``actions`` in order; raises the first failure."""
        for action in actions:
            await self.perform(action)

    async def perform(self, action: Any) -> None:
        """Perform one action (see the module docstring for what counts as done)."""
        match action:
            case Create(obj=obj, why=why):
                try:
                    created = await self.kube.create(obj)
                except ApiError as e:
                    if not e.already_exists:
                        raise
                    return
                self._wrote("create")
                log.info(
                    "object created",
                    extra={"object": str(action.ref), "as": _name(created), "why": why},
                )
                await self._settle(created)
            case MergePatch(ref=ref, patch=patch, why=why):
                patched = await self.kube.merge_patch(ref, patch)
                self._wrote("patch")
                log.info("object patched", extra={"object": str(ref), "why": why})
                await self._settle(patched)
            case JsonPatch(ref=ref, ops=ops, why=why):
                patched = await self.kube.json_patch(ref, ops)
                self._wrote("patch")
                log.info("object patched", extra={"object": str(ref), "why": why})
                await self._settle(patched)
            case Delete(ref=ref, propagation=propagation, why=why):
                answer = await self.kube.delete(ref, propagation=propagation)
                if answer is not None:
                    self._wrote("delete")
                    log.info("object deleted", extra={"object": str(ref), "why": why})
                    await self._settle_deletion(ref, answer)
            case WriteStatus(ref=ref, status=status):
                written = await self.kube.json_patch(
                    ref, [{"op": "add", "path": "/status", "value": status}], subresource="status"
                )
                self._wrote("status")
                log.debug("status written", extra={"object": str(ref)})
                await self._settle(written)
            case RecordEvent():
                await self.recorder.record(action)
                self._wrote("event")
            case _ if self.extra is not None:
                await self.extra(action)
            case _:
                raise TypeError(f"no executor for {type(action).__name__}")

    def _wrote(self, verb: str) -> None:
        self.metrics.api_writes.labels(self.controller, verb).inc()

    async def _settle(self, obj: Mapping[str, Any]) -> None:
        """Wait (bounded) until the cache of ``obj``'s kind holds this version of it."""
        cache = self.caches.get((str(obj.get("apiVersion")), str(obj.get("kind"))))
        if cache is None:
            return
        meta = obj.get("metadata") or {}
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_READ_YOUR_WRITES_SECONDS):
                await cache.wait_for(
                    str(meta.get("namespace") or ""),
                    str(meta.get("name")),
                    str(meta.get("resourceVersion")),
                )
                return
        log.debug("cache lags behind a write", extra={"object": _name(obj)})

    async def _settle_deletion(self, ref: Ref, answer: Mapping[str, Any]) -> None:
        """Wait (bounded) until the cache shows the deletion: the object marked for deletion
        (a graceful delete answers with that version) or gone. A plan made from a cache that
        still held it would delete it, or another object in its place, a second time."""
        cache = self.caches.get((ref.api_version, ref.kind))
        if cache is None:
            return
        meta = answer.get("metadata") if answer.get("kind") == ref.kind else None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_READ_YOUR_WRITES_SECONDS):
                if isinstance(meta, Mapping) and meta.get("deletionTimestamp"):
                    await cache.wait_for(ref.namespace, ref.name, str(meta.get("resourceVersion")))
                else:
                    await cache.wait_gone(ref.namespace, ref.name)
                return
        log.debug("cache lags behind a deletion", extra={"object": str(ref)})


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"
