"""Test kit for the local node: a dedicated localkube + LocalNode, Pod builders, polling, kubectl.

Each test run gets its own API server (the node binds every unscheduled Pod it sees) and its
own pod network instance; both are removed when the fixture ends.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from kubernetes_asyncio import client

from localkube import LocalKube, Settings
from localkube.node import Api, FileLogs, LocalNode, NodeSettings
from tests.commands import KUBECTL

T = TypeVar("T")


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="the local node needs root and iproute2 (network namespaces)",
)


async def eventually(check: Callable[[], Awaitable[T]], *, within: float = 30.0) -> T:
    """Poll ``check`` until it returns a truthy value (or raise its last AssertionError)."""
    deadline = time.monotonic() + within
    error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = await check()
            if result:
                return result
            error = None
        except AssertionError as e:
            error = e
        await asyncio.sleep(0.1)
    if error is not None:
        raise error
    raise AssertionError(f"condition not met within {within} s")


@dataclass
class Cluster:
    kube: LocalKube
    node: LocalNode
    api: Api
    kubeconfig: Path
    cache: Path

    async def kubectl(self, *args: str, check: bool = True) -> str:
        """kubectl's output; with ``check`` a failure fails the test, without it the output is
        followed by what kubectl printed on standard error."""
        code, out, err = await self.run_kubectl(*args)
        if check and code != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {err}")
        return out + (err if not check else "")

    def kubectl_argv(self) -> list[str]:
        """kubectl with this cluster's kubeconfig and discovery cache (append the command)."""
        return [KUBECTL, f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache}"]

    async def run_kubectl(
        self, *args: str, stdin: bytes | None = None, within: float = 60
    ) -> tuple[int, str, str]:
        """Run kubectl to its end: (exit code, standard output, standard error)."""
        process = await asyncio.create_subprocess_exec(
            KUBECTL,
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.cache}",
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(stdin), within)
        return int(process.returncode or 0), out.decode(), err.decode()

    async def create(self, path: str, body: dict[str, Any]) -> Any:
        return await self.api.request("POST", path, body=body)

    async def answers_http(self, ip: str, *, within: float) -> None:
        """Wait until ``http://ip/`` answers 200 from inside the pod network."""
        async with aiohttp.ClientSession(connector=self.node.network.connector()) as http:

            async def answers() -> bool:
                try:
                    async with http.get(f"http://{ip}/") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(answers, within=within)

    async def pod(self, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.api.request(
            "GET", f"/api/v1/namespaces/{namespace}/pods/{name}"
        )
        return result

    async def ready(self, namespace: str, name: str, *, within: float = 60.0) -> dict[str, Any]:
        async def check() -> dict[str, Any]:
            pod = await self.pod(namespace, name)
            conditions = (pod.get("status") or {}).get("conditions") or []
            assert {"type": "Ready", "status": "True"}.items() <= next(
                (c for c in conditions if c.get("type") == "Ready"), {}
            ).items(), f"{name} is not ready"
            return pod

        return await eventually(check, within=within)


class PortForward:
    """A running ``kubectl port-forward TARGET :REMOTE``: the local port it printed."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port

    @classmethod
    async def start(cls, cluster: Cluster, target: str, remote: int) -> PortForward:
        process = await asyncio.create_subprocess_exec(
            KUBECTL,
            f"--kubeconfig={cluster.kubeconfig}",
            f"--cache-dir={cluster.cache}",
            "port-forward",
            target,
            f":{remote}",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        async with asyncio.timeout(20):
            line = (await process.stdout.readline()).decode()
        match = re.match(rf"Forwarding from 127\.0\.0\.1:(\d+) -> {remote}$", line.strip())
        assert match, line
        return cls(process, int(match.group(1)))

    async def stop(self) -> str:
        """End kubectl (if it still runs); what it wrote on standard error."""
        if self.process.returncode is None:
            self.process.terminate()
        assert self.process.stderr is not None
        err = await self.process.stderr.read()
        await self.process.wait()
        return err.decode()


@asynccontextmanager
async def local_cluster(tmp: Path, **settings: Any) -> AsyncIterator[Cluster]:
    """A localkube API server with a local node attached, both stopped at exit."""
    logs = FileLogs(tmp / "logs")
    async with LocalKube(Settings(), logs=logs) as kube:
        kubeconfig = kube.write_kubeconfig(tmp / "kubeconfig")
        async with client.ApiClient(client.Configuration(host=kube.url)) as api_client:
            node = LocalNode(
                api_client, logs=logs, settings=NodeSettings(**settings), kubelets=kube.kubelets
            )
            async with node:
                yield Cluster(kube, node, node.api, kubeconfig, tmp / "kubectl-cache")


def pod(
    name: str,
    command: Sequence[str],
    *,
    labels: dict[str, str] | None = None,
    **container: Any,
) -> dict[str, Any]:
    """A one-container Pod running ``command`` (``restartPolicy`` and
    ``terminationGracePeriodSeconds`` go to the Pod, every other keyword to the container)."""
    pod_level = {"restartPolicy", "terminationGracePeriodSeconds"}
    spec: dict[str, Any] = {k: v for k, v in container.items() if k in pod_level}
    fields = {k: v for k, v in container.items() if k not in pod_level}
    spec["containers"] = [{"name": "main", "image": "busybox", "command": list(command), **fields}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }


def service(
    name: str, selector: dict[str, str], ports: Sequence[dict[str, Any]], **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": selector, "ports": list(ports), **spec},
    }


def netns_names(instance: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir("/run/netns") if n.startswith(f"rsv{instance}-"))
    except FileNotFoundError:
        return []


def dumps(value: Any) -> str:
    return json.dumps(value)


def alive(pids: Sequence[int]) -> list[int]:
    """The processes among ``pids`` that still run (a zombie waiting for its parent to reap it
    runs nothing and holds nothing but its pid)."""
    running = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            running.append(pid)
    return running


def children(name: str) -> list[int]:
    """This process's live child processes called ``name``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        comm, rest = stat.split("(", 1)[1].rsplit(")", 1)
        state, ppid = rest.split()[:2]
        if comm == name and int(ppid) == os.getpid() and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found
