"""What the node opens it closes, even when it is interrupted: an ``ip`` command cancelled
half-way is killed and reaped, and the DNS server's socket is closed though it never served."""

from __future__ import annotations

import asyncio
import socket

import pytest

from localkube.node import netns
from localkube.node.dns import DnsServer
from tests.nodekit import children, eventually, needs_root

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


@needs_root
async def test_a_cancelled_ip_command_is_killed_and_reaped() -> None:
    assert children("ip") == []
    task = asyncio.create_task(netns.ip("monitor", "link"))  # runs until stopped

    async def running() -> bool:
        return len(children("ip")) == 1

    await eventually(running, within=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert children("ip") == []


async def test_a_dns_server_closed_before_it_started_closes_its_socket() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server = DnsServer(sock, lambda name: None)
    server.close()
    assert sock.fileno() == -1
