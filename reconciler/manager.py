"""One reconciler process: shared caches, the controllers, leader election, health and metrics.

Start-up order: the caches list and watch (on every replica, so a follower that takes over has
a warm cache); ``/readyz`` turns ready once they are synced; with leader election, the workers
start only while this replica holds the Lease. A replica that loses the Lease stops (``run``
returns 1): its Pod restarts as a follower, which is simpler and safer than winding controllers
down in place. ``stop`` (SIGTERM) ends everything cleanly and releases the Lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from kubernetes_asyncio import client
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from reconciler.caches import Caches
from reconciler.dashboard import DashboardClient
from reconciler.events import EventRecorder
from reconciler.kube import KubeClient
from reconciler.leader import LeaderElector
from reconciler.metrics import Metrics
from reconciler.raycluster.controller import RayClusterController
from reconciler.rayservice.controller import RayServiceController
from reconciler.rayservice.observed import PlanSettings
from reconciler.runner import Runner

__all__ = ["CONTROLLERS", "Reconciler", "ReconcilerSettings", "default_identity"]

log = logging.getLogger(__name__)

CONTROLLERS = ("rayservice", "raycluster")
"""The controllers ``--controllers`` may name."""


def default_identity() -> str:
    """This replica's name in the Lease: the Pod name (hostname) and the process id."""
    return f"{socket.gethostname()}_{os.getpid()}"


@dataclass(frozen=True)
class ReconcilerSettings:
    """What ``raysvc reconcile`` was asked to run."""

    namespaces: tuple[str, ...] = ()
    """Watch these namespaces only; empty means all."""
    controllers: tuple[str, ...] = CONTROLLERS
    workers: int = 4
    plan: PlanSettings = field(default_factory=PlanSettings)
    leader_elect: bool = False
    lease_namespace: str = "default"
    lease_name: str = "raysvc-reconciler"
    identity: str = field(default_factory=default_identity)
    health_host: str = "0.0.0.0"
    health_port: int = 8081
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 8080
    dashboard_get_timeout: float = 5.0
    dashboard_put_timeout: float = 15.0
    cache_sync_timeout: float = 120.0
    """How long the first list of every watched kind may take before the process gives up."""


