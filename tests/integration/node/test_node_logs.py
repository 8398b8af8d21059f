"""Container logs on disk are bounded like the kubelet's: a run's file is rotated at a size and
only the current and the previous run are kept, while reads (``follow``, ``previous``) go on
working."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from localkube.logsource import LogRequest
from localkube.node import FileLogs
from tests.nodekit import eventually

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

CAP = 4096


async def read_all(logs: FileLogs, request: LogRequest) -> bytes:
    out = b""
    async for chunk in logs.read(request):
        out += chunk
    return out


def disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


async def test_a_runs_log_is_rotated_at_its_cap_and_a_follower_misses_no_line(
    tmp_path: Path,
) -> None:
    logs = FileLogs(tmp_path, poll_interval=0.01, max_bytes=CAP)
    run = logs.open_run("ns", "pod", "k1", "main", 0)
    lines = [f"line {n:04d} {'x' * 80}\n".encode() for n in range(200)]
    run.write("stdout", lines[0])
    received = bytearray()

    async def follow() -> None:
        async for chunk in logs.read(LogRequest("ns", "pod", "main", follow=True)):
            received.extend(chunk)

    follower = asyncio.create_task(follow())
    try:
        for number, line in enumerate(lines[1:], start=1):
            run.write("stdout", line)
            if number % 10 == 0:  # let the follower catch up now and then (never two rotations)

                async def caught_up(line: bytes = line) -> bool:
                    return received.endswith(line)

                await eventually(caught_up, within=10)
        run.close()
        logs.end_run("ns", "pod", "k1", "main", 0, 0)
        async with asyncio.timeout(10):
            await follower
    finally:
        follower.cancel()
    assert bytes(received) == b"".join(lines)
    directory = logs.directory("ns", "pod", "k1", "main")
    assert disk_bytes(directory) <= 2 * CAP + 200
    current = await read_all(logs, LogRequest("ns", "pod", "main"))
    assert current.endswith(lines[-1])
    assert not current.startswith(lines[0])


async def test_only_the_current_and_previous_runs_are_kept_and_previous_reads_the_one_before(
    tmp_path: Path,
) -> None:
    logs = FileLogs(tmp_path, max_bytes=CAP)
    for number in range(5):
        run = logs.open_run("ns", "pod", "k1", "main", number)
        run.write("stdout", f"run {number}\n".encode())
        run.close()
        logs.end_run("ns", "pod", "k1", "main", number, 1)
    directory = logs.directory("ns", "pod", "k1", "main")
    assert sorted(p.name for p in directory.iterdir()) == ["3.exit", "3.log", "4.exit", "4.log"]
    assert await read_all(logs, LogRequest("ns", "pod", "main")) == b"run 4\n"
    previous = LogRequest("ns", "pod", "main", previous=True)
    assert await read_all(logs, previous) == b"run 3\n"
