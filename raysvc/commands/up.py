"""``raysvc up``: the standalone profile on this machine, with real Ray, then FILE applied.

Starts :class:`raysvc.localstack.LocalStack` (localkube over HTTPS, raysvc's CRDs, the webhook,
the local node, the reconciler), builds the sample's application archive, applies FILE's
RayServices through the webhook as ``kubectl apply`` would, and shows what happens (one line per
change, with the elapsed time) until every application is RUNNING. It then prints the kubeconfig,
the serve and dashboard addresses and commands to try, and keeps reporting changes until SIGINT
or SIGTERM, which stops everything: no process, network namespace, interface or temporary file
is left behind. The components' JSON logs go to ``STATE_DIR/raysvc.log``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import signal
import sys
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import yaml

from raysvc.cli import EXIT_DENIED, EXIT_OK, EXIT_USAGE

__all__ = ["register"]

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "rayservice-sample.yaml"


def register(subparsers: Any) -> None:
    """Add the ``up`` subcommand."""
    parser = subparsers.add_parser(
        "up",
        help="run the whole walkthrough on this machine with real Ray (local mode)",
        description=(
            "Start an embedded API server, raysvc's webhook and reconciler and a local node that "
            "runs Pods as processes with this machine's Ray, apply FILE, and keep running until "
            "Ctrl-C. As root it makes network namespaces on the host; without root, inside user, "
            "mount, PID and network namespaces of its own."
        ),
    )
    parser.add_argument(
        "-f",
        "--filename",
        type=Path,
        default=SAMPLE,
        help="RayServices to apply (default: examples/rayservice-sample.yaml)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path.home() / ".raysvc",
        help="kubeconfig, certificates and logs (default: ~/.raysvc)",
    )
    parser.add_argument(
        "--api-port", type=int, default=6443, help="the API server's port (default: 6443)"
    )
    parser.add_argument(
        "--serve-port",
        type=int,
        default=8000,
        help="localhost port of the serve Service (default: 8000; 0: any free port)",
    )
    parser.add_argument(
        "--dashboard-port",
        type=int,
        default=8265,
        help="localhost port of the Ray dashboard (default: 8265; 0: any free port)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning"),
        help="level of STATE_DIR/raysvc.log (default: info)",
    )
    parser.set_defaults(handler=run)


def _load(path: Path) -> list[dict[str, Any]]:
    """The RayService documents of ``path``; ``ValueError`` with a one-line reason otherwise."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror}") from e
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not YAML: {str(e).splitlines()[0]}") from e
    services = []
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("kind") != "RayService":
            kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
            raise ValueError(
                f"{path}: raysvc up applies RayServices only (found {kind}); "
                "apply other objects with kubectl"
            )
        services.append(doc)
    if not services:
        raise ValueError(f"{path}: no RayService in it")
    return services


def run(args: argparse.Namespace) -> int:
    """0 after Ctrl-C, 1 when the stack cannot start or FILE is refused, 2 for bad input."""
    try:
        docs = _load(args.filename)
    except ValueError as e:
        print(f"raysvc up: {e}", file=sys.stderr)
        return EXIT_USAGE
    from localkube.node import NetworkUnavailable, check_capable, rootless

    if os.geteuid() != 0:
        ports = {"api": args.api_port, "serve": args.serve_port, "dashboard": args.dashboard_port}
        try:
            return rootless.enter(lambda: asyncio.run(_up(args, docs)), ports, prog="raysvc up")
        except rootless.Unavailable as e:
            print(f"raysvc up: {e}", file=sys.stderr)
            return EXIT_DENIED
        except OSError as e:
            print(f"raysvc up: {e.strerror}", file=sys.stderr)
            return EXIT_DENIED
    try:
        check_capable()
    except NetworkUnavailable as e:
        print(f"raysvc up: {e}", file=sys.stderr)
        return EXIT_DENIED
    return asyncio.run(_up(args, docs))


class _Printer:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.start = time.monotonic()

    def __call__(self, line: str) -> None:
        self.out.write(f"[{time.monotonic() - self.start:6.1f}s] {line}\n")
        self.out.flush()


async def _up(args: argparse.Namespace, docs: list[dict[str, Any]]) -> int:
    from kubernetes_asyncio import client

    from localkube.node import rootless
    from localkube.node.apps import build_sample_apps
    from raysvc.localstack import LocalStack, StackError
    from raysvc.logs import configure

    state: Path = args.state_dir
    await asyncio.to_thread(state.mkdir, parents=True, exist_ok=True, mode=0o700)
    log_file = await asyncio.to_thread((state / "raysvc.log").open, "a")
    configure(args.log_level, stream=log_file)
    say = _Printer(sys.stdout)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    code = EXIT_OK
    try:
        say(f"starting local mode (state in {state})")
        if SAMPLE.parent.is_dir():
            build_sample_apps()
        api_socket = rootless.listener("api")
        async with LocalStack(state, api_port=args.api_port, api_socket=api_socket) as stack:
            assert stack.kube is not None
            assert stack.node is not None
            say(f"API server on {stack.kube.url}, webhook registered, node and reconciler running")
            say(f"pod network: namespace {stack.node.network.cluster_netns} and its Pods'")
            _warn_versions(say, docs)
            try:
                for line in await stack.apply(docs):
                    say(line)
            except client.ApiException as e:
                print(f"Error from server: {_message(e)}", file=sys.stderr)
                return EXIT_DENIED
            first = docs[0]
            code = await _follow(args, stack, first, docs, say, stop)
        say("stopped: every process, namespace and interface of this run is gone")
    except StackError as e:
        print(f"raysvc up: {e}", file=sys.stderr)
        code = EXIT_DENIED
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"raysvc up: {where}{e.strerror or e!r}", file=sys.stderr)
        code = EXIT_DENIED
    finally:
        log_file.close()
    return code


