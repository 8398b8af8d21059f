"""``/healthz``, ``/readyz`` and ``/metrics`` over plain HTTP, on an event loop of their own.

The probes must answer while admissions keep the main event loop busy (a large review decided,
a flood of connections): a kubelet that sees a slow ``/healthz`` restarts the pod, and every
admission with it. So the health server runs its own event loop in a thread. It shares only
``ServerState`` and the Prometheus registry, which is thread-safe. ``/healthz`` fails when the
admission loop's heartbeat is older than ``stall_seconds``: a loop that stopped turning is a
process to restart.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from webhook.connections import SERVER_NAME

__all__ = ["HealthServer", "ServerState"]


@dataclass
class ServerState:
    """What the health endpoints report; written by the main loop, read by the health thread."""

    ready: bool = False
    draining: bool = False
    heartbeat: float = field(default_factory=time.monotonic)
    """``time.monotonic()`` when the admission loop last turned."""
    stall_seconds: float = 10.0


_STATE: Final = web.AppKey("state", ServerState)
_HEADERS: Final = {"Server": SERVER_NAME}
_REGISTRY: Final = web.AppKey("registry", CollectorRegistry)


def make_health_app(registry: CollectorRegistry, state: ServerState) -> web.Application:
    """Liveness, readiness and metrics."""
    app = web.Application()
    app[_STATE] = state
    app[_REGISTRY] = registry

    async def healthz(request: web.Request) -> web.Response:
        current = request.app[_STATE]
        if time.monotonic() - current.heartbeat > current.stall_seconds:
            return web.Response(status=503, text="admission loop stalled\n", headers=_HEADERS)
        return web.Response(text="ok\n", headers=_HEADERS)

    async def readyz(request: web.Request) -> web.Response:
        current = request.app[_STATE]
        if current.draining:
            return web.Response(status=503, text="draining\n", headers=_HEADERS)
        if not current.ready:
            return web.Response(status=503, text="starting\n", headers=_HEADERS)
        return web.Response(text="ok\n", headers=_HEADERS)

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(request.app[_REGISTRY])
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, **_HEADERS})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


class HealthServer:
    """The health app served on ``sock`` by a daemon thread with its own event loop."""

    def __init__(self, sock: socket.socket, registry: CollectorRegistry, state: ServerState):
        self._sock = sock
        self._app = make_health_app(registry, state)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="raysvc-health", daemon=True)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def start(self) -> None:
        """Start serving; returns once the server accepts connections (raises if it cannot)."""
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread to end."""
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=1.0)
        try:
            await runner.setup()
            await web.SockSite(runner, self._sock).start()
        except BaseException as exc:
            self._error = exc
            self._started.set()
            await runner.cleanup()
            return
        self._started.set()
        try:
            await self._stopped.wait()
        finally:
            await runner.cleanup()
