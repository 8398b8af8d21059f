"""The informer against an API server that cuts a watch in the middle of a chunk (a dropped
connection, a restarted load balancer): it lists again and carries on, it does not die."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from kubernetes_asyncio import client

from localkube import LocalKube
from reconciler.actions import Delete, Ref
from reconciler.events import EventRecorder
from reconciler.execute import Executor
from reconciler.informer import Informer
from reconciler.kube import KubeClient, kind_of
from reconciler.metrics import Metrics
from tests.integration.reconciler.support import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _rayservice(name: str, rv: int) -> dict[str, object]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": str(rv)},
    }


class Flaky:
    """Lists what it holds; the first watch sends one event, then half a chunk, then hangs up."""

    def __init__(self) -> None:
        self.items = [_rayservice("first", 1)]
        self.watches = 0
        self.lists = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") not in ("true", "True", "1"):
            self.lists += 1
            body = {
                "kind": "RayServiceList",
                "apiVersion": "ray.io/v1",
                "metadata": {"resourceVersion": str(len(self.items))},
                "items": self.items,
            }
            return web.json_response(body)
        self.watches += 1
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        response.content_type = "application/json"
        await response.prepare(request)
        if self.watches == 1:
            self.items.append(_rayservice("second", 2))
            event = {"type": "ADDED", "object": self.items[-1]}
            await response.write(json.dumps(event).encode() + b"\n")
            await response.write(b'{"type": "MODIF')
            assert request.transport is not None
            request.transport.abort()  # no final chunk: the client sees a broken payload
            return response
        await asyncio.sleep(5)
        return response


@pytest_asyncio.fixture(loop_scope="session")
async def flaky() -> AsyncIterator[tuple[Flaky, str]]:
    server = Flaky()
    app = web.Application()
    app.router.add_get("/apis/ray.io/v1/rayservices", server.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield server, f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_a_watch_cut_mid_chunk_is_listed_again_not_fatal(flaky: tuple[Flaky, str]) -> None:
    server, url = flaky
    async with client.ApiClient(client.Configuration(host=url)) as api:
        informer = Informer(KubeClient(api), kind_of("ray.io/v1", "RayService"))
        task = asyncio.create_task(informer.run())
        try:

            async def relisted() -> bool:
                return server.lists >= 2 and server.watches >= 2

            await eventually(relisted, within=15)
            assert not task.done()
            assert {obj["metadata"]["name"] for obj in informer.objects()} == {"first", "second"}
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def lagging(target: str, seconds: float) -> AsyncIterator[str]:
    """A TCP relay to ``target`` (http://host:port) whose answers arrive ``seconds`` late, as
    a watch behind a busy network does; yields its URL."""
    host, port = target.removeprefix("http://").split(":")

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter, late: float) -> None:
            try:
                while data := await src.read(65536):
                    if late:
                        await asyncio.sleep(late)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(copy(reader, up_writer, 0), copy(up_reader, writer, seconds))

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


async def test_after_a_delete_the_executors_cache_no_longer_offers_the_object(
    rk_api: client.ApiClient, rk_kube: LocalKube, namespace: str
) -> None:
    """Read-your-writes for deletions: with a watch that lags, the next plan must still not see
    (and delete) the object again."""
    kube = KubeClient(rk_api)
    async with (
        lagging(rk_kube.url, 0.3) as slow_url,
        client.ApiClient(client.Configuration(host=slow_url)) as slow_api,
    ):
        pods = Informer(KubeClient(slow_api), kind_of("v1", "Pod"), namespaces=[namespace])
        task = asyncio.create_task(pods.run())
        try:
            await asyncio.wait_for(pods.synced.wait(), 10)
            executor = Executor(
                kube,
                controller="test",
                recorder=EventRecorder(kube),
                caches={("v1", "Pod"): pods},
                metrics=Metrics(),
            )
            for name, node in (("bound", "n"), ("unscheduled", None)):  # graceful, at once
                spec: dict[str, Any] = {"containers": [{"name": "c", "image": "x"}]}
                if node:
                    spec["nodeName"] = node
                pod = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": spec,
                }
                created = await kube.create(pod)
                await pods.wait_for(namespace, name, created["metadata"]["resourceVersion"])
                ref = Ref("v1", "Pod", namespace, name, uid=created["metadata"]["uid"])
                await executor.perform(Delete(ref, why="test"))
                held = pods.get(namespace, name)
                assert held is None or held["metadata"].get("deletionTimestamp"), name
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