class Reconciler:
    """The running reconciler; :meth:`run` until ``stop`` is set."""

    def __init__(
        self,
        api_client: client.ApiClient,
        settings: ReconcilerSettings,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        dashboard_connector: Callable[[], aiohttp.BaseConnector] | None = None,
    ) -> None:
        """``dashboard_connector`` makes the connections to Ray heads (by Pod IP) when the
        default route does not reach Pods (local mode)."""
        self.settings = settings
        self.clock = clock
        self.dashboard_connector = dashboard_connector
        self.metrics = Metrics()
        self.kube = KubeClient(api_client)
        self.caches = Caches.build(
            self.kube,
            namespaces=settings.namespaces,
            rbac="raycluster" in settings.controllers,
        )
        self.synced = False
        self.ports: dict[str, int] = {}

    async def run(self, stop: asyncio.Event) -> int:
        """Run until ``stop``; returns 0, or 1 when leadership was lost or the caches could not
        be filled within ``cache_sync_timeout`` (the API unreachable or forbidden)."""
        s = self.settings
        recorder = EventRecorder(self.kube, instance=s.identity, clock=self.clock)
        elector = (
            LeaderElector(
                self.kube, namespace=s.lease_namespace, name=s.lease_name, identity=s.identity
            )
            if s.leader_elect
            else None
        )
        async with (
            DashboardClient(
                metrics=self.metrics,
                get_timeout=s.dashboard_get_timeout,
                put_timeout=s.dashboard_put_timeout,
                connector=self.dashboard_connector,
            ) as dashboard,
            self._servers(),
        ):
            runners: list[Runner] = []
            if "rayservice" in s.controllers:
                runners.append(
                    RayServiceController(
                        kube=self.kube,
                        caches=self.caches,
                        dashboard=dashboard,
                        recorder=recorder,
                        metrics=self.metrics,
                        settings=s.plan,
                        workers=s.workers,
                        clock=self.clock,
                    ).runner
                )
            if "raycluster" in s.controllers:
                runners.append(
                    RayClusterController(
                        kube=self.kube,
                        caches=self.caches,
                        recorder=recorder,
                        metrics=self.metrics,
                        workers=s.workers,
                        clock=self.clock,
                    ).runner
                )
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(i.run()) for i in self.caches.informers()]
                code = await self._sync(stop)
                if code is not None:
                    for task in tasks:
                        task.cancel()
                    return code
                self.synced = True
                log.info(
                    "caches synced",
                    extra={"objects": sum(len(i) for i in self.caches.informers())},
                )
                code = await self._lead(elector, runners, stop, group)
                for task in tasks:
                    task.cancel()
        return code

    async def _sync(self, stop: asyncio.Event) -> int | None:
        """Wait until every cache has listed once: ``None``, or the code to exit with."""
        informers = self.caches.informers()
        synced: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(*(i.synced.wait() for i in informers))
        )
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait(
                {synced, stopping},
                timeout=self.settings.cache_sync_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for waiter in (synced, stopping):
                waiter.cancel()
        if synced.done() and not synced.cancelled():
            return None
        if stop.is_set():
            return 0
        log.error(
            "caches did not sync",
            extra={
                "seconds": self.settings.cache_sync_timeout,
                "waiting_for": [i.kind.kind for i in informers if not i.synced.is_set()],
            },
        )
        return 1

    async def _lead(
        self,
        elector: LeaderElector | None,
        runners: list[Runner],
        stop: asyncio.Event,
        group: asyncio.TaskGroup,
    ) -> int:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            if elector is not None:
                acquiring = asyncio.ensure_future(elector.acquire())
                await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not acquiring.done():
                    acquiring.cancel()
                    return 0
            self.metrics.leader.set(1)
            workers = [group.create_task(r.run()) for r in runners]
            watchers: set[asyncio.Future[Any]] = {stopping}
            keeping = None
            if elector is not None:
                keeping = asyncio.ensure_future(elector.keep())
                watchers.add(keeping)
            await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
            for worker in workers:
                worker.cancel()
            self.metrics.leader.set(0)
            if keeping is not None and keeping.done():
                return 1
            if keeping is not None:
                keeping.cancel()
            if elector is not None:
                await elector.release()
            return 0
        finally:
            stopping.cancel()

    @contextlib.asynccontextmanager
    async def _servers(self) -> AsyncIterator[None]:
        s = self.settings

        async def healthz(_request: web.Request) -> web.Response:
            return web.Response(text="ok\n")

        async def readyz(_request: web.Request) -> web.Response:
            if not self.synced:
                return web.Response(status=503, text="caches not synced\n")
            return web.Response(text="ok\n")

        async def metrics(_request: web.Request) -> web.Response:
            return web.Response(
                body=generate_latest(self.metrics.registry),
                headers={"Content-Type": CONTENT_TYPE_LATEST},
            )

        health = web.Application()
        health.router.add_get("/healthz", healthz)
        health.router.add_get("/readyz", readyz)
        metrics_app = web.Application()
        metrics_app.router.add_get("/metrics", metrics)
        runners = [
            web.AppRunner(health, access_log=None),
            web.AppRunner(metrics_app, access_log=None),
        ]
        try:
            for runner, host, port, name in (
                (runners[0], s.health_host, s.health_port, "health"),
                (runners[1], s.metrics_host, s.metrics_port, "metrics"),
            ):
                await runner.setup()
                await web.TCPSite(runner, host, port).start()
                self.ports[name] = int(runner.addresses[0][1])
            log.info(
                "reconciler listening",
                extra={"health_port": self.ports["health"], "metrics_port": self.ports["metrics"]},
            )
            yield
        finally:
            for runner in runners:
                await runner.cleanup()
