"""Accepting and keeping HTTPS connections, with every connection-level cost bounded.

Anyone who can reach the port can open connections, so nothing here trusts a client:

- **A cap** (``max_connections``). At the cap the listener stops accepting (new connections wait
  in the kernel's backlog: back-pressure, not failure), after first closing the connection that
  has been idle longest, so idle connections cannot starve working ones. The cap stays below
  the process's file-descriptor limit, so ``accept()`` never fails for lack of descriptors.
- **Deadlines.** The TLS handshake (``handshake_timeout``); a request's headers, counted from
  the connection's start or the request's first byte (``header_timeout``); an idle keep-alive
  connection (``idle_timeout``, longer than the 90 s after which Go's HTTP client, the API
  server's, drops idle connections itself, so the server never closes one the client is about
  to reuse). The body's deadline is the handler's (``webhook.server``).
- **Small buffers.** asyncio's TLS layer reads into a 256 KiB buffer per connection, so 2,000
  idle connections held half a gigabyte that the allocator kept after they closed. It reads
  into 16 KiB here: TLS records are at most 16 KiB anyway.
- **Quiet failures.** Handshake failures, malformed HTTP and resets are logged at a bounded
  rate, one line each, without tracebacks (``webhook.loglimit``).

The HTTP/1.1 protocol itself is aiohttp's ``RequestHandler``, given the deadlines above.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import socket
import ssl
from asyncio import sslproto
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from rayservice.errors import short_repr
from webhook.loglimit import LogLimiter

__all__ = ["ConnectionLimits", "Listener", "bind", "connection_cap"]

log = logging.getLogger(__name__)

SERVER_NAME: Final = "raysvc"
"""The ``Server`` header: no versions to fingerprint."""

_RESERVED_FDS: Final = 64
"""Descriptors kept free for everything but client connections (files, the API, health)."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What one HTTPS connection may cost, and how many there may be."""

    max_connections: int = 1000
    handshake_timeout: float = 10.0
    header_timeout: float = 10.0
    """Seconds from a connection's start, or a request's first byte, to its complete headers."""
    idle_timeout: float = 120.0
    """Seconds an idle keep-alive connection is kept (Go's client drops its own at 90 s)."""
    lingering_timeout: float = 1.0
    """Seconds to drain an unread request body before closing the connection."""
    tls_shutdown_timeout: float = 2.0
    """Seconds a closing connection waits for the client's TLS close_notify."""


def connection_cap(wanted: int) -> int:
    """``wanted``, or less if the process may not open that many descriptors."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - _RESERVED_FDS))


def bind(host: str, port: int, *, backlog: int = 1024) -> socket.socket:
    """A listening, non-blocking TCP socket; raises ``OSError`` worded as asyncio words it."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"error while attempting to bind on address {address!r}: "
                f"{(exc.strerror or str(exc)).lower()}",
            ) from None
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _TlsProtocol(sslproto.SSLProtocol):
    """asyncio's TLS layer with a small read buffer, telling the listener when it is gone."""

    max_size = 16 * 1024  # bytes read from the socket at once; a TLS record is at most 16 KiB

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        app_protocol: asyncio.BaseProtocol,
        context: ssl.SSLContext,
        *,
        handshake_timeout: float,
        shutdown_timeout: float,
        on_lost: Callable[[], None],
    ) -> None:
        super().__init__(
            loop,
            app_protocol,
            context,
            None,  # type: ignore[arg-type]  # no one waits for the handshake
            server_side=True,
            ssl_handshake_timeout=handshake_timeout,  # type: ignore[arg-type]  # a float works
            ssl_shutdown_timeout=shutdown_timeout,
        )
        self._on_lost: Callable[[], None] | None = on_lost

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        if self._on_lost is not None:
            on_lost, self._on_lost = self._on_lost, None
            on_lost()


