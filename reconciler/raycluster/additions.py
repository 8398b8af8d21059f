"""The containers and environment KubeRay adds around the user's Ray container.

From ``ray-operator/controllers/ray/common/pod.go``: ``setContainerEnvVars`` (the Ray
container's environment), ``DefaultWorkerPodTemplate`` (the ``wait-gcs-ready`` init container),
``BuildAutoscalerContainer`` and ``mergeAutoscalerOverrides`` (the ``autoscaler`` sidecar) and
``configureRedisFT`` (GCS fault tolerance on Redis). Variables KubeRay sets only when absent are
left as the user wrote them; the ones it always appends are appended.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from reconciler.raycluster import names

__all__ = [
    "AUTOSCALER",
    "SHELL",
    "append_env",
    "append_env_if_missing",
    "autoscaler_container",
    "configure_ft_head",
    "env",
    "ray_env",
    "wait_gcs_container",
]

AUTOSCALER: Final = "autoscaler"
SHELL: Final = ["/bin/bash", "-c", "--"]
_AUTOSCALER_COMMAND: Final = (
    "ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME) "
    "--cluster-namespace $(RAY_CLUSTER_NAMESPACE)"
)
USAGE_STATS_TAGS: Final = "kuberay_version=raysvc;kuberay_crd={crd}"
"""RAY_USAGE_STATS_EXTRA_TAGS on the head: KubeRay writes its own version where raysvc is named."""


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _spec(cluster: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(cluster.get("spec"))


def env(name: str, value: str) -> dict[str, Any]:
    """An environment variable with a literal value."""
    return {"name": name, "value": value}


def field_env(name: str, path: str) -> dict[str, Any]:
    """An environment variable read from the Pod's own fields (``fieldRef``)."""
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def has_env(container: Mapping[str, Any], name: str) -> bool:
    """Whether the container already sets ``name``."""
    return any(_mapping(e).get("name") == name for e in container.get("env") or ())


def append_env(container: dict[str, Any], *items: dict[str, Any]) -> None:
    """Append variables, as KubeRay does for the ones it always sets."""
    container["env"] = [*(container.get("env") or ()), *items]


def append_env_if_missing(container: dict[str, Any], item: dict[str, Any]) -> None:
    """Append a variable unless the user set it."""
    if not has_env(container, item["name"]):
        append_env(container, item)


def ray_env(
    container: dict[str, Any],
    *,
    node_type: str,
    fqdn: str,
    port: str,
    start: str,
    serve_cluster: bool,
) -> None:
    """The Ray container's environment: where the cluster is, what started Ray, Serve timeouts."""
    if node_type == "worker":
        append_env(container, env("FQ_RAY_IP", fqdn), env("RAY_IP", fqdn.split(".", maxsplit=1)[0]))
    append_env(
        container,
        field_env("RAY_CLUSTER_NAME", f"metadata.labels['{names.CLUSTER_LABEL}']"),
        field_env("RAY_CLUSTER_NAMESPACE", "metadata.namespace"),
        field_env("RAY_CLOUD_INSTANCE_ID", "metadata.name"),
        field_env("RAY_NODE_TYPE_NAME", f"metadata.labels['{names.GROUP_LABEL}']"),
        env("KUBERAY_GEN_RAY_START_CMD", start),
    )
    append_env_if_missing(container, env("RAY_PORT", port))
    if serve_cluster:
        # Faster failover for Serve: KubeRay sets these on RayService clusters only.
        append_env_if_missing(container, env("RAY_timeout_ms_task_wait_for_death_info", "0"))
        append_env_if_missing(container, env("RAY_gcs_server_request_timeout_seconds", "5"))
        append_env_if_missing(container, env("RAY_SERVE_KV_TIMEOUT_S", "5"))
    address = f"127.0.0.1:{port}" if node_type == "head" else f"{fqdn}:{port}"
    append_env_if_missing(container, env("RAY_ADDRESS", address))
    append_env_if_missing(container, env("RAY_USAGE_STATS_KUBERAY_IN_USE", "1"))
    if node_type == "head":
        crd = "RayService" if serve_cluster else "RayCluster"
        append_env(container, env("RAY_USAGE_STATS_EXTRA_TAGS", USAGE_STATS_TAGS.format(crd=crd)))
    append_env_if_missing(container, env("RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE", "1"))