def _message(error: Any) -> str:
    import json

    with contextlib.suppress(ValueError, TypeError):
        return str(json.loads(error.body).get("message", error.reason))
    return str(error.reason)


def _warn_versions(say: Any, docs: list[dict[str, Any]]) -> None:
    from importlib.metadata import version

    ray_version = version("ray")  # without importing Ray on the loop that serves everything
    versions = {
        str(((doc.get("spec") or {}).get("rayClusterConfig") or {}).get("rayVersion", ""))
        for doc in docs
    }
    versions.discard("")
    if versions - {ray_version}:
        say(
            f"note: Pods run this machine's Ray {ray_version}, whatever rayVersion "
            f"({', '.join(sorted(versions))}) or image they name"
        )


async def _follow(
    args: argparse.Namespace,
    stack: Any,
    first: Mapping[str, Any],
    docs: list[dict[str, Any]],
    say: Any,
    stop: asyncio.Event,
) -> int:
    from localkube.node import rootless
    from raysvc.progress import Progress, all_running
    from reconciler.informer import Informer
    from reconciler.kube import KubeClient, kind_of
    from reconciler.rayservice.names import serve_service_name

    namespaces = sorted(
        {str((d.get("metadata") or {}).get("namespace") or "default") for d in docs}
    )
    kube = KubeClient(stack.api)
    progress = Progress()
    informers = [
        Informer(kube, kind_of("ray.io/v1", kind), namespaces=namespaces)
        for kind in ("RayService", "RayCluster")
    ] + [
        Informer(
            kube, kind_of("v1", "Pod"), namespaces=namespaces, label_selector="ray.io/node-type"
        )
    ]
    changed = asyncio.Event()

    def report(event: str, obj: Mapping[str, Any]) -> None:
        line = progress.change(event, obj)
        if line is not None:
            say(line)
        changed.set()

    for informer in informers:
        informer.add_handler(report)
    tasks = [asyncio.create_task(i.run()) for i in informers]
    namespace = str((first.get("metadata") or {}).get("namespace") or "default")
    name = str(first["metadata"]["name"])
    serve_port = await stack.expose(
        namespace,
        serve_service_name({**first, "metadata": {**first["metadata"]}}),
        8000,
        args.serve_port,
        rootless.listener("serve"),
    )
    dashboard_port = await stack.expose(
        namespace, f"{name}-head-svc", 8265, args.dashboard_port, rootless.listener("dashboard")
    )
    wanted = {
        (str((d.get("metadata") or {}).get("namespace") or "default"), str(d["metadata"]["name"]))
        for d in docs
    }
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            services = informers[0]
            if all(
                (obj := services.get(ns, n)) is not None and all_running(obj) for ns, n in wanted
            ):
                break
            changed.clear()
            waiting = asyncio.ensure_future(changed.wait())
            try:
                await asyncio.wait([waiting, stopping], timeout=1.0, return_when=FIRST_COMPLETED)
            finally:
                waiting.cancel()
        if not stop.is_set():
            _ready(say, stack, serve_port, dashboard_port)
            await stop.wait()
        say("stopping (Ctrl-C)")
        return EXIT_OK
    finally:
        stopping.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _ready(say: Any, stack: Any, serve_port: int, dashboard_port: int) -> None:
    kubeconfig = shlex.quote(str(stack.kubeconfig))
    curl = "curl -X POST -H 'Content-Type: application/json'"
    say("every application is RUNNING")
    print(
        "\n".join(
            [
                "",
                f"  kubeconfig  {stack.kubeconfig}   (export KUBECONFIG={kubeconfig})",
                f"  serve       http://localhost:{serve_port}",
                f"  dashboard   http://localhost:{dashboard_port}",
                "",
                "Try:",
                f"  {curl} localhost:{serve_port}/fruit/ -d '[\"MANGO\", 2]'",
                f"  {curl} localhost:{serve_port}/calc/ -d '[\"MUL\", 3]'",
                f"  KUBECONFIG={kubeconfig} kubectl get rayservices,rayclusters,pods,services",
                "",
                "Changes are reported below; Ctrl-C stops everything.",
                "",
            ]
        ),
        flush=True,
    )
