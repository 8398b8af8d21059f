"""``raysvc reconcile``: the controllers that act on what the webhook decided."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from typing import Any

from raysvc.cli import EXIT_DENIED, EXIT_OK, EXIT_USAGE

HELP = "run the reconciler (RayService controller) until SIGTERM"


def register(subparsers: Any) -> None:
    from reconciler.manager import CONTROLLERS

    parser = subparsers.add_parser(
        "reconcile",
        help=HELP,
        description=(
            "Watch RayServices and keep their RayClusters, Serve config, Services and status, "
            "acting on the raysvc.io/ annotations the webhook writes."
        ),
    )
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else in-cluster config)"
    )
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="watch only this namespace (repeat for several; default: all namespaces)",
    )
    parser.add_argument(
        "--controllers",
        default=",".join(CONTROLLERS),
        help=f"comma-separated controllers to run (default: all of {', '.join(CONTROLLERS)})",
    )
    parser.add_argument(
        "--leader-elect", action="store_true", help="run only while holding the leader Lease"
    )
    parser.add_argument(
        "--leader-election-namespace",
        default=None,
        help="namespace of the leader Lease (default: $POD_NAMESPACE, else default)",
    )
    parser.add_argument(
        "--leader-election-id",
        default="raysvc-reconciler",
        help="name of the leader Lease (default: raysvc-reconciler)",
    )
    parser.add_argument(
        "--metrics-host", default="0.0.0.0", help="address of /metrics (default: 0.0.0.0)"
    )
    parser.add_argument(
        "--metrics-port", type=int, default=8080, help="port of /metrics (default: 8080)"
    )
    parser.add_argument(
        "--health-host", default="0.0.0.0", help="address of /healthz, /readyz (default: 0.0.0.0)"
    )
    parser.add_argument(
        "--health-port", type=int, default=8081, help="port of /healthz, /readyz (default: 8081)"
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="reconciles run at once (default: 4)"
    )
    parser.add_argument(
        "--idle-poll-seconds",
        type=float,
        default=60.0,
        help="how often a healthy RayService's dashboard is asked for its status (default: 60)",
    )
    parser.add_argument(
        "--busy-poll-seconds",
        type=float,
        default=2.0,
        help="how often a RayService that is changing is looked at again (default: 2)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning"),
        help="log level (default: info)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run until SIGTERM/SIGINT; 2 for bad arguments, 1 when the API is unreachable at start or
    leadership was lost."""
    from raysvc.logs import configure
    from reconciler.manager import CONTROLLERS

    configure(args.log_level)
    controllers = tuple(c.strip() for c in args.controllers.split(",") if c.strip())
    unknown = [c for c in controllers if c not in CONTROLLERS]
    if unknown or not controllers:
        print(
            f"raysvc reconcile: --controllers: unknown controller {', '.join(unknown) or '(none)'}"
            f" (choose from {', '.join(CONTROLLERS)})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.workers < 1:
        print("raysvc reconcile: --workers must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if not all(0 < s <= 86400 for s in (args.idle_poll_seconds, args.busy_poll_seconds)):
        print("raysvc reconcile: poll intervals must be between 0 and 86400 s", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(_run(args, controllers))
    except OSError as exc:  # a port in use, an unreachable API
        print(f"raysvc reconcile: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_DENIED


async def _run(args: argparse.Namespace, controllers: tuple[str, ...]) -> int:
    from kubernetes_asyncio import client, config

    from reconciler.manager import Reconciler, ReconcilerSettings
    from reconciler.rayservice.observed import PlanSettings

    if args.kubeconfig or os.environ.get("KUBECONFIG"):
        await config.load_kube_config(config_file=args.kubeconfig)
    else:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    settings = ReconcilerSettings(
        namespaces=tuple(args.namespace),
        controllers=controllers,
        workers=args.workers,
        plan=PlanSettings(idle_poll=args.idle_poll_seconds, busy_poll=args.busy_poll_seconds),
        leader_elect=args.leader_elect,
        lease_namespace=args.leader_election_namespace
        or os.environ.get("POD_NAMESPACE")
        or "default",
        lease_name=args.leader_election_id,
        health_host=args.health_host,
        health_port=args.health_port,
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with client.ApiClient() as api:
        code = await Reconciler(api, settings).run(stop)
    return EXIT_OK if code == 0 else EXIT_DENIED
