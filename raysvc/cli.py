"""Entry point of the ``raysvc`` console script.

Exit codes are part of the public interface: 0 success, 1 a check failed (e.g. a RayService was
denied), 2 usage errors and unreadable input. Subcommands are imported lazily so that
``raysvc check`` does not pay for aiohttp or kubernetes-asyncio.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence

__all__ = ["EXIT_DENIED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_DENIED = 1
EXIT_USAGE = 2

# Subcommand modules under raysvc.commands, in the order `raysvc --help` lists them.
COMMANDS: tuple[str, ...] = ("up", "check", "webhook", "reconcile", "certs", "crds", "localkube")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="raysvc",
        description="Admission webhook and reconciler for KubeRay's RayService.",
    )
    parser.add_argument(
        "--version", action="version", version=f"raysvc {_version()}", help="print the version"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"raysvc.commands.{name}")
        module.register(subparsers)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("raysvc")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    handler = args.handler
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return EXIT_OK