def _wait_gcs_script(address: str) -> str:
    # Quiet for the first two minutes (the head is usually still starting), then show why.
    return "\n".join(
        [
            "SECONDS=0",
            "while true; do",
            "  if (( SECONDS <= 120 )); then",
            f"    ray health-check --address {address} > /dev/null 2>&1 && break",
            f'    echo "$SECONDS s: waiting for the Ray GCS at {address}"',
            "  else",
            f"    ray health-check --address {address} && break",
            f'    echo "$SECONDS s: still waiting for the Ray GCS at {address};'
            ' see https://docs.ray.io/en/latest/cluster/kubernetes/troubleshooting.html"',
            "  fi",
            "  sleep 5",
            "done",
            f'echo "the Ray GCS at {address} is ready"',
        ]
    )


def wait_gcs_container(ray: Mapping[str, Any], address: str) -> dict[str, Any]:
    """The ``wait-gcs-ready`` init container: a worker starts Ray once the head's GCS answers."""
    init: dict[str, Any] = {"name": "wait-gcs-ready", "image": ray.get("image")}
    if ray.get("imagePullPolicy"):
        init["imagePullPolicy"] = ray["imagePullPolicy"]
    init["command"] = list(SHELL)
    init["args"] = [_wait_gcs_script(address)]
    if ray.get("securityContext") is not None:
        init["securityContext"] = copy.deepcopy(ray["securityContext"])
    # The Ray container's environment and mounts (TLS settings for `ray health-check` live there).
    if ray.get("env"):
        init["env"] = copy.deepcopy(list(ray["env"]))
    if ray.get("volumeMounts"):
        init["volumeMounts"] = copy.deepcopy(list(ray["volumeMounts"]))
    fixed = {"cpu": "200m", "memory": "256Mi"}
    init["resources"] = {"limits": dict(fixed), "requests": dict(fixed)}
    return init


def autoscaler_container(cluster: Mapping[str, Any], image: object) -> dict[str, Any]:
    """The ``autoscaler`` sidecar of the head (the Ray image unless ``autoscalerOptions`` say)."""
    container: dict[str, Any] = {
        "name": AUTOSCALER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "env": [
            field_env("RAY_CLUSTER_NAME", f"metadata.labels['{names.CLUSTER_LABEL}']"),
            field_env("RAY_CLUSTER_NAMESPACE", "metadata.namespace"),
            field_env("RAY_HEAD_POD_NAME", "metadata.name"),
            env("KUBERAY_CRD_VER", "v1"),
            env("KUBERAY_GEN_AUTOSCALER_START_CMD", _AUTOSCALER_COMMAND),
        ],
        "command": list(SHELL),
        "args": [_AUTOSCALER_COMMAND],
        "resources": {
            "limits": {"cpu": "500m", "memory": "512Mi"},
            "requests": {"cpu": "500m", "memory": "512Mi"},
        },
    }
    options = _mapping(_spec(cluster).get("autoscalerOptions"))
    for key in ("resources", "image", "imagePullPolicy", "securityContext"):
        if options.get(key) is not None:
            container[key] = copy.deepcopy(options[key])
    for key in ("env", "envFrom", "volumeMounts"):
        if options.get(key):
            container[key] = [*(container.get(key) or ()), *copy.deepcopy(list(options[key]))]
    for key in ("command", "args"):
        if options.get(key):
            container[key] = copy.deepcopy(list(options[key]))
    return container


def configure_ft_head(
    cluster: Mapping[str, Any],
    container: dict[str, Any],
    params: dict[str, str],
    annotations: dict[str, str],
) -> None:
    """GCS fault tolerance on a Redis backend: where the head keeps its state."""
    meta = _mapping(cluster.get("metadata"))
    cluster_annotations = _mapping(meta.get("annotations"))
    options = _spec(cluster).get("gcsFaultToleranceOptions")
    storage = str(meta.get("uid", ""))
    storage = str(cluster_annotations.get("ray.io/external-storage-namespace", storage))
    if isinstance(options, Mapping) and options.get("externalStorageNamespace"):
        storage = str(options["externalStorageNamespace"])
    annotations["ray.io/external-storage-namespace"] = storage
    append_env_if_missing(container, env("RAY_external_storage_namespace", storage))
    if isinstance(options, Mapping):
        append_env(container, env("RAY_REDIS_ADDRESS", str(options.get("redisAddress", ""))))
        for key, param, variable in (
            ("redisUsername", "redis-username", "REDIS_USERNAME"),
            ("redisPassword", "redis-password", "REDIS_PASSWORD"),
        ):
            source = options.get(key)
            if isinstance(source, Mapping):
                params[param] = f"${variable}"
                append_env(container, {"name": variable, **copy.deepcopy(dict(source))})
    elif "redis-password" in params:
        append_env_if_missing(container, env("REDIS_PASSWORD", params["redis-password"]))
