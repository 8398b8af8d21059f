"""Helpers of the reconciler's integration tests: apply the sample, read what exists, poll."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from kubernetes_asyncio import client

from tests.builders import Obj, sample

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
