"""The in-process API: run a localkube API server inside an asyncio program.

Owns :class:`LocalKube` (start and stop the server on a TCP port, its URL, a kubeconfig that kubectl
and kubernetes-asyncio accept, and the test hooks: faults, logs, history compaction, bookmark
interval) and the default service resolver for webhooks (Service -> Endpoints -> address).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
import ssl
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from aiohttp import web

from localkube.faults import Faults
from localkube.kubelet import Kubelets
from localkube.logsource import LogSource, MemoryLogs
from localkube.server import KUBE, Kube, make_app
from localkube.settings import Settings
from localkube.webhookclient import ServiceRef, ServiceResolver

__all__ = ["LocalKube", "kubeconfig"]

log = logging.getLogger(__name__)


def kubeconfig(
    url: str,
    *,
    context: str = "localkube",
    namespace: str = "default",
    ca_pem: bytes | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """A kubeconfig for the server at ``url``: trusting ``ca_pem`` and sending ``token`` when
    given (an empty user otherwise)."""
    cluster: dict[str, Any] = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    user: dict[str, Any] = {"token": token} if token else {}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": user}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": namespace},
            }
        ],
        "current-context": context,
        "preferences": {},
    }


class LocalKube:
    """An embedded Kubernetes API server, started by ``async with``.

    ``service_resolver`` maps a webhook's ``clientConfig.service`` to ``host:port``; when it
    returns ``None`` (or is not given) the Service's Endpoints are used. ``kubelets`` is where
    node agents register to serve ``exec``, ``attach`` and ``port-forward`` for their Pods
    (``LocalNode(..., kubelets=kube.kubelets)``).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        logs: LogSource | None = None,
        service_resolver: ServiceResolver | None = None,
        kubelets: Kubelets | None = None,
        listen_also: Sequence[socket.socket] = (),
    ) -> None:
        self.settings = settings or Settings()
        self.listen_also = tuple(listen_also)
        self.logs = logs if logs is not None else MemoryLogs()
        self.service_resolver = service_resolver
        self.kubelets = kubelets if kubelets is not None else Kubelets()
        self._app = make_app(
            self.settings, logs=self.logs, resolver=self._resolve, kubelets=self.kubelets
        )
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def kube(self) -> Kube:
        return self._app[KUBE]

    @property
    def url(self) -> str:
        scheme = "https" if self.settings.tls_cert is not None else "http"
        return f"{scheme}://{self.settings.host}:{self.port}"

    @property
    def faults(self) -> Faults:
        return self.kube.faults

    @property
    def bookmark_interval(self) -> float:
        return self.kube.bookmark_interval

    @bookmark_interval.setter
    def bookmark_interval(self, seconds: float) -> None:
        self.kube.bookmark_interval = seconds

    @property
    def revision(self) -> int:
        """The current (global) resourceVersion."""
        return self.kube.store.revision

    def compact(self) -> int:
        """Drop the watch history (watches from older revisions get 410); returns the revision."""
        return self.kube.store.compact()

    async def start(self) -> None:
        runner = web.AppRunner(
            self._app, handler_cancellation=True, access_log=None, shutdown_timeout=2.0
        )
        await runner.setup()
        site = web.TCPSite(
            runner, self.settings.host, self.settings.port, ssl_context=self._ssl_context()
        )
        await site.start()
        for sock in self.listen_also:  # e.g. the host's port, bound before entering namespaces
            await web.SockSite(runner, sock, ssl_context=self._ssl_context()).start()
        self._runner = runner
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = int(server.sockets[0].getsockname()[1])
        self.kube.address = f"{self.settings.host}:{self.port}"
        log.info("localkube serving", extra={"url": self.url})

    def _ssl_context(self) -> ssl.SSLContext | None:
        settings = self.settings
        if settings.tls_cert is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
        return context

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> LocalKube:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def kubeconfig(
        self, *, context: str = "localkube", namespace: str = "default"
    ) -> dict[str, Any]:
        ca = self.settings.tls_ca.read_bytes() if self.settings.tls_ca is not None else None
        return kubeconfig(
            self.url,
            context=context,
            namespace=namespace,
            ca_pem=ca,
            token=self.settings.token,
        )

    def write_kubeconfig(
        self, path: Path, *, context: str = "localkube", namespace: str = "default"
    ) -> Path:
        """Write a kubeconfig for this server to ``path`` (parents created), readable by its
        owner only (it may hold the token); returns ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(
            self.kubeconfig(context=context, namespace=namespace), sort_keys=False
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(path, 0o600)
        return path

    async def _resolve(self, ref: ServiceRef) -> str | None:
        if self.service_resolver is not None:
            address = await self.service_resolver(ref)
            if address is not None:
                return address
        return _from_endpoints(self.kube, ref)


def _from_endpoints(kube: Kube, ref: ServiceRef) -> str | None:
    """``ip:targetPort`` of the first ready address behind a Service port."""
    service = kube.store.get(("", "services"), ref.namespace, ref.name)
    endpoints = kube.store.get(("", "endpoints"), ref.namespace, ref.name)
    if service is None or endpoints is None:
        return None
    port = next(
        (p for p in (service.get("spec") or {}).get("ports") or [] if p.get("port") == ref.port),
        None,
    )
    if port is None:
        return None
    for subset in endpoints.get("subsets") or []:
        addresses = subset.get("addresses") or []
        ports = subset.get("ports") or []
        target = next(
            (
                p.get("port")
                for p in ports
                if p.get("name", "") == port.get("name", "") or len(ports) == 1
            ),
            None,
        )
        if addresses and target:
            return f"{addresses[0].get('ip')}:{target}"
    return None
