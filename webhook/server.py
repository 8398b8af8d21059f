"""The admission webhook's HTTP servers: a thin shell around ``webhook.review``.

- The **admission server** (HTTPS, ``webhook.connections``): ``POST /mutate`` and
  ``POST /validate``. Each handler reads the body (at most ``max_body_bytes``: 413 past it,
  within ``body_timeout``: 408 past it), decides, records metrics and answers. A review that is
  not an AdmissionReview gets 400; nothing gets a 5xx: an unexpected error in a decision (a bug)
  fails *closed* on ``/validate`` (denied, status 500 in the review) and *open* on ``/mutate``
  (allowed, unpatched), logged with its traceback. Every answer echoes the request's uid when
  one can be read.
- **The event loop is never held long.** Reviews up to ``inline_max_bytes`` are decided on it
  (a fraction of a millisecond, or microseconds when answered from the memo); larger ones are
  read, at most ``large_concurrency`` at once, and decided in as many worker processes (a
  thread would not do: the models and the JSON codecs hold the interpreter lock for the whole
  of a large object), so memory stays bounded and small reviews keep flowing beside them.
- The **health server** (plain HTTP, ``webhook.health``): ``/healthz``, ``/readyz`` and
  ``/metrics``, on an event loop of its own, so probes answer whatever the admission load;
  ``/healthz`` fails if the admission loop has stopped turning.

Shutdown (SIGTERM): ``/readyz`` turns 503, every response carries ``Connection: close`` (the API
server keeps reusing idle keep-alive connections to a terminating pod otherwise), and after
``drain_seconds`` the listener closes, in-flight admissions finish (up to ``shutdown_timeout``)
and the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from webhook.connections import SERVER_NAME, ConnectionLimits, Listener, bind
from webhook.health import HealthServer, ServerState
from webhook.loglimit import LogLimiter
from webhook.review import (
    AdmissionRequest,
    AdmissionResponse,
    BadReviewError,
    Decision,
    bad_review_response,
    decode_review,
    mutate,
    review_response,
    validate,
)

__all__ = [
    "BoundSockets",
    "Metrics",
    "ServerState",
    "WebhookSettings",
    "Workers",
    "bind_sockets",
    "harden",
    "make_app",
    "process_workers",
    "serve",
]

log = logging.getLogger(__name__)

Decide = Callable[[AdmissionRequest], tuple[AdmissionResponse, Decision]]
_LATENCY_BUCKETS: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_REASON_CHARS: Final = 200
"""Attacker-controlled text in a log line is cut to this."""

TLS12_CIPHERS: Final = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
"""TLS 1.2 suites offered: forward-secret AEAD only (TLS 1.3's are all AEAD)."""


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """Where and how the webhook listens."""

    host: str = "0.0.0.0"
    port: int = 9443
    health_host: str = "0.0.0.0"
    health_port: int = 8081
    max_body_bytes: int = 8 * 1024 * 1024
    """An UPDATE carries two objects of up to ~1.5 MiB each, plus managedFields."""
    body_timeout: float = 10.0
    """Seconds to receive a whole request body (the API server's default webhook timeout)."""
    inline_max_bytes: int = 16 * 1024
    """Reviews up to this size are decided on the event loop; larger ones in a worker process."""
    large_concurrency: int = 2
    """Larger reviews read and decided at once (and worker processes); the others wait."""
    drain_seconds: float = 0.0
    """After SIGTERM, keep answering (with ``Connection: close``) this long before closing."""
    shutdown_timeout: float = 10.0
    """How long in-flight admissions may take to finish once the listener is closed."""
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)


