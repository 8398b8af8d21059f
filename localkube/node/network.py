"""The pod network of one local node: a cluster namespace with a bridge, one namespace per Pod.

Owns the layout that keeps every address the project uses inside network namespaces it creates:

- the **cluster namespace** ``rsv<id>-c`` holds the bridge ``br0`` with the node IP (first
  address of the pod CIDR) and a ``local`` route for the whole service CIDR, so every Service
  cluster IP is a local address there (the service proxy binds them; nothing is routed);
- each **Pod namespace** ``rsv<id>-<n>`` gets a veth pair whose outer end sits on the bridge,
  ``eth0`` with the Pod IP and a default route via the node IP, ``lo`` up, and in
  ``/etc/netns/<name>/`` the ``hosts`` and ``resolv.conf`` that ``ip netns exec`` mounts over
  ``/etc`` for every process of the Pod (the resolver runs on the node IP, port 53).

The host namespace gets no interface and no route. A process that stays there reaches the
cluster namespace through sockets made in it (:meth:`PodNetwork.socket`, :meth:`connector`).

Every instance has a random id, a directory ``<root>/<id>`` (the Pods' working directories,
logs and temp dirs) and a lock file held while it lives. :meth:`PodNetwork.start` first removes
the leftovers of instances whose lock is free (a run that was SIGKILLed): the processes in their
namespaces, the namespaces, their ``/etc/netns`` entries and their directory.
:meth:`PodNetwork.close` removes everything the instance created.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from socket import socket as Socket
from typing import Any

import aiohttp

from localkube.node import netns, rootless

__all__ = ["NetworkUnavailable", "PodNetwork", "PodSandbox"]

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/tmp/rsvnode")


def default_root() -> Path:
    """Where the node keeps its instances: ``/tmp/rsvnode``, or ``/tmp/rsvnode-<uid>`` for a
    user without root (inside its own namespaces: see :mod:`localkube.node.rootless`)."""
    uid = rootless.outer_uid()
    return DEFAULT_ROOT if uid == 0 else DEFAULT_ROOT.with_name(f"{DEFAULT_ROOT.name}-{uid}")


ETC_NETNS = Path("/etc/netns")
_NAME = re.compile(r"^rsv([0-9a-f]{6})-")


class NetworkUnavailable(RuntimeError):
    """This process may not create network namespaces (one line saying why and what to do)."""


@dataclass(frozen=True)
class PodSandbox:
    """The network identity of one Pod: its namespace, address and private directory."""

    netns: str
    ip: str
    veth: str
    directory: Path

    @property
    def path(self) -> Path:
        return netns.NETNS_RUN_DIR / self.netns


def _lock(path: Path) -> int | None:
    """An exclusive lock on ``path`` (created), or ``None`` when someone else holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def kill_all(path: Path, sig: int = signal.SIGKILL) -> int:
    """Send ``sig`` to every process in the network namespace at ``path``; how many."""
    count = 0
    for pid in netns.pids_in(path):
        if pid == os.getpid():
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
            count += 1
    return count


