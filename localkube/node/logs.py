"""Container logs in files: what the node agent writes and ``GET .../pods/{name}/log`` reads.

Owns the layout ``<root>/<namespace>/<pod>/<instance>/<container>/<restart>.log`` (one file per
container run, like the kubelet's ``/var/log/pods``) with a ``<restart>.exit`` file once that run
ended; the CRI log format of each file (one entry per line: ``<time> <stream> <F|P> <text>``,
``F`` for a full line, ``P`` for a piece of a line, the time in UTC with nine fractional digits,
so entries sort as text); :class:`RunLog`, the writer of one run, and :class:`FileLogs`, the
:class:`LogSource` the API server reads them through: ``tailLines``, ``limitBytes``,
``previous``, ``sinceSeconds``/``sinceTime``, ``timestamps`` and ``follow`` (which ends when the
run ends). The files belong to the filesystem, so logs outlive a crashed agent and can be read
by an API server in another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from localkube.logsource import LogRequest, LogUnavailable, format_timestamp

__all__ = ["Entry", "FileLogs", "RunLog", "encode_entries", "parse_entry"]

_CHUNK = 64 * 1024
_MAX_LINE = 16 * 1024  # a longer line is cut into pieces (P entries), as the CRI runtimes do


def encode_entries(stream: str, data: bytes, ns: int) -> bytes:
    """``data`` written by a container on ``stream`` at ``ns`` (Unix nanoseconds) as CRI log
    lines: one ``F`` entry per full line, a ``P`` entry for a piece without its newline."""
    prefix = f"{format_timestamp(ns)} {stream} ".encode()
    out = bytearray()
    lines = data.split(b"\n")
    for index, line in enumerate(lines):
        last = index == len(lines) - 1
        if last and not line:
            break
        pieces = [line[i : i + _MAX_LINE] for i in range(0, len(line), _MAX_LINE)] or [b""]
        for number, piece in enumerate(pieces):
            full = not last and number == len(pieces) - 1
            out += prefix + (b"F " if full else b"P ") + piece + b"\n"
    return bytes(out)


@dataclass(frozen=True)
class Entry:
    """One CRI log entry: when (the timestamp text), on which stream, and the text as the
    container wrote it (with its newline when the entry is a full line)."""

    time: str
    stream: str
    text: bytes


def parse_entry(line: bytes) -> Entry | None:
    """Read one CRI log line (without its newline); ``None`` when it is not one."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[2] not in (b"F", b"P"):
        return None
    text = parts[3] if len(parts) == 4 else b""
    if parts[2] == b"F":
        text += b"\n"
    return Entry(parts[0].decode(errors="replace"), parts[1].decode(errors="replace"), text)


