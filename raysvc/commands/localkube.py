"""``raysvc localkube``: run the embedded Kubernetes API server alone.

Serves plain HTTP on ``--host``/``--port`` until interrupted, optionally keeping state in a SQLite
file (``--state``), and writes a kubeconfig (``--kubeconfig-out``) that kubectl and
kubernetes-asyncio can use. Prints the server URL on standard output once it is ready.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

from raysvc.cli import EXIT_DENIED

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``localkube`` subcommand."""
    parser = subparsers.add_parser(
        "localkube",
        help="run the embedded Kubernetes API server",
        description="Run localkube, an embedded Kubernetes API server, until interrupted.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: a free port)"
    )
    parser.add_argument(
        "--kubeconfig-out", type=Path, help="write a kubeconfig for the server here"
    )
    parser.add_argument(
        "--state", type=Path, help="keep objects in this SQLite file across restarts"
    )
    parser.add_argument(
        "--bookmark-interval", type=float, default=60.0, help="seconds between watch bookmarks"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; 1 (one line on stderr) if it cannot start."""
    from raysvc.logs import configure

    configure("info")
    try:
        return asyncio.run(_serve(args))
    except OSError as exc:  # a port in use, an unwritable state or kubeconfig file
        print(f"raysvc localkube: {exc}", file=sys.stderr)
        return EXIT_DENIED


async def _serve(args: argparse.Namespace) -> int:
    from localkube import LocalKube, Settings

    settings = Settings(
        host=args.host,
        port=args.port,
        state_file=args.state,
        bookmark_interval=args.bookmark_interval,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with LocalKube(settings) as kube:
        if args.kubeconfig_out is not None:
            kube.write_kubeconfig(args.kubeconfig_out)
        print(kube.url, flush=True)
        await stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):
            loop.remove_signal_handler(sig)
    return 0
