"""The seam between the API server and the node agents: what ``exec``, ``attach`` and
``port-forward`` ask of the node that runs a Pod.

kube-apiserver forwards these subresources to the kubelet of the Pod's node. localkube speaks the
client protocols itself (WebSocket channels, SPDY over WebSocket: :mod:`localkube.channels`,
:mod:`localkube.portforward`) and calls a :class:`Kubelet` in the same process with plain
streams, found in :class:`Kubelets` by the Pod's ``spec.nodeName``. The node agent of local mode
registers one (``LocalNode(kubelets=...)``). This module holds only the interface and its value
types; it does no I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "Kubelet",
    "KubeletError",
    "Kubelets",
    "PodRef",
    "StreamOptions",
    "Streams",
    "TerminalSize",
]

STDIN_QUEUE = 64  # stdin messages a node may fall behind before the client is slowed down


@dataclass(frozen=True)
class PodRef:
    """The Pod a session is for (``uid`` tells a Pod from an earlier one of the same name)."""

    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class StreamOptions:
    """What an ``exec`` or ``attach`` asked for (``command`` is empty for ``attach``)."""

    container: str
    command: tuple[str, ...] = ()
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    tty: bool = False


@dataclass(frozen=True)
class TerminalSize:
    width: int
    height: int


class KubeletError(Exception):
    """The node cannot serve the session; the message is in the kubelet's words."""


Send = Callable[[bytes], Awaitable[None]]


class Streams:
    """The client's end of an ``exec`` or ``attach`` session, as the node sees it.

    ``stdin`` yields what the client types (``None`` once its input ended), ``resizes`` the
    terminal sizes it reports; :meth:`stdout` and :meth:`stderr` send output to it.
    """

    def __init__(self, *, stdout: Send, stderr: Send) -> None:
        self.stdin: asyncio.Queue[bytes | None] = asyncio.Queue(STDIN_QUEUE)
        self.resizes: asyncio.Queue[TerminalSize] = asyncio.Queue(1)
        self._stdout = stdout
        self._stderr = stderr

    async def stdout(self, data: bytes) -> None:
        await self._stdout(data)

    async def stderr(self, data: bytes) -> None:
        await self._stderr(data)

    def resize(self, size: TerminalSize) -> None:
        """Record the newest terminal size (an unread older one is replaced)."""
        with contextlib.suppress(asyncio.QueueEmpty):
            self.resizes.get_nowait()
        self.resizes.put_nowait(size)


class Kubelet(Protocol):
    """A node agent's streaming side (errors it cannot serve are :class:`KubeletError`)."""

    def check(self, pod: PodRef, container: str, *, attach: bool = False) -> None:
        """Raise :class:`KubeletError` unless the Pod runs here and, when ``container`` is
        given, that container has a running process (for ``attach``: or output to replay).

        Called before the connection is upgraded, so the client sees the refusal as an HTTP
        answer.
        """
        ...

    async def exec(self, pod: PodRef, options: StreamOptions, streams: Streams) -> int:
        """Run ``options.command`` in the container; its exit code once it ended and its output
        was sent."""
        ...

    async def attach(self, pod: PodRef, options: StreamOptions, streams: Streams) -> None:
        """Join the container's running process until it ends (or the client leaves)."""
        ...

    async def port_forward(
        self, pod: PodRef, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to ``localhost:port`` inside the Pod's network namespace."""
        ...


class Kubelets:
    """The node agents this API server reaches, by node name."""

    def __init__(self) -> None:
        self._nodes: dict[str, Kubelet] = {}

    def register(self, node: str, kubelet: Kubelet) -> None:
        self._nodes[node] = kubelet

    def unregister(self, node: str, kubelet: Kubelet) -> None:
        if self._nodes.get(node) is kubelet:
            del self._nodes[node]

    def get(self, node: str) -> Kubelet | None:
        return self._nodes.get(node)