class Metrics:
    """The webhook's Prometheus metrics, in a registry of their own (one per server)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.admissions = Counter(
            "raysvc_admissions",
            "Admission reviews answered, by webhook, operation, verdict and change class.",
            ["webhook", "operation", "verdict", "change"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "raysvc_admission_bad_requests",
            "Requests that were not admission reviews, by webhook and HTTP status.",
            ["webhook", "code"],
            registry=self.registry,
        )
        self.errors = Counter(
            "raysvc_admission_internal_errors",
            "Reviews whose decision raised unexpectedly (a bug: see the logs).",
            ["webhook"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "raysvc_admission_duration_seconds",
            "Time to decide one admission review, body read excluded.",
            ["webhook"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.connections = Gauge(
            "raysvc_webhook_connections",
            "Open HTTPS connections to the admission server.",
            registry=self.registry,
        )


METRICS: Final = web.AppKey("metrics", Metrics)
STATE: Final = web.AppKey("state", ServerState)
SETTINGS: Final = web.AppKey("settings", WebhookSettings)


class Workers:
    """Where large reviews are decided: an executor, replaced if its processes die."""

    def __init__(self, make: Callable[[], Executor]) -> None:
        self._make = make
        self.executor = make()

    def restart(self, broken: Executor) -> None:
        """Replace the executor ``broken`` (a worker killed, e.g. out of memory), unless a
        review that failed with it at the same time has replaced it already."""
        if self.executor is not broken:
            return
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._make()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def process_workers(count: int) -> Workers:
    """``count`` worker processes forked from a server that has imported the decisions.

    Each worker ends itself when this process is gone (even killed): a pool's workers
    otherwise wait for work forever, and keep its fork server alive with them.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["webhook.review"])
    return Workers(
        lambda: ProcessPoolExecutor(
            count, mp_context=context, initializer=_follow, initargs=(os.getpid(),)
        )
    )


def _follow(parent: int) -> None:
    """In a worker: exit when ``parent`` has exited (checked every second); yield the CPU to
    the event loop (small reviews, connections) whenever it wants it; leave the modules'
    objects out of garbage collection, as the server does."""
    os.nice(_WORKER_NICENESS)
    gc.freeze()

    def watch() -> None:
        while _alive(parent):
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="raysvc-follow-parent", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")  # a zombie has exited


_WORKER_NICENESS: Final = 10
"""A decision of a large review is background work next to the loop that answers small ones."""

WORKERS: Final = web.AppKey("workers", Workers)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """A decided review, ready to send: what the handler logs and counts comes with it."""

    status: int
    body: bytes
    uid: str = ""
    decision: Decision | None = None
    bad_request: str = ""
    error: str = ""
    """The traceback of an unexpected error (text: outcomes cross process boundaries)."""
    elapsed: float = 0.0


_DECISIONS: Final[dict[str, Decide]] = {"mutate": mutate, "validate": validate}


def _decide(name: str, body: bytes) -> _Outcome:
    """Decode and decide one review; never raises (runs on the loop or in a worker)."""
    start = time.perf_counter()
    uid = ""
    try:
        request = decode_review(body)
        uid = request["uid"]
        response, decision = _DECISIONS[name](request)
        payload = orjson.dumps(review_response(response))
    except BadReviewError as exc:
        return _Outcome(400, orjson.dumps(bad_review_response(exc)), bad_request=str(exc))
    except Exception:
        return _internal_error(name, uid, traceback.format_exc())
    return _Outcome(200, payload, uid, decision, elapsed=time.perf_counter() - start)


def _internal_error(name: str, uid: str, error: str) -> _Outcome:
    return _Outcome(200, orjson.dumps(_internal_error_response(name, uid)), uid, error=error)


def _warm() -> None:
    """Nothing: submitted at startup so the worker processes exist before a large review."""


def _internal_error_response(name: str, uid: str) -> dict[str, Any]:
    if name == "mutate":
        response: dict[str, Any] = {"uid": uid, "allowed": True}
    else:
        response = {
            "uid": uid,
            "allowed": False,
            "status": {
                "code": 500,
                "reason": "InternalError",
                "message": "raysvc could not evaluate this RayService (a bug): see its logs",
            },
        }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


class _BodyAbortedError(Exception):
    """The client went away, or was too slow, before its body arrived."""


