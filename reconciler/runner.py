"""Runs one controller: a work queue and a bounded number of workers calling its reconcile.

A reconcile takes a key and returns when to look again (seconds) or None. Outcomes:

- success: the key's backoff is forgotten; a requested requeue is a timer, stretched by up to
  10 % at random so that a thousand objects that settled together do not all poll their
  dashboards in the same second (a change to one of them would wait behind that burst);
- a failure: the key is retried after a jittered delay that doubles with each consecutive
  failure (``reconciler.queue``); expected failures (the API or a dashboard refusing or timing
  out) are one warning line, anything else is logged with its traceback (a bug).

One key is never reconciled by two workers at once (the queue guarantees it).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

import aiohttp

from reconciler.dashboard import DashboardError
from reconciler.informer import Key
from reconciler.kube import ApiError
from reconciler.metrics import Metrics
from reconciler.queue import WorkQueue

__all__ = ["Reconcile", "Runner"]

log = logging.getLogger(__name__)

Reconcile = Callable[[Key], Awaitable[float | None]]


class Runner:
    """The queue and workers of the controller ``name``."""

    def __init__(
        self, name: str, reconcile: Reconcile, *, metrics: Metrics, workers: int = 4
    ) -> None:
        self.name = name
        self.reconcile = reconcile
        self.metrics = metrics
        self.workers = workers
        self.queue: WorkQueue[Key] = WorkQueue()

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)
        self.metrics.queue_depth.labels(self.name).set(len(self.queue))

    async def run(self) -> None:
        """Work until cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.workers):
                    group.create_task(self._work())
        finally:
            self.queue.shut_down()

    async def _work(self) -> None:
        metrics = self.metrics
        while True:
            key = await self.queue.get()
            metrics.queue_depth.labels(self.name).set(len(self.queue))
            start = time.perf_counter()
            object_name = f"{key[0]}/{key[1]}"
            try:
                requeue = await self.reconcile(key)
            except (ApiError, DashboardError, aiohttp.ClientError, OSError, TimeoutError) as e:
                delay = self.queue.retry(key)
                metrics.reconciles.labels(self.name, "error").inc()
                log.warning(
                    "reconcile failed",
                    extra={
                        "controller": self.name,
                        "object": object_name,
                        "error": str(e) or repr(e),
                        "retry_in": round(delay, 2),
                    },
                )
            except Exception:
                delay = self.queue.retry(key)
                metrics.reconciles.labels(self.name, "error").inc()
                log.exception(
                    "reconcile crashed",
                    extra={"controller": self.name, "object": object_name, "retry_in": delay},
                )
            else:
                self.queue.forget(key)
                if requeue is not None:
                    self.queue.add_after(key, requeue * random.uniform(1.0, 1.1))
                metrics.reconciles.labels(self.name, "requeue" if requeue else "done").inc()
            finally:
                self.queue.done(key)
                metrics.reconcile_seconds.labels(self.name).observe(time.perf_counter() - start)
