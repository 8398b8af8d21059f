"""The standard streams of a process in a Pod: pipes or a pseudo-terminal, pumped by the agent.

Owns, for one container run or one ``exec``, the descriptors the process gets (a pipe per
stream, or one terminal for all three when ``tty`` is set), the agent's reading of its output
(on the event loop: written to the run's log in the CRI format and handed to every attached
session), its input (written as sessions send it; closed for ``stdinOnce``), terminal sizes
and the replay of recent output for the first session that attaches (what ``kubectl run -i``
would otherwise miss: a prompt or an answer printed before it connected).

Bounds: the replay keeps the last :data:`REPLAY_BYTES`; a session that falls more than
:data:`BEHIND_BYTES` behind is dropped rather than letting a container wait for it (an ``exec``
waits instead: ``hold``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import termios
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from localkube.kubelet import TerminalSize
from localkube.node.logs import RunLog

__all__ = ["BEHIND_BYTES", "REPLAY_BYTES", "Output", "ProcessIO"]

REPLAY_BYTES = 64 * 1024
BEHIND_BYTES = 4 * 1024 * 1024
_READ = 64 * 1024
DEFAULT_SIZE = TerminalSize(80, 24)

Chunk = tuple[str, bytes]  # (stream, data)


@dataclass
class Output:
    """One session's view of a process's output: chunks in order, then ``None`` at the end."""

    queue: asyncio.Queue[Chunk | None] = field(default_factory=asyncio.Queue)
    pending: int = 0
    dropped: bool = False
    drained: Callable[[], None] | None = None  # called when a held process may go on

    async def next(self) -> Chunk | None:
        item = await self.queue.get()
        if item is not None:
            self.pending -= len(item[1])
            if self.drained is not None and self.pending <= BEHIND_BYTES // 2:
                self.drained()
        return item


def set_terminal_size(fd: int, size: TerminalSize) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0))


class ProcessIO:
    """The streams of one process (create it on the event loop that will pump them).

    Use: ``child`` are the descriptors to start the process with; call :meth:`spawned` once it
    started (the agent closes its copies of the child's ends), then :meth:`start` to pump.
    With ``hold`` (an ``exec``: its client must get every byte) a session that falls behind
    stops the reading, so the process waits on its full pipe, instead of being dropped.
    """

    def __init__(
        self, *, tty: bool, stdin: bool, log: RunLog | None = None, hold: bool = False
    ) -> None:
        self.tty = tty
        self.log = log
        self.hold = hold
        self._paused = False
        self._loop = asyncio.get_running_loop()
        self._child_ends: list[int] = []
        self._outputs: dict[int, str] = {}
        self._stdin: int | None = None
        self._owned: list[int] = []
        if tty:
            master, slave = os.openpty()
            os.set_blocking(master, False)
            set_terminal_size(master, DEFAULT_SIZE)
            self.child = (slave, slave, slave)
            self._child_ends = [slave]
            self._outputs = {master: "stdout"}
            self._stdin = master if stdin else None
            self._owned = [master]
        else:
            out_read, out_write = os.pipe()
            err_read, err_write = os.pipe()
            if stdin:
                in_read, in_write = os.pipe()
                os.set_blocking(in_write, False)
                self._stdin = in_write
            else:
                in_read = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            for fd in (out_read, err_read):
                os.set_blocking(fd, False)
            self.child = (in_read, out_write, err_write)
            self._child_ends = [in_read, out_write, err_write]
            self._outputs = {out_read: "stdout", err_read: "stderr"}
            self._owned = [out_read, err_read, *([self._stdin] if self._stdin is not None else [])]
        self._reading: set[int] = set()
        self._sessions: list[Output] = []
        self._replay: deque[Chunk] = deque()
        self._replay_size = 0
        self.attached = False  # a session has attached to this run
        self.hung_up = False  # the input was ended for ``stdinOnce``
        self.done = asyncio.Event()  # every output reached its end

    # life -------------------------------------------------------------------------------------
    def spawned(self) -> None:
        """The process started: drop the agent's copies of its ends."""
        for fd in self._child_ends:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._child_ends = []

    def start(self) -> None:
        """Start pumping the output (on this event loop)."""
        for fd in self._outputs:
            self._reading.add(fd)
            self._loop.add_reader(fd, self._readable, fd)

    async def finish(self, seconds: float) -> None:
        """Wait up to ``seconds`` for the output to end (processes that inherited it may keep
        it open), longer while a held session is still catching up, then stop reading and
        release everything."""
        while not self.done.is_set():
            try:
                async with asyncio.timeout(seconds):
                    await self.done.wait()
            except TimeoutError:
                if not self._paused:
                    break
        self.close()

    def close(self) -> None:
        if not self._paused:
            for fd in list(self._reading):
                self._loop.remove_reader(fd)
        self._paused = False
        self._reading.clear()
        for fd in [*self._owned, *self._child_ends]:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._owned, self._child_ends, self._stdin = [], [], None
        if self.log is not None:
            self.log.close()
        self._end()

    def _end(self) -> None:
        if not self.done.is_set():
            self.done.set()
            for session in self._sessions:
                session.queue.put_nowait(None)

    # output -----------------------------------------------------------------------------------
    def _readable(self, fd: int) -> None:
        try:
            data = os.read(fd, _READ)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: the terminal's last user closed it
        if not data:
            self._loop.remove_reader(fd)
            self._reading.discard(fd)
            if not self._reading:
                self._end()
            return
        stream = self._outputs[fd]
        if self.log is not None:
            self.log.write(stream, data)
        self._replay.append((stream, data))
        self._replay_size += len(data)
        while self._replay_size > REPLAY_BYTES and len(self._replay) > 1:
            self._replay_size -= len(self._replay.popleft()[1])
        for session in list(self._sessions):
            self._deliver(session, (stream, data))

    def _deliver(self, session: Output, chunk: Chunk) -> None:
        if session.pending + len(chunk[1]) > BEHIND_BYTES:
            if self.hold:
                self._pause()
            else:
                session.dropped = True
                with contextlib.suppress(ValueError):
                    self._sessions.remove(session)
                session.queue.put_nowait(None)
                return
        session.pending += len(chunk[1])
        session.queue.put_nowait(chunk)

    def _pause(self) -> None:
        if not self._paused:
            self._paused = True
            for fd in self._reading:
                self._loop.remove_reader(fd)

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            for fd in self._reading:
                self._loop.add_reader(fd, self._readable, fd)

    def subscribe(self, *, replay: bool = False) -> Output:
        """Follow the output from now (after the recent output with ``replay``)."""
        session = Output(drained=self._resume if self.hold else None)
        if replay:
            for chunk in self._replay:
                self._deliver(session, chunk)
        if self.done.is_set():
            session.queue.put_nowait(None)
        elif not session.dropped:
            self._sessions.append(session)
        return session

    def unsubscribe(self, session: Output) -> None:
        with contextlib.suppress(ValueError):
            self._sessions.remove(session)

    # input ------------------------------------------------------------------------------------
    @property
    def accepts_input(self) -> bool:
        return self._stdin is not None

    async def write(self, data: bytes) -> bool:
        """Write to the process's input; False once it cannot take more (closed or gone)."""
        view = memoryview(data)
        while view:
            fd = self._stdin
            if fd is None:
                return False
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                ready = self._loop.create_future()
                self._loop.add_writer(fd, ready.set_result, None)
                try:
                    await ready
                finally:
                    self._loop.remove_writer(fd)
                continue
            except OSError:
                return False
            view = view[written:]
        return True

    def close_stdin(self) -> None:
        """End the process's input: a pipe is closed (the process reads end-of-file); a terminal
        stops taking input (it stays the process's terminal)."""
        fd = self._stdin
        if fd is None:
            return
        if self.tty:
            self._stdin = None
            return
        self._stdin = None
        self._owned.remove(fd)
        with contextlib.suppress(OSError):
            os.close(fd)

    def resize(self, size: TerminalSize) -> None:
        if self.tty and self._owned:
            with contextlib.suppress(OSError):
                set_terminal_size(self._owned[0], size)
