"""The admission webhook's HTTP servers: a thin shell around ``webhook.review``.

Two servers share one event loop:

- the **admission server** (HTTPS): ``POST /mutate`` and ``POST /validate``. Each handler reads
  the body (bounded by ``max_body_bytes``: aiohttp answers 413 past it), calls the pure decision,
  records metrics, logs the admission (info for denials, debug for the routine allowed ones:
  the metrics count those) and answers. A review that is not an AdmissionReview gets
  400; nothing gets a 5xx: an unexpected error in a decision fails *closed* on ``/validate``
  (denied, status 500 in the review) and *open* on ``/mutate`` (allowed, unpatched), logged with
  its traceback. Large bodies are decided in a worker thread, so one 5 MiB review does not stall
  health probes and small reviews.
- the **health server** (plain HTTP): ``/healthz``, ``/readyz`` and ``/metrics`` (Prometheus).

Shutdown (SIGTERM): ``/readyz`` turns 503, every response carries ``Connection: close`` (the API
server keeps reusing idle keep-alive connections to a terminating pod otherwise), and after
``drain_seconds`` the listener closes, in-flight admissions finish (up to
``shutdown_timeout``) and the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

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
    "Metrics",
    "ServerState",
    "WebhookSettings",
    "make_app",
    "make_health_app",
    "serve",
]

log = logging.getLogger(__name__)

Decide = Callable[[AdmissionRequest], tuple[AdmissionResponse, Decision]]
_LATENCY_BUCKETS: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """Where and how the webhook listens."""

    host: str = "0.0.0.0"
    port: int = 9443
    health_host: str = "0.0.0.0"
    health_port: int = 8081
    max_body_bytes: int = 8 * 1024 * 1024
    """An UPDATE carries two objects of up to ~1.5 MiB each, plus managedFields."""
    thread_threshold_bytes: int = 256 * 1024
    """Reviews larger than this are decided in a worker thread."""
    drain_seconds: float = 0.0
    """After SIGTERM, keep answering (with ``Connection: close``) this long before closing."""
    shutdown_timeout: float = 10.0
    """How long in-flight admissions may take to finish once the listener is closed."""


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


@dataclass
class ServerState:
    """What the health endpoints report; ``draining`` is set on SIGTERM."""

    ready: bool = False
    draining: bool = False


METRICS: Final = web.AppKey("metrics", Metrics)
STATE: Final = web.AppKey("state", ServerState)
SETTINGS: Final = web.AppKey("settings", WebhookSettings)


@web.middleware
async def _close_when_draining(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    if request.app[STATE].draining:
        response.force_close()
    return response


def make_app(
    settings: WebhookSettings, *, metrics: Metrics | None = None, state: ServerState | None = None
) -> web.Application:
    """The admission application (serve it over TLS)."""
    app = web.Application(
        client_max_size=settings.max_body_bytes, middlewares=[_close_when_draining]
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics or Metrics()
    app[STATE] = state or ServerState()
    app.router.add_post("/mutate", _handler("mutate", mutate))
    app.router.add_post("/validate", _handler("validate", validate))
    return app


def _decide(decide: Decide, body: bytes) -> tuple[AdmissionResponse, Decision]:
    return decide(decode_review(body))


def _internal_error_response(name: str, body: bytes) -> dict[str, Any]:
    try:
        uid = decode_review(body)["uid"]
    except Exception:
        uid = ""
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


def _handler(name: str, decide: Decide) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()  # raises 413 past client_max_size
        settings, metrics = request.app[SETTINGS], request.app[METRICS]
        start = time.perf_counter()
        try:
            if len(body) > settings.thread_threshold_bytes:
                response, decision = await asyncio.to_thread(_decide, decide, body)
            else:
                response, decision = _decide(decide, body)
        except BadReviewError as exc:
            metrics.rejected.labels(name, "400").inc()
            log.warning("bad admission request", extra={"webhook": name, "reason": str(exc)})
            return _json(bad_review_response(exc), status=400)
        except Exception:
            metrics.errors.labels(name).inc()
            log.exception("admission failed", extra={"webhook": name})
            return _json(_internal_error_response(name, body))
        elapsed = time.perf_counter() - start
        metrics.latency.labels(name).observe(elapsed)
        metrics.admissions.labels(
            name, decision["operation"], decision["verdict"], decision["change"] or "none"
        ).inc()
        # Allowed admissions are routine (the metrics count them); denials are worth a line.
        log.log(
            logging.INFO if decision["verdict"] == "denied" else logging.DEBUG,
            "admission",
            extra={
                "webhook": name,
                "uid": response["uid"],
                "rayservice": f"{decision['namespace']}/{decision['name']}",
                "operation": decision["operation"],
                "verdict": decision["verdict"],
                "change": decision["change"],
                "duration_ms": round(elapsed * 1000, 3),
            },
        )
        return _json(review_response(response))

    return handle


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def make_health_app(metrics: Metrics, state: ServerState) -> web.Application:
    """Liveness, readiness and metrics on plain HTTP."""
    app = web.Application()
    app[METRICS] = metrics
    app[STATE] = state

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        current = request.app[STATE]
        if current.draining:
            return web.Response(status=503, text="draining\n")
        if not current.ready:
            return web.Response(status=503, text="starting\n")
        return web.Response(text="ok\n")

    async def metrics_handler(request: web.Request) -> web.Response:
        body = generate_latest(request.app[METRICS].registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    return app


async def serve(
    settings: WebhookSettings,
    ssl_context: ssl.SSLContext,
    *,
    stop: asyncio.Event | None = None,
    metrics: Metrics | None = None,
) -> None:
    """Run both servers until ``stop`` is set or SIGTERM/SIGINT arrives, then drain and return.

    The bound ports (useful when asked for port 0) are in the ``webhook listening`` log line.
    """
    stop = stop or asyncio.Event()
    state = ServerState()
    metrics = metrics or Metrics()
    app = make_app(settings, metrics=metrics, state=state)
    health = make_health_app(metrics, state)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=settings.shutdown_timeout)
    health_runner = web.AppRunner(health, access_log=None)
    await runner.setup()
    await health_runner.setup()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    try:
        site = web.TCPSite(runner, settings.host, settings.port, ssl_context=ssl_context)
        health_site = web.TCPSite(health_runner, settings.health_host, settings.health_port)
        await site.start()
        await health_site.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
        state.ready = True
        port, health_port = _port(runner), _port(health_runner)
        log.info("webhook listening", extra={"port": port, "health_port": health_port})
        await stop.wait()
        state.draining = True
        log.info("draining", extra={"drain_seconds": settings.drain_seconds})
        if settings.drain_seconds > 0:
            await asyncio.sleep(settings.drain_seconds)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await runner.cleanup()  # stop accepting, finish in-flight admissions, close
        await health_runner.cleanup()
        log.info("webhook stopped")


def _port(runner: web.AppRunner) -> int:
    """The port a runner's (single) site is bound to; useful when it was asked for port 0."""
    return int(runner.addresses[0][1])
