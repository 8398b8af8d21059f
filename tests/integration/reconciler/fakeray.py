"""Stand-ins for what runs below the RayService controller, for its tests and benchmarks.

- :class:`FakeHead`: what one Ray head answers over HTTP: the dashboard's Serve REST API
  (``GET``/``PUT /api/serve/applications/``, with each application's ``deployed_app_config``)
  and the Serve proxy's ``/-/healthz``. A PUT starts the config's applications DEPLOYING; they
  turn RUNNING after ``deploy_seconds``, or whatever a test scripts.
- :class:`FakeRay`: the HTTP servers of every fake head: each head gets its own loopback address
  (its "Pod IP") on the standard ports, 8265 and 8000, as a real head would; one server per port
  answers for all of them and tells them apart by the address a request arrived on.
- :class:`FakeKubelet`: plays the kubelet for the Pods the RayCluster controller creates: marks
  them Running and Ready, and gives each head Pod a :class:`FakeHead`'s address as its Pod IP.

Nothing here decides anything the reconciler decides; it only answers like Ray and Kubernetes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from kubernetes_asyncio import client

from reconciler.informer import Informer
from reconciler.kube import KubeClient, kind_of

__all__ = ["FakeHead", "FakeKubelet", "FakeRay", "submitted_prices"]

DASHBOARD_PORT = 8265
SERVE_PORT = 8000


def _loopback() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


@dataclass
class FakeHead:
    """One fake Ray head's state; its address is ``ip``."""

    ip: str
    deploy_seconds: float = 0.3
    submissions: list[dict[str, Any]] = field(default_factory=list)
    puts: int = 0
    """PUTs received, accepted or not."""
    put_times: list[float] = field(default_factory=list)
    """``time.monotonic()`` of each accepted PUT."""
    refuse: tuple[int, str] | None = None
    """Answer every PUT with this (status, text) instead of accepting it."""
    forced: dict[str, str] = field(default_factory=dict)
    """App name -> status to report whatever the config says (e.g. UNHEALTHY)."""
    dashboard_up: bool = True
    proxy_up: bool = True
    _deployed_at: float = 0.0

    @property
    def config(self) -> dict[str, Any] | None:
        return self.submissions[-1] if self.submissions else None

    def applications(self) -> dict[str, Any]:
        apps: dict[str, Any] = {}
        if self.config is None:
            return apps
        running = time.monotonic() - self._deployed_at >= self.deploy_seconds
        for app in self.config.get("applications") or []:
            name = app.get("name", "default")
            status = self.forced.get(name) or ("RUNNING" if running else "DEPLOYING")
            deployments = {
                d["name"]: {
                    "status": "HEALTHY" if status == "RUNNING" else "UPDATING",
                    "message": "",
                }
                for d in app.get("deployments") or []
            }
            apps[name] = {
                "name": name,
                "status": status,
                "message": "",
                "deployments": deployments,
                "deployed_app_config": app,
            }
        return apps

    def accept(self, body: dict[str, Any]) -> tuple[int, str]:
        self.puts += 1
        if self.refuse is not None:
            return self.refuse
        self.submissions.append(body)
        self._deployed_at = time.monotonic()
        self.put_times.append(self._deployed_at)
        return 200, ""


class FakeRay:
    """The dashboard and proxy servers of every fake head (open with ``async with``)."""

    def __init__(self) -> None:
        self.heads: dict[str, FakeHead] = {}
        dashboard = web.Application()
        dashboard.router.add_get("/api/serve/applications/", self._get)
        dashboard.router.add_put("/api/serve/applications/", self._put)
        proxy = web.Application()
        proxy.router.add_get("/-/healthz", self._healthz)
        self._dashboard = web.AppRunner(dashboard, access_log=None)
        self._proxy = web.AppRunner(proxy, access_log=None)
        self._sites: dict[str, list[web.TCPSite]] = {}

    async def __aenter__(self) -> FakeRay:
        await self._dashboard.setup()
        await self._proxy.setup()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._dashboard.cleanup()
        await self._proxy.cleanup()

    async def add(self, deploy_seconds: float = 0.3) -> FakeHead:
        """A new head on a free loopback address."""
        for _ in range(20):
            ip = _loopback()
            sites = [
                web.TCPSite(self._dashboard, ip, DASHBOARD_PORT),
                web.TCPSite(self._proxy, ip, SERVE_PORT),
            ]
            try:
                for site in sites:
                    await site.start()
            except OSError as e:
                for site in sites:
                    with contextlib.suppress(RuntimeError):
                        await site.stop()
                if e.errno != errno.EADDRINUSE:
                    raise
                continue
            head = self.heads[ip] = FakeHead(ip, deploy_seconds)
            self._sites[ip] = sites
            return head
        raise RuntimeError("no free loopback address for a fake head")

    async def remove(self, head: FakeHead) -> None:
        """The head's Pod is gone: it answers nothing any more."""
        for site in self._sites.pop(head.ip, []):
            await site.stop()

    def _head(self, request: web.Request) -> FakeHead:
        assert request.transport is not None
        address: tuple[str, int] = request.transport.get_extra_info("sockname")
        return self.heads[address[0]]

    async def _get(self, request: web.Request) -> web.Response:
        head = self._head(request)
        if not head.dashboard_up:
            return web.Response(status=503, text="dashboard down")
        body = orjson.dumps({"applications": head.applications(), "proxies": {}})
        return web.Response(body=body, content_type="application/json")

    async def _put(self, request: web.Request) -> web.Response:
        head = self._head(request)
        if not head.dashboard_up:
            return web.Response(status=503, text="dashboard down")
        status, text = head.accept(orjson.loads(await request.read()))
        return web.Response(status=status, text=text)

    async def _healthz(self, request: web.Request) -> web.Response:
        head = self._head(request)
        if not head.proxy_up:
            return web.Response(status=503, text="proxy down")
        return web.Response(text="success")


