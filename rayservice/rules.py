"""Validation rules for a (defaulted) RayService: KubeRay's, and what KubeRay never checks.

Every rule is a function ``(model, path) -> Iterator[FieldError]`` that reports everything it
finds; ``validate`` runs them all. The rules are:

- KubeRay's RayService metadata and spec rules, and its whole RayCluster spec rule set
  (``rayservice.cluster_rules``), which KubeRay runs only in the controller (errors end up as
  events, after the apply succeeded);
- what KubeRay never checks but is certain to fail later: group names that cannot be label
  values, duplicate group names, a head container declaring ports without one named ``serve``;
- the Serve config rules (``rayservice.serveconfig``) are collected by the caller.

Feature-gated KubeRay features (network policy, mTLS, the history server, embedded-storage GCS
fault tolerance) are checked for what is certain and otherwise warned about: the webhook cannot
see the operator's gates. Warnings cover deprecated and suspicious settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from rayservice.cluster_rules import group_containers
from rayservice.clusters import ClusterFindings, cluster_findings
from rayservice.contract import UPGRADE_TIMEOUT_SECONDS
from rayservice.errors import FieldError, FieldWarning, Key, Path, Reason
from rayservice.models import RayServiceSpec, RayServiceV1, RayServiceV1Alpha1
from rayservice.shape import unknown_fields, walkable_fields

__all__ = [
    "MAX_NAME_LENGTH",
    "validate",
    "warn",
]

MAX_NAME_LENGTH: Final = 47
"""53 (RayCluster names, so ``-serve-svc`` fits in 63) minus the ``-xxxxx`` cluster suffix."""

RayService = RayServiceV1 | RayServiceV1Alpha1

_DNS1035: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_GO_DURATION: Final = re.compile(r"^[-+]?(([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|ms|s|m|h))+$")
_DURATION_PART: Final = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_MAX_DURATION_CHARS: Final = 64

UPGRADE_TYPES: Final = ("NewCluster", "NewClusterWithIncrementalUpgrade", "None")
MANAGED_BY: Final = ("ray.io/kuberay-operator", "kueue.x-k8s.io/multikueue")
INITIALIZING_TIMEOUT: Final = "ray.io/initializing-timeout"

SPEC: Final[Path] = ("spec",)
CLUSTER: Final[Path] = ("spec", "rayClusterConfig")


def validate(rs: RayService, old: Mapping[str, Any] | None = None) -> list[FieldError]:
    """Every error of a defaulted RayService; ``old`` is the stored object (raw) on UPDATE.

    Rules on ``old`` only read single fields, so it is not validated into a model (that would
    double the cost of an UPDATE on a large object).
    """
    errors = list(_metadata(rs))
    errors.extend(_spec(rs))
    errors.extend(_cluster(rs).errors)
    if old is not None:
        errors.extend(_immutable(rs, old))
    return errors


def warn(rs: RayService) -> list[FieldWarning]:
    """Every warning for a defaulted RayService (its Serve config's come from the parser)."""
    return list(_warnings(rs))


def _cluster(rs: RayService) -> ClusterFindings:
    return cluster_findings(rs.spec.ray_cluster_config, rs.metadata.annotations or {}, CLUSTER)


# ----------------------------------------------------------------------------------------------
# metadata


def _metadata(rs: RayService) -> Iterator[FieldError]:
    meta = rs.metadata
    if meta.name:
        yield from _name(meta.name, ("metadata", "name"), MAX_NAME_LENGTH)
    elif meta.generate_name:
        # The API server appends 5 characters to generateName.
        yield from _name(
            meta.generate_name + "x", ("metadata", "generateName"), MAX_NAME_LENGTH - 5
        )
    else:
        yield FieldError(
            ("metadata", "name"), Reason.REQUIRED, detail="name or generateName is required"
        )
    annotations = meta.annotations or {}
    timeout = annotations.get(INITIALIZING_TIMEOUT)
    if timeout is not None and not _positive_duration(timeout):
        yield FieldError(
            ("metadata", "annotations", Key(INITIALIZING_TIMEOUT)),
            Reason.INVALID,
            timeout,
            'must be a positive duration such as "10m" or a positive number of seconds',
        )
    upgrade_timeout = annotations.get(UPGRADE_TIMEOUT_SECONDS)
    if upgrade_timeout is not None and not _positive_integer(upgrade_timeout):
        yield FieldError(
            ("metadata", "annotations", Key(UPGRADE_TIMEOUT_SECONDS)),
            Reason.INVALID,
            upgrade_timeout,
            "must be a positive integer number of seconds",
        )


def _name(name: str, path: Path, limit: int) -> Iterator[FieldError]:
    shown = name if path[-1] == "name" else name[:-1]
    if len(name) > limit:
        yield FieldError(path, Reason.INVALID, shown, f"must be no more than {limit} characters")
    if not _DNS1035.match(name):
        yield FieldError(
            path,
            Reason.INVALID,
            shown,
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
            "start with an alphabetic character, and end with an alphanumeric character",
        )


def _positive_integer(text: str) -> bool:
    """A positive decimal integer of at most 18 ASCII digits (it fits in an int64)."""
    return len(text) <= 18 and text.isascii() and text.isdigit() and int(text) > 0


def _positive_duration(text: str) -> bool:
    """A positive Go duration (``10m``, ``1h30m``) or a positive number of seconds. Longer
    texts than any sensible duration are refused before the (backtracking) pattern runs."""
    if len(text) > _MAX_DURATION_CHARS or not text.isascii():
        return False
    if text.isdigit():
        return _positive_integer(text)
    if not _GO_DURATION.match(text) or text.startswith("-"):
        return False
    return any(float(number) > 0 for number, _ in _DURATION_PART.findall(text))


# ----------------------------------------------------------------------------------------------
# RayService spec


def _spec(rs: RayService) -> Iterator[FieldError]:
    spec = rs.spec
    head = spec.ray_cluster_config.head_group_spec
    if head.head_service is not None:
        name = (head.head_service.get("metadata") or {}).get("name")
        if name:
            yield FieldError(
                (*CLUSTER, "headGroupSpec", "headService", "metadata", "name"),
                Reason.FORBIDDEN,
                detail="the RayService names head services itself; two clusters sharing a name "
                "deadlock an upgrade",
            )
    auth = spec.ray_cluster_config.auth_options
    if auth is not None and auth.enable_k8s_token_auth:
        yield FieldError(
            (*CLUSTER, "authOptions", "enableK8sTokenAuth"),
            Reason.FORBIDDEN,
            detail="Kubernetes token authentication is not supported for RayService",
        )
    if isinstance(spec, RayServiceSpec):
        yield from _v1_spec(spec, rs)
    yield from _serve_port(rs)


def _v1_spec(spec: RayServiceSpec, rs: RayService) -> Iterator[FieldError]:
    delay = spec.ray_cluster_deletion_delay_seconds
    if delay is not None and delay < 0:
        yield FieldError(
            (*SPEC, "rayClusterDeletionDelaySeconds"),
            Reason.INVALID,
            delay,
            "must be greater than or equal to 0",
        )
    if spec.managed_by is not None and spec.managed_by not in MANAGED_BY:
        yield FieldError(
            (*SPEC, "managedBy"),
            Reason.UNSUPPORTED,
            spec.managed_by,
            f"supported values: {_quoted(MANAGED_BY)}",
        )
    strategy = spec.upgrade_strategy
    if strategy is None or strategy.type is None:
        return
    if strategy.type not in UPGRADE_TYPES:
        yield FieldError(
            (*SPEC, "upgradeStrategy", "type"),
            Reason.UNSUPPORTED,
            strategy.type,
            f"supported values: {_quoted(UPGRADE_TYPES)}",
        )
    if strategy.type != "NewClusterWithIncrementalUpgrade":
        return
    path = (*SPEC, "upgradeStrategy", "clusterUpgradeOptions")
    if not spec.ray_cluster_config.enable_in_tree_autoscaling:
        yield FieldError(
            (*CLUSTER, "enableInTreeAutoscaling"),
            Reason.REQUIRED,
            detail="incremental upgrades need the in-tree autoscaler",
        )
    options = strategy.cluster_upgrade_options
    if options is None:
        yield FieldError(path, Reason.REQUIRED, detail="incremental upgrades need upgrade options")
        return
    surge = 100 if options.max_surge_percent is None else options.max_surge_percent
    if not 0 <= surge <= 100:
        yield FieldError(
            (*path, "maxSurgePercent"), Reason.INVALID, surge, "must be between 0 and 100"
        )
    step = options.step_size_percent
    if step is None:
        yield FieldError((*path, "stepSizePercent"), Reason.REQUIRED)
    elif not 0 <= step <= 100:
        yield FieldError(
            (*path, "stepSizePercent"), Reason.INVALID, step, "must be between 0 and 100"
        )
    elif step > surge:
        yield FieldError(
            (*path, "stepSizePercent"),
            Reason.INVALID,
            step,
            f"must be less than or equal to maxSurgePercent ({surge})",
        )
    if options.interval_seconds is None:
        yield FieldError((*path, "intervalSeconds"), Reason.REQUIRED)
    elif options.interval_seconds <= 0:
        yield FieldError(
            (*path, "intervalSeconds"),
            Reason.INVALID,
            options.interval_seconds,
            "must be greater than 0",
        )
    if not options.gateway_class_name:
        yield FieldError((*path, "gatewayClassName"), Reason.REQUIRED)


def _serve_port(rs: RayService) -> Iterator[FieldError]:
    """KubeRay adds default ports only when the head declares none; otherwise the serve Service
    needs a port named ``serve`` (or ``serve-*``), or a serveService that brings its own."""
    containers = group_containers(rs.spec.ray_cluster_config.head_group_spec)
    if not containers or not containers[0].ports:
        return
    if any(_is_serve_port(port.name) for port in containers[0].ports):
        return
    serve_service = rs.spec.serve_service or {}
    if (serve_service.get("spec") or {}).get("ports"):
        return
    yield FieldError(
        (*CLUSTER, "headGroupSpec", "template", "spec", "containers", 0, "ports"),
        Reason.REQUIRED,
        detail="declare a port named serve (e.g. containerPort 8000) or spec.serveService ports",
    )


def _is_serve_port(name: str | None) -> bool:
    return name is not None and (name == "serve" or name.startswith("serve-"))


def _immutable(rs: RayService, old: Mapping[str, Any]) -> Iterator[FieldError]:
    if not isinstance(rs.spec, RayServiceSpec):
        return
    old_spec = old.get("spec")
    before = old_spec.get("managedBy") if isinstance(old_spec, Mapping) else None
    after = rs.spec.managed_by
    if before is not None and after is not None and before != after:
        yield FieldError((*SPEC, "managedBy"), Reason.INVALID, after, "field is immutable")


# ----------------------------------------------------------------------------------------------
# warnings


def _warnings(rs: RayService) -> Iterator[FieldWarning]:
    if isinstance(rs, RayServiceV1Alpha1):
        yield FieldWarning(
            ("apiVersion",), "ray.io/v1alpha1 RayService is deprecated; use ray.io/v1"
        )
    for path in _unknown_in_spec(rs):
        yield FieldWarning(
            path, "unknown field; the API server prunes it unless the CRD declares it"
        )
    spec = rs.spec
    for key, value in (
        ("serviceUnhealthySecondThreshold", spec.service_unhealthy_second_threshold),
        ("deploymentUnhealthySecondThreshold", spec.deployment_unhealthy_second_threshold),
    ):
        if value is not None and value < 0:
            yield FieldWarning(
                (*SPEC, key), f"negative threshold ({value}) marks the cluster unhealthy at once"
            )
    yield from _cluster(rs).warnings


def _unknown_in_spec(rs: RayService) -> Iterator[Path]:
    """``unknown_fields(rs.spec)``, with the cluster's part as the cluster's findings keep it."""
    spec = rs.spec
    for key in spec.model_extra or {}:
        yield (*SPEC, key)
    for name, alias in walkable_fields(type(spec)):
        child = getattr(spec, name)
        if child is None:
            continue
        if name == "ray_cluster_config":
            yield from _cluster(rs).unknown
        else:
            yield from (path for path, _ in unknown_fields(child, (*SPEC, alias)))


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(f'"{value}"' for value in values)
