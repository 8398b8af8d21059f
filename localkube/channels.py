"""``exec`` and ``attach`` over a WebSocket: the ``v5.channel.k8s.io`` and ``v4.channel.k8s.io``
protocols (what kubectl 1.30+ and client libraries speak).

Every WebSocket message is binary: one byte naming the channel, then data. Channels: 0 stdin
(client to server), 1 stdout, 2 stderr, 3 error (one JSON ``Status`` when the session ends:
``Success``, or ``Failure`` with reason ``NonZeroExitCode`` and an ``ExitCode`` cause, as the
kubelet writes it), 4 resize (client to server: ``{"Width": w, "Height": h}``). ``v5`` adds
channel 255: ``[255, n]`` closes channel ``n`` (the client's end of stdin). The server sends an
empty message on its lowest output channel once the session is open, then output, then the
status, then closes the WebSocket normally.

Owns the framing, the session's tasks (reading the client, running the node's side, sending the
status) and the bounds: message size, open sessions, the size of a resize message. What runs is
the node's business (:class:`localkube.kubelet.Kubelet`); a client that leaves cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import MutableSet
from typing import Any

from aiohttp import WSMsgType, web

from localkube import errors
from localkube.errors import ApiError
from localkube.kubelet import (
    Kubelet,
    KubeletError,
    PodRef,
    StreamOptions,
    Streams,
    TerminalSize,
)

__all__ = [
    "MAX_SESSIONS",
    "PROTOCOLS",
    "check_upgrade",
    "exit_status",
    "serve",
]

log = logging.getLogger(__name__)

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
MAX_MESSAGE = 1 << 20  # bytes of one client message (kubectl sends at most 32 KiB)
MAX_SESSIONS = 128  # open exec, attach and port-forward sessions per API server
MAX_TERMINAL = 65535
CLOSE_SECONDS = 5.0  # how long a closing handshake may take before the connection is dropped


def offered_protocols(request: web.Request) -> list[str]:
    """The subprotocols a WebSocket handshake offers, in the client's order."""
    offered: list[str] = []
    for header in request.headers.getall("Sec-WebSocket-Protocol", []):
        offered += [p.strip() for p in header.split(",") if p.strip()]
    return offered


def check_upgrade(
    request: web.Request, supported: tuple[str, ...], sessions: MutableSet[Any]
) -> str:
    """The protocol to answer a WebSocket upgrade with, or the 400/429 kube-apiserver answers."""
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise errors.bad_request("Upgrade request required")
    offered = offered_protocols(request)
    chosen = next((p for p in supported if p in offered), None)
    if chosen is None:
        raise errors.bad_request(
            f"unable to upgrade connection: requested protocol(s) are not supported: "
            f"[{' '.join(offered)}]; supports [{' '.join(supported)}]"
        )
    if len(sessions) >= MAX_SESSIONS:
        raise ApiError(
            429,
            "TooManyRequests",
            f"too many open exec, attach and port-forward sessions (at most {MAX_SESSIONS})",
            retry_after_seconds=1,
        )
    return chosen


def exit_status(code: int, command: tuple[str, ...]) -> dict[str, Any]:
    """The error channel's ``Status`` for a command that ended with ``code``."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            "command terminated with non-zero exit code: error executing command "
            f"[{' '.join(command)}], exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def failure_status(message: str) -> dict[str, Any]:
    """The error channel's ``Status`` when the node could not run the session."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {message}",
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


def parse_resize(data: bytes) -> TerminalSize | None:
    """A resize message (``{"Width": 80, "Height": 24}``); ``None`` when it is not one."""
    if len(data) > 256:
        return None
    try:
        size = json.loads(data)
        width, height = size["Width"], size["Height"]
    except (ValueError, TypeError, KeyError):
        return None
    if not all(isinstance(v, int) and 0 <= v <= MAX_TERMINAL for v in (width, height)):
        return None
    return TerminalSize(width, height)


