"""The annotation contract between the webhook and the reconciler.

The mutating webhook writes these annotations on every CREATE and UPDATE of a RayService; the
reconciler reads them and never recomputes diffs. Both import the names and values from here and
nowhere else. Values are plain strings because annotations are ``map[string]string``.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "ANNOTATION_PREFIX",
    "CHANGE",
    "CLUSTER_HASH",
    "OWNED_ANNOTATIONS",
    "SERVE_HASH",
    "SETTING_ANNOTATIONS",
    "UPGRADE_TIMEOUT_SECONDS",
    "ChangeClass",
]

ANNOTATION_PREFIX: Final = "raysvc.io/"

CHANGE: Final = "raysvc.io/change"
"""The class of the last admitted change to the spec (a ``ChangeClass`` value); for people,
events, warnings. An UPDATE that changes nothing in the spec (class ``none``: a re-apply, a label
edit) leaves it as it was, so the class of a change in flight is never lost."""

CLUSTER_HASH: Final = "raysvc.io/cluster-hash"
"""Canonical hash of the defaulted ``spec.rayClusterConfig`` without the fields the autoscaler
owns (``replicas``, ``scaleStrategy.workersToDelete``) and the scale bounds (``minReplicas``,
``maxReplicas``), which are applied to the running cluster in place."""

SERVE_HASH: Final = "raysvc.io/serve-hash"
"""Canonical hash of the parsed ``spec.serveConfigV2``."""

OWNED_ANNOTATIONS: Final = (CHANGE, CLUSTER_HASH, SERVE_HASH)
"""Written by the mutating webhook only; the validating webhook denies values that do not match."""

UPGRADE_TIMEOUT_SECONDS: Final = "raysvc.io/upgrade-timeout-seconds"
"""Setting: seconds a pending cluster may take to become ready before the upgrade is abandoned."""

SETTING_ANNOTATIONS: Final = (UPGRADE_TIMEOUT_SECONDS,)
"""Settings beyond the CRD (a CRD prunes unknown spec fields), written by users."""


class ChangeClass(enum.StrEnum):
    """What an admitted change asks the reconciler to do.

    When several aspects change at once, the class is the most far-reaching one, in this order:
    cluster-upgrade, serve-only, scale-bounds, settings, autoscaler-owned, none.
    """

    CREATE = "create"
    """A new RayService: create the RayCluster, submit the Serve config."""
    NONE = "none"
    """The spec did not change (labels, annotations, status, formatting of serveConfigV2)."""
    SERVE_ONLY = "serve-only"
    """serveConfigV2 changed (no cluster change): re-apply it to the running cluster in place."""
    AUTOSCALER_OWNED = "autoscaler-owned"
    """Only ``replicas``/``workersToDelete``: owned by the Ray autoscaler, nothing propagates."""
    SCALE_BOUNDS = "scale-bounds"
    """``minReplicas``/``maxReplicas`` changed: patched into the running RayCluster in place."""
    SETTINGS = "settings"
    """Only RayService-level settings outside the cluster and Serve config changed (thresholds,
    serveService, upgradeStrategy, deletion delay, ...): applied by the reconciler in place."""
    CLUSTER_UPGRADE = "cluster-upgrade"
    """Anything else in rayClusterConfig: zero-downtime upgrade to a new RayCluster."""
