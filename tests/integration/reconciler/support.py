"""Helpers of the reconciler's integration tests: apply the sample, read what exists, poll."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from kubernetes_asyncio import client

from reconciler.manager import CONTROLLERS, Reconciler, ReconcilerSettings
from reconciler.rayservice.observed import PlanSettings
from tests.builders import Obj, sample
from tests.commands import RAYSVC

FAST = PlanSettings(busy_poll=0.2, idle_poll=1.0)

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, within: float = 20.0, interval: float = 0.1
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with the last value at the deadline."""
    deadline = time.monotonic() + within
    while True:
        last = await probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s; last value: {last!r}")
        await asyncio.sleep(interval)


class Cluster:
    """Typed access to one namespace of the test API server."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    async def create(self, obj: Obj | None = None) -> Obj:
        body = obj or sample()
        body["metadata"]["namespace"] = self.namespace
        created: Obj = await self.custom.create_namespaced_custom_object(
            "ray.io", "v1", self.namespace, "rayservices", body
        )
        return created

    async def rayservice(self, name: str = "rayservice-sample") -> Obj:
        got: Obj = await self.custom.get_namespaced_custom_object(
            "ray.io", "v1", self.namespace, "rayservices", name
        )
        return got

    async def update(self, change: Callable[[Obj], Any], name: str = "rayservice-sample") -> Obj:
        """Read-modify-write the RayService's spec (retried on a conflict)."""
        for _ in range(10):
            current = await self.rayservice(name)
            change(current)
            try:
                updated: Obj = await self.custom.replace_namespaced_custom_object(
                    "ray.io", "v1", self.namespace, "rayservices", name, current
                )
                return updated
            except client.ApiException as e:
                if e.status != 409:
                    raise
        raise AssertionError("the RayService kept changing")

    async def delete(self, name: str = "rayservice-sample") -> None:
        await self.custom.delete_namespaced_custom_object(
            "ray.io", "v1", self.namespace, "rayservices", name
        )

    async def rayclusters(self) -> list[Obj]:
        listed = await self.custom.list_namespaced_custom_object(
            "ray.io", "v1", self.namespace, "rayclusters"
        )
        return sorted(listed["items"], key=lambda c: c["metadata"]["creationTimestamp"])

    async def live_clusters(self) -> list[Obj]:
        return [c for c in await self.rayclusters() if not c["metadata"].get("deletionTimestamp")]

    async def services(self) -> dict[str, Obj]:
        listed = await self.core.list_namespaced_service(self.namespace)
        return {s.metadata.name: self.api.sanitize_for_serialization(s) for s in listed.items}

    async def pods(self) -> list[Obj]:
        listed = await self.core.list_namespaced_pod(self.namespace)
        return [self.api.sanitize_for_serialization(p) for p in listed.items]

    async def events(self) -> list[Obj]:
        listed = await self.core.list_namespaced_event(self.namespace)
        return [self.api.sanitize_for_serialization(e) for e in listed.items]

    async def reasons(self) -> list[str]:
        return [e["reason"] for e in sorted(await self.events(), key=_event_time)]

    async def running(self, name: str = "rayservice-sample") -> Obj | None:
        """The RayService once its status says Running with no pending cluster, else None."""
        rs = await self.rayservice(name)
        status = rs.get("status") or {}
        if status.get("serviceStatus") == "Running" and not status.get("pendingServiceStatus"):
            return rs
        return None


def _event_time(event: Obj) -> tuple[str, str]:
    meta = event.get("metadata") or {}
    return (str(event.get("firstTimestamp") or ""), str(meta.get("resourceVersion", "")))


def selected_cluster(service: Obj) -> str:
    return str((service.get("spec") or {}).get("selector", {}).get("ray.io/cluster", ""))


class ReconcilerProcess:
    """``raysvc reconcile`` as a separate process (so it can be SIGKILLed), and its log."""

    def __init__(self, kubeconfig: Path, namespace: str, *extra: str) -> None:
        self.log: list[dict[str, Any]] = []
        self.process = subprocess.Popen(
            [
                RAYSVC,
                "reconcile",
                "--kubeconfig",
                str(kubeconfig),
                "--namespace",
                namespace,
                "--health-host",
                "127.0.0.1",
                "--health-port",
                "0",
                "--metrics-host",
                "127.0.0.1",
                "--metrics-port",
                "0",
                "--idle-poll-seconds",
                "1",
                "--busy-poll-seconds",
                "0.2",
                *extra,
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            try:
                self.log.append(json.loads(line))
            except json.JSONDecodeError:
                self.log.append({"message": line.rstrip()})

    def said(self, message: str) -> bool:
        return any(entry.get("message") == message for entry in list(self.log))

    def kill(self, sig: int = signal.SIGKILL) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(30)
        self._reader.join(10)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return code


class Clock:
    """A clock tests can move forward (thresholds and delays without waiting)."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += dt.timedelta(seconds=seconds)


@contextlib.asynccontextmanager
async def running_reconciler(
    api: client.ApiClient,
    namespace: str,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    plan: PlanSettings = FAST,
    controllers: tuple[str, ...] = CONTROLLERS,
) -> AsyncIterator[Reconciler]:
    settings = ReconcilerSettings(
        namespaces=(namespace,),
        controllers=controllers,
        plan=plan,
        health_host="127.0.0.1",
        health_port=0,
        metrics_host="127.0.0.1",
        metrics_port=0,
    )
    reconciler = Reconciler(api, settings, clock=clock) if clock else Reconciler(api, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(reconciler.run(stop))
    try:
        yield reconciler
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def metric_total(reconciler: Any, name: str) -> float:
    """The sum of every sample of the in-process reconciler's metric ``name``."""
    total = 0.0
    for metric in reconciler.metrics.registry.collect():
        for sample_ in metric.samples:
            if sample_.name == name:
                total += sample_.value
    return total
