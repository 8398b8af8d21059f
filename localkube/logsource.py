"""Where Pod logs come from: a pluggable source behind ``GET .../pods/{name}/log``.

Owns the :class:`LogSource` protocol, the :class:`LogRequest` it answers (what
``kubectl logs [-f] [--tail] [--since] [--timestamps] [--previous] [--limit-bytes]`` asks for),
the timestamp format the kubelet prefixes lines with, and :class:`MemoryLogs`, the default source
that tests append lines to. ``follow`` streams new lines until the pod's log is closed or the
client goes away. A source that cannot answer a request raises :class:`LogUnavailable` (the
kubelet's 400, e.g. no previous run).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["LogRequest", "LogSource", "LogUnavailable", "MemoryLogs", "format_timestamp"]


@dataclass(frozen=True)
class LogRequest:
    """One read of a container's log.

    ``since`` is a Unix time in seconds (``sinceSeconds``/``sinceTime`` resolved by the server):
    lines written before it are skipped. ``timestamps`` prefixes each line with the time it was
    written (:func:`format_timestamp`) and a space.
    """

    namespace: str
    pod: str
    container: str
    follow: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None
    previous: bool = False
    timestamps: bool = False
    since: float | None = None


class LogUnavailable(Exception):
    """The log asked for does not exist (answered 400, in the kubelet's words)."""


class LogSource(Protocol):
    """Yields chunks of a container's log.

    ``read`` raises :class:`LogUnavailable` when called (before any chunk is awaited) if the log
    asked for does not exist, so the server can still answer 400.
    """

    def read(self, request: LogRequest) -> AsyncIterator[bytes]: ...


def format_timestamp(ns: int) -> str:
    """A Unix time in nanoseconds as the kubelet prints it: RFC 3339, nine fractional digits, UTC.

    >>> format_timestamp(1_700_000_000_123_456_789)
    '2023-11-14T22:13:20.123456789Z'
    """
    seconds, fraction = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction:09d}Z"


@dataclass
class _Log:
    lines: list[tuple[int, bytes]] = field(default_factory=list)  # (written at, ns; text)
    closed: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryLogs:
    """Logs kept in memory, per (namespace, pod, container)."""

    def __init__(self) -> None:
        self._logs: dict[tuple[str, str, str], _Log] = {}

    def _log(self, namespace: str, pod: str, container: str) -> _Log:
        return self._logs.setdefault((namespace, pod, container), _Log())

    def append(
        self, namespace: str, pod: str, container: str, text: str, *, at: float | None = None
    ) -> None:
        """Add text (split into lines) to a container's log and wake followers.

        ``at`` is when the lines were written (Unix seconds; now by default).
        """
        log = self._log(namespace, pod, container)
        stamp = time.time_ns() if at is None else int(at * 1_000_000_000)
        log.lines.extend((stamp, line.encode()) for line in text.splitlines(keepends=True))
        log.changed.set()

    def close(self, namespace: str, pod: str, container: str) -> None:
        """End a container's log: followers stop after the last line."""
        log = self._log(namespace, pod, container)
        log.closed = True
        log.changed.set()

    def read(self, request: LogRequest) -> AsyncIterator[bytes]:
        """The log's chunks; :class:`LogUnavailable` at once for ``previous`` (no earlier runs
        are kept in memory)."""
        if request.previous:
            raise LogUnavailable(
                f'previous terminated container "{request.container}" in pod '
                f'"{request.pod}" not found'
            )
        return self._stream(request)

    async def _stream(self, request: LogRequest) -> AsyncIterator[bytes]:
        log = self._log(request.namespace, request.pod, request.container)
        start = 0 if request.tail_lines is None else max(0, len(log.lines) - request.tail_lines)
        since_ns = None if request.since is None else int(request.since * 1_000_000_000)
        sent = 0
        index = start
        while True:
            while index < len(log.lines):
                stamp, chunk = log.lines[index]
                index += 1
                if since_ns is not None and stamp < since_ns:
                    continue
                if request.timestamps:
                    chunk = f"{format_timestamp(stamp)} ".encode() + chunk
                if request.limit_bytes is not None:
                    chunk = chunk[: max(0, request.limit_bytes - sent)]
                    if not chunk:
                        return
                sent += len(chunk)
                yield chunk
            if not request.follow or log.closed:
                return
            log.changed.clear()
            await log.changed.wait()
