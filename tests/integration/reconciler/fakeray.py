"""Stand-ins for what runs below the RayService controller, for its integration tests.

- :class:`FakeHead`: a Ray head's HTTP face on its own loopback address (the "Pod IP"), on the
  standard ports: the dashboard's Serve REST API (``GET``/``PUT /api/serve/applications/``) on
  8265 and the Serve proxy's ``/-/healthz`` on 8000. A PUT starts the config's applications
  DEPLOYING; they turn RUNNING after ``deploy_seconds``, or whatever a test scripts.
- :class:`FakeNodes`: plays the RayCluster controller and the kubelet: for each RayCluster it
  creates a head Pod and the workers (KubeRay's labels), marks them Running and Ready, and gives
  the head a :class:`FakeHead` as its Pod IP.

Nothing here decides anything the reconciler decides; it only answers like Ray and Kubernetes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from kubernetes_asyncio import client

__all__ = ["FakeHead", "FakeNodes"]


def _loopback() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


@dataclass
class FakeHead:
    """One fake Ray head (dashboard + proxy) on ``ip``."""

    deploy_seconds: float = 0.3
    ip: str = ""
    submissions: list[dict[str, Any]] = field(default_factory=list)
    refuse: tuple[int, str] | None = None
    """Answer every PUT with this (status, text) instead of accepting it."""
    forced: dict[str, str] = field(default_factory=dict)
    """App name -> status to report whatever the config says (e.g. UNHEALTHY)."""
    dashboard_up: bool = True
    puts: int = 0
    """PUTs received, accepted or not."""
    proxy_up: bool = True
    _deployed_at: float = 0.0
    _config: dict[str, Any] | None = None
    _runners: list[web.AppRunner] = field(default_factory=list)

    async def start(self) -> FakeHead:
        dashboard = web.Application()
        dashboard.router.add_get("/api/serve/applications/", self._get)
        dashboard.router.add_put("/api/serve/applications/", self._put)
        proxy = web.Application()
        proxy.router.add_get("/-/healthz", self._healthz)
        for _ in range(20):
            self.ip = _loopback()
            try:
                for app, port in ((dashboard, 8265), (proxy, 8000)):
                    runner = web.AppRunner(app, access_log=None)
                    await runner.setup()
                    self._runners.append(runner)
                    await web.TCPSite(runner, self.ip, port).start()
                return self
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
                await self.stop()
        raise RuntimeError("no free loopback address for a fake head")

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    @property
    def config(self) -> dict[str, Any] | None:
        return self._config

    def app_status(self) -> dict[str, Any]:
        apps: dict[str, Any] = {}
        if self._config is None:
            return apps
        running = time.monotonic() - self._deployed_at >= self.deploy_seconds
        for app in self._config.get("applications") or []:
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

    async def _get(self, request: web.Request) -> web.Response:
        if not self.dashboard_up:
            return web.Response(status=503, text="dashboard down")
        return web.json_response({"applications": self.app_status(), "proxies": {}})

    async def _put(self, request: web.Request) -> web.Response:
        if not self.dashboard_up:
            return web.Response(status=503, text="dashboard down")
        body = await request.json()
        self.puts += 1
        if self.refuse is not None:
            return web.Response(status=self.refuse[0], text=self.refuse[1])
        self.submissions.append(body)
        self._config = body
        self._deployed_at = time.monotonic()
        return web.Response(status=200)

    async def _healthz(self, request: web.Request) -> web.Response:
        if not self.proxy_up:
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


class FakeNodes:
    """Makes Pods for every RayCluster in ``namespace`` and keeps them Ready with fake heads."""

    def __init__(self, api: client.ApiClient, namespace: str, *, deploy_seconds: float = 0.3):
        self.api = api
        self.namespace = namespace
        self.deploy_seconds = deploy_seconds
        self.heads: dict[str, FakeHead] = {}
        """Cluster name -> its head."""
        self._task: asyncio.Task[None] | None = None
        self.paused = False

    async def __aenter__(self) -> FakeNodes:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for head in self.heads.values():
            await head.stop()

    async def _loop(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        while True:
            if not self.paused:
                listed = await custom.list_namespaced_custom_object(
                    "ray.io", "v1", self.namespace, "rayclusters"
                )
                present = set()
                for cluster in listed["items"]:
                    present.add(cluster["metadata"]["name"])
                    await self._ensure(cluster)
                for name, head in self.heads.items():
                    if name not in present:
                        await head.stop()
            await asyncio.sleep(0.1)

    async def _ensure(self, cluster: Mapping[str, Any]) -> None:
        name = cluster["metadata"]["name"]
        if name in self.heads or cluster["metadata"].get("deletionTimestamp"):
            return
        head = await FakeHead(self.deploy_seconds).start()
        self.heads[name] = head
        core = client.CoreV1Api(self.api)
        owner = {
            "apiVersion": "ray.io/v1",
            "kind": "RayCluster",
            "name": name,
            "uid": cluster["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        serve = (
            "true"
            if (cluster["metadata"].get("labels") or {}).get("ray.io/originated-from-crd")
            == "RayService"
            else None
        )
        pods: list[tuple[str, str, str | None]] = [("head", head.ip, "false")]
        for group in cluster["spec"].get("workerGroupSpecs") or []:
            for _ in range(int(group.get("replicas") or 0)):
                pods.append((group["groupName"], _loopback(), serve))
        for node, ip, serve_label in pods:
            kind = "head" if node == "head" else "worker"
            labels = {
                "ray.io/is-ray-node": "yes",
                "ray.io/cluster": name,
                "ray.io/node-type": kind,
                "ray.io/group": "headgroup" if kind == "head" else node,
                "ray.io/identifier": f"{name}-{kind}",
                "app.kubernetes.io/name": "kuberay",
                "app.kubernetes.io/created-by": "kuberay-operator",
            }
            if serve_label is not None:
                labels["ray.io/serve"] = serve_label
            body = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "generateName": f"{name}-{kind}-",
                    "namespace": self.namespace,
                    "labels": labels,
                    "ownerReferences": [owner],
                },
                "spec": {"containers": [{"name": f"ray-{kind}", "image": "rayproject/ray"}]},
            }
            created = await core.create_namespaced_pod(self.namespace, body)  # type: ignore[arg-type]
            await core.patch_namespaced_pod_status(  # type: ignore[call-arg]
                created.metadata.name,
                self.namespace,
                {"status": _ready_status(ip)},
                _content_type="application/merge-patch+json",
            )

    def head(self, cluster: str) -> FakeHead:
        return self.heads[cluster]


def submitted_prices(head: FakeHead) -> dict[str, Any]:
    """MangoStand's price in the last config a head accepted (for assertions)."""
    config = head.config or {}
    for app in config.get("applications") or []:
        for deployment in app.get("deployments") or []:
            if deployment.get("name") == "MangoStand":
                return dict(deployment.get("user_config") or {})
    return {}


def dumps(obj: object) -> str:
    return json.dumps(obj, sort_keys=True)
