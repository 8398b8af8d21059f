"""The work queue of one controller: keys, not events.

Semantics (those of client-go's workqueue, which controllers are written against):

- a key is queued at most once, however many events name it (events coalesce);
- a key being reconciled is never handed to a second worker; if it is added meanwhile it is
  queued again when the first reconcile is done (so the last change is never missed);
- ``add_after`` wakes a key later (timers: deadlines, health polls); the earliest wins;
- ``retry`` wakes a key after a jittered delay that doubles with each consecutive failure of that
  key, up to ``max_delay``; ``forget`` resets the count after a success.

The delays are the only state, and losing them (a restart) only means an earlier reconcile.
"""

from __future__ import annotations

import asyncio
import collections
import random
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["WorkQueue"]

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    """Keys waiting for a reconcile; see the module docstring for the rules."""

    def __init__(
        self, *, base_delay: float = 0.5, max_delay: float = 60.0, jitter: float = 0.2
    ) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.jitter = jitter
        self._ready: collections.deque[K] = collections.deque()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._failures: dict[K, int] = {}
        self._wakeup = asyncio.Event()
        self._shut = False

    def __len__(self) -> int:
        """Keys waiting to be handed out now (the depth a dashboard shows)."""
        return len(self._ready)

    def add(self, key: K) -> None:
        """Queue ``key`` now (a no-op if it is already queued)."""
        if self._shut:
            return
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._ready.append(key)
        self._notify()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds, unless an earlier wake-up is already set."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        current = self._timers.get(key)
        if current is not None:
            if current[0] <= when:
                return
            current[1].cancel()
        self._timers[key] = (when, loop.call_at(when, self._fire, key))

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def retry(self, key: K) -> float:
        """Queue ``key`` after its backoff delay; returns the delay in seconds."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay: float = min(self.max_delay, self.base_delay * 2.0 ** min(failures, 30))
        delay *= random.uniform(1 - self.jitter, 1 + self.jitter)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """The key succeeded: its next failure starts the backoff again."""
        self._failures.pop(key, None)

    def _notify(self) -> None:
        self._wakeup.set()

    async def get(self) -> K:
        """The next key to reconcile; call :meth:`done` with it afterwards.

        Raises ``CancelledError`` once the queue is shut down.
        """
        while not self._ready:
            if self._shut:
                raise asyncio.CancelledError
            self._wakeup.clear()
            await self._wakeup.wait()
        key = self._ready.popleft()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        """A reconcile of ``key`` finished; re-queue it if it was added meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def shut_down(self) -> None:
        """Stop handing out keys; cancel every timer."""
        self._shut = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._wakeup.set()