async def _read(request: web.Request, seconds: float) -> bytes:
    """The whole body within ``seconds``; 413 past ``client_max_size`` (raised by aiohttp)."""
    if request.content.is_eof():
        return await request.read()  # it came with the headers: no deadline to arm
    try:
        async with asyncio.timeout(seconds):
            return await request.read()
    except TimeoutError as exc:
        raise _BodyAbortedError("request body too slow") from exc
    except ConnectionError as exc:
        raise _BodyAbortedError("client disconnected during the request body") from exc


def _handler(
    name: str, metrics: Metrics, limiter: LogLimiter, gate: asyncio.Semaphore
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    latency = metrics.latency.labels(name)
    bad_requests = metrics.rejected.labels(name, "400")
    internal_errors = metrics.errors.labels(name)
    counters: dict[tuple[str, str, str], Any] = {}

    async def handle(request: web.Request) -> web.StreamResponse:
        settings = request.app[SETTINGS]
        length = request.content_length
        try:
            if length is not None and length <= settings.inline_max_bytes:
                outcome = _decide(name, await _read(request, settings.body_timeout))
            else:
                # The wait for a turn counts against the body's deadline: past it, the API
                # server has given up on this review anyway.
                deadline = asyncio.get_running_loop().time() + settings.body_timeout
                try:
                    async with asyncio.timeout_at(deadline):
                        await gate.acquire()
                except TimeoutError:
                    raise _BodyAbortedError("waited too long for a turn") from None
                try:
                    if request.transport is None or request.transport.is_closing():
                        raise _BodyAbortedError("client disconnected while its review waited")
                    remaining = deadline - asyncio.get_running_loop().time()
                    body = await _read(request, max(remaining, 0.0))
                    outcome = await _decide_elsewhere(request.app[WORKERS], name, body)
                finally:
                    gate.release()
        except _BodyAbortedError as exc:
            limiter.log(logging.INFO, "request body aborted", {"webhook": name, "reason": str(exc)})
            response = web.Response(status=408, text=f"{exc}\n")
            response.force_close()
            return response
        if outcome.bad_request:
            bad_requests.inc()
            limiter.log(
                logging.WARNING,
                "bad admission request",
                {"webhook": name, "reason": outcome.bad_request[:_REASON_CHARS]},
            )
        elif outcome.error:
            internal_errors.inc()
            limiter.log(
                logging.ERROR,
                "admission failed",
                {"webhook": name, "uid": outcome.uid[:_REASON_CHARS], "exception": outcome.error},
            )
        elif outcome.decision is not None:
            _record(name, outcome, latency, counters, metrics)
        response = web.Response(
            body=outcome.body, status=outcome.status, content_type="application/json"
        )
        if request.app[STATE].draining:
            response.force_close()
        return response

    return handle


async def _decide_elsewhere(workers: Workers, name: str, body: bytes) -> _Outcome:
    loop = asyncio.get_running_loop()
    executor = workers.executor
    try:
        return await loop.run_in_executor(executor, _decide, name, body)
    except BrokenProcessPool:
        workers.restart(executor)
        return _internal_error(name, _uid(body), traceback.format_exc())


def _uid(body: bytes) -> str:
    """The request's uid, if the body is an object with one (for answers that could not be
    decided)."""
    try:
        review = orjson.loads(body)
        uid = review["request"]["uid"]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return ""
    return uid if isinstance(uid, str) else ""


def _record(
    name: str,
    outcome: _Outcome,
    latency: Any,
    counters: dict[tuple[str, str, str], Any],
    metrics: Metrics,
) -> None:
    decision = outcome.decision
    assert decision is not None
    latency.observe(outcome.elapsed)
    key = (decision["operation"], decision["verdict"], decision["change"] or "none")
    counter = counters.get(key)
    if counter is None:
        counter = counters[key] = metrics.admissions.labels(name, *key)
    counter.inc()
    # Allowed admissions are routine (the metrics count them); denials are worth a line.
    level = logging.INFO if decision["verdict"] == "denied" else logging.DEBUG
    if log.isEnabledFor(level):
        log.log(
            level,
            "admission",
            extra={
                "webhook": name,
                "uid": outcome.uid[:_REASON_CHARS],
                "rayservice": f"{decision['namespace']}/{decision['name']}"[:_REASON_CHARS],
                "operation": decision["operation"],
                "verdict": decision["verdict"],
                "change": decision["change"],
                "duration_ms": round(outcome.elapsed * 1000, 3),
            },
        )


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_NAME


def make_app(
    settings: WebhookSettings,
    *,
    metrics: Metrics | None = None,
    state: ServerState | None = None,
    workers: Workers | None = None,
) -> web.Application:
    """The admission application (serve it over TLS)."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[METRICS] = metrics = metrics or Metrics()
    app[STATE] = state or ServerState()
    app[WORKERS] = workers or process_workers(settings.large_concurrency)
    app.on_response_prepare.append(_server_header)
    limiter = LogLimiter(log)
    gate = asyncio.Semaphore(settings.large_concurrency)  # bound to the loop on first use
    app.router.add_post("/mutate", _handler("mutate", metrics, limiter, gate))
    app.router.add_post("/validate", _handler("validate", metrics, limiter, gate))
    return app


async def _beat(state: ServerState) -> None:
    """Tell the health server, every quarter second, that the admission loop turns."""
    while True:
        state.heartbeat = time.monotonic()
        await asyncio.sleep(0.25)


def harden(context: ssl.SSLContext) -> None:
    """Offer TLS 1.2+ with forward-secret AEAD suites only."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)


@dataclass(frozen=True, slots=True)
class BoundSockets:
    """The admission and health sockets, bound and listening before anything else starts."""

    admission: socket.socket
    health: socket.socket

    def close(self) -> None:
        self.admission.close()
        self.health.close()


def bind_sockets(settings: WebhookSettings) -> BoundSockets:
    """Bind both ports; raises ``OSError`` (e.g. a port in use) before anything else happens."""
    admission = bind(settings.host, settings.port)
    try:
        health = bind(settings.health_host, settings.health_port)
    except BaseException:
        admission.close()
        raise
    return BoundSockets(admission, health)


async def serve(
    settings: WebhookSettings,
    ssl_context: ssl.SSLContext,
    *,
    sockets: BoundSockets | None = None,
    stop: asyncio.Event | None = None,
    metrics: Metrics | None = None,
) -> None:
    """Run both servers until ``stop`` is set or SIGTERM/SIGINT arrives, then drain and return.

    ``sockets`` (from ``bind_sockets``) lets a caller bind before anything else; they are
    closed on return. The bound ports are in the ``webhook listening`` log line.
    """
    sockets = sockets or bind_sockets(settings)
    stop = stop or asyncio.Event()
    state = ServerState()
    metrics = metrics or Metrics()
    harden(ssl_context)
    workers = process_workers(settings.large_concurrency)
    app = make_app(settings, metrics=metrics, state=state, workers=workers)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=settings.shutdown_timeout)
    health = HealthServer(sockets.health, metrics.registry, state)
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    listener: Listener | None = None
    heartbeat: asyncio.Task[None] | None = None
    try:
        await runner.setup()
        assert runner.server is not None
        listener = Listener(sockets.admission, runner.server, ssl_context, settings.connections)
        metrics.connections.set_function(lambda: listener.open_connections if listener else 0)
        await asyncio.to_thread(health.start)
        listener.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
        workers.executor.submit(_warm)
        heartbeat = loop.create_task(_beat(state))
        # The modules' objects live as long as the process: keep every later collection from
        # walking them again (a full pass over them held the loop for milliseconds).
        gc.freeze()
        state.ready = True
        log.info(
            "webhook listening",
            extra={
                "port": listener.port,
                "health_port": health.port,
                "max_connections": listener.cap,
            },
        )
        await stop.wait()
        state.draining = True
        log.info("draining", extra={"drain_seconds": settings.drain_seconds})
        if settings.drain_seconds > 0:
            await asyncio.sleep(settings.drain_seconds)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        if heartbeat is not None:
            heartbeat.cancel()
        if listener is not None:
            await listener.stop()  # stop accepting
        await runner.cleanup()  # finish in-flight admissions, close connections
        workers.shutdown()
        await asyncio.to_thread(health.stop)
        sockets.close()
        log.info("webhook stopped")
