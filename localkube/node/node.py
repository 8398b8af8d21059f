"""The local node in one piece: pod network, DNS, node agent and service proxy.

Owns their order: the network first (stale instances cleaned, the cluster namespace made), the
DNS server on the node IP, the service proxy and the node agent; on exit the agent stops its
Pods (SIGTERM, then SIGKILL after a short grace), the proxy closes its listeners and the network
removes every namespace, interface and directory it made. Everything runs on the caller's
event loop, in the caller's network namespace; sockets that must live in the cluster namespace
are made there (:meth:`PodNetwork.socket`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from types import TracebackType

from kubernetes_asyncio import client

from localkube.kubelet import Kubelets
from localkube.node.agent import NodeAgent, NodeSettings
from localkube.node.dns import DnsServer
from localkube.node.kubeapi import Api
from localkube.node.logs import FileLogs
from localkube.node.network import PodNetwork
from localkube.node.proxy import HostPort, ServiceProxy
from localkube.node.sessions import NodeSessions

__all__ = ["LocalNode"]


class LocalNode:
    """Runs Pods bound to it and serves Services, against the API ``api`` talks to.

    ``logs`` must be the :class:`FileLogs` the API server reads (``LocalKube(logs=...)``).
    With ``kubelets`` (``LocalKube.kubelets`` of an API server in this process) the node serves
    ``exec``, ``attach`` and ``port-forward`` for its Pods while it runs.
    """

    def __init__(
        self,
        api: client.ApiClient,
        *,
        logs: FileLogs,
        settings: NodeSettings | None = None,
        root: Path | None = None,
        pod_cidr: str = "10.244.0.0/16",
        service_cidr: str = "10.96.0.0/12",
        kubelets: Kubelets | None = None,
    ) -> None:
        self.api = Api(api)
        self.logs = logs
        self.network = PodNetwork(root=root, pod_cidr=pod_cidr, service_cidr=service_cidr)
        self.proxy = ServiceProxy(self.api, self.network)
        self.agent = NodeAgent(self.api, self.network, logs, settings)
        self.sessions = NodeSessions(self.agent)
        self.kubelets = kubelets
        self._dns: DnsServer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.network.start()
        try:
            sock = self.network.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._dns = DnsServer(sock, self.proxy.lookup)  # stop() closes the socket from here
            sock.bind((self.network.node_ip, 53))
            await self._dns.start()
            self._tasks = [
                asyncio.create_task(self.proxy.run(), name="service-proxy"),
                asyncio.create_task(self.agent.run(), name="node-agent"),
            ]
            async with asyncio.timeout(30):
                await self.proxy.synced()
            if self.kubelets is not None:
                self.kubelets.register(self.agent.name, self.sessions)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self.kubelets is not None:
            self.kubelets.unregister(self.agent.name, self.sessions)
        for task in reversed(self._tasks):  # the agent first: its Pods stop before the proxy
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._dns is not None:
            self._dns.close()
            self._dns = None
        await self.network.close()

    async def __aenter__(self) -> LocalNode:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def expose(
        self,
        namespace: str,
        service: str,
        port: int,
        *,
        host: str = "127.0.0.1",
        host_port: int = 0,
        sock: socket.socket | None = None,
    ) -> HostPort:
        """Expose a Service port on ``host:host_port`` of this process's namespace (0: free), or
        on the listening socket ``sock``."""
        return await self.proxy.expose(
            namespace, service, port, host=host, host_port=host_port, sock=sock
        )
