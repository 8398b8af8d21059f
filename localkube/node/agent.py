"""The node agent: a kubelet (and a one-node scheduler) that runs Pods as local processes.

Owns the local Node object, the binding of unscheduled Pods to it, one :class:`PodWorker` per
Pod bound to it (started from a watch of every Pod), the environment every container starts
from (the project's Python first on ``PATH``, a private ``HOME`` and ``TMPDIR`` per Pod, the
node's default variables), Events, and the one warning that images are not pulled. It never
touches a process outside the Pods it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.metadata
import logging
import os
import platform
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from localkube.node.kubeapi import Api, ApiFailure, Informer, Obj
from localkube.node.logs import FileLogs
from localkube.node.network import PodNetwork, PodSandbox
from localkube.node.pods import PodWorker, now
from localkube.node.runtime import Launcher

__all__ = ["NodeAgent", "NodeSettings"]

log = logging.getLogger(__name__)


def _default_env() -> dict[str, str]:
    return {
        # Ray: no usage report (no network), and a stop that does not wait 30 s to drain.
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
        # Output reaches the log file as it is written, not when a buffer fills.
        "PYTHONUNBUFFERED": "1",
    }


@dataclass(frozen=True)
class NodeSettings:
    """How the local node presents itself and runs Pods (times in seconds).

    ``default_env`` comes before the Pod's own variables (which win). ``python_bin`` is put
    first on every container's ``PATH``: it is what ``ray`` and ``python`` mean in a Pod.
    """

    node_name: str = "localkube-node"
    scheduler_name: str = "default-scheduler"
    default_env: Mapping[str, str] = field(default_factory=_default_env)
    python_bin: str = os.path.dirname(sys.executable)
    restart_backoff: float = 10.0
    shutdown_grace: float = 5.0
    kubelet_version: str = "v1.32.4"


def _memory_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _ray_version() -> str:
    try:
        return importlib.metadata.version("ray")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


class NodeAgent:
    """Runs the Pods bound to one node; ``await run()`` until cancelled (then stops them)."""

    def __init__(
        self,
        api: Api,
        network: PodNetwork,
        logs: FileLogs,
        settings: NodeSettings | None = None,
    ) -> None:
        self.api = api
        self.network = network
        self.logs = logs
        self.settings = settings or NodeSettings()
        self.launcher = Launcher.find()
        self.memory_bytes = _memory_bytes()
        self.workers: dict[str, PodWorker] = {}
        self.closing = False
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._binding: set[str] = set()
        self._warned_images: set[str] = set()
        self._warned: dict[str, set[str]] = {}  # Pod uid -> reasons of its one-time Events
        self._http: aiohttp.ClientSession | None = None
        self.pods = Informer(api, "/api/v1/pods", self._on_pod, name="node-pods")

    @property
    def name(self) -> str:
        return self.settings.node_name

    @property
    def http(self) -> aiohttp.ClientSession:
        """The probes' HTTP client (connections start in the cluster namespace, no keep-alive)."""
        assert self._http is not None, "the agent is not running"
        return self._http

    # life ---------------------------------------------------------------------------------------
    async def run(self) -> None:
        self._http = aiohttp.ClientSession(
            connector=self.network.connector(force_close=True),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        try:
            await self._register()
            await self.pods.run()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        self.closing = True
        for worker in self.workers.values():
            worker.stop(
                min(worker.grace or self.settings.shutdown_grace, self.settings.shutdown_grace)
            )
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        log.info("node agent stopped", extra={"node": self.name})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _register(self) -> None:
        """Create the Node object (or refresh its status when it exists)."""
        body = self._node_object()
        try:
            current = await self.api.request("POST", "/api/v1/nodes", body=body)
        except ApiFailure as e:
            if e.code != 409:
                raise
            current = await self.api.request("GET", f"/api/v1/nodes/{self.name}")
        current["status"] = body["status"]
        await self.api.request("PUT", f"/api/v1/nodes/{self.name}/status", body=current)
        log.info("node registered", extra={"node": self.name, "node_ip": self.network.node_ip})

    def _node_object(self) -> Obj:
        cpus = str(os.cpu_count() or 1)
        memory = f"{self.memory_bytes // 1024}Ki"
        stamp = now()
        resources = {"cpu": cpus, "memory": memory, "pods": "110"}
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": {
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": platform.machine().replace("x86_64", "amd64"),
                },
            },
            "spec": {
                "podCIDR": str(self.network.pod_network),
                "podCIDRs": [str(self.network.pod_network)],
            },
            "status": {
                "capacity": resources,
                "allocatable": resources,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "the local node agent is running Pods as processes",
                        "lastHeartbeatTime": stamp,
                        "lastTransitionTime": stamp,
                    }
                ],
                "addresses": [
                    {"type": "InternalIP", "address": self.network.node_ip},
                    {"type": "Hostname", "address": self.name},
                ],
                "nodeInfo": {
                    "kubeletVersion": self.settings.kubelet_version,
                    "kubeProxyVersion": self.settings.kubelet_version,
                    "operatingSystem": "linux",
                    "architecture": platform.machine().replace("x86_64", "amd64"),
                    "kernelVersion": platform.release(),
                    "osImage": platform.platform(),
                    "containerRuntimeVersion": "localkube://processes",
                    "machineID": "",
                    "systemUUID": "",
                    "bootID": "",
                },
            },
        }

    # pods ---------------------------------------------------------------------------------------
    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        assert pod is not None
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        uid = str(meta.get("uid", ""))
        if kind == "DELETED":
            worker = self.workers.get(uid)
            if worker is not None:
                worker.stop(min(worker.grace or 2.0, 2.0), gone=True)
            return
        node = spec.get("nodeName")
        if not node:
            if (
                spec.get("schedulerName", "default-scheduler") == self.settings.scheduler_name
                and not meta.get("deletionTimestamp")
                and uid not in self._binding
            ):
                self._binding.add(uid)
                self._spawn(self._bind(pod))
            return
        if node != self.name or self.closing:
            return
        worker = self.workers.get(uid)
        if worker is None:
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                return  # ran under an earlier agent; nothing to run again
            worker = PodWorker(self, pod)
            self.workers[uid] = worker
            task = asyncio.create_task(worker.run(), name=f"pod {worker.key}")
            self._tasks[uid] = task
            task.add_done_callback(functools.partial(self._forget, uid))
        worker.update(pod)

    def _forget(self, uid: str, _task: object = None) -> None:
        self.workers.pop(uid, None)
        self._warned.pop(uid, None)
        task = self._tasks.pop(uid, None)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("pod worker failed", extra={"uid": uid, "error": repr(task.exception())})

    async def _bind(self, pod: Obj) -> None:
        meta = pod["metadata"]
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.name},
        }
        try:
            await self.api.request(
                "POST", f"/api/v1/namespaces/{namespace}/pods/{name}/binding", body=body
            )
        except ApiFailure as e:
            if e.code not in (404, 409):
                log.warning(
                    "pod binding failed", extra={"pod": f"{namespace}/{name}", "error": str(e)}
                )
            return
        finally:
            self._binding.discard(str(meta.get("uid", "")))
        await self._event(
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {namespace}/{name} to {self.name}",
            component="default-scheduler",
        )

    # what workers use ---------------------------------------------------------------------------
    def base_env(self, sandbox: PodSandbox, pod: Obj) -> dict[str, str]:
        spec = pod.get("spec") or {}
        hostname = str(spec.get("hostname") or (pod.get("metadata") or {}).get("name", ""))
        env = {
            "PATH": f"{self.settings.python_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(sandbox.directory / "home"),
            "HOSTNAME": hostname,
            "TMPDIR": str(sandbox.directory / "tmp"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }
        env.update(self.settings.default_env)
        return env

    async def config_data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        """A ConfigMap's data or a Secret's decoded data; ``None`` when it does not exist."""
        import base64

        try:
            obj = await self.api.request("GET", f"/api/v1/namespaces/{namespace}/{kind}/{name}")
        except ApiFailure as e:
            if e.code == 404:
                return None
            raise
        data = dict(obj.get("data") or {})
        if kind == "secrets":
            return {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
        return {k: str(v) for k, v in data.items()}

    def event(self, pod: Obj, kind: str, reason: str, message: str) -> None:
        """Record an Event about ``pod`` (in the background)."""
        self._spawn(self._event(pod, kind, reason, message))

    async def _event(
        self, pod: Obj, kind: str, reason: str, message: str, *, component: str = "kubelet"
    ) -> None:
        meta = pod.get("metadata") or {}
        namespace = str(meta.get("namespace", ""))
        stamp = now()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta.get('name')}.{secrets.token_hex(8)}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": namespace,
                "name": meta.get("name", ""),
                "uid": meta.get("uid", ""),
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": component, "host": self.name},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": self.name,
        }
        with contextlib.suppress(ApiFailure):
            await self.api.request("POST", f"/api/v1/namespaces/{namespace}/events", body=body)

    def image_warning(self, pod: Obj) -> None:
        """Say once per Pod (Event) and once per image (log) that images are not pulled."""
        spec = pod.get("spec") or {}
        containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
        images = sorted({str(c.get("image", "")) for c in containers})
        for image in images:
            if image not in self._warned_images:
                self._warned_images.add(image)
                log.warning(
                    "image not pulled: containers run with the local python",
                    extra={"image": image, "python_bin": self.settings.python_bin},
                )
        self.event(
            pod,
            "Warning",
            "ImageNotPulled",
            f"images are not pulled in local mode: {', '.join(images)} run as local processes "
            f"with {self.settings.python_bin} (Ray {_ray_version()})",
        )

    def warn_once(self, pod: Obj, reason: str, message: str) -> None:
        """A Warning Event, once per Pod and reason."""
        self._once(pod, "Warning", reason, message)

    def note_once(self, pod: Obj, reason: str, message: str) -> None:
        """A Normal Event, once per Pod and reason."""
        self._once(pod, "Normal", reason, message)

    def _once(self, pod: Obj, kind: str, reason: str, message: str) -> None:
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        reasons = self._warned.setdefault(uid, set())
        if reason not in reasons:
            reasons.add(reason)
            self.event(pod, kind, reason, message)
