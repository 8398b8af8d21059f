"""Container logs in files: what the node agent writes and ``GET .../pods/{name}/log`` reads.

Owns the layout ``<root>/<namespace>/<pod>/<instance>/<container>/<restart>.log`` (one file per
container run, standard output and error interleaved as written, like the kubelet's
``/var/log/pods``) with a ``<restart>.exit`` file once that run ended, and :class:`FileLogs`,
the :class:`LogSource` the API server reads them through: ``tailLines``, ``limitBytes``,
``previous`` and ``follow`` (which ends when the run ends). The files belong to the filesystem,
so logs outlive a crashed agent and can be read by an API server in another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from localkube.logsource import LogRequest

__all__ = ["FileLogs"]

_CHUNK = 64 * 1024


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

    def open_run(self, namespace: str, pod: str, key: str, container: str, run: int) -> int:
        """Create (or reopen) a run's log for appending; returns a file descriptor.

        ``key`` names the Pod instance and sorts by creation (a Pod deleted and created again
        under the same name gets a new key; reads follow the newest).
        """
        path = self.directory(namespace, pod, key, container) / f"{run}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)

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

    async def read(self, request: LogRequest) -> AsyncIterator[bytes]:
        key = self._newest(request.namespace, request.pod)
        if key is None:
            return
        directory = self.directory(request.namespace, request.pod, key, request.container)
        runs = _runs(directory)
        if not runs:
            return
        run = runs[-1]
        if request.previous:
            if len(runs) < 2:
                return
            run = runs[-2]
        path = directory / f"{run}.log"
        offset = 0
        if request.tail_lines is not None:
            offset = await asyncio.to_thread(_tail_offset, path, request.tail_lines)
        sent = 0
        while True:
            budget = _CHUNK
            if request.limit_bytes is not None:
                budget = min(budget, request.limit_bytes - sent)
                if budget <= 0:
                    return
            chunk = await asyncio.to_thread(_read, path, offset, budget)
            if chunk:
                offset += len(chunk)
                sent += len(chunk)
                yield chunk
                continue
            if not request.follow or request.previous:
                return
            ended = (directory / f"{run}.exit").exists() or _runs(directory)[-1:] != [run]
            if ended:
                if not await asyncio.to_thread(_read, path, offset, 1):
                    return
                continue
            await asyncio.sleep(self.poll_interval)
