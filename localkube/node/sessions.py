"""The node's streaming side: ``exec``, ``attach`` and ``port-forward`` into the Pods it runs.

Owns :class:`NodeSessions`, the :class:`localkube.kubelet.Kubelet` of the local node:

- ``exec`` starts the command the way the container's own process started (inside the Pod's
  network namespace with its ``/etc/hosts`` and ``resolv.conf``, the container's environment,
  working directory, CPUs and user), with a terminal when asked (resizes applied) or pipes,
  and returns its exit code once its output is sent. A session that ends early (the client
  left) hangs up and then kills the command's process group.
- ``attach`` joins the container's running process: its output from now (the first session of
  a container with ``stdin`` also gets what it printed before, so ``kubectl run -i`` misses
  nothing), its input, its terminal size; the first session of a ``stdinOnce`` container ends
  the container's input when it ends.
- ``port_forward`` connects to ``localhost:port`` inside the Pod's network namespace (IPv4,
  then IPv6), as the kubelet does.

Processes started here live in the Pod's namespace, so deleting the Pod ends them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from typing import TYPE_CHECKING

from localkube.kubelet import KubeletError, PodRef, StreamOptions, Streams
from localkube.node import netns
from localkube.node.runtime import exit_code, signal_group
from localkube.node.stdio import Output, ProcessIO

if TYPE_CHECKING:
    from localkube.node.agent import NodeAgent
    from localkube.node.pods import PodWorker, _Run

__all__ = ["NodeSessions"]

OUTPUT_DRAIN_SECONDS = 2.0  # output still open this long after an exec'd command ended is cut
HANGUP_SECONDS = 1.0  # between SIGHUP and SIGKILL for a command whose client left


class NodeSessions:
    """Serves the streaming subresources of the Pods one :class:`NodeAgent` runs."""

    def __init__(self, agent: NodeAgent) -> None:
        self.agent = agent

    # lookup -------------------------------------------------------------------------------------
    def _worker(self, pod: PodRef) -> PodWorker:
        worker = self.agent.workers.get(pod.uid)
        if worker is None or worker.name != pod.name or worker.sandbox is None:
            raise KubeletError("pod does not exist")
        return worker

    def _container(self, pod: PodRef, container: str, *, attach: bool) -> tuple[PodWorker, _Run]:
        worker = self._worker(pod)
        run = worker.container(container)
        usable = run is not None and (run.running or (attach and run.io is not None))
        if run is None or not usable:
            raise KubeletError(f'container not found ("{container}")')
        return worker, run

    def check(self, pod: PodRef, container: str, *, attach: bool = False) -> None:
        if container:
            self._container(pod, container, attach=attach)
        else:
            self._worker(pod)

    # exec ---------------------------------------------------------------------------------------
    async def exec(self, pod: PodRef, options: StreamOptions, streams: Streams) -> int:
        worker, run = self._container(pod, options.container, attach=False)
        assert worker.sandbox is not None
        env = dict(run.env)
        if options.tty:
            env.setdefault("TERM", "xterm")
        launcher = self.agent.launcher
        io = ProcessIO(tty=options.tty, stdin=options.stdin, hold=True)
        try:
            argv = launcher.argv(
                worker.sandbox.netns,
                list(options.command),
                cpus=run.cpus,
                user=run.user,
                tty=options.tty,
            )
            cwd = str(run.spec.get("workingDir") or worker.sandbox.directory)
            process = await launcher.start(
                argv, env=env, cwd=cwd, stdio=io.child, new_session=not options.tty
            )
        except (OSError, RuntimeError) as e:
            io.close()
            raise KubeletError(f"error executing command in container: {e}") from e
        io.spawned()
        output = io.subscribe()
        io.start()
        helpers = [
            asyncio.create_task(_send_output(output, streams, options)),
            asyncio.create_task(_feed_input(io, streams)),
            asyncio.create_task(_apply_resizes(io, streams)),
        ]
        try:
            returncode = await process.wait()
            await io.finish(OUTPUT_DRAIN_SECONDS)
            await helpers[0]
            return exit_code(returncode)
        finally:
            if process.returncode is None:
                await _hang_up(process)
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            io.close()

    # attach -------------------------------------------------------------------------------------
    async def attach(self, pod: PodRef, options: StreamOptions, streams: Streams) -> None:
        worker, run = self._container(pod, options.container, attach=True)
        io = run.io
        assert io is not None
        first = not io.attached
        io.attached = True
        takes_input = bool(run.spec.get("stdin"))
        once = first and bool(run.spec.get("stdinOnce"))
        output = io.subscribe(replay=first and takes_input)

        async def feed() -> None:
            await _feed_input(io, streams, close=False)
            if once:
                worker.hang_up(run, io)  # the first session's input ended: so does the run's

        helpers = [
            asyncio.create_task(feed()),
            asyncio.create_task(_apply_resizes(io, streams)),
        ]
        try:
            await _send_output(output, streams, options)
        finally:
            io.unsubscribe(output)
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            if once:
                worker.hang_up(run, io)

    # port-forward -------------------------------------------------------------------------------
    async def port_forward(
        self, pod: PodRef, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        worker = self._worker(pod)
        assert worker.sandbox is not None
        path = worker.sandbox.path
        loop = asyncio.get_running_loop()
        failures = []
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            sock = netns.socket_in(path, family, socket.SOCK_STREAM)
            try:
                await loop.sock_connect(sock, (host, port))
            except OSError as e:
                sock.close()
                kind = "tcp4" if family == socket.AF_INET else "tcp6"
                reason = os.strerror(e.errno).lower() if e.errno else str(e)
                failures.append(f"dial {kind} {host}:{port}: connect: {reason}")
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return await asyncio.open_connection(sock=sock)
        raise KubeletError(
            f'failed to connect to localhost:{port} inside namespace "{worker.sandbox.netns}", '
            + " ".join(failures)
        )


async def _send_output(output: Output, streams: Streams, options: StreamOptions) -> None:
    """Send a process's output to the client until it ends (streams it did not ask for are
    dropped; with a terminal everything is standard output)."""
    while (chunk := await output.next()) is not None:
        stream, data = chunk
        if stream == "stderr" and options.stderr and not options.tty:
            await streams.stderr(data)
        elif options.stdout and (stream == "stdout" or options.tty):
            await streams.stdout(data)


async def _feed_input(io: ProcessIO, streams: Streams, *, close: bool = True) -> None:
    """Write what the client types to the process; at the client's end of input close it
    (``close``) — an attach session leaves that to ``stdinOnce``."""
    while (data := await streams.stdin.get()) is not None:
        if io.accepts_input:
            await io.write(data)  # a process that stopped reading just loses the rest
    if close:
        io.close_stdin()


async def _apply_resizes(io: ProcessIO, streams: Streams) -> None:
    while True:
        io.resize(await streams.resizes.get())


async def _hang_up(process: asyncio.subprocess.Process) -> None:
    """SIGHUP the command's process group, SIGKILL it if it is still there after a second."""
    signal_group(process.pid, signal.SIGHUP)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(HANGUP_SECONDS):
            await process.wait()
            return
    signal_group(process.pid, signal.SIGKILL)
    await process.wait()