async def wait_empty(path: Path, seconds: float) -> bool:
    """Wait up to ``seconds`` until no process is left in the namespace at ``path``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not [p for p in netns.pids_in(path) if p != os.getpid()]:
            return True
        await asyncio.sleep(0.05)
    return False


class PodNetwork:
    """The namespaces, bridge and addresses of one local node (``async with`` or start/close)."""

    def __init__(
        self,
        *,
        root: Path | None = None,
        pod_cidr: str = "10.244.0.0/16",
        service_cidr: str = "10.96.0.0/12",
        cluster_domain: str = "cluster.local",
    ) -> None:
        self.root = root if root is not None else default_root()
        self.id = secrets.token_hex(3)
        self.directory = self.root / self.id
        self.pod_network = ipaddress.ip_network(pod_cidr)
        self.service_cidr = service_cidr
        self.cluster_domain = cluster_domain
        hosts = self.pod_network.hosts()
        self.node_ip = str(next(hosts))
        self._free = [str(h) for h in hosts]
        self._used: set[str] = set()
        self._cursor = 0
        self._serial = 0
        self._lock_fd: int | None = None
        self._sandboxes: dict[str, PodSandbox] = {}
        self.cluster_netns = f"rsv{self.id}-c"
        self.stale_removed = 0

    @property
    def cluster_path(self) -> Path:
        return netns.NETNS_RUN_DIR / self.cluster_netns

    # life ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Clean stale instances, then create the cluster namespace and its bridge."""
        check_capable()
        self.root.mkdir(mode=0o711, parents=True, exist_ok=True)
        self.stale_removed = await clean_stale(self.root)
        while (fd := _lock(self.root / f"{self.id}.lock")) is None or self.directory.exists():
            if fd is not None:
                os.close(fd)
            self.id = secrets.token_hex(3)  # taken (or being cleaned): draw another
            self.directory = self.root / self.id
            self.cluster_netns = f"rsv{self.id}-c"
        self._lock_fd = fd
        self.directory.mkdir(mode=0o711)
        started = time.monotonic()
        ns = self.cluster_netns
        prefix = self.pod_network.prefixlen
        await netns.ip("netns", "add", ns)
        await netns.ip(
            "-n",
            ns,
            "-batch",
            "-",
            stdin=(
                "link set lo up\n"
                "link add br0 type bridge\n"
                f"addr add {self.node_ip}/{prefix} dev br0\n"
                "link set br0 up\n"
                f"route add local {self.service_cidr} dev lo\n"
            ).encode(),
        )
        log.info(
            "pod network created",
            extra={
                "netns": ns,
                "node_ip": self.node_ip,
                "seconds": round(time.monotonic() - started, 4),
                "stale_instances_removed": self.stale_removed,
            },
        )

    async def close(self) -> None:
        """Remove every Pod namespace, the cluster namespace and the instance directory."""
        for sandbox in list(self._sandboxes.values()):
            await self.remove_pod(sandbox)
        await remove_instance(self.root, self.id)
        if self._lock_fd is not None:
            (self.root / f"{self.id}.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None
        log.info("pod network removed", extra={"netns": self.cluster_netns})

    async def __aenter__(self) -> PodNetwork:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # pods ---------------------------------------------------------------------------------------
    def _allocate_ip(self) -> str:
        for offset in range(len(self._free)):
            index = (self._cursor + offset) % len(self._free)
            address = self._free[index]
            if address not in self._used:
                self._used.add(address)
                self._cursor = index + 1
                return address
        raise RuntimeError(f"pod CIDR {self.pod_network} exhausted")

    async def add_pod(self, *, hostname: str, namespace: str) -> PodSandbox:
        """A new Pod namespace on the bridge with its own address, hosts and resolv.conf."""
        started = time.monotonic()
        self._serial += 1
        name = f"rsv{self.id}-{self._serial}"
        veth = f"v{self._serial}"
        address = self._allocate_ip()
        directory = self.directory / f"p{self._serial}"
        sandbox = PodSandbox(netns=name, ip=address, veth=veth, directory=directory)
        self._sandboxes[name] = sandbox
        try:
            directory.mkdir(mode=0o755)
            etc = ETC_NETNS / name
            etc.mkdir(parents=True)
            (etc / "hosts").write_text(self.hosts_file(address, hostname))
            (etc / "resolv.conf").write_text(self.resolv_conf(namespace))
            prefix = self.pod_network.prefixlen
            await netns.ip("netns", "add", name)
            await netns.ip(
                "-n",
                self.cluster_netns,
                "-batch",
                "-",
                stdin=(
                    f"link add {veth} type veth peer name eth0 netns {name}\n"
                    f"link set {veth} master br0\n"
                    f"link set {veth} up\n"
                ).encode(),
            )
            await netns.ip(
                "-n",
                name,
                "-batch",
                "-",
                stdin=(
                    "link set lo up\n"
                    f"addr add {address}/{prefix} dev eth0\n"
                    "link set eth0 up\n"
                    f"route add default via {self.node_ip}\n"
                ).encode(),
            )
        except BaseException:
            await self.remove_pod(sandbox)
            raise
        log.info(
            "pod sandbox created",
            extra={
                "pod": f"{namespace}/{hostname}",
                "netns": name,
                "ip": address,
                "seconds": round(time.monotonic() - started, 4),
            },
        )
        return sandbox

    async def remove_pod(self, sandbox: PodSandbox) -> None:
        """Kill what is left in the Pod's namespace, then remove it, its files and its address."""
        kill_all(sandbox.path)
        await wait_empty(sandbox.path, 5.0)
        with contextlib.suppress(netns.IpError):
            await netns.ip("netns", "del", sandbox.netns)
        shutil.rmtree(ETC_NETNS / sandbox.netns, ignore_errors=True)
        shutil.rmtree(sandbox.directory, ignore_errors=True)
        self._used.discard(sandbox.ip)
        self._sandboxes.pop(sandbox.netns, None)

    def hosts_file(self, address: str, hostname: str) -> str:
        """The Pod's ``/etc/hosts``, as the kubelet writes it."""
        return (
            "# Kubernetes-managed hosts file.\n"
            "127.0.0.1\tlocalhost\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"{address}\t{hostname}\n"
        )

    def resolv_conf(self, namespace: str) -> str:
        """The Pod's ``/etc/resolv.conf`` (``dnsPolicy: ClusterFirst``)."""
        domain = self.cluster_domain
        return (
            f"search {namespace}.svc.{domain} svc.{domain} {domain}\n"
            f"nameserver {self.node_ip}\n"
            "options ndots:5\n"
        )

    # sockets into the cluster namespace --------------------------------------------------------
    def socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> Socket:
        """A non-blocking socket in the cluster namespace (reaches Pod IPs and cluster IPs)."""
        return netns.socket_in(self.cluster_path, family, kind)

    def _factory(self, addr_info: Any) -> Socket:
        family, kind, proto = addr_info[0], addr_info[1], addr_info[2]
        return netns.socket_in(self.cluster_path, family, kind, proto)

    def connector(self, **kwargs: Any) -> aiohttp.TCPConnector:
        """An aiohttp connector whose connections start in the cluster namespace.

        ``aiohttp.ClientSession(connector=network.connector())`` reaches ``http://<pod IP>:8265``
        from a process that stays in the host namespace.
        """
        return aiohttp.TCPConnector(socket_factory=self._factory, **kwargs)


def check_capable() -> None:
    """Raise :class:`NetworkUnavailable` unless this process may create network namespaces."""
    if shutil.which("ip") is None:
        raise NetworkUnavailable(
            "local mode needs the 'ip' command (iproute2): apt-get install iproute2"
        )
    if os.geteuid() != 0:
        raise NetworkUnavailable(
            "the local node needs root to create network namespaces: run it as root, or start "
            "'raysvc up', which makes namespaces of its own when it runs without root"
        )


async def remove_instance(root: Path, instance: str) -> None:
    """Remove what instance ``instance`` created: processes, namespaces, files."""
    names = sorted(
        (p.name for p in _listdir(netns.NETNS_RUN_DIR) if p.name.startswith(f"rsv{instance}-")),
        key=lambda n: n.endswith("-c"),  # Pods first, the cluster namespace last
    )
    for name in names:
        kill_all(netns.NETNS_RUN_DIR / name)
    for name in names:
        await wait_empty(netns.NETNS_RUN_DIR / name, 5.0)
        with contextlib.suppress(netns.IpError):
            await netns.ip("netns", "del", name)
    for etc in _listdir(ETC_NETNS):
        if etc.name.startswith(f"rsv{instance}-"):
            shutil.rmtree(etc, ignore_errors=True)
    shutil.rmtree(root / instance, ignore_errors=True)


async def clean_stale(root: Path) -> int:
    """Remove the leftovers of every instance under ``root`` whose owner is gone; how many."""
    instances: set[str] = set()
    for entry in (*_listdir(netns.NETNS_RUN_DIR), *_listdir(ETC_NETNS)):
        match = _NAME.match(entry.name)
        if match:
            instances.add(match.group(1))
    for entry in _listdir(root):
        name = entry.name.removesuffix(".lock")
        if re.fullmatch(r"[0-9a-f]{6}", name):
            instances.add(name)
    removed = 0
    for instance in sorted(instances):
        lock_path = root / f"{instance}.lock"
        fd = _lock(lock_path)
        if fd is None:
            continue  # its owner is alive
        try:
            await remove_instance(root, instance)
            removed += 1
            log.warning("stale pod network removed", extra={"instance": instance})
        finally:
            lock_path.unlink(missing_ok=True)
            os.close(fd)
    return removed


def _listdir(path: Path) -> Iterable[Path]:
    try:
        return list(path.iterdir())
    except FileNotFoundError:
        return []
