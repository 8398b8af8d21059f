"""SPDY/3.1 framing as kubectl's port-forward sends it: frames split anywhere, one header
compression context per direction, bounded frames and header blocks."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest

from localkube import spdy


class ClientEncoder:
    """Frames as a SPDY client writes them (the header compressor lives for the connection)."""

    def __init__(self) -> None:
        self.deflate = zlib.compressobj(zdict=spdy.DICTIONARY)

    def block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack("!I", len(headers))
        for name, value in headers.items():
            raw += struct.pack("!I", len(name)) + name.encode()
            raw += struct.pack("!I", len(value)) + value.encode()
        return self.deflate.compress(raw) + self.deflate.flush(zlib.Z_SYNC_FLUSH)

    def syn_stream(self, stream_id: int, headers: dict[str, str], *, version: int = 3) -> bytes:
        payload = struct.pack("!IIBB", stream_id, 0, 0, 0) + self.block(headers)
        return struct.pack("!HHI", 0x8000 | version, 1, len(payload)) + payload

    @staticmethod
    def data(stream_id: int, data: bytes, *, fin: bool = False) -> bytes:
        return struct.pack("!II", stream_id, (int(fin) << 24) | len(data)) + data

    @staticmethod
    def ping(ident: int) -> bytes:
        return struct.pack("!HHII", 0x8003, 6, 4, ident)

    @staticmethod
    def rst(stream_id: int, status: int) -> bytes:
        return struct.pack("!HHIII", 0x8003, 3, 8, stream_id, status)


def test_the_header_dictionary_is_the_one_spdy3_defines() -> None:
    assert len(spdy.DICTIONARY) == 1423
    digest = hashlib.sha256(spdy.DICTIONARY).hexdigest()
    assert digest == "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"


def test_frames_split_at_any_byte_are_read_whole_and_in_order() -> None:
    client = ClientEncoder()
    wire = (
        client.syn_stream(1, {"streamtype": "error", "port": "8265", "requestid": "0"})
        + client.data(1, b"", fin=True)
        + client.syn_stream(3, {"streamtype": "data", "port": "8265", "requestid": "0"})
        + client.data(3, b"GET / HTTP/1.1\r\n\r\n")
        + client.ping(1)
        + client.rst(3, 5)
    )
    reader = spdy.FrameReader()
    frames: list[spdy.Frame] = []
    for index in range(len(wire)):  # one byte at a time, as a tunnel may deliver them
        frames += reader.feed(wire[index : index + 1])
    assert frames == [
        spdy.SynStream(1, False, {"streamtype": ["error"], "port": ["8265"], "requestid": ["0"]}),
        spdy.Data(1, True, b""),
        spdy.SynStream(3, False, {"streamtype": ["data"], "port": ["8265"], "requestid": ["0"]}),
        spdy.Data(3, False, b"GET / HTTP/1.1\r\n\r\n"),
        spdy.Ping(1),
        spdy.RstStream(3, 5),
    ]


def test_the_second_header_block_is_read_with_the_context_the_first_left() -> None:
    client = ClientEncoder()
    headers = {"streamtype": "data", "port": "10001", "requestid": "7"}
    first, second = client.syn_stream(1, headers), client.syn_stream(3, headers)
    assert len(second) < len(first)  # it only refers back to what the first block sent
    reader = spdy.FrameReader()
    assert reader.feed(first + second) == [
        spdy.SynStream(1, False, {k: [v] for k, v in headers.items()}),
        spdy.SynStream(3, False, {k: [v] for k, v in headers.items()}),
    ]
    fresh = spdy.FrameReader()
    with pytest.raises(spdy.SpdyError):
        fresh.feed(second)  # without the first block's context it cannot be read


def test_the_servers_replies_and_data_read_back_with_one_client_context() -> None:
    writer = spdy.FrameWriter()
    wire = writer.syn_reply(1) + writer.syn_reply(3, fin=True) + writer.data(3, b"ok", fin=True)
    inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
    offset, seen = 0, []
    while offset < len(wire):
        first, second = struct.unpack_from("!II", wire, offset)
        length, flags = second & 0xFFFFFF, second >> 24
        payload = wire[offset + 8 : offset + 8 + length]
        if first & 0x80000000:
            assert first >> 16 == 0x8003
            (stream_id,) = struct.unpack_from("!I", payload)
            block = inflate.decompress(payload[4:])
            seen.append(("reply", stream_id, flags, struct.unpack("!I", block)[0]))
        else:
            seen.append(("data", first, flags, payload))
        offset += 8 + length
    assert seen == [("reply", 1, 0, 0), ("reply", 3, 1, 0), ("data", 3, 1, b"ok")]


def test_oversized_frames_and_header_bombs_are_protocol_errors() -> None:
    with pytest.raises(spdy.SpdyError, match="larger than"):
        spdy.FrameReader().feed(struct.pack("!II", 1, spdy.MAX_FRAME + 1))
    client = ClientEncoder()
    bomb = client.syn_stream(1, {"x": "a" * (spdy.MAX_HEADERS * 4)})
    assert len(bomb) < spdy.MAX_FRAME  # small on the wire, huge once inflated
    with pytest.raises(spdy.SpdyError, match="header block larger"):
        spdy.FrameReader().feed(bomb)


def test_a_frame_of_another_spdy_version_is_refused() -> None:
    frame = ClientEncoder().syn_stream(1, {"streamtype": "data"}, version=2)
    with pytest.raises(spdy.SpdyError, match="unsupported SPDY version 2"):
        spdy.FrameReader().feed(frame)


def test_a_truncated_control_frame_is_a_protocol_error_not_a_crash() -> None:
    with pytest.raises(spdy.SpdyError, match="too short"):
        spdy.FrameReader().feed(struct.pack("!HHI", 0x8003, 3, 2) + b"\x00\x01")
