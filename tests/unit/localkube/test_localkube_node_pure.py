"""The local node's pure readings: the CRI log format its files use, the kubelet's timestamp,
and the command line of a container whose image is not pulled."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from localkube.logsource import format_timestamp
from localkube.node import podspec
from localkube.node.logs import encode_entries, parse_entry

NS = 1_700_000_000_123_456_789


def test_timestamps_have_nine_fractional_digits_in_utc_so_they_sort_as_text() -> None:
    assert format_timestamp(NS) == "2023-11-14T22:13:20.123456789Z"
    assert format_timestamp(1_700_000_000_000_000_001) == "2023-11-14T22:13:20.000000001Z"
    assert format_timestamp(NS) < format_timestamp(NS + 1)


def test_full_lines_are_f_entries_and_a_trailing_piece_is_a_p_entry() -> None:
    encoded = encode_entries("stdout", b"one\ntwo\npart", NS)
    stamp = "2023-11-14T22:13:20.123456789Z"
    assert encoded.decode().splitlines() == [
        f"{stamp} stdout F one",
        f"{stamp} stdout F two",
        f"{stamp} stdout P part",
    ]
    assert encode_entries("stderr", b"\n", NS).decode() == f"{stamp} stderr F \n"
    assert encode_entries("stdout", b"", NS) == b""


@given(st.binary(max_size=40_000), st.sampled_from(["stdout", "stderr"]))
def test_decoding_the_entries_gives_back_exactly_what_was_written(data: bytes, stream: str) -> None:
    entries = [parse_entry(line) for line in encode_entries(stream, data, NS).split(b"\n")[:-1]]
    assert all(e is not None and e.stream == stream for e in entries)
    assert b"".join(e.text for e in entries if e is not None) == data


def test_a_line_that_is_not_an_entry_is_recognised_as_such() -> None:
    assert parse_entry(b"plain text from an older file") is None
    assert parse_entry(b"2023-11-14T22:13:20.123456789Z stdout F") is not None


def test_a_container_without_a_command_runs_its_args_or_else_a_shell() -> None:
    curl = {"name": "curl", "image": "radial/busyboxplus:curl", "args": ["curl", "-s", "$(URL)"]}
    assert podspec.command_line(curl, {"URL": "svc:8000"}) == ["curl", "-s", "svc:8000"]
    assert "its args run as the command line" in podspec.default_command_note(curl)
    shell = {"name": "shell", "image": "busybox"}
    assert podspec.command_line(shell, {}) == ["/bin/sh"]
    note = podspec.default_command_note(shell)
    assert "image busybox is not pulled" in note
    assert "runs /bin/sh" in note
    own = {"name": "ray", "image": "rayproject/ray", "command": ["ray"], "args": ["start"]}
    assert podspec.command_line(own, {}) == ["ray", "start"]
    assert podspec.default_command_note(own) == ""
