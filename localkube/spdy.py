"""SPDY/3.1 framing, the server's half: what kubectl's port-forward speaks inside its WebSocket.

Owns the wire format as pure code: reading frames from a byte stream that arrives in arbitrary
pieces (:class:`FrameReader`), writing the frames a server sends (:class:`FrameWriter`), and the
zlib header compression with the SPDY/3 dictionary (one compression context per direction for
the whole connection, flushed after every header block). No I/O, no flow control: the SPDY
implementation Kubernetes clients use neither sends nor honours ``WINDOW_UPDATE``.

Bounds: a frame's payload is at most :data:`MAX_FRAME` bytes and a decompressed header block at
most :data:`MAX_HEADERS`; anything larger, or not SPDY version 3, is a :class:`SpdyError` (the
connection is then closed).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

__all__ = [
    "DICTIONARY",
    "Data",
    "Frame",
    "FrameReader",
    "FrameWriter",
    "GoAway",
    "Ping",
    "RstStream",
    "SpdyError",
    "SynStream",
]

VERSION = 3
MAX_FRAME = 1 << 20
MAX_HEADERS = 64 * 1024
FLAG_FIN = 0x01

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = (
    1,
    2,
    3,
    4,
    6,
    7,
    8,
    9,
)
RST_PROTOCOL_ERROR, RST_REFUSED_STREAM, RST_CANCEL = 1, 3, 5


# The header compression dictionary of the SPDY/3 specification (section 2.6.10.1): common
# header names and values, each with a 4-byte length, then a run of common text.
_WORDS = """
options head post put delete trace accept accept-charset accept-encoding accept-language
accept-ranges age allow authorization cache-control connection content-base content-encoding
content-language content-length content-location content-md5 content-range content-type date
etag expect expires from host if-match if-modified-since if-none-match if-range
if-unmodified-since last-modified location max-forwards pragma proxy-authenticate
proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade
user-agent vary via warning www-authenticate method get status
"""
_CODES = """
100 101 201 202 205 206 300 302 303 304 305 306 307 402 405 406 407 408 409 410 411 412 413 414
415 416 417 502 504 505
"""
_REASONS = (
    "203 Non-Authoritative Information",
    "204 No Content",
    "301 Moved Permanently",
    "400 Bad Request",
    "401 Unauthorized",
    "403 Forbidden",
    "404 Not Found",
    "500 Internal Server Error",
    "501 Not Implemented",
    "503 Service Unavailable",
)
_TEXT = (
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,"
    "application/xhtml+xml,text/plain,text/javascript,public"
    "privatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)


def _dictionary() -> bytes:
    words = _WORDS.split()
    words += ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive"]
    words += ["origin"]
    prefix = b"".join(struct.pack("!I", len(w)) + w.encode() for w in words)
    return prefix + ("".join(_CODES.split()) + "".join(_REASONS) + _TEXT).encode()


DICTIONARY = _dictionary()


class SpdyError(ValueError):
    """The peer broke the protocol; the connection cannot go on."""


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    fin: bool
    headers: dict[str, list[str]]


@dataclass(frozen=True)
class Data:
    stream_id: int
    fin: bool
    data: bytes


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Ping:
    id: int


@dataclass(frozen=True)
class GoAway:
    last_stream_id: int
    status: int


@dataclass(frozen=True)
class Other:
    """A frame a server may ignore (SETTINGS, HEADERS, WINDOW_UPDATE, SYN_REPLY, unknown)."""

    kind: int


Frame = SynStream | Data | RstStream | Ping | GoAway | Other


def _headers(block: bytes) -> dict[str, list[str]]:
    """A decompressed name/value header block (names lowercased, values split at NUL)."""
    try:
        (count,) = struct.unpack_from("!I", block, 0)
        offset = 4
        headers: dict[str, list[str]] = {}
        for _ in range(count):
            (size,) = struct.unpack_from("!I", block, offset)
            name = block[offset + 4 : offset + 4 + size].decode()
            offset += 4 + size
            (size,) = struct.unpack_from("!I", block, offset)
            value = block[offset + 4 : offset + 4 + size].decode()
            offset += 4 + size
            if offset > len(block):
                raise SpdyError("header block truncated")
            headers.setdefault(name.lower(), []).extend(value.split("\x00"))
    except (struct.error, UnicodeDecodeError) as e:
        raise SpdyError(f"malformed header block: {e}") from e
    return headers


@dataclass
class FrameReader:
    """Turns received bytes into frames (call :meth:`feed` with each piece as it arrives)."""

    buffer: bytearray = field(default_factory=bytearray)
    _inflate: zlib._Decompress = field(default_factory=lambda: zlib.decompressobj(zdict=DICTIONARY))

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer += data
        frames: list[Frame] = []
        while len(self.buffer) >= 8:
            first, second = struct.unpack_from("!II", self.buffer, 0)
            length = second & 0xFFFFFF
            flags = second >> 24
            if length > MAX_FRAME:
                raise SpdyError(f"frame of {length} bytes is larger than {MAX_FRAME}")
            if len(self.buffer) < 8 + length:
                break
            payload = bytes(self.buffer[8 : 8 + length])
            del self.buffer[: 8 + length]
            if first & 0x80000000:
                version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
                if version != VERSION:
                    raise SpdyError(f"unsupported SPDY version {version}")
                frames.append(self._control(kind, flags, payload))
            else:
                frames.append(Data(first & 0x7FFFFFFF, bool(flags & FLAG_FIN), payload))
        return frames

    def _control(self, kind: int, flags: int, payload: bytes) -> Frame:
        try:
            if kind == SYN_STREAM:
                (stream_id,) = struct.unpack_from("!I", payload, 0)
                block = self._decompress(payload[10:])
                return SynStream(stream_id & 0x7FFFFFFF, bool(flags & FLAG_FIN), _headers(block))
            if kind in (SYN_REPLY, HEADERS):
                self._decompress(payload[4:])  # keeps the compression context in step
                return Other(kind)
            if kind == RST_STREAM:
                stream_id, status = struct.unpack_from("!II", payload, 0)
                return RstStream(stream_id & 0x7FFFFFFF, status)
            if kind == PING:
                (ident,) = struct.unpack_from("!I", payload, 0)
                return Ping(ident)
            if kind == GOAWAY:
                last, status = struct.unpack_from("!II", payload, 0)
                return GoAway(last & 0x7FFFFFFF, status)
        except struct.error as e:
            raise SpdyError(f"control frame {kind} too short") from e
        return Other(kind)

    def _decompress(self, compressed: bytes) -> bytes:
        try:
            block = self._inflate.decompress(compressed, MAX_HEADERS)
        except zlib.error as e:
            raise SpdyError(f"header block does not decompress: {e}") from e
        if self._inflate.unconsumed_tail:
            raise SpdyError(f"header block larger than {MAX_HEADERS} bytes")
        return block


class FrameWriter:
    """Encodes the frames a server sends (one instance per connection: it holds the header
    compression context)."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zdict=DICTIONARY)

    @staticmethod
    def _control(kind: int, flags: int, payload: bytes) -> bytes:
        return struct.pack("!HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload

    def _block(self, headers: dict[str, list[str]]) -> bytes:
        raw = struct.pack("!I", len(headers))
        for name, values in headers.items():
            value = "\x00".join(values).encode()
            raw += struct.pack("!I", len(name)) + name.lower().encode()
            raw += struct.pack("!I", len(value)) + value
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def syn_reply(
        self, stream_id: int, headers: dict[str, list[str]] | None = None, *, fin: bool = False
    ) -> bytes:
        payload = struct.pack("!I", stream_id) + self._block(headers or {})
        return self._control(SYN_REPLY, FLAG_FIN if fin else 0, payload)

    @staticmethod
    def data(stream_id: int, data: bytes, *, fin: bool = False) -> bytes:
        flags = FLAG_FIN if fin else 0
        return struct.pack("!II", stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data

    def rst_stream(self, stream_id: int, status: int) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack("!II", stream_id, status))

    def ping(self, ident: int) -> bytes:
        return self._control(PING, 0, struct.pack("!I", ident))

    def goaway(self, last_stream_id: int, status: int = 1) -> bytes:
        return self._control(GOAWAY, 0, struct.pack("!II", last_stream_id, status))
