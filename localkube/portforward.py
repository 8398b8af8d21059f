"""``port-forward``: the ``portforward.k8s.io`` protocol, SPDY/3.1 tunnelled through a WebSocket
(subprotocol ``SPDY/3.1+portforward.k8s.io``, what kubectl 1.31+ dials first).

The WebSocket's binary messages carry the SPDY byte stream in arbitrary pieces. For each local
connection the client opens two SPDY streams with the same ``requestid`` header: ``streamtype:
error`` (which it half-closes at once) and ``streamtype: data``, both with the remote ``port``.
Once both exist, the node opens ``localhost:port`` inside the Pod's network namespace and the
data stream carries the bytes both ways; a failure is written on the error stream in the
kubelet's words, and both streams are closed (FIN) when the Pod's side is done. PINGs are
echoed; the client's FIN on the data stream half-closes the Pod connection, RST_STREAM aborts it.

Bounds: streams per connection, client data not yet delivered to the Pods (at most
:data:`PENDING_BYTES` per connection, in pieces of at most :data:`CHUNK`: past it the tunnel
stops reading from the client until the Pods take some), the time a stream waits for its pair,
the connection to the Pod (it must answer within :data:`CONNECT_SECONDS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, MutableSet
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from localkube import spdy
from localkube.channels import MAX_MESSAGE, check_upgrade
from localkube.errors import ApiError
from localkube.kubelet import Kubelet, KubeletError, PodRef

__all__ = ["PROTOCOL", "serve"]

log = logging.getLogger(__name__)

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
MAX_STREAMS = 512  # open streams per connection (two per forwarded connection)
PENDING_BYTES = 4 << 20  # client data held for the Pods per connection, all streams together
PAIR_SECONDS = 30.0  # how long a stream waits for its partner (the kubelet's stream timeout)
CONNECT_SECONDS = 10.0
CHUNK = 32 * 1024


async def serve(
    request: web.Request, kubelet: Kubelet, pod: PodRef, sessions: MutableSet[Any]
) -> web.WebSocketResponse:
    """Upgrade to a WebSocket and forward connections to the Pod until the client leaves."""
    check_upgrade(request, (PROTOCOL,), sessions)
    try:
        kubelet.check(pod, "")
    except KubeletError as e:
        raise ApiError(404, "NotFound", str(e)) from e
    ws = web.WebSocketResponse(protocols=(PROTOCOL,), max_msg_size=MAX_MESSAGE, autoping=True)
    sessions.add(ws)  # counted from the check on, before any await: the cap holds under a burst
    tunnel = _Tunnel(ws, kubelet, pod)
    started = time.monotonic()
    try:
        await ws.prepare(request)
        await tunnel.run()
    finally:
        sessions.discard(ws)
        log.info(
            "port-forward ended",
            extra={
                "pod": f"{pod.namespace}/{pod.name}",
                "connections": tunnel.forwarded,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
    return ws


@dataclass
class _Pair:
    """The error and data streams of one forwarded connection."""

    request_id: str
    port: int
    error: int = 0
    data: int = 0
    created: float = field(default_factory=time.monotonic)
    inbound: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    closed: bool = False
    draining: bool = False  # the Pod side is gone: client data is dropped

    def discard_pending(self) -> int:
        """Drop the data not yet delivered; how many bytes."""
        self.draining = True
        dropped = 0
        while not self.inbound.empty():
            dropped += len(self.inbound.get_nowait() or b"")
        return dropped


class _Tunnel:
    def __init__(self, ws: web.WebSocketResponse, kubelet: Kubelet, pod: PodRef) -> None:
        self.ws = ws
        self.kubelet = kubelet
        self.pod = pod
        self.reader = spdy.FrameReader()
        self.writer = spdy.FrameWriter()
        self._lock = asyncio.Lock()
        self.pairs: dict[str, _Pair] = {}
        self.streams: dict[int, _Pair] = {}
        self.last_stream = 0
        self.forwarded = 0
        self.pending = 0  # client bytes queued for the Pods, every stream together
        self._room = asyncio.Event()
        self._room.set()

    async def _hold(self, pair: _Pair, data: bytes) -> None:
        """Queue client data for the Pod, waiting while the connection's budget is spent."""
        for start in range(0, len(data), CHUNK):
            piece = data[start : start + CHUNK]
            while self.pending >= PENDING_BYTES and not pair.draining:
                self._room.clear()
                await self._room.wait()
            if pair.draining:
                return
            self.pending += len(piece)
            pair.inbound.put_nowait(piece)

    def _release(self, count: int) -> None:
        if count:
            self.pending -= count
            self._room.set()

    async def _send(self, frame: bytes = b"", build: Callable[[], bytes] | None = None) -> None:
        """Send one frame; ``build`` (called under the lock) when it uses compression state."""
        async with self._lock:
            if self.ws.closed:
                return
            with contextlib.suppress(ConnectionError):
                await self.ws.send_bytes(build() if build is not None else frame)

    async def run(self) -> None:
        reaper = asyncio.create_task(self._reap())
        try:
            async for message in self.ws:
                if message.type != WSMsgType.BINARY:
                    continue
                for frame in self.reader.feed(message.data):
                    if not await self._handle(frame):
                        return
        except spdy.SpdyError as e:
            log.warning("port-forward protocol error", extra={"error": str(e)})
            await self._send(self.writer.goaway(self.last_stream))
        finally:
            reaper.cancel()
            tasks = [p.task for p in self.pairs.values() if p.task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(reaper, *tasks, return_exceptions=True)
            with contextlib.suppress(ConnectionError):
                await self.ws.close()

    async def _handle(self, frame: spdy.Frame) -> bool:
        """Act on one frame; False when the connection is to end."""
        if isinstance(frame, spdy.SynStream):
            await self._open(frame)
        elif isinstance(frame, spdy.Data):
            pair = self.streams.get(frame.stream_id)
            if pair is not None and frame.stream_id == pair.data and not pair.draining:
                if frame.data:
                    await self._hold(pair, frame.data)
                if frame.fin:
                    pair.inbound.put_nowait(None)
        elif isinstance(frame, spdy.RstStream):
            pair = self.streams.get(frame.stream_id)
            if pair is not None:
                self._drop(pair)
        elif isinstance(frame, spdy.Ping):
            await self._send(self.writer.ping(frame.id))
        elif isinstance(frame, spdy.GoAway):
            return False
        return True

    async def _open(self, frame: spdy.SynStream) -> None:
        sid = frame.stream_id
        self.last_stream = max(self.last_stream, sid)
        kind = (frame.headers.get("streamtype") or [""])[0]
        port_text = (frame.headers.get("port") or [""])[0]
        request_id = (frame.headers.get("requestid") or [""])[0]
        port = int(port_text) if port_text.isdigit() else 0
        full = len(self.streams) >= MAX_STREAMS
        if kind not in ("error", "data") or not 0 < port < 65536 or full:
            await self._send(build=lambda: self.writer.syn_reply(sid, fin=True))
            await self._send(self.writer.rst_stream(sid, spdy.RST_REFUSED_STREAM))
            return
        await self._send(build=lambda: self.writer.syn_reply(sid))
        pair = self.pairs.setdefault(request_id, _Pair(request_id, port))
        if getattr(pair, kind) or pair.port != port:
            await self._send(self.writer.rst_stream(sid, spdy.RST_PROTOCOL_ERROR))
            return
        setattr(pair, kind, sid)
        self.streams[sid] = pair
        if pair.error and pair.data and pair.task is None:
            self.forwarded += 1
            pair.task = asyncio.create_task(self._forward(pair))

    def _drop(self, pair: _Pair) -> None:
        """Forget a pair (its task, if any, is cancelled) and the data it still held."""
        pair.closed = True
        self._release(pair.discard_pending())
        self._room.set()  # a wait for room on its behalf ends (it is draining now)
        if pair.task is not None and asyncio.current_task() is not pair.task:
            pair.task.cancel()
        self.pairs.pop(pair.request_id, None)
        for sid in (pair.error, pair.data):
            self.streams.pop(sid, None)

    async def _reap(self) -> None:
        """Refuse streams whose partner never came."""
        while True:
            await asyncio.sleep(PAIR_SECONDS / 3)
            now = time.monotonic()
            for pair in list(self.pairs.values()):
                if pair.task is None and now - pair.created > PAIR_SECONDS:
                    for sid in (pair.error, pair.data):
                        if sid:
                            await self._send(self.writer.rst_stream(sid, spdy.RST_CANCEL))
                    self._drop(pair)

    async def _forward(self, pair: _Pair) -> None:
        try:
            try:
                async with asyncio.timeout(CONNECT_SECONDS):
                    reader, writer = await self.kubelet.port_forward(self.pod, pair.port)
            except (KubeletError, OSError, TimeoutError) as e:
                reason = str(e) or f"no answer within {CONNECT_SECONDS:g}s"
                message = (
                    f"error forwarding port {pair.port} to pod {self.pod.name}, "
                    f"uid {self.pod.uid}: {reason}"
                )
                await self._send(self.writer.data(pair.error, message.encode()))
                return
            upstream = asyncio.create_task(self._to_pod(pair, writer))
            try:
                while chunk := await reader.read(CHUNK):
                    await self._send(self.writer.data(pair.data, chunk))
            except (ConnectionError, OSError):
                pass
            finally:
                upstream.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await upstream
                writer.close()
        finally:
            self._release(pair.discard_pending())
            if not pair.closed:
                await self._send(self.writer.data(pair.data, b"", fin=True))
                await self._send(self.writer.data(pair.error, b"", fin=True))
            self._drop(pair)

    async def _to_pod(self, pair: _Pair, writer: asyncio.StreamWriter) -> None:
        try:
            while (chunk := await pair.inbound.get()) is not None:
                self._release(len(chunk))
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            writer.close()