async def serve(
    request: web.Request,
    kubelet: Kubelet,
    pod: PodRef,
    options: StreamOptions,
    *,
    attach: bool,
    sessions: MutableSet[Any],
) -> web.WebSocketResponse:
    """Upgrade to a WebSocket and run one exec or attach session on it."""
    protocol = check_upgrade(request, PROTOCOLS, sessions)
    try:
        kubelet.check(pod, options.container, attach=attach)
    except KubeletError as e:
        raise ApiError(404, "NotFound", str(e)) from e
    ws = web.WebSocketResponse(protocols=(protocol,), max_msg_size=MAX_MESSAGE, autoping=True)
    sessions.add(ws)  # counted from the check on, before any await: the cap holds under a burst
    started = asyncio.get_running_loop().time()
    try:
        await ws.prepare(request)
        session = _Session(ws, protocol, options)
        await session.run(kubelet, pod, attach=attach)
    finally:
        sessions.discard(ws)
        log.info(
            "stream session ended",
            extra={
                "pod": f"{pod.namespace}/{pod.name}",
                "container": options.container,
                "kind": "attach" if attach else "exec",
                "protocol": protocol,
                "seconds": round(asyncio.get_running_loop().time() - started, 3),
            },
        )
    return ws


class _Session:
    def __init__(self, ws: web.WebSocketResponse, protocol: str, options: StreamOptions) -> None:
        self.ws = ws
        self.protocol = protocol
        self.options = options
        self._lock = asyncio.Lock()
        self.streams = Streams(
            stdout=lambda data: self._send(STDOUT, data),
            stderr=lambda data: self._send(STDERR, data),
        )

    async def _send(self, channel: int, data: bytes) -> None:
        async with self._lock:
            if not self.ws.closed:
                await self.ws.send_bytes(bytes((channel,)) + data)

    async def run(self, kubelet: Kubelet, pod: PodRef, *, attach: bool) -> None:
        options = self.options
        first = STDOUT if options.stdout else STDERR if options.stderr else ERROR
        await self._send(first, b"")  # tells the client the session is open
        if attach:
            call: asyncio.Task[Any] = asyncio.create_task(
                kubelet.attach(pod, options, self.streams)
            )
        else:
            call = asyncio.create_task(kubelet.exec(pod, options, self.streams))
        reader = asyncio.create_task(self._read())
        try:
            await asyncio.wait((call, reader), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not call.done():
                call.cancel()  # the client left: the node ends what it started
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await call
        if not call.cancelled():
            error = call.exception()
            if isinstance(error, KubeletError):
                status = failure_status(str(error))
            elif error is not None:
                log.error("stream session failed", extra={"error": repr(error)})
                status = failure_status("the node could not serve the session")
            else:
                status = {"metadata": {}, "status": "Success"}
                if not attach:
                    status = exit_status(int(call.result()), options.command)
            with contextlib.suppress(ConnectionError):
                await self._send(ERROR, json.dumps(status).encode())
        with contextlib.suppress(ConnectionError):
            await self.ws.close()  # the reader sees the close and ends
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await reader
        except TimeoutError:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read(self) -> None:
        """Demultiplex the client's messages until it closes the WebSocket."""
        stdin = self.streams.stdin
        try:
            async for message in self.ws:
                if message.type != WSMsgType.BINARY or not message.data:
                    continue
                data: bytes = message.data
                channel = data[0]
                if channel == STDIN and self.options.stdin:
                    await stdin.put(data[1:])
                elif channel == RESIZE and self.options.tty:
                    size = parse_resize(data[1:])
                    if size is not None:
                        self.streams.resize(size)
                elif channel == CLOSE and self.protocol == V5 and data[1:] == bytes((STDIN,)):
                    await stdin.put(None)
        finally:
            with contextlib.suppress(asyncio.QueueFull):
                stdin.put_nowait(None)
