"""KubeRay's RayCluster rules (``ValidateRayClusterSpec``) for ``spec.rayClusterConfig``, plus
what KubeRay never checks but is certain to fail later, and the cluster's warnings.

Every rule is a function ``(model, path) -> Iterator[FieldError]`` that reports everything it
finds. The rules read the cluster and the RayService's annotations (GCS fault tolerance can be
switched on by one), nothing else, so their result is a function of those two.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Final

from rayservice.errors import FieldError, FieldWarning, Key, Path, Reason, render_path
from rayservice.models import (
    Container,
    EnvVar,
    HeadGroupSpec,
    RayClusterSpec,
    WorkerGroupSpec,
)

__all__ = [
    "EXTERNAL_STORAGE_NAMESPACE",
    "FT_ENABLED",
    "cluster_errors",
    "cluster_warnings",
    "group_containers",
    "parse_version",
]

LABEL_VALUE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME: Final = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_SUBDOMAIN: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_VERSION: Final = re.compile(r"^v?([0-9]{1,9})\.([0-9]{1,9})(?:\.([0-9]{1,9}))?")

RESOURCE_PARAMS: Final = ("num-cpus", "num-gpus", "memory", "resources")
FT_ENABLED: Final = "ray.io/ft-enabled"
EXTERNAL_STORAGE_NAMESPACE: Final = "ray.io/external-storage-namespace"


def cluster_errors(
    cluster: RayClusterSpec, annotations: Mapping[str, str], path: Path
) -> Iterator[FieldError]:
    """Every error of a (defaulted) rayClusterConfig at ``path``."""
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
    yield from _gcs_fault_tolerance(cluster, annotations, path)
    yield from _autoscaler(cluster, path)
    yield from _auth(cluster, path)
    yield from _cluster_upgrade_strategy(cluster, path)


def group_containers(group: HeadGroupSpec | WorkerGroupSpec) -> list[Container]:
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
        if len(value) > 63 or not LABEL_VALUE.match(value):
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
    if len(name) > 63 or not LABEL_VALUE.match(name):
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
    containers = group_containers(cluster.head_group_spec)
    return {env.name: env for env in (containers[0].env or [])} if containers else {}


def _gcs_fault_tolerance(
    cluster: RayClusterSpec, annotations: Mapping[str, str], path: Path
) -> Iterator[FieldError]:
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
    parsed = parse_version(version)
    return parsed is not None and parsed >= minimum


def parse_version(version: str | None) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` of ``2.52.0``, ``v2.52`` or ``2.52.0-rc1``; ``None`` otherwise."""
    match = _VERSION.match(version or "")
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def _qualified_name(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_LABEL_NAME.match(name))


def cluster_warnings(cluster: RayClusterSpec, path: Path) -> Iterator[FieldWarning]:
    """Suspicious but allowed settings of a rayClusterConfig at ``path``."""
    for index, group in enumerate(cluster.worker_group_specs or []):
        yield from _replica_warning(group, (*path, "workerGroupSpecs", index))
    yield from _version_warning(cluster, path)
    for key, gated in (
        ("networkPolicy", cluster.network_policy),
        ("tlsOptions", cluster.tls_options),
        ("historyServerOptions", cluster.history_server_options),
    ):
        if gated is not None:
            yield FieldWarning(
                (*path, key),
                "feature-gated in KubeRay; raysvc does not validate or implement it",
            )
    options = cluster.gcs_fault_tolerance_options
    if options is not None and options.backend == "rocksdb":
        yield FieldWarning(
            (*path, "gcsFaultToleranceOptions", "backend"),
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


def _version_warning(cluster: RayClusterSpec, path: Path) -> Iterator[FieldWarning]:
    containers = group_containers(cluster.head_group_spec)
    if not containers or not containers[0].image or not cluster.ray_version:
        return
    image = containers[0].image
    repository, _, tag = image.rpartition(":")
    if "/" in tag or not repository.rsplit("/", 1)[-1].startswith("ray"):
        return
    tag_version = parse_version(tag)
    wanted = parse_version(cluster.ray_version)
    if tag_version is not None and wanted is not None and tag_version != wanted:
        yield FieldWarning(
            (*path, "rayVersion"),
            f"{cluster.ray_version} does not match the head image tag {tag}",
        )
