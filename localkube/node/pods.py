"""One Pod on the local node, from its sandbox to its removal: the kubelet's pod worker.

Owns the life of a Pod bound to this node: its sandbox (network namespace, address, directory),
init containers run in order, then each container supervised (started, probed, restarted per
``restartPolicy`` with back-off, killed when its liveness probe fails), the status written to
the API whenever what is observed changes, and termination: SIGTERM to every container's process
group, SIGKILL to whatever is left in the Pod's namespace after the grace period, then the
sandbox and logs removed and the Pod object deleted (``gracePeriodSeconds=0``, uid precondition).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import random
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from localkube.node import podspec, rootless
from localkube.node.kubeapi import ApiFailure, Obj
from localkube.node.network import PodSandbox, kill_all, wait_empty
from localkube.node.podstatus import ContainerView, pod_status
from localkube.node.runtime import ProbeOutcome, exit_code, run_probe, signal_group
from localkube.node.stdio import ProcessIO

if TYPE_CHECKING:
    from localkube.node.agent import NodeAgent

__all__ = ["PodWorker"]

log = logging.getLogger(__name__)

OUTPUT_DRAIN_SECONDS = 2.0  # how long a run's output may stay open after its process ended
STATUS_BACKOFF = 0.1  # first wait after a failed status write; doubles up to the cap
STATUS_BACKOFF_CAP = 5.0
STATUS_WARN_EVERY = 60.0  # failed status writes in a row are logged once per this many seconds


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Run:
    """A container being supervised: its spec, view, process and probe results."""

    spec: Obj
    view: ContainerView
    process: asyncio.subprocess.Process | None = None
    env: dict[str, str] = field(default_factory=dict)
    cpus: int | None = None
    user: tuple[int, int] | None = None
    unhealthy: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    io: ProcessIO | None = None  # the current (or last) run's streams

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None


class PodWorker:
    """Runs one Pod (by uid) until it is deleted or the node stops."""

    def __init__(self, agent: NodeAgent, pod: Obj) -> None:
        self.agent = agent
        self.pod = pod
        meta = pod["metadata"]
        self.uid = str(meta.get("uid", ""))
        self.namespace = str(meta.get("namespace", ""))
        self.name = str(meta.get("name", ""))
        self.sandbox: PodSandbox | None = None
        spec = pod.get("spec") or {}
        self.runs = [
            _Run(c, ContainerView(str(c.get("name")), str(c.get("image", ""))))
            for c in spec.get("containers") or []
        ]
        self.init_runs = [
            _Run(c, ContainerView(str(c.get("name")), str(c.get("image", ""))))
            for c in spec.get("initContainers") or []
        ]
        self.initialized = not self.init_runs
        self.start_time = now()
        self.changed = asyncio.Event()
        self.stopping = asyncio.Event()
        self.gone = False  # the Pod object no longer exists
        self.grace = 0.0
        self.deadline = 0.0
        self.message = ""
        self.reason = ""
        self._written: Obj | None = None
        self._status_failures = 0  # failed status writes in a row
        self._status_warned = -STATUS_WARN_EVERY  # when the last of them was logged (monotonic)
        self.log_key = f"{time.time_ns()}-{self.uid}"

    # inputs from the agent ------------------------------------------------------------------------
    def update(self, pod: Obj) -> None:
        """A newer version of the Pod object (a deletion starts termination)."""
        self.pod = pod
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp") and not self.stopping.is_set():
            self.stop(float(meta.get("deletionGracePeriodSeconds") or 0))

    def stop(self, grace: float, *, gone: bool = False) -> None:
        """Terminate the Pod's containers within ``grace`` seconds."""
        self.gone = self.gone or gone
        if self.stopping.is_set():
            self.grace = min(self.grace, grace)
            self.deadline = min(self.deadline, time.monotonic() + grace)
            return
        self.grace = grace
        self.deadline = time.monotonic() + grace
        running = [r.view.name for r in self.runs if r.process and r.process.returncode is None]
        if running and not self.gone and not self.agent.closing:
            self.agent.event(
                self.pod, "Normal", "Killing", f"Stopping container {', '.join(running)}"
            )
        self.stopping.set()

    # what sessions use ---------------------------------------------------------------------------
    def container(self, name: str) -> _Run | None:
        """The run of the container (or init container) called ``name``."""
        return next((r for r in (*self.runs, *self.init_runs) if r.view.name == name), None)

    def hang_up(self, run: _Run, io: ProcessIO) -> None:
        """The first session of a ``stdinOnce`` container ended: the input of that run (``io``)
        ends, and a terminal is hung up, as closing it would (a later run is left alone)."""
        if io.hung_up:
            return
        io.hung_up = True
        io.close_stdin()
        if io.tty and run.io is io and run.running and run.process is not None:
            signal_group(run.process.pid, signal.SIGHUP)

    # helpers ----------------------------------------------------------------------------------
    @property
    def spec(self) -> Obj:
        return dict(self.pod.get("spec") or {})

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def _touch(self) -> None:
        self.changed.set()

    def _user(self, container: Obj) -> tuple[int, int] | None:
        context = {**(self.spec.get("securityContext") or {})}
        context.update({k: v for k, v in (container.get("securityContext") or {}).items()})
        uid = context.get("runAsUser")
        if uid is None or int(uid) in (os.geteuid(), rootless.outer_uid()):
            return None
        if os.geteuid() != 0 or rootless.active():  # only the host's root may become another
            self.agent.warn_once(
                self.pod,
                "RunAsUserIgnored",
                f"runAsUser {uid} ignored: the node runs Pods as the user who started it",
            )
            return None
        gid = context.get("runAsGroup")
        if gid is None:
            try:
                gid = pwd.getpwuid(int(uid)).pw_gid
            except KeyError:
                gid = int(uid)
        return (int(uid), int(gid))

    async def _prepare(self, run: _Run) -> None:
        """Environment, CPUs and user of a container (``ConfigError`` when it cannot start)."""
        assert self.sandbox is not None
        config_maps, secrets = podspec.env_names([run.spec])
        cm_data = {
            n: await self.agent.config_data("configmaps", self.namespace, n) for n in config_maps
        }
        secret_data = {
            n: await self.agent.config_data("secrets", self.namespace, n) for n in secrets
        }
        base = self.agent.base_env(self.sandbox, self.pod)
        run.env = podspec.container_env(
            self.pod,
            run.spec,
            base=base,
            pod_ip=self.sandbox.ip,
            host_ip=self.agent.network.node_ip,
            config_maps=cm_data,
            secrets=secret_data,
            node_cpus=float(os.cpu_count() or 1),
            node_memory=float(self.agent.memory_bytes),
        )
        if run.spec.get("tty"):
            run.env.setdefault("TERM", "xterm")
        run.cpus = podspec.container_cpus(run.spec)
        run.user = self._user(run.spec)

    # the Pod's life ------------------------------------------------------------------------------
    async def run(self) -> None:
        writer = asyncio.create_task(self._write_status(), name=f"status {self.key}")
        try:
            await self._live()
        finally:
            try:
                await self._terminate()
                self._touch()
                await self._flush_status()
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
            finally:
                await self._remove()  # whatever happened above: no sandbox or log outlives it

    async def _live(self) -> None:
        try:
            self.sandbox = await self.agent.network.add_pod(
                hostname=str(self.spec.get("hostname") or self.name), namespace=self.namespace
            )
        except Exception as e:
            log.error("pod sandbox failed", extra={"pod": self.key, "error": str(e)})
            self.message, self.reason = f"sandbox: {e}", "SandboxFailed"
            self._touch()
            await self.stopping.wait()
            return
        for sub in ("tmp", "home"):
            (self.sandbox.directory / sub).mkdir(mode=0o777 if os.geteuid() == 0 else 0o755)
        self.agent.image_warning(self.pod)
        self._touch()
        for run in self.init_runs:
            ok = await self._supervise(run, init=True)
            if not ok or self.stopping.is_set():
                for pending in self.runs:
                    pending.view.will_restart = False
                    pending.view.state, pending.view.reason = "terminated", "Error"
                    pending.view.exit_code = 1
                self._touch()
                await self.stopping.wait()
                return
        self.initialized = True
        self._touch()
        tasks = [
            asyncio.create_task(self._supervise(run), name=f"container {self.key}/{run.view.name}")
            for run in self.runs
        ]
        try:
            await asyncio.wait(tasks)
            await self.stopping.wait()  # a finished Pod keeps its status until it is deleted
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _supervise(self, run: _Run, *, init: bool = False) -> bool:
        """Run a container, restarting it per policy; True when it ended with 0 for good."""
        assert self.sandbox is not None
        policy = str(self.spec.get("restartPolicy") or "Always")
        if init and policy == "Always":
            policy = "OnFailure"  # init containers never restart after success
        view = run.view
        while not self.stopping.is_set():
            try:
                await self._prepare(run)
                command = podspec.command_line(run.spec, run.env)
                note = podspec.default_command_note(run.spec)
                if note:
                    self.agent.note_once(self.pod, "DefaultCommand", note)
            except (podspec.ConfigError, ApiFailure) as e:
                view.state, view.reason, view.message = (
                    "waiting",
                    "CreateContainerConfigError",
                    str(e),
                )
                self._touch()
                await self._pause(self.agent.settings.restart_backoff)
                continue
            tty = bool(run.spec.get("tty"))
            log_file = self.agent.logs.open_run(
                self.namespace, self.name, self.log_key, view.name, view.restart_count
            )
            io: ProcessIO | None = None
            try:
                argv = self.agent.launcher.argv(
                    self.sandbox.netns, command, cpus=run.cpus, user=run.user, tty=tty
                )
                io = ProcessIO(tty=tty, stdin=bool(run.spec.get("stdin")), log=log_file)
                cwd = str(run.spec.get("workingDir") or self.sandbox.directory)
                run.process = await self.agent.launcher.start(
                    argv, env=run.env, cwd=cwd, stdio=io.child, new_session=not tty
                )
            except (OSError, RuntimeError) as e:
                if io is not None:
                    io.close()
                log_file.close()
                view.state, view.reason, view.message = "waiting", "RunContainerError", str(e)
                self._touch()
                await self._pause(self.agent.settings.restart_backoff)
                continue
            io.spawned()
            io.start()
            run.io = io
            began = time.monotonic()
            view.state, view.reason, view.message = "running", "", ""
            view.pid, view.started_at = run.process.pid, now()
            view.started = run.spec.get("startupProbe") is None
            run.started.clear()
            if view.started:
                run.started.set()
            view.ready = run.spec.get("readinessProbe") is None and not init
            view.will_restart = True
            self._touch()
            self.agent.event(self.pod, "Normal", "Started", f"Started container {view.name}")
            run.unhealthy.clear()
            probes = [] if init else self._probe_tasks(run)
            waiter = asyncio.create_task(run.process.wait())
            killer = asyncio.create_task(run.unhealthy.wait())
            stopper = asyncio.create_task(self.stopping.wait())
            try:
                await asyncio.wait([waiter, killer, stopper], return_when=asyncio.FIRST_COMPLETED)
                if not waiter.done() and killer.done() and not self.stopping.is_set():
                    grace = float(self.spec.get("terminationGracePeriodSeconds") or 30)
                    await self._kill(run, grace)
                if not waiter.done() and self.stopping.is_set():
                    await self._kill(run)
            finally:
                for task in (*probes, killer, stopper):
                    task.cancel()
                await asyncio.gather(*probes, killer, stopper, return_exceptions=True)
            returncode = await waiter
            if len(self.runs) == 1 and not init:
                kill_all(self.sandbox.path)  # the container's other processes end with it
            else:
                signal_group(run.process.pid, signal.SIGKILL)
            await io.finish(OUTPUT_DRAIN_SECONDS)
            code = exit_code(returncode)
            view.state, view.exit_code, view.finished_at = "terminated", code, now()
            view.reason = "Completed" if code == 0 else "Error"
            view.ready = False
            self.agent.logs.end_run(
                self.namespace, self.name, self.log_key, view.name, view.restart_count, code
            )
            restart = not self.stopping.is_set() and (
                policy == "Always" or (policy == "OnFailure" and code != 0)
            )
            view.will_restart = restart
            self._touch()
            if not restart:
                return code == 0
            # back-off: immediate first restart, then base * 2^n up to the cap; reset after 10 min
            ran = time.monotonic() - began
            view.last = view.record()
            backoff = 0.0
            if view.restart_count > 0 and ran < 600:
                base = self.agent.settings.restart_backoff
                backoff = min(base * 2 ** (view.restart_count - 1), 300.0)
            view.restart_count += 1
            if backoff > 0:
                view.state, view.reason = "waiting", "CrashLoopBackOff"
                view.message = (
                    f"back-off {backoff:g}s restarting failed container={view.name} "
                    f"pod={self.name}_{self.namespace}({self.uid})"
                )
                self._touch()
                self.agent.event(
                    self.pod, "Warning", "BackOff", "Back-off restarting failed container"
                )
                await self._pause(backoff)
        return False

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.stopping.wait()

    def _probe_tasks(self, run: _Run) -> list[asyncio.Task[None]]:
        tasks = []
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = podspec.probe_of(run.spec.get(kind))
            if probe is not None:
                tasks.append(asyncio.create_task(self._probe_loop(run, kind, probe)))
        return tasks

    async def _probe_loop(self, run: _Run, kind: str, probe: podspec.Probe) -> None:
        assert self.sandbox is not None
        view = run.view
        if kind != "startupProbe":
            await run.started.wait()  # other probes wait for the startup probe
        await asyncio.sleep(probe.initial_delay)
        successes = failures = 0
        result: bool | None = None
        while True:
            try:
                port = podspec.resolve_port(self.pod, probe.port) if probe.kind != "exec" else 0
                outcome = await run_probe(
                    probe,
                    launcher=self.agent.launcher,
                    network=self.agent.network,
                    session=self.agent.http,
                    netns=self.sandbox.netns,
                    pod_ip=self.sandbox.ip,
                    port=port,
                    env=run.env,
                    cwd=str(self.sandbox.directory),
                    cpus=run.cpus,
                    user=run.user,
                )
            except podspec.ConfigError as e:
                outcome = ProbeOutcome(False, str(e))
            if outcome.ok:
                successes, failures = successes + 1, 0
                if successes >= probe.success_threshold:
                    result = True
            else:
                failures, successes = failures + 1, 0
                if failures >= probe.failure_threshold:
                    if result is not False:
                        label = kind.removesuffix("Probe").capitalize()
                        self.agent.event(
                            self.pod,
                            "Warning",
                            "Unhealthy",
                            f"{label} probe failed: {outcome.message}",
                        )
                    result = False
            if kind == "startupProbe" and result is not None:
                if result:
                    view.started = True
                    run.started.set()
                    self._touch()
                    return
                run.unhealthy.set()
                return
            if kind == "readinessProbe" and result is not None and view.ready != result:
                view.ready = result
                self._touch()
            if kind == "livenessProbe" and result is False:
                self.agent.event(
                    self.pod,
                    "Normal",
                    "Killing",
                    f"Container {view.name} failed liveness probe, will be restarted",
                )
                run.unhealthy.set()
                return
            await asyncio.sleep(probe.period)

    async def _kill(self, run: _Run, grace: float | None = None) -> None:
        """SIGTERM the container's process group, SIGKILL after ``grace`` seconds (``None``: at
        the Pod's deadline, which a later, shorter grace period may bring forward)."""
        process = run.process
        if process is None or process.returncode is not None:
            return
        signal_group(process.pid, signal.SIGTERM)
        fixed = None if grace is None else time.monotonic() + grace
        while True:
            remaining = (self.deadline if fixed is None else fixed) - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.25)):
                    await process.wait()
                    return
        signal_group(process.pid, signal.SIGKILL)

    async def _terminate(self) -> None:
        """Stop what is still running within the grace period, then everything in the sandbox."""
        live = [
            r for r in (*self.init_runs, *self.runs) if r.process and r.process.returncode is None
        ]
        await asyncio.gather(*(self._kill(r) for r in live))
        if self.sandbox is not None:
            # Processes that left the containers' sessions (Ray's workers) get the same grace.
            kill_all(self.sandbox.path, signal.SIGTERM)
            if not await wait_empty(self.sandbox.path, max(0.0, self.deadline - time.monotonic())):
                kill_all(self.sandbox.path)
        for run in (*self.init_runs, *self.runs):
            if run.process is not None and run.process.returncode is None:
                await run.process.wait()
            if run.io is not None:
                await run.io.finish(0.5)
            if run.view.state == "running":
                run.view.state, run.view.reason, run.view.finished_at = "terminated", "Error", now()
            run.view.ready = False
            run.view.will_restart = False

    async def _remove(self) -> None:
        try:
            if self.sandbox is not None:
                await self.agent.network.remove_pod(self.sandbox)
        finally:
            self.agent.logs.remove(self.namespace, self.name, self.log_key)
        if self.gone or not self.stopping.is_set() or self.agent.closing:
            return
        try:
            await self.agent.api.request(
                "DELETE",
                f"/api/v1/namespaces/{self.namespace}/pods/{self.name}",
                body={
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": self.uid},
                },
            )
        except ApiFailure as e:
            if e.code not in (404, 409):
                log.warning("pod delete failed", extra={"pod": self.key, "error": str(e)})

    # status -------------------------------------------------------------------------------------
    def status(self) -> Obj:
        previous: Mapping[str, Any] = self.pod.get("status") or {}
        return pod_status(
            previous=previous,
            containers=[r.view for r in self.runs],
            init_containers=[r.view for r in self.init_runs],
            initialized=self.initialized,
            pod_ip=self.sandbox.ip if self.sandbox else "",
            host_ip=self.agent.network.node_ip,
            start_time=self.start_time,
            now=now(),
            message=self.message,
            reason=self.reason,
        )

    async def _write_status(self) -> None:
        backoff = STATUS_BACKOFF
        while True:
            await self.changed.wait()
            self.changed.clear()
            if await self._flush_status():
                backoff = STATUS_BACKOFF
                await asyncio.sleep(0.02)  # coalesce bursts
            else:
                self.changed.set()  # the status is still to be written
                await asyncio.sleep(backoff * (1 + random.random() / 2))
                backoff = min(backoff * 2, STATUS_BACKOFF_CAP)

    async def _flush_status(self) -> bool:
        """Write the status when it changed; False when the write failed (try again later)."""
        if self.gone or self.agent.closing:
            return True
        status = self.status()
        comparable = _without_times(status)
        if comparable == self._written:
            return True
        patch = [
            {"op": "test", "path": "/metadata/uid", "value": self.uid},
            {"op": "replace", "path": "/status", "value": status},
        ]
        try:
            await self.agent.api.request(
                "PATCH",
                f"/api/v1/namespaces/{self.namespace}/pods/{self.name}/status",
                body=patch,
                content_type="application/json-patch+json",
            )
        except ApiFailure as e:
            if e.code == 404:
                self.gone = True
                return True
            self._status_failures += 1
            moment = time.monotonic()
            if moment - self._status_warned >= STATUS_WARN_EVERY:
                self._status_warned = moment
                log.warning(
                    "pod status failed",
                    extra={"pod": self.key, "error": str(e), "failures": self._status_failures},
                )
            return False
        self._written = comparable
        self._status_failures = 0
        self._status_warned = -STATUS_WARN_EVERY
        return True


def _without_times(status: Obj) -> Obj:
    out = dict(status)
    out["conditions"] = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status["conditions"]
    ]
    return out
