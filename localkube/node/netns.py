"""Linux network namespaces, the low level: enter one for a moment, run ``ip``, find processes.

Owns the ``setns(2)`` call (through ctypes: Python 3.11 has no ``os.setns``), sockets created
inside another network namespace (a socket keeps the namespace it was created in, so a process
that stays in the host namespace can listen on and connect to addresses of a namespace it made),
the ``ip`` command runner and the scan of ``/proc`` for the processes of a namespace. It must
not decide anything about Pods or Services.

``setns`` changes the namespace of the calling *thread* only. :func:`socket_in` switches, creates
the socket and switches back without awaiting, so on an asyncio loop no other code runs in the
window; threads started meanwhile by other code are not affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "IpError",
    "entered",
    "ip",
    "namespace_id",
    "pids_in",
    "socket_in",
]

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = Path("/run/netns")

_libc = ctypes.CDLL(None, use_errno=True)


class IpError(RuntimeError):
    """An ``ip`` command failed; the message is its standard error."""


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


@contextlib.contextmanager
def entered(path: Path) -> Iterator[None]:
    """Run the body with the calling thread inside the network namespace at ``path``.

    The body must not await: the thread goes back to its own namespace when it ends.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


def socket_in(
    path: Path, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM, proto: int = 0
) -> socket.socket:
    """A new non-blocking socket that lives in the network namespace at ``path``."""
    with entered(path):
        sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    return sock


def namespace_id(path: Path | str) -> tuple[int, int]:
    """The identity of a namespace file (``/run/netns/x`` or ``/proc/PID/ns/net``)."""
    info = os.stat(path)
    return (info.st_dev, info.st_ino)


def pids_in(path: Path) -> list[int]:
    """Every live process whose network namespace is the one at ``path`` (as ``ip netns pids``)."""
    try:
        wanted = namespace_id(path)
    except OSError:
        return []
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if namespace_id(f"/proc/{entry.name}/ns/net") == wanted:
                found.append(int(entry.name))
        except OSError:
            continue  # gone, a zombie, or not ours to look at
    return found


async def ip(*args: str, stdin: bytes | None = None, seconds: float = 10.0) -> str:
    """Run ``ip ARGS`` (``-batch -`` reads ``stdin``); its output, or :class:`IpError`."""
    process = await asyncio.create_subprocess_exec(
        "ip",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(seconds):
            out, err = await process.communicate(stdin)
    except BaseException as e:  # the timeout, or the caller cancelled: no ip command outlives it
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()
        if isinstance(e, TimeoutError):
            raise IpError(f"ip {' '.join(args)}: timed out after {seconds} s") from None
        raise
    if process.returncode != 0:
        raise IpError(f"ip {' '.join(args)}: {err.decode(errors='replace').strip()}")
    return out.decode(errors="replace")
