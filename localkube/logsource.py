"""Where Pod logs come from: a pluggable source behind ``GET .../pods/{name}/log``.

Owns the :class:`LogSource` protocol and :class:`MemoryLogs`, the default source that tests (and,
later, the node agent running Pods as local processes) append lines to. ``follow`` streams new
lines until the pod's log is closed or the client goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["LogRequest", "LogSource", "MemoryLogs"]


@dataclass(frozen=True)
class LogRequest:
    namespace: str
    pod: str
    container: str
    follow: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None
    previous: bool = False


class LogSource(Protocol):
    """Yields chunks of a container's log."""

    def read(self, request: LogRequest) -> AsyncIterator[bytes]: ...


@dataclass
class _Log:
    lines: list[bytes] = field(default_factory=list)
    closed: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryLogs:
    """Logs kept in memory, per (namespace, pod, container)."""

    def __init__(self) -> None:
        self._logs: dict[tuple[str, str, str], _Log] = {}

    def _log(self, namespace: str, pod: str, container: str) -> _Log:
        return self._logs.setdefault((namespace, pod, container), _Log())

    def append(self, namespace: str, pod: str, container: str, text: str) -> None:
        """Add text (split into lines) to a container's log and wake followers."""
        log = self._log(namespace, pod, container)
        log.lines.extend(line.encode() for line in text.splitlines(keepends=True))
        log.changed.set()

    def close(self, namespace: str, pod: str, container: str) -> None:
        """End a container's log: followers stop after the last line."""
        log = self._log(namespace, pod, container)
        log.closed = True
        log.changed.set()

    async def read(self, request: LogRequest) -> AsyncIterator[bytes]:
        log = self._log(request.namespace, request.pod, request.container)
        start = 0 if request.tail_lines is None else max(0, len(log.lines) - request.tail_lines)
        sent = 0
        index = start
        while True:
            while index < len(log.lines):
                chunk = log.lines[index]
                index += 1
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
