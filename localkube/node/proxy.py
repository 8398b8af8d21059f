"""The service proxy: cluster IPs and node ports that forward to ready Pods, DNS, Endpoints.

Owns, for every Service, a TCP listener on each ``clusterIP:port`` (and ``nodeIP:nodePort``)
inside the cluster namespace that forwards each new connection to a ready endpoint, chosen round
robin when the connection arrives: a selector or readiness change applies to the next
connection at once, while connections already open keep their endpoint until they close (what
kube-proxy's conntrack gives, and what makes a blue/green switch lose no request). It also
answers the DNS names of Services (:meth:`ServiceProxy.lookup`), writes ``v1`` Endpoints and,
when the API serves them, EndpointSlices, and exposes a Service port on a host port
(:meth:`ServiceProxy.expose`, like ``kubectl port-forward``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import struct
from dataclasses import dataclass, field

from localkube.node import endpoints as ep
from localkube.node.kubeapi import Api, ApiFailure, Informer, Obj
from localkube.node.network import PodNetwork

__all__ = ["HostPort", "ServiceProxy"]

log = logging.getLogger(__name__)

_BUFFER = 64 * 1024  # read size and stream limit of each side of a proxied connection
_SLOW_SECONDS = 10.0
MAX_CONNECTIONS = 1024  # proxied connections open at once; more are reset
_REFUSED_LOG_EVERY = 10.0  # seconds between two logs of connections refused at the cap


@dataclass
class _Route:
    """The ready backends of one Service port and the round-robin cursor."""

    backends: list[ep.Backend] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def pick(self) -> ep.Backend | None:
        if not self.backends:
            return None
        return self.backends[next(self.counter) % len(self.backends)]


@dataclass(frozen=True)
class HostPort:
    """A Service port exposed on the host: ``host:port`` reaches it."""

    host: str
    port: int
    namespace: str
    service: str
    service_port: int


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (what a refused connection looks like to the client)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_BUFFER):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


class ServiceProxy:
    """Follows Services and Pods; ``await run()`` until cancelled."""

    def __init__(
        self,
        api: Api,
        network: PodNetwork,
        *,
        write_endpoints: bool = True,
        connect_timeout: float = 5.0,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.api = api
        self.network = network
        self.write_endpoints = write_endpoints
        self.connect_timeout = connect_timeout
        self.services = Informer(api, "/api/v1/services", self._service, name="proxy-services")
        self.pods = Informer(api, "/api/v1/pods", self._pod, name="proxy-pods")
        self.routes: dict[tuple[str, str, str], _Route] = {}  # (namespace, service, port name)
        self.addresses: dict[tuple[str, str], list[ep.Address]] = {}
        self._listeners: dict[tuple[str, int], tuple[asyncio.Server, tuple[str, str, str]]] = {}
        self._relisten = asyncio.Event()
        self._host_ports: list[asyncio.Server] = []
        self._dirty: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()
        self._written: dict[tuple[str, str, str], Obj] = {}
        self._slices = False
        self._connections: set[asyncio.Task[None]] = set()
        self.max_connections = max_connections
        self.refused = 0  # connections reset because ``max_connections`` were open
        self._refused_logged = -_REFUSED_LOG_EVERY

    # life ---------------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self.api.request("GET", "/apis/discovery.k8s.io/v1")
            self._slices = True
        except ApiFailure:
            self._slices = False
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.services.run())
                group.create_task(self.pods.run())
                group.create_task(self._writer())
                group.create_task(self._listener_loop())
        finally:
            await self.close()

    async def close(self) -> None:
        for server, _ in self._listeners.values():
            server.close()
        for server in self._host_ports:
            server.close()
        self._listeners.clear()
        self._host_ports.clear()
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def synced(self) -> None:
        """Wait until Services and Pods have been listed once."""
        await self.services.synced.wait()
        await self.pods.synced.wait()

    # state --------------------------------------------------------------------------------------
    def _service(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        meta = obj.get("metadata") or {}
        self._refresh(str(meta.get("namespace", "")), str(meta.get("name", "")))
        self._relisten.set()

    def _pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        namespace = str((obj.get("metadata") or {}).get("namespace", ""))
        for key, service in list(self.services.cache.items()):
            if key[0] == namespace and self._selects(service, old, new):
                self._refresh(*key)

    @staticmethod
    def _selects(service: Obj, *pods: Obj | None) -> bool:
        selector = (service.get("spec") or {}).get("selector") or {}
        if not selector:
            return False
        for pod in pods:
            labels = ((pod or {}).get("metadata") or {}).get("labels") or {}
            if pod is not None and all(labels.get(k) == v for k, v in selector.items()):
                return True
        return False

    def _refresh(self, namespace: str, name: str) -> None:
        """Recompute one Service's addresses and routes (synchronously: takes effect now)."""
        service = self.services.cache.get((namespace, name))
        key = (namespace, name)
        if service is None:
            self.addresses.pop(key, None)
            for route_key in [k for k in self.routes if k[:2] == key]:
                del self.routes[route_key]
        else:
            # Services without a selector have no address here: their Endpoints are the user's.
            addresses = ep.service_addresses(service, self.pods.cache.values()) or []
            self.addresses[key] = addresses
            names = set()
            for port in (service.get("spec") or {}).get("ports") or []:
                port_name = str(port.get("name", ""))
                names.add(port_name)
                route = self.routes.setdefault((namespace, name, port_name), _Route())
                route.backends = ep.backends(addresses, port_name)
            for route_key in [k for k in self.routes if k[:2] == key and k[2] not in names]:
                del self.routes[route_key]
        self._dirty.add(key)
        self._wake.set()

    def route(self, namespace: str, name: str, port: int) -> _Route | None:
        """The route of a Service port given by number."""
        service = self.services.cache.get((namespace, name))
        if service is None:
            return None
        for declared in (service.get("spec") or {}).get("ports") or []:
            if int(declared.get("port", 0)) == port:
                return self.routes.get((namespace, name, str(declared.get("name", ""))))
        return None

    def lookup(self, fqdn: str) -> list[str] | None:
        """DNS: ``<svc>.<ns>.svc.<domain>``: the cluster IP, or a headless one's ready Pods."""
        suffix = f".svc.{self.network.cluster_domain}"
        name = fqdn.rstrip(".").lower()
        if not name.endswith(suffix):
            return None
        parts = name.removesuffix(suffix).split(".")
        if len(parts) != 2:
            return None
        service = self.services.cache.get((parts[1], parts[0]))
        if service is None:
            return None
        cluster_ip = str((service.get("spec") or {}).get("clusterIP") or "None")
        if cluster_ip != "None":
            return [cluster_ip]
        return [a.ip for a in self.addresses.get((parts[1], parts[0]), []) if a.ready]

    # listeners ----------------------------------------------------------------------------------
    def _wanted(self) -> dict[tuple[str, int], tuple[str, str, str]]:
        wanted = {}
        for (namespace, name), service in self.services.cache.items():
            spec = service.get("spec") or {}
            cluster_ip = str(spec.get("clusterIP") or "None")
            for port in spec.get("ports") or []:
                if str(port.get("protocol", "TCP")) != "TCP":
                    continue
                target = (namespace, name, str(port.get("name", "")))
                if cluster_ip != "None":
                    wanted[(cluster_ip, int(port.get("port", 0)))] = target
                if port.get("nodePort") and spec.get("type") in ("NodePort", "LoadBalancer"):
                    wanted[(self.network.node_ip, int(port["nodePort"]))] = target
        return wanted

    async def _listener_loop(self) -> None:
        while True:
            await self._relisten.wait()
            self._relisten.clear()
            await self._reconcile_listeners()

    async def _reconcile_listeners(self) -> None:
        wanted = self._wanted()
        for address in [a for a in self._listeners if a not in wanted]:
            server, _ = self._listeners.pop(address)
            server.close()  # open connections go on
        for address, target in wanted.items():
            current = self._listeners.get(address)
            if current is not None and current[1] == target:
                continue
            if current is not None:
                current[0].close()
                del self._listeners[address]
            try:
                self._listeners[address] = (await self._listen(address, target), target)
            except OSError as e:
                log.warning(
                    "service listener failed",
                    extra={"address": f"{address[0]}:{address[1]}", "error": str(e)},
                )

    async def _listen(
        self, address: tuple[str, int], target: tuple[str, str, str]
    ) -> asyncio.Server:
        sock = self.network.socket()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(512)
        except OSError:
            sock.close()
            raise
        return await asyncio.start_server(
            lambda r, w: self._accepted(r, w, target), sock=sock, limit=_BUFFER
        )

    def _accepted(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        target: tuple[str, str, str],
    ) -> None:
        route = self.routes.get(target)
        self._track(reader, writer, route.pick() if route is not None else None)

    def _track(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        backend: ep.Backend | None,
    ) -> None:
        """Forward a new connection to ``backend``; reset it when there is none or when
        ``max_connections`` are open already."""
        if backend is None:
            _reset(writer)
            return
        if len(self._connections) >= self.max_connections:
            _reset(writer)
            self.refused += 1
            moment = asyncio.get_running_loop().time()
            if moment - self._refused_logged >= _REFUSED_LOG_EVERY:
                self._refused_logged = moment
                log.warning(
                    "proxy connection refused: too many open",
                    extra={"limit": self.max_connections, "refused": self.refused},
                )
            return
        task = asyncio.create_task(self._forward(reader, writer, backend))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _forward(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, backend: ep.Backend
    ) -> None:
        try:
            sock = self.network.socket()
        except OSError:
            _reset(writer)
            return
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            async with asyncio.timeout(self.connect_timeout):
                await asyncio.get_running_loop().sock_connect(sock, (backend.ip, backend.port))
            up_reader, up_writer = await asyncio.open_connection(sock=sock, limit=_BUFFER)
        except (OSError, TimeoutError):
            sock.close()
            _reset(writer)
            return
        except BaseException:
            sock.close()  # a socket left open keeps the cluster namespace alive
            writer.close()
            raise
        client = writer.get_extra_info("socket")
        if client is not None:
            with contextlib.suppress(OSError):
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = asyncio.get_running_loop().time()
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()
            lasted = asyncio.get_running_loop().time() - started
            if lasted >= _SLOW_SECONDS:  # a backend that held a connection: worth knowing which
                log.info(
                    "proxied connection was long",
                    extra={"backend": f"{backend.ip}:{backend.port}", "seconds": round(lasted, 1)},
                )

    # host ports ---------------------------------------------------------------------------------
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
        """Listen on ``host:host_port`` (0 = a free port) in this process's own namespace, or on
        ``sock`` (a listening socket bound elsewhere, e.g. on the host before entering namespaces),
        and forward each connection to a ready endpoint of ``service``'s ``port`` (headless ones
        too)."""

        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            route = self.route(namespace, service, port)
            self._track(reader, writer, route.pick() if route is not None else None)

        if sock is not None:
            server = await asyncio.start_server(accepted, sock=sock, limit=_BUFFER)
        else:
            server = await asyncio.start_server(accepted, host, host_port, limit=_BUFFER)
        self._host_ports.append(server)
        host, bound = server.sockets[0].getsockname()[:2]
        log.info(
            "service exposed",
            extra={"service": f"{namespace}/{service}:{port}", "address": f"{host}:{bound}"},
        )
        return HostPort(host, bound, namespace, service, port)

    # endpoints ----------------------------------------------------------------------------------
    async def _writer(self) -> None:
        await self.synced()
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            if self.write_endpoints:
                for namespace, name in sorted(dirty):
                    try:
                        await self._write(namespace, name)
                    except ApiFailure as e:
                        log.warning(
                            "endpoints write failed",
                            extra={"service": f"{namespace}/{name}", "error": str(e)},
                        )
                        self._dirty.add((namespace, name))
                        await asyncio.sleep(0.5)
                        self._wake.set()

    async def _write(self, namespace: str, name: str) -> None:
        service = self.services.cache.get((namespace, name))
        addresses = ep.service_addresses(service, self.pods.cache.values()) if service else None
        targets: list[tuple[str, str, Obj | None]] = [
            (
                "/api/v1",
                "endpoints",
                ep.endpoints_object(service, addresses)
                if service and addresses is not None
                else None,
            )
        ]
        if self._slices:
            targets.append(
                (
                    "/apis/discovery.k8s.io/v1",
                    "endpointslices",
                    ep.endpoint_slice(service, addresses)
                    if service and addresses is not None
                    else None,
                )
            )
        for prefix, plural, body in targets:
            object_name = name if plural == "endpoints" else f"{name}-local"
            key = (plural, namespace, object_name)
            path = f"{prefix}/namespaces/{namespace}/{plural}"
            if body is None:
                if key in self._written or service is None:
                    with contextlib.suppress(ApiFailure):
                        await self.api.request("DELETE", f"{path}/{object_name}")
                    self._written.pop(key, None)
                continue
            if self._written.get(key) == body:
                continue
            try:
                await self.api.request("PUT", f"{path}/{object_name}", body=body)
            except ApiFailure as e:
                if e.code != 404:
                    raise
                await self.api.request("POST", path, body=body)
            self._written[key] = body
