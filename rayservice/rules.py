"""Validation rules for a (defaulted) RayService: KubeRay's, and what KubeRay never checks.

Every rule is a function ``(model, path) -> Iterator[FieldError]`` that reports everything it
finds; ``validate`` runs them all. The rules are:

- KubeRay's RayService metadata and spec rules and its whole RayCluster spec rule set, which
  KubeRay runs only in the controller (errors end up as events, after the apply succeeded);
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

from rayservice.contract import UPGRADE_TIMEOUT_SECONDS
from rayservice.errors import FieldError, FieldWarning, Key, Path, Reason, render_path
from rayservice.models import (
    Container,
    EnvVar,
    HeadGroupSpec,
    RayClusterSpec,
    RayServiceSpec,
    RayServiceV1,
    RayServiceV1Alpha1,
    WorkerGroupSpec,
)
from rayservice.shape import unknown_fields

__all__ = [
    "MAX_NAME_LENGTH",
    "validate",
    "warn",
]

MAX_NAME_LENGTH: Final = 47
"""53 (RayCluster names, so ``-serve-svc`` fits in 63) minus the ``-xxxxx`` cluster suffix."""

RayService = RayServiceV1 | RayServiceV1Alpha1

_DNS1035: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME: Final = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_SUBDOMAIN: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_GO_DURATION: Final = re.compile(r"^[-+]?((\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h))+$")
_DURATION_PART: Final = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)")
_VERSION: Final = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")

UPGRADE_TYPES: Final = ("NewCluster", "NewClusterWithIncrementalUpgrade", "None")
MANAGED_BY: Final = ("ray.io/kuberay-operator", "kueue.x-k8s.io/multikueue")
RESOURCE_PARAMS: Final = ("num-cpus", "num-gpus", "memory", "resources")
INITIALIZING_TIMEOUT: Final = "ray.io/initializing-timeout"
FT_ENABLED: Final = "ray.io/ft-enabled"
EXTERNAL_STORAGE_NAMESPACE: Final = "ray.io/external-storage-namespace"

SPEC: Final[Path] = ("spec",)
CLUSTER: Final[Path] = ("spec", "rayClusterConfig")


def validate(rs: RayService, old: Mapping[str, Any] | None = None) -> list[FieldError]:
    """Every error of a defaulted RayService; ``old`` is the stored object (raw) on UPDATE.

    Rules on ``old`` only read single fields, so it is not validated into a model (that would
    double the cost of an UPDATE on a large object).
    """
    errors = list(_metadata(rs))
    errors.extend(_spec(rs))
    errors.extend(_cluster(rs.spec.ray_cluster_config, rs, CLUSTER))
    if old is not None:
        errors.extend(_immutable(rs, old))
    return errors


def warn(rs: RayService) -> list[FieldWarning]:
    """Every warning for a defaulted RayService (its Serve config's come from the parser)."""
    return list(_warnings(rs))


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
    if upgrade_timeout is not None and not (upgrade_timeout.isdigit() and int(upgrade_timeout) > 0):
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


def _positive_duration(text: str) -> bool:
    if text.isdigit():
        return int(text) > 0
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
    containers = _containers(rs.spec.ray_cluster_config.head_group_spec)
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
# RayCluster spec (KubeRay's ValidateRayClusterSpec, plus what is certain to fail later)


def _cluster(cluster: RayClusterSpec, rs: RayService, path: Path) -> Iterator[FieldError]:
    head_path = (*path, "headGroupSpec")
    head = cluster.head_group_spec
    yield from _containers_exist(head.template.spec, (*head_path, "template"))
    yield from _group_params(head, head_path)
    groups = cluster.worker_group_specs or []
    names: dict[str, int] = {}
    for index, group in enumerate(groups):
        group_path = (*path, "workerGroupSpecs", index)
        yield from _containers_exist(group.template.spec, (*group_path, "template"))
        yield from _group_params(group, group_path)
        yield from _group_name(group, group_path, names, index)
        yield from _replica_bounds(
            group, group_path, autoscaling=bool(cluster.enable_in_tree_autoscaling)
        )
    yield from _gcs_fault_tolerance(cluster, rs, path)
    yield from _autoscaler(cluster, path)
    yield from _auth(cluster, path)
    yield from _cluster_upgrade_strategy(cluster, path)


def _containers(group: HeadGroupSpec | WorkerGroupSpec) -> list[Container]:
    spec = group.template.spec
    return spec.containers if spec is not None else []


def _containers_exist(pod_spec: object, path: Path) -> Iterator[FieldError]:
    containers = getattr(pod_spec, "containers", None)
    if not containers:
        yield FieldError(
            (*path, "spec", "containers"),
            Reason.REQUIRED,
            detail="at least one container is required",
        )


def _group_params(group: HeadGroupSpec | WorkerGroupSpec, path: Path) -> Iterator[FieldError]:
    params = group.ray_start_params or {}
    if group.resources:
        for key in RESOURCE_PARAMS:
            if key in params:
                yield FieldError(
                    (*path, "rayStartParams", Key(key)),
                    Reason.FORBIDDEN,
                    detail=f"may not be set together with {render_path(path)}.resources",
                )
    if "labels" in params:
        yield FieldError(
            (*path, "rayStartParams", Key("labels")),
            Reason.FORBIDDEN,
            detail=f"use {render_path(path)}.labels instead",
        )
    for key, value in (group.labels or {}).items():
        if not _qualified_name(key):
            yield FieldError(
                (*path, "labels"),
                Reason.INVALID,
                key,
                "must be a valid label key (name or prefix/name)",
            )
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            yield FieldError(
                (*path, "labels", Key(key)),
                Reason.INVALID,
                value,
                "a label value must be at most 63 characters: alphanumerics, '-', '_' or '.', "
                "starting and ending with an alphanumeric",
            )


def _group_name(
    group: WorkerGroupSpec, path: Path, seen: dict[str, int], index: int
) -> Iterator[FieldError]:
    name = group.group_name
    field = (*path, "groupName")
    if not name:
        yield FieldError(field, Reason.REQUIRED)
        return
    if len(name) > 63 or not _LABEL_VALUE.match(name):
        yield FieldError(
            field,
            Reason.INVALID,
            name,
            "must be a valid label value (it becomes the ray.io/group label of the pods)",
        )
    if name in seen:
        yield FieldError(
            field, Reason.DUPLICATE, name, f"already used by workerGroupSpecs[{seen[name]}]"
        )
    else:
        seen[name] = index


def _replica_bounds(
    group: WorkerGroupSpec, path: Path, *, autoscaling: bool
) -> Iterator[FieldError]:
    low, high = group.min_replicas, group.max_replicas
    if not autoscaling:
        if low is None:
            yield FieldError(
                (*path, "minReplicas"), Reason.REQUIRED, detail="required without autoscaling"
            )
        if high is None:
            yield FieldError(
                (*path, "maxReplicas"), Reason.REQUIRED, detail="required without autoscaling"
            )
    for key, value in (("replicas", group.replicas), ("minReplicas", low), ("maxReplicas", high)):
        if value is not None and value < 0:
            yield FieldError(
                (*path, key), Reason.INVALID, value, "must be greater than or equal to 0"
            )
    if low is not None and high is not None and low > high and low >= 0 and high >= 0:
        yield FieldError(
            (*path, "minReplicas"),
            Reason.INVALID,
            low,
            f"must be less than or equal to maxReplicas ({high})",
        )
    if group.num_of_hosts is not None and group.num_of_hosts < 1:
        yield FieldError(
            (*path, "numOfHosts"), Reason.INVALID, group.num_of_hosts, "must be greater than 0"
        )
    if group.suspend and autoscaling:
        yield FieldError(
            (*path, "suspend"),
            Reason.FORBIDDEN,
            detail="worker groups cannot be suspended with the autoscaler on",
        )


def _head_env(cluster: RayClusterSpec) -> dict[str, EnvVar]:
    containers = _containers(cluster.head_group_spec)
    return {env.name: env for env in (containers[0].env or [])} if containers else {}


def _gcs_fault_tolerance(
    cluster: RayClusterSpec, rs: RayService, path: Path
) -> Iterator[FieldError]:
    annotations = rs.metadata.annotations or {}
    options = cluster.gcs_fault_tolerance_options
    head_env = _head_env(cluster)
    env_path = (*path, "headGroupSpec", "template", "spec", "containers", 0, "env")
    ft_annotation = annotations.get(FT_ENABLED, "").lower() == "true"
    if FT_ENABLED in annotations and options is not None:
        yield FieldError(
            ("metadata", "annotations", Key(FT_ENABLED)),
            Reason.FORBIDDEN,
            detail=f"may not be set together with {render_path(path)}.gcsFaultToleranceOptions",
        )
    if options is None and not ft_annotation and "RAY_REDIS_ADDRESS" in head_env:
        yield FieldError(
            env_path,
            Reason.FORBIDDEN,
            detail="RAY_REDIS_ADDRESS enables GCS fault tolerance; use gcsFaultToleranceOptions",
        )
    head_params = cluster.head_group_spec.ray_start_params or {}
    if "redis-username" in head_params:
        yield FieldError(
            (*path, "headGroupSpec", "rayStartParams", Key("redis-username")),
            Reason.FORBIDDEN,
            detail="use gcsFaultToleranceOptions.redisUsername",
        )
    if "REDIS_USERNAME" in head_env:
        yield FieldError(
            env_path,
            Reason.FORBIDDEN,
            detail="REDIS_USERNAME: use gcsFaultToleranceOptions.redisUsername",
        )
    if options is None:
        return
    options_path = (*path, "gcsFaultToleranceOptions")
    if "redis-password" in head_params:
        yield FieldError(
            (*path, "headGroupSpec", "rayStartParams", Key("redis-password")),
            Reason.FORBIDDEN,
            detail="use gcsFaultToleranceOptions.redisPassword",
        )
    for name in ("REDIS_PASSWORD", "RAY_REDIS_ADDRESS"):
        if name in head_env:
            yield FieldError(
                env_path, Reason.FORBIDDEN, detail=f"{name}: use gcsFaultToleranceOptions instead"
            )
    if EXTERNAL_STORAGE_NAMESPACE in annotations:
        yield FieldError(
            ("metadata", "annotations", Key(EXTERNAL_STORAGE_NAMESPACE)),
            Reason.FORBIDDEN,
            detail="use gcsFaultToleranceOptions.externalStorageNamespace",
        )
    backend = options.backend or "redis"
    if backend not in ("redis", "rocksdb"):
        yield FieldError(
            (*options_path, "backend"),
            Reason.UNSUPPORTED,
            backend,
            'supported values: "redis", "rocksdb"',
        )
    elif backend == "redis":
        if options.storage is not None:
            yield FieldError(
                (*options_path, "storage"), Reason.FORBIDDEN, detail="only for the rocksdb backend"
            )
        if not options.redis_address:
            yield FieldError(
                (*options_path, "redisAddress"),
                Reason.REQUIRED,
                detail="required for the redis backend",
            )
    else:
        for key, value in (
            ("redisAddress", options.redis_address),
            ("redisPassword", options.redis_password),
            ("redisUsername", options.redis_username),
        ):
            if value is not None:
                yield FieldError(
                    (*options_path, key), Reason.FORBIDDEN, detail="only for the redis backend"
                )
        storage = options.storage or {}
        if storage.get("claimName") and any(
            storage.get(key) for key in ("size", "storageClassName", "accessModes")
        ):
            yield FieldError(
                (*options_path, "storage", "claimName"),
                Reason.FORBIDDEN,
                detail="may not be set together with size, storageClassName or accessModes",
            )


def _autoscaler_v2(cluster: RayClusterSpec) -> tuple[bool, bool]:
    """(v2 in effect, the env var was used to ask for it)."""
    env = _head_env(cluster).get("RAY_enable_autoscaler_v2")
    env_on = env is not None and (env.value or "").lower() in ("1", "true")
    options = cluster.autoscaler_options
    version = options.version if options is not None else None
    return (version == "v2" or env_on), env is not None


def _autoscaler(cluster: RayClusterSpec, path: Path) -> Iterator[FieldError]:
    autoscaling = bool(cluster.enable_in_tree_autoscaling)
    v2, env_set = _autoscaler_v2(cluster)
    env_path = (*path, "headGroupSpec", "template", "spec", "containers", 0, "env")
    options = cluster.autoscaler_options
    if not autoscaling and v2 and env_set:
        yield FieldError(
            env_path,
            Reason.FORBIDDEN,
            detail="RAY_enable_autoscaler_v2 needs enableInTreeAutoscaling: true",
        )
    if options is not None:
        options_path = (*path, "autoscalerOptions")
        if options.version is not None and env_set:
            yield FieldError(
                (*options_path, "version"),
                Reason.FORBIDDEN,
                detail="may not be set together with the RAY_enable_autoscaler_v2 env var",
            )
        if options.version is not None and options.version not in ("v1", "v2"):
            yield FieldError(
                (*options_path, "version"),
                Reason.UNSUPPORTED,
                options.version,
                'supported values: "v1", "v2"',
            )
        if options.idle_timeout_seconds is not None and options.idle_timeout_seconds < 0:
            yield FieldError(
                (*options_path, "idleTimeoutSeconds"),
                Reason.INVALID,
                options.idle_timeout_seconds,
                "must be greater than or equal to 0",
            )
        if any(env.name == "KUBERAY_GEN_AUTOSCALER_START_CMD" for env in options.env or []):
            yield FieldError(
                (*options_path, "env"),
                Reason.FORBIDDEN,
                detail="KUBERAY_GEN_AUTOSCALER_START_CMD is set by the operator",
            )
    if v2:
        head_policy = _restart_policy(cluster.head_group_spec)
        if head_policy not in (None, "Never"):
            yield FieldError(
                (*path, "headGroupSpec", "template", "spec", "restartPolicy"),
                Reason.UNSUPPORTED,
                head_policy,
                'autoscaler v2 needs "Never" or unset',
            )
    for index, group in enumerate(cluster.worker_group_specs or []):
        group_path = (*path, "workerGroupSpecs", index)
        if v2 and _restart_policy(group) not in (None, "Never"):
            yield FieldError(
                (*group_path, "template", "spec", "restartPolicy"),
                Reason.UNSUPPORTED,
                _restart_policy(group),
                'autoscaler v2 needs "Never" or unset',
            )
        if group.idle_timeout_seconds is not None:
            if group.idle_timeout_seconds < 0:
                yield FieldError(
                    (*group_path, "idleTimeoutSeconds"),
                    Reason.INVALID,
                    group.idle_timeout_seconds,
                    "must be greater than or equal to 0",
                )
            elif not (autoscaling and v2):
                yield FieldError(
                    (*group_path, "idleTimeoutSeconds"),
                    Reason.FORBIDDEN,
                    detail="needs the in-tree autoscaler v2",
                )
        if group.priority:
            if not (autoscaling and v2):
                yield FieldError(
                    (*group_path, "priority"),
                    Reason.FORBIDDEN,
                    detail="needs the in-tree autoscaler v2",
                )
            elif not _at_least(cluster.ray_version, (2, 56, 0)):
                yield FieldError(
                    (*group_path, "priority"),
                    Reason.FORBIDDEN,
                    detail="needs rayVersion 2.56.0 or later",
                )


def _restart_policy(group: HeadGroupSpec | WorkerGroupSpec) -> str | None:
    spec = group.template.spec
    return spec.restart_policy if spec is not None else None


def _auth(cluster: RayClusterSpec, path: Path) -> Iterator[FieldError]:
    auth = cluster.auth_options
    if auth is None or auth.mode is None:
        return
    if auth.mode not in ("disabled", "token"):
        yield FieldError(
            (*path, "authOptions", "mode"),
            Reason.UNSUPPORTED,
            auth.mode,
            'supported values: "disabled", "token"',
        )
    elif auth.mode == "token" and not _at_least(cluster.ray_version, (2, 52, 0)):
        yield FieldError(
            (*path, "rayVersion"),
            Reason.INVALID,
            cluster.ray_version or "",
            "token authentication needs rayVersion 2.52.0 or later",
        )


def _cluster_upgrade_strategy(cluster: RayClusterSpec, path: Path) -> Iterator[FieldError]:
    strategy = cluster.upgrade_strategy
    if strategy is None or strategy.type in (None, "None"):
        return
    field = (*path, "upgradeStrategy", "type")
    if strategy.type == "Recreate":
        yield FieldError(
            field,
            Reason.FORBIDDEN,
            detail="a RayService upgrades its clusters itself; use spec.upgradeStrategy",
        )
    else:
        yield FieldError(
            field, Reason.UNSUPPORTED, strategy.type, 'supported values: "Recreate", "None"'
        )


def _at_least(version: str | None, minimum: tuple[int, int, int]) -> bool:
    parsed = _parse_version(version)
    return parsed is not None and parsed >= minimum


def _parse_version(version: str | None) -> tuple[int, int, int] | None:
    match = _VERSION.match(version or "")
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def _qualified_name(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_LABEL_NAME.match(name))


# ----------------------------------------------------------------------------------------------
# warnings


def _warnings(rs: RayService) -> Iterator[FieldWarning]:
    if isinstance(rs, RayServiceV1Alpha1):
        yield FieldWarning(
            ("apiVersion",), "ray.io/v1alpha1 RayService is deprecated; use ray.io/v1"
        )
    for path, _ in unknown_fields(rs.spec, SPEC):
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
    cluster = spec.ray_cluster_config
    for index, group in enumerate(cluster.worker_group_specs or []):
        yield from _replica_warning(group, (*CLUSTER, "workerGroupSpecs", index))
    yield from _version_warning(cluster)
    for key, gated in (
        ("networkPolicy", cluster.network_policy),
        ("tlsOptions", cluster.tls_options),
        ("historyServerOptions", cluster.history_server_options),
    ):
        if gated is not None:
            yield FieldWarning(
                (*CLUSTER, key),
                "feature-gated in KubeRay; raysvc does not validate or implement it",
            )
    options = cluster.gcs_fault_tolerance_options
    if options is not None and options.backend == "rocksdb":
        yield FieldWarning(
            (*CLUSTER, "gcsFaultToleranceOptions", "backend"),
            "rocksdb needs KubeRay's GCSFaultToleranceEmbeddedStorage feature gate",
        )


def _replica_warning(group: WorkerGroupSpec, path: Path) -> Iterator[FieldWarning]:
    replicas, low, high = group.replicas, group.min_replicas, group.max_replicas
    if replicas is None or low is None or high is None or low > high:
        return
    if replicas > high:
        yield FieldWarning(
            (*path, "replicas"), f"{replicas} is above maxReplicas ({high}): {high} workers start"
        )
    elif 0 < replicas < low:
        # 0 is the CRD default for an unset replicas: raising it to minReplicas is expected.
        yield FieldWarning(
            (*path, "replicas"), f"{replicas} is below minReplicas ({low}): {low} workers start"
        )


def _version_warning(cluster: RayClusterSpec) -> Iterator[FieldWarning]:
    containers = _containers(cluster.head_group_spec)
    if not containers or not containers[0].image or not cluster.ray_version:
        return
    image = containers[0].image
    repository, _, tag = image.rpartition(":")
    if "/" in tag or not repository.rsplit("/", 1)[-1].startswith("ray"):
        return
    tag_version = _parse_version(tag)
    wanted = _parse_version(cluster.ray_version)
    if tag_version is not None and wanted is not None and tag_version != wanted:
        yield FieldWarning(
            (*CLUSTER, "rayVersion"),
            f"{cluster.ray_version} does not match the head image tag {tag}",
        )


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(f'"{value}"' for value in values)
