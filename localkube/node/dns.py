"""A tiny DNS server for Pods: A records of Services under the cluster domain, nothing else.

Owns the wire format (RFC 1035: one question, A answers, NXDOMAIN, NODATA) as pure functions and
:class:`DnsServer`, a UDP endpoint on a socket the caller made (in the cluster namespace, on the
node IP, port 53). It never forwards a query: names outside the cluster domain are NXDOMAIN, so no
Pod traffic leaves the namespaces the project created. What a name resolves to comes from the
``lookup`` callback (the service proxy's view of Services and endpoints).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DnsServer", "Lookup", "Query", "answer", "parse_query"]

log = logging.getLogger(__name__)

TYPE_A = 1
CLASS_IN = 1
RCODE_FORMERR = 1
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4
MAX_UDP = 512
TTL = 5

# None: the name does not exist (NXDOMAIN); a list: its IPv4 addresses (empty = NODATA).
Lookup = Callable[[str], list[str] | None]


@dataclass(frozen=True)
class Query:
    id: int
    flags: int
    name: str
    qtype: int
    qclass: int
    question: bytes  # the question section as received, echoed in the answer


class DnsFormatError(ValueError):
    """The packet is not a query this server can read."""


def parse_query(packet: bytes) -> Query:
    """Read the header and the single question of a query, or :class:`DnsFormatError`."""
    if len(packet) < 12:
        raise DnsFormatError("short header")
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if flags & 0x8000 or qdcount != 1:
        raise DnsFormatError("not a single-question query")
    labels = []
    offset = 12
    while True:
        if offset >= len(packet):
            raise DnsFormatError("truncated name")
        length = packet[offset]
        offset += 1
        if length == 0:
            break
        if length & 0xC0 or offset + length > len(packet):
            raise DnsFormatError("bad label")
        labels.append(packet[offset : offset + length].decode("ascii", "replace"))
        offset += length
        if sum(len(label) + 1 for label in labels) > 255:
            raise DnsFormatError("name too long")
    if offset + 4 > len(packet):
        raise DnsFormatError("truncated question")
    qtype, qclass = struct.unpack("!HH", packet[offset : offset + 4])
    return Query(
        id=ident,
        flags=flags,
        name=".".join(labels).lower(),
        qtype=qtype,
        qclass=qclass,
        question=packet[12 : offset + 4],
    )


def _header(query_id: int, query_flags: int, rcode: int, answers: int, qd: int = 1) -> bytes:
    # QR=1, opcode copied, AA=1, RD copied, RA=1
    flags = 0x8000 | (query_flags & 0x7800) | 0x0400 | (query_flags & 0x0100) | 0x0080 | rcode
    return struct.pack("!HHHHHH", query_id, flags, qd, answers, 0, 0)


def answer(query: Query, lookup: Lookup) -> bytes:
    """The response to ``query``: A records from ``lookup``, NXDOMAIN or NODATA."""
    if (query.flags >> 11) & 0xF != 0:
        return _header(query.id, query.flags, RCODE_NOTIMP, 0) + query.question
    addresses = lookup(query.name)
    if addresses is None:
        return _header(query.id, query.flags, RCODE_NXDOMAIN, 0) + query.question
    if query.qtype != TYPE_A or query.qclass != CLASS_IN:
        return _header(query.id, query.flags, 0, 0) + query.question
    records = b""
    count = 0
    for address in addresses:
        record = struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL, 4)
        record += ipaddress.IPv4Address(address).packed
        if 12 + len(query.question) + len(records) + len(record) > MAX_UDP:
            break
        records += record
        count += 1
    return _header(query.id, query.flags, 0, count) + query.question + records


def formerr(packet: bytes) -> bytes:
    """A FORMERR answer echoing the id of an unreadable packet."""
    ident = struct.unpack("!H", packet[:2])[0] if len(packet) >= 2 else 0
    return _header(ident, 0, RCODE_FORMERR, 0, qd=0)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        # The selector loop's datagram transport is not an asyncio.DatagramTransport subclass.
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        transport = self.transport
        if transport is None:
            return
        try:
            reply = answer(parse_query(data), self.lookup)
        except DnsFormatError:
            reply = formerr(data)
        transport.sendto(reply, addr)


class DnsServer:
    """Answers DNS queries on a UDP socket the caller created and bound (the server owns it:
    :meth:`close` closes it, started or not)."""

    def __init__(self, sock: socket.socket, lookup: Lookup) -> None:
        self._sock = sock
        self._lookup = lookup
        self._transport: asyncio.BaseTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self._lookup), sock=self._sock
        )
        self._transport = transport
        log.info("dns serving", extra={"address": self._sock.getsockname()[0]})

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()  # closes the socket
            self._transport = None
        else:
            self._sock.close()
