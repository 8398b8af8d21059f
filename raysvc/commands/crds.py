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


class _PlainDumper(yaml.SafeDumper):
    """Writes a shared subtree out again wherever it occurs, never as an anchor and an alias.

    The CRD builders reuse schema dicts (the pod template's, the RayCluster spec's); PyYAML would
    print the second use as ``*id001``. Kubernetes manifests are read by people and by tools that
    do not resolve aliases, so every node is written in full.
    """

    def ignore_aliases(self, data: Any) -> bool:
        return True


def run(args: argparse.Namespace) -> int:
    """Write the CRDs to standard output."""
    sys.stdout.write(yaml.dump_all(rayservice_crds(), Dumper=_PlainDumper, sort_keys=False))
    return EXIT_OK