class _Handler(RequestHandler):
    """aiohttp's HTTP/1.1 handler, with a deadline for request headers and quiet errors."""

    def __init__(
        self,
        manager: web.Server,
        *,
        loop: asyncio.AbstractEventLoop,
        header_timeout: float,
        limiter: LogLimiter,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, loop=loop, access_log=None, **kwargs)  # type: ignore[arg-type]
        self._header_timeout = header_timeout
        self._header_handle: asyncio.TimerHandle | None = None
        self._limiter = limiter
        self._partial = False
        self.last_active = loop.time()

    @property
    def idle(self) -> bool:
        """Waiting for a request, with no part of one received."""
        return self._waiter is not None and not self._partial

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        before = self._request_count
        waiting = self._waiter is not None
        super().data_received(data)
        self.last_active = self._loop.time()
        if self._request_count != before:  # a request's headers are complete
            self._partial = False
            self._disarm()
        elif data and (waiting or self._request_count == 0):  # a request's first bytes
            self._partial = True
            if self._header_handle is None:
                self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        count = self._request_count
        self._header_handle = self._loop.call_later(
            self._header_timeout, self._headers_overdue, count
        )

    def _disarm(self) -> None:
        if self._header_handle is not None:
            self._header_handle.cancel()
            self._header_handle = None

    def _headers_overdue(self, count: int) -> None:
        self._header_handle = None
        if self._request_count == count and self.transport is not None:
            self._limiter.log(logging.INFO, "request headers too slow: connection closed")
            self.abort()

    def abort(self) -> None:
        """Drop the connection at once, without waiting for a TLS goodbye from the client."""
        transport = self.transport
        self.force_close()
        if transport is not None:
            transport.abort()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        response = super().handle_error(request, status, exc, message)
        response.headers["Server"] = SERVER_NAME
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        self._limiter.log(
            logging.WARNING,
            "malformed HTTP request",
            {"error": short_repr(exc, 200) if exc is not None else ""},
        )


class Listener:
    """Serves an aiohttp ``web.Server`` over TLS on a bound socket, within ``limits``."""

    def __init__(
        self,
        sock: socket.socket,
        server: web.Server,
        context: ssl.SSLContext,
        limits: ConnectionLimits,
    ) -> None:
        self._sock = sock
        self._server = server
        self._context = context
        self._limits = limits
        self._cap = connection_cap(limits.max_connections)
        self._open = 0
        self._room = asyncio.Event()
        self._handlers: set[_Handler] = set()
        self._limiter = LogLimiter(log)
        self._task: asyncio.Task[None] | None = None
        self._starting: set[asyncio.Task[Any]] = set()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def cap(self) -> int:
        """How many connections may be open at once."""
        return self._cap

    @property
    def open_connections(self) -> int:
        return self._open

    def start(self) -> None:
        """Start accepting connections."""
        self._task = asyncio.get_running_loop().create_task(self._accept())

    async def stop(self) -> None:
        """Stop accepting and close the listening socket (open connections stay)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._sock.close()

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while self._open >= self._cap:
                self._room.clear()
                await self._readable(loop)  # someone is waiting to connect
                if self._open >= self._cap:
                    self._evict_idle()
                    await self._room.wait()
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except OSError as exc:
                self._limiter.log(
                    logging.ERROR, "accept failed", {"error": exc.strerror or str(exc)}
                )
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    await asyncio.sleep(0.1)  # a descriptor or memory may come back
                continue
            self._open += 1
            self._serve(loop, conn)

    async def _readable(self, loop: asyncio.AbstractEventLoop) -> None:
        """Return once a connection waits in the backlog, or a slot frees up."""
        ready: asyncio.Future[None] = loop.create_future()
        fd = self._sock.fileno()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, wake)
        room = loop.create_task(self._room.wait())
        try:
            await asyncio.wait((ready, room), return_when=asyncio.FIRST_COMPLETED)
        finally:
            loop.remove_reader(fd)
            room.cancel()
            ready.cancel()

    def _serve(self, loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
        limits = self._limits
        handler = _Handler(
            self._server,
            loop=loop,
            header_timeout=limits.header_timeout,
            limiter=self._limiter,
            keepalive_timeout=limits.idle_timeout,
            lingering_time=limits.lingering_timeout,
        )
        released = False

        def lost() -> None:
            nonlocal released
            if not released:
                released = True
                self._handlers.discard(handler)
                self._open -= 1
                self._room.set()

        protocol = _TlsProtocol(
            loop,
            handler,
            self._context,
            handshake_timeout=limits.handshake_timeout,
            shutdown_timeout=limits.tls_shutdown_timeout,
            on_lost=lost,
        )
        self._handlers.add(handler)
        task = loop.create_task(loop.connect_accepted_socket(lambda: protocol, conn))
        task.add_done_callback(lambda done: self._started(done, conn, lost))
        self._starting.add(task)

    def _started(
        self, task: asyncio.Task[Any], conn: socket.socket, lost: Callable[[], None]
    ) -> None:
        self._starting.discard(task)
        if task.cancelled() or task.exception() is not None:
            conn.close()
            lost()
            if not task.cancelled():
                error = task.exception()
                self._limiter.log(logging.INFO, "connection failed", {"error": str(error)})

    def _evict_idle(self) -> None:
        """At the cap: close the connection idle longest, if any is idle."""
        idle = [handler for handler in self._handlers if handler.idle]
        if idle:
            oldest = min(idle, key=lambda handler: handler.last_active)
            self._limiter.log(logging.INFO, "connection cap reached: idle connection closed")
            oldest.abort()
