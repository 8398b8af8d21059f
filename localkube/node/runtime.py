"""Processes inside a Pod's namespaces, and the probes that check them.

Owns how a container's process starts: ``ip netns exec <pod netns>`` (the Pod's network, its
``/etc/hosts`` and ``/etc/resolv.conf``, a fresh ``/sys``), then a small shell step that shows
the container's CPUs as a cgroup ``cpu.max`` (what Ray reads to count CPUs in a container) and
switches user when asked, then ``exec`` of the command; each container in a session of its own
(with the terminal as its controlling terminal when it has one: ``setsid --ctty``), its standard
streams the ones :class:`localkube.node.stdio.ProcessIO` made. Also the three probe kinds:
``exec`` (the
same way in, exit code 0), ``httpGet`` (2xx/3xx) and ``tcpSocket`` (connects), the last two
over sockets made in the cluster namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from localkube.node.network import PodNetwork
from localkube.node.podspec import Probe

__all__ = ["Launcher", "ProbeOutcome", "exit_code", "run_probe"]

# $1: CPUs to show ("" = leave /sys/fs/cgroup as it is); the rest is the command line.
_ENTER = (
    'if [ -n "$1" ]; then '
    "mount -t tmpfs -o size=16k,mode=755 localkube-cgroup /sys/fs/cgroup 2>/dev/null && "
    'echo "$(($1 * 100000)) 100000" > /sys/fs/cgroup/cpu.max; fi; shift; exec "$@"'
)


@dataclass(frozen=True)
class Launcher:
    """Builds the command line that runs a program inside a Pod."""

    ip: str
    sh: str
    setpriv: str | None
    setsid: str | None = None

    @classmethod
    def find(cls) -> Launcher:
        ip, sh = shutil.which("ip"), shutil.which("sh")
        if ip is None or sh is None:
            raise RuntimeError("the node needs 'ip' (iproute2) and 'sh' on PATH")
        return cls(ip=ip, sh=sh, setpriv=shutil.which("setpriv"), setsid=shutil.which("setsid"))

    def argv(
        self,
        netns: str,
        command: Sequence[str],
        *,
        cpus: int | None,
        user: tuple[int, int] | None,
        tty: bool = False,
    ) -> list[str]:
        """``command`` wrapped to run in ``netns`` showing ``cpus`` CPUs, as ``user`` (uid, gid);
        with ``tty`` in a new session whose controlling terminal is its standard input (start it
        with ``new_session=False``)."""
        switch: list[str] = []
        session: list[str] = []
        if tty:
            if self.setsid is None:
                raise RuntimeError("a container with a terminal needs 'setsid' (util-linux)")
            session = [self.setsid, "--ctty"]
        if user is not None:
            if self.setpriv is None:
                raise RuntimeError("running a Pod as another user needs 'setpriv' (util-linux)")
            uid, gid = user
            switch = [self.setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
        return [
            *session,
            self.ip,
            "netns",
            "exec",
            netns,
            self.sh,
            "-c",
            _ENTER,
            "localkube-enter",
            "" if cpus is None else str(cpus),
            *switch,
            *command,
        ]

    async def start(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str,
        stdio: tuple[int, int, int],
        new_session: bool = True,
    ) -> asyncio.subprocess.Process:
        """Start a process with ``stdio`` as its standard input, output and error, in a session
        of its own (``new_session``; a terminal's ``setsid --ctty`` makes its own instead)."""
        stdin, stdout, stderr = stdio
        return await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env),
            cwd=cwd,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=new_session,
        )


def exit_code(returncode: int) -> int:
    """A process's exit status as a container's ``exitCode`` (128 + signal when killed)."""
    return 128 - returncode if returncode < 0 else returncode


def signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group (session) a container's main process leads."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@dataclass(frozen=True)
class ProbeOutcome:
    ok: bool
    message: str = ""


async def run_probe(
    probe: Probe,
    *,
    launcher: Launcher,
    network: PodNetwork,
    session: aiohttp.ClientSession,
    netns: str,
    pod_ip: str,
    port: int,
    env: Mapping[str, str],
    cwd: str,
    cpus: int | None,
    user: tuple[int, int] | None,
) -> ProbeOutcome:
    """Run one probe once, within ``probe.timeout`` seconds."""
    try:
        async with asyncio.timeout(probe.timeout):
            if probe.kind == "exec":
                return await _exec_probe(
                    launcher.argv(netns, probe.command, cpus=cpus, user=user), env, cwd
                )
            if probe.kind == "tcpSocket":
                return await _tcp_probe(network, probe.host or pod_ip, port)
            return await _http_probe(probe, session, probe.host or pod_ip, port)
    except TimeoutError:
        return ProbeOutcome(False, f"probe timed out after {probe.timeout:g}s")


_PROBE_CHUNK = 16 * 1024
_PROBE_TAIL = 1024  # what an exec probe's message keeps of its output (the end)


async def _exec_probe(argv: Sequence[str], env: Mapping[str, str], cwd: str) -> ProbeOutcome:
    """Run the probe's command; only the last KiB of its output is kept (it may write any amount,
    for as long as the probe's timeout lets it)."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env),
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    tail = b""
    try:
        while chunk := await process.stdout.read(_PROBE_CHUNK):
            tail = (tail + chunk)[-_PROBE_TAIL:]
        await process.wait()
    except asyncio.CancelledError:  # the probe's timeout, or the container stopping
        signal_group(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    text = tail.decode(errors="replace").strip()
    if process.returncode == 0:
        return ProbeOutcome(True, text)
    return ProbeOutcome(False, f"command failed with exit code {process.returncode}: {text}")


async def _tcp_probe(network: PodNetwork, host: str, port: int) -> ProbeOutcome:
    sock = network.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except OSError as e:
        return ProbeOutcome(False, f"dial tcp {host}:{port}: {e.strerror or e}")
    finally:
        sock.close()
    return ProbeOutcome(True)


async def _http_probe(
    probe: Probe, session: aiohttp.ClientSession, host: str, port: int
) -> ProbeOutcome:
    scheme = probe.scheme.lower()
    path = probe.path if probe.path.startswith("/") else f"/{probe.path}"
    url = f"{scheme}://{host}:{port}{path}"
    headers = {"User-Agent": "kube-probe/1.32", "Accept": "*/*", **dict(probe.headers)}
    try:
        async with session.get(url, headers=headers, ssl=False, allow_redirects=False) as r:
            await r.content.read(10 * 1024)
            if 200 <= r.status < 400:
                return ProbeOutcome(True)
            return ProbeOutcome(False, f"HTTP probe failed with statuscode: {r.status}")
    except aiohttp.ClientError as e:
        return ProbeOutcome(False, f'Get "{url}": {e}')