class RunLog:
    """The log file of one container run, appended to as the container writes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd: int | None = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640
        )

    def write(self, stream: str, data: bytes) -> None:
        """Append what the container wrote on ``stream`` ("stdout" or "stderr"), stamped now."""
        if self._fd is None or not data:
            return
        view = memoryview(encode_entries(stream, data, time.time_ns()))
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _runs(directory: Path) -> list[int]:
    try:
        return sorted(int(p.stem) for p in directory.glob("*.log") if p.stem.isdigit())
    except OSError:
        return []


def _tail_offset(path: Path, lines: int) -> int:
    """The offset where the last ``lines`` lines of the file start."""
    if lines <= 0:
        return path.stat().st_size
    with path.open("rb") as f:
        end = f.seek(0, os.SEEK_END)
        position = end
        found = 0
        # A final line without a newline counts as a line.
        f.seek(max(0, end - 1))
        trailing_newline = f.read(1) == b"\n"
        while position > 0:
            step = min(_CHUNK, position)
            position -= step
            f.seek(position)
            block = f.read(step)
            for index in range(len(block) - 1, -1, -1):
                if block[index : index + 1] == b"\n":
                    if position + index == end - 1 and trailing_newline:
                        continue
                    found += 1
                    if found == lines:
                        return position + index + 1
        return 0


def _read(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(size)


class FileLogs:
    """Container logs kept as files under ``root``."""

    def __init__(self, root: Path, *, poll_interval: float = 0.1) -> None:
        self.root = root
        self.poll_interval = poll_interval

    def directory(self, namespace: str, pod: str, key: str, container: str) -> Path:
        """Where the runs of one container of one Pod instance (``key``) are kept."""
        return self.root / namespace / pod / key / container

    def open_run(self, namespace: str, pod: str, key: str, container: str, run: int) -> RunLog:
        """Create (or reopen) a run's log for appending.

        ``key`` names the Pod instance and sorts by creation (a Pod deleted and created again
        under the same name gets a new key; reads follow the newest).
        """
        return RunLog(self.directory(namespace, pod, key, container) / f"{run}.log")

    def end_run(
        self, namespace: str, pod: str, key: str, container: str, run: int, code: int
    ) -> None:
        """Mark a run as ended (followers stop after its last byte)."""
        path = self.directory(namespace, pod, key, container) / f"{run}.exit"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{code}\n")

    def remove(self, namespace: str, pod: str, key: str) -> None:
        """Forget one Pod instance's logs."""
        shutil.rmtree(self.root / namespace / pod / key, ignore_errors=True)
        with contextlib.suppress(OSError):
            (self.root / namespace / pod).rmdir()

    def _newest(self, namespace: str, pod: str) -> str | None:
        try:
            keys = [p.name for p in (self.root / namespace / pod).iterdir() if p.is_dir()]
        except OSError:
            return None
        return max(keys, default=None)

    def read(self, request: LogRequest) -> AsyncIterator[bytes]:
        """The log's chunks; :class:`LogUnavailable` at once when the container never started
        or, for ``previous``, has no earlier run."""
        key = self._newest(request.namespace, request.pod)
        directory = (
            self.directory(request.namespace, request.pod, key, request.container)
            if key is not None
            else None
        )
        runs = _runs(directory) if directory is not None else []
        if directory is None or not runs:
            raise LogUnavailable(
                f'container "{request.container}" in pod "{request.pod}" is waiting to start: '
                "ContainerCreating"
            )
        if request.previous and len(runs) < 2:
            raise LogUnavailable(
                f'previous terminated container "{request.container}" in pod '
                f'"{request.pod}" not found'
            )
        run = runs[-2] if request.previous else runs[-1]
        return self._stream(request, directory, run)

    async def _stream(self, request: LogRequest, directory: Path, run: int) -> AsyncIterator[bytes]:
        path = directory / f"{run}.log"
        offset = 0
        if request.tail_lines is not None:
            offset = await asyncio.to_thread(_tail_offset, path, request.tail_lines)
        since = (
            format_timestamp(int(request.since * 1_000_000_000))
            if request.since is not None
            else None
        )
        sent = 0
        while True:
            chunk = await asyncio.to_thread(_read, path, offset, _CHUNK)
            end = chunk.rfind(b"\n") + 1
            if end == 0 and len(chunk) == _CHUNK:
                end = len(chunk)  # a line longer than a chunk: read it as it is
            if end:
                offset += end
                out = bytearray()
                block = chunk[:end]
                lines = block.split(b"\n")
                for line in lines[:-1] if block.endswith(b"\n") else lines:
                    entry = parse_entry(line)
                    if entry is None:
                        out += line + b"\n"
                        continue
                    if since is not None and entry.time < since:
                        continue
                    if request.timestamps:
                        out += entry.time.encode() + b" "
                    out += entry.text
                if request.limit_bytes is not None:
                    out = out[: request.limit_bytes - sent]
                if out:
                    sent += len(out)
                    yield bytes(out)
                if request.limit_bytes is not None and sent >= request.limit_bytes:
                    return
                continue
            if not request.follow or request.previous:
                return
            ended = (directory / f"{run}.exit").exists() or _runs(directory)[-1:] != [run]
            if ended:
                rest = await asyncio.to_thread(_read, path, offset, _CHUNK)
                if b"\n" not in rest:
                    return  # nothing more will be written
                continue
            await asyncio.sleep(self.poll_interval)
