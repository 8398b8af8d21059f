"""Container logs in files: what the node agent writes and ``GET .../pods/{name}/log`` reads.

Owns the layout ``<root>/<namespace>/<pod>/<instance>/<container>/<restart>.log`` (one file per
container run, like the kubelet's ``/var/log/pods``) with a ``<restart>.exit`` file once that run
ended; the bounds the kubelet sets (a run's file is rotated when it reaches ``max_bytes``, 10 MiB,
keeping one rotated file ``<restart>.log.1`` that reads do not show, and only the current and the
previous run of a container are kept, what ``previous`` needs); the CRI log format of each file (one
entry per line: ``<time> <stream> <F|P> <text>``, ``F`` for a full line, ``P`` for a piece of a
line, the time in UTC with nine fractional digits, so entries sort as text); :class:`RunLog`, the
writer of one run, and :class:`FileLogs`, the :class:`LogSource` the API server reads them through:
``tailLines``, ``limitBytes``, ``previous``, ``sinceSeconds``/``sinceTime``, ``timestamps`` and
``follow`` (which ends when the run ends). The files belong to the filesystem, so logs outlive a
crashed agent and can be read by an API server in another process.
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
from typing import BinaryIO

from localkube.logsource import LogRequest, LogUnavailable, format_timestamp

__all__ = ["Entry", "FileLogs", "RunLog", "encode_entries", "parse_entry"]

_CHUNK = 64 * 1024
MAX_BYTES = 10 * 1024 * 1024  # a run's log file is rotated at this size (the kubelet's default)
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

    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self._fd: int | None = _open_append(path)
        self._size = os.fstat(self._fd).st_size

    def write(self, stream: str, data: bytes) -> None:
        """Append what the container wrote on ``stream`` ("stdout" or "stderr"), stamped now;
        rotate first when the file would grow past ``max_bytes``."""
        if self._fd is None or not data:
            return
        encoded = encode_entries(stream, data, time.time_ns())
        if self._size and self._size + len(encoded) > self.max_bytes:
            self._rotate()
        view = memoryview(encoded)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
            self._size += written

    def _rotate(self) -> None:
        """The file becomes ``<name>.1`` (replacing the one before) and writes go to a new file;
        the name always exists, and a reader that opened the old file can read it to its end."""
        assert self._fd is not None
        rotated = self.path.with_name(f"{self.path.name}.1")
        fresh = self.path.with_name(f"{self.path.name}.new")
        with contextlib.suppress(FileNotFoundError):
            rotated.unlink()
        os.link(self.path, rotated)
        fd = _open_append(fresh)
        os.replace(fresh, self.path)
        os.close(self._fd)
        self._fd, self._size = fd, 0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _open_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)


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


def _read(handle: BinaryIO, offset: int, size: int) -> bytes:
    handle.seek(offset)
    return handle.read(size)


def _replaced(path: Path, handle: BinaryIO) -> bool:
    """Whether ``path`` now names another file than ``handle`` (the log was rotated)."""
    try:
        return os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


class FileLogs:
    """Container logs kept as files under ``root``."""

    def __init__(
        self, root: Path, *, poll_interval: float = 0.1, max_bytes: int = MAX_BYTES
    ) -> None:
        self.root = root
        self.poll_interval = poll_interval
        self.max_bytes = max_bytes

    def directory(self, namespace: str, pod: str, key: str, container: str) -> Path:
        """Where the runs of one container of one Pod instance (``key``) are kept."""
        return self.root / namespace / pod / key / container

    def open_run(self, namespace: str, pod: str, key: str, container: str, run: int) -> RunLog:
        """Create (or reopen) a run's log for appending.

        ``key`` names the Pod instance and sorts by creation (a Pod deleted and created again
        under the same name gets a new key; reads follow the newest). Runs before the previous
        one are removed.
        """
        directory = self.directory(namespace, pod, key, container)
        for old in _runs(directory):
            if old < run - 1:
                for name in (f"{old}.log", f"{old}.log.1", f"{old}.exit"):
                    with contextlib.suppress(FileNotFoundError):
                        (directory / name).unlink()
        return RunLog(directory / f"{run}.log", max_bytes=self.max_bytes)

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
        handle: BinaryIO = await asyncio.to_thread(path.open, "rb")
        try:
            while True:
                chunk = await asyncio.to_thread(_read, handle, offset, _CHUNK)
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
                if await asyncio.to_thread(_replaced, path, handle):
                    # Rotated: finish the old file (written to until the moment it was), then
                    # follow the new one from its start.
                    rest = await asyncio.to_thread(_read, handle, offset, _CHUNK)
                    if b"\n" in rest:
                        continue
                    handle.close()
                    handle = await asyncio.to_thread(path.open, "rb")
                    offset = 0
                    continue
                ended = (directory / f"{run}.exit").exists() or _runs(directory)[-1:] != [run]
                if ended:
                    rest = await asyncio.to_thread(_read, handle, offset, _CHUNK)
                    if b"\n" not in rest:
                        return  # nothing more will be written
                    continue
                await asyncio.sleep(self.poll_interval)
        finally:
            handle.close()
