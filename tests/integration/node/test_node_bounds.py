"""The node bounds what it holds: the service proxy resets and counts connections beyond its
cap (the ones it forwards carry data both ways), and the agent forgets what it noted about a
Pod once the Pod is gone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.nodekit import Cluster, eventually, local_cluster, needs_root, pod, service

pytestmark = [needs_root, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

NS = "default"
PODS = f"/api/v1/namespaces/{NS}/pods"
SERVICES = f"/api/v1/namespaces/{NS}/services"
ECHO = """
import socket, threading
server = socket.create_server(("", 7000))
def serve(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    async with local_cluster(tmp_path_factory.mktemp("bounds"), restart_backoff=0.2) as c:
        yield c


async def connect(cluster: Cluster, ip: str) -> Conn:
    sock = cluster.node.network.socket()
    try:
        async with asyncio.timeout(5):
            await asyncio.get_running_loop().sock_connect(sock, (ip, 7000))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


async def echoes(conn: Conn, text: bytes) -> bool:
    """Whether ``text`` comes back (False when the connection is reset or ends)."""
    reader, writer = conn
    try:
        writer.write(text)
        await writer.drain()
        async with asyncio.timeout(5):
            return await reader.readexactly(len(text)) == text
    except (ConnectionError, asyncio.IncompleteReadError):
        return False


async def test_connections_beyond_the_proxys_cap_are_reset_and_counted(cluster: Cluster) -> None:
    probe = {"tcpSocket": {"port": 7000}, "periodSeconds": 1}
    body = pod("echo", ["python", "-c", ECHO], labels={"app": "echo"}, readinessProbe=probe)
    await cluster.create(PODS, body)
    await cluster.ready(NS, "echo")
    created = await cluster.create(SERVICES, service("echo", {"app": "echo"}, [{"port": 7000}]))
    ip = created["spec"]["clusterIP"]
    proxy = cluster.node.proxy
    proxy.max_connections = 2
    opened: list[Conn] = []
    try:

        async def first() -> bool:
            conn = await connect(cluster, ip)
            opened.append(conn)
            return await echoes(conn, b"first")

        await eventually(first, within=20)  # the listener is up and the route ready
        for conn in opened[:-1]:
            conn[1].close()
        del opened[:-1]

        async def only_one_open() -> bool:
            return len(proxy._connections) == 1

        await eventually(only_one_open, within=10)
        second = await connect(cluster, ip)
        opened.append(second)
        assert await echoes(second, b"second")
        third = await connect(cluster, ip)
        opened.append(third)
        assert not await echoes(third, b"third")
        assert proxy.refused == 1
        assert await echoes(opened[0], b"still")

        opened[0][1].close()

        async def admitted() -> bool:
            conn = await connect(cluster, ip)
            opened.append(conn)
            return await echoes(conn, b"fourth")

        await eventually(admitted, within=10)
        big = bytes(range(256)) * 4096  # 1 MiB through 64 KiB buffers
        reader, writer = opened[-1]

        async def send() -> None:
            writer.write(big)
            await writer.drain()

        async with asyncio.timeout(10):
            _, back = await asyncio.gather(send(), reader.readexactly(len(big)))
        assert back == big
    finally:
        proxy.max_connections = 1024
        for _, writer in opened:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def test_the_agent_forgets_a_pods_one_time_events_when_the_pod_is_gone(
    cluster: Cluster,
) -> None:
    body = pod("noted", [], args=["sleep", "600"], terminationGracePeriodSeconds=1)
    del body["spec"]["containers"][0]["command"]  # a note says what runs instead
    created = await cluster.create(PODS, body)
    uid = created["metadata"]["uid"]
    agent = cluster.node.agent

    async def noted() -> bool:
        return "DefaultCommand" in agent._warned.get(uid, set())

    await eventually(noted, within=30)
    await cluster.api.request("DELETE", f"{PODS}/noted")

    async def forgotten() -> bool:
        return uid not in agent.workers and uid not in agent._warned

    await eventually(forgotten, within=30)