def _ready_status(ip: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
        ],
    }


def _ready(pod: Mapping[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


class FakeKubelet:
    """Marks the Ray Pods of ``namespace`` ("" for all) Running and Ready with an IP; a head
    Pod's IP is a new :class:`FakeHead`'s. Follows Pods with a watch. Open with ``async with``."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        *,
        ray: FakeRay | None = None,
        deploy_seconds: float = 0.3,
    ) -> None:
        self.api = api
        self.deploy_seconds = deploy_seconds
        self.heads: dict[str, FakeHead] = {}
        """Cluster name -> the head of its (latest) head Pod."""
        self._paused = False
        self._ray = ray
        self._stack = contextlib.AsyncExitStack()
        self._pods = Informer(
            KubeClient(api),
            kind_of("v1", "Pod"),
            namespaces=(namespace,) if namespace else (),
            label_selector="ray.io/node-type",
        )
        self._pods.add_handler(self._on_pod)
        self._todo: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._head_of_pod: dict[str, FakeHead] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> FakeKubelet:
        if self._ray is None:
            self._ray = await self._stack.enter_async_context(FakeRay())
        self._tasks = [asyncio.create_task(self._pods.run()), asyncio.create_task(self._work())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._stack.aclose()

    @property
    def ray(self) -> FakeRay:
        assert self._ray is not None
        return self._ray

    @property
    def paused(self) -> bool:
        """While set, new Pods stay Pending (a cluster that can never become ready)."""
        return self._paused

    @paused.setter
    def paused(self, value: bool) -> None:
        self._paused = value
        if not value:
            for pod in self._pods.objects():
                self._on_pod("MODIFIED", pod)

    def head(self, cluster: str) -> FakeHead:
        return self.heads[cluster]

    def _on_pod(self, kind: str, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        if kind == "DELETED":
            head = self._head_of_pod.pop(str(meta.get("uid")), None)
            if head is not None:
                asyncio.get_running_loop().create_task(self.ray.remove(head))
            return
        if not self._paused and not _ready(pod) and not meta.get("deletionTimestamp"):
            self._todo.put_nowait((str(meta["namespace"]), str(meta["name"])))

    async def _work(self) -> None:
        core = client.CoreV1Api(self.api)
        while True:
            namespace, name = await self._todo.get()
            pod = self._pods.get(namespace, name)
            if pod is None or _ready(pod) or str(pod["metadata"]["uid"]) in self._head_of_pod:
                continue
            try:
                await self._start(core, pod)
            except client.ApiException as e:
                if e.status < 500 and e.status not in (404, 409):
                    raise
                # an injected fault or a race with a deletion: a kubelet tries again
                await asyncio.sleep(0.1)
                self._todo.put_nowait((namespace, name))

    async def _start(self, core: client.CoreV1Api, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        head = None
        if labels.get("ray.io/node-type") == "head":
            head = await self.ray.add(self.deploy_seconds)
        try:
            await core.patch_namespaced_pod_status(  # type: ignore[call-arg]
                meta["name"],
                meta["namespace"],
                {"status": _ready_status(head.ip if head else _loopback())},
                _content_type="application/merge-patch+json",
            )
        except BaseException:
            if head is not None:
                await self.ray.remove(head)
            raise
        if head is not None:
            self._head_of_pod[str(meta["uid"])] = head
            self.heads[str(labels.get("ray.io/cluster"))] = head


def submitted_prices(head: FakeHead) -> dict[str, Any]:
    """MangoStand's user_config in the last config a head accepted (for assertions)."""
    for app in (head.config or {}).get("applications") or []:
        for deployment in app.get("deployments") or []:
            if deployment.get("name") == "MangoStand":
                return dict(deployment.get("user_config") or {})
    return {}
