"""The local node without root: the rest of the program inside namespaces of its own.

An unprivileged user may create a user namespace in which it is root (uid 0 mapped to itself,
no other uid) and, owned by it, mount, PID and network namespaces. :func:`enter` forks the rest
of the program into them:

- a **user namespace**: the user is root inside and nowhere else; what it creates on disk is
  its own, files of other users stay out of reach;
- a **mount namespace** with a private tmpfs on ``/run/netns`` and ``/etc/netns`` (``ip netns``
  keeps its namespaces and per-namespace ``/etc`` files there; the host's stay untouched);
- a **PID namespace** whose PID 1 is the program: when it ends, however it ends, the kernel kills
  every process left in it, so a crash leaves no Ray process behind;
- a **network namespace** of its own, where the program's components talk over its loopback.

Why the last one: a process may enter a network namespace its user namespace owns, but never go
back to the host's (owned by the initial user namespace), and both the node (sockets made inside
the cluster namespace) and ``ip netns add`` go back. The host's loopback is reached through
listening sockets the parent binds *before* forking (the API server's port, the exposed Service
ports): a socket keeps the namespace it was created in, so the child accepts on them.

The parent stays on the host, forwards SIGINT, SIGTERM and SIGHUP to the child once (the child
has its own process group, so a Ctrl-C is not delivered twice) and returns its exit code; the
child gets SIGTERM if the parent dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

__all__ = ["Unavailable", "active", "enter", "listener", "outer_uid", "preflight"]

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_REC, MS_PRIVATE = 0x4000, 0x40000
PR_SET_PDEATHSIG = 1

# The directories ``ip netns`` uses; they must exist to be mounted over.
NETNS_DIRS = (Path("/run/netns"), Path("/etc/netns"))

_libc = ctypes.CDLL(None, use_errno=True)

_outer_uid: int | None = None  # set in the child: the uid that started the program
_listeners: dict[str, socket.socket] = {}


class Unavailable(RuntimeError):
    """Namespaces cannot be made here without root (one line saying why and what to do)."""


def active() -> bool:
    """Whether this process runs inside the namespaces :func:`enter` made."""
    return _outer_uid is not None


def outer_uid() -> int:
    """The uid of the user who started the program (on the host)."""
    return os.getuid() if _outer_uid is None else _outer_uid


def listener(name: str) -> socket.socket | None:
    """The host listening socket bound for ``name`` before the fork, or ``None``."""
    return _listeners.get(name)


def _fail(call: str) -> OSError:
    errno = ctypes.get_errno()
    return OSError(errno, f"{call}: {os.strerror(errno)}")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    def b(s: str | None) -> bytes | None:
        return None if s is None else s.encode()

    if _libc.mount(b(source), b(target), b(fstype), flags, b(data)) != 0:
        raise _fail(f"mount {target}")


def preflight(dirs: Iterable[Path] = NETNS_DIRS) -> None:
    """Raise :class:`Unavailable` when something :func:`enter` needs is missing."""
    if shutil.which("ip") is None:
        raise Unavailable("local mode needs the 'ip' command (iproute2): apt-get install iproute2")
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise Unavailable(
            f"local mode without root needs the directories {' and '.join(missing)} to mount "
            f"over (once, as root: mkdir -p {' '.join(missing)}), or run it as root"
        )
    if len(os.listdir("/proc/self/task")) != 1:
        raise Unavailable("local mode without root must start before any thread is started")


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"cannot listen on localhost:{port}: {e.strerror}") from None
    return sock


def _map_self(uid: int, gid: int) -> None:
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def _child_setup() -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    os.setpgid(0, 0)
    try:
        if _libc.unshare(CLONE_NEWNS | CLONE_NEWNET) != 0:
            raise _fail("unshare")
        _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
    except OSError as e:
        raise Unavailable(
            f"this machine lets a user make a user namespace but not use it ({e.strerror}; "
            "e.g. AppArmor's kernel.apparmor_restrict_unprivileged_userns); run it as root"
        ) from None
    try:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    except OSError as e:
        raise Unavailable(
            f"local mode without root cannot mount /proc for its processes here ({e.strerror}); "
            "run it as root"
        ) from None
    for directory in NETNS_DIRS:
        _mount("tmpfs", str(directory), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)


def _run_child(main: Callable[[], int], uid: int, prog: str) -> int:
    global _outer_uid
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # PID 1 ignores SIG_DFL signals
    try:
        _child_setup()
    except Unavailable as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    except (OSError, subprocess.CalledProcessError) as e:
        print(
            f"{prog}: local mode without root could not set up its namespaces: {e}",
            file=sys.stderr,
        )
        return 1
    _outer_uid = uid
    try:
        return main()
    except KeyboardInterrupt:
        return 130


def enter(main: Callable[[], int], listeners: Mapping[str, int], *, prog: str) -> int:
    """Run ``main()`` in a child inside new user, mount, PID and network namespaces; return its
    exit code. ``listeners`` names host ports (``0``: any free one) to bind on 127.0.0.1 first;
    the child finds them with :func:`listener`. The child's own errors are printed as one line
    after ``prog:``.

    Raises :class:`Unavailable` when this machine does not allow it, ``OSError`` when a port is
    taken. Must be called before any thread is started.
    """
    preflight()
    uid, gid = os.getuid(), os.getgid()
    bound: dict[str, socket.socket] = {}
    try:
        for name, port in listeners.items():
            bound[name] = _bind(port)
        if _libc.unshare(CLONE_NEWUSER | CLONE_NEWPID) != 0:
            e = _fail("unshare")
            raise Unavailable(
                f"local mode needs root or user namespaces, and this machine allows neither "
                f"({e.strerror}); run it as root"
            )
        try:
            _map_self(uid, gid)
        except OSError as e:
            raise Unavailable(
                f"local mode without root could not map its user into a namespace ({e.strerror}); "
                "run it as root"
            ) from None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: PID 1 of the new PID namespace
            code = 1
            try:
                _listeners.update(bound)
                code = _run_child(main, uid, prog)
            except BaseException:
                traceback.print_exc()
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
    finally:
        for sock in bound.values():
            sock.close()  # the parent's copies (the child never gets here: it exits above)
    return _wait(pid)


def _wait(pid: int) -> int:
    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        code = os.waitstatus_to_exitcode(status)
        return code if code >= 0 else 128 - code  # killed by a signal: as a shell reports it
