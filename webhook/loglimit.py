"""Log lines an attacker can provoke, at a bounded rate.

A client controls how often the webhook sees a malformed request, an aborted body or a failed
handshake; one line for each would let it fill the disk. ``LogLimiter`` lets each kind of event
through at most ``rate`` times a second (with a burst), and the next line that gets through
carries the number of lines suppressed since. Values in the lines are cut by the callers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["LogLimiter"]


class LogLimiter:
    """A token bucket per event kind (the log message): ``rate`` lines a second, ``burst`` at
    once. Not thread-safe: use it from the event loop."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        rate: float = 5.0,
        burst: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}  # message -> [tokens, last refill, suppressed]

    def log(
        self,
        level: int,
        message: str,
        extra: Mapping[str, Any] | None = None,
        *,
        exc_info: Any = None,
    ) -> bool:
        """Log ``message`` at ``level`` unless its kind is over the rate; True when logged."""
        if not self._logger.isEnabledFor(level):
            return False
        now = self._clock()
        bucket = self._buckets.get(message)
        if bucket is None:
            bucket = self._buckets[message] = [self._burst, now, 0.0]
        tokens = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            bucket[2] += 1
            return False
        bucket[0] = tokens - 1.0
        fields = dict(extra or {})
        if bucket[2]:
            fields["suppressed"] = int(bucket[2])
            bucket[2] = 0
        self._logger.log(level, message, extra=fields, exc_info=exc_info)
        return True
