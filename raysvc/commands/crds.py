"""``raysvc crds``: print the project's RayService and RayCluster CRDs as YAML.

For the ``standalone`` profile and local mode (beside KubeRay, keep KubeRay's CRDs)::

    raysvc crds | kubectl apply --server-side -f -
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from rayservice.crd import rayservice_crds
from raysvc.cli import EXIT_OK

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``crds`` subcommand."""
    parser = subparsers.add_parser(
        "crds",
        help="print raysvc's RayService and RayCluster CRDs (standalone profile)",
        description="Print the CustomResourceDefinitions raysvc serves RayService and RayCluster "
        "with when it runs without KubeRay, as multi-document YAML.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Write the CRDs to standard output."""
    sys.stdout.write(yaml.safe_dump_all(rayservice_crds(), sort_keys=False))
    return EXIT_OK
