"""The head Pod and the worker Pods of a RayCluster, from its templates, as KubeRay builds them.

From ``ray-operator/controllers/ray/common/pod.go`` (``DefaultHeadPodTemplate``,
``DefaultWorkerPodTemplate``, ``BuildPod``, ``setContainerEnvVars``, ``BuildAutoscalerContainer``,
``configureGCSFaultTolerance``) and ``raycluster_controller.go`` (``buildHeadPod``,
``buildWorkerPod``). The Ray container is the first container of each template; everything the
user wrote is kept, and KubeRay's additions are made only where the user left room:

- metadata: ``generateName`` ``<cluster>-head-`` / ``<cluster>-<group>-worker-`` (the API server
  appends 5 characters), the namespace of the cluster, the template's labels plus the group's
  ``labels`` plus KubeRay's (of which ``ray.io/cluster``, ``ray.io/node-type`` and ``ray.io/group``
  cannot be overridden), ``ray.io/serve`` on RayService clusters (workers ``"true"``, head
  ``"false"`` until the RayService controller sets it), a controller ownerReference;
- the Ray container: the generated ``ray start`` command (unless the user's command already runs
  ``ray start`` or the cluster says ``ray.io/overwrite-container-cmd: "true"``), KubeRay's
  environment, the ``metrics`` port, a ``/dev/shm`` memory volume, the probes;
- workers: the ``wait-gcs-ready`` init container, which waits for the head's GCS;
- the head with ``enableInTreeAutoscaling``: the ``autoscaler`` sidecar, a shared ``/tmp/ray``
  log volume, and the autoscaler's ServiceAccount.

Pure: the cluster is the JSON object the API returns; nothing here reads or writes the API.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Final

from reconciler.raycluster import additions, names, probes, quantity, raystart

__all__ = ["build_head_pod", "build_worker_pod"]

_SHM_VOLUME: Final = "shared-mem"
_LOG_VOLUME: Final = "ray-logs"
_ULIMIT: Final = "ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _spec(cluster: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(cluster.get("spec"))


def _autoscaling(cluster: Mapping[str, Any]) -> bool:
    return _spec(cluster).get("enableInTreeAutoscaling") is True


def _autoscaler_version(cluster: Mapping[str, Any]) -> str | None:
    version = _mapping(_spec(cluster).get("autoscalerOptions")).get("version")
    return version if isinstance(version, str) else None


def _ft_enabled(cluster: Mapping[str, Any]) -> bool:
    annotations = _mapping(_mapping(cluster.get("metadata")).get("annotations"))
    flag = str(annotations.get(names.FT_ENABLED_ANNOTATION, "")).lower() == "true"
    return flag or _spec(cluster).get("gcsFaultToleranceOptions") is not None


def _labels(
    cluster_name: str,
    node_type: str,
    group_name: str,
    template: Mapping[str, Any],
    group: Mapping[str, Any],
) -> dict[str, str]:
    merged = {
        **_mapping(_mapping(template.get("metadata")).get("labels")),
        **_mapping(group.get("labels")),
    }
    labels = {
        names.IS_RAY_NODE_LABEL: "yes",
        names.CLUSTER_LABEL: cluster_name,
        names.NODE_TYPE_LABEL: node_type,
        names.GROUP_LABEL: group_name,
        names.IDENTIFIER_LABEL: names.identifier(cluster_name, node_type),
        names.NAME_LABEL: names.APP_NAME,
        names.CREATED_BY_LABEL: names.CREATED_BY,
    }
    fixed = (names.NODE_TYPE_LABEL, names.GROUP_LABEL, names.CLUSTER_LABEL)
    labels.update({str(k): str(v) for k, v in merged.items() if k not in fixed})
    return labels


def _metadata(
    cluster: Mapping[str, Any],
    template: Mapping[str, Any],
    *,
    prefix: str,
    labels: dict[str, str],
    annotations: dict[str, str],
) -> dict[str, Any]:
    meta = dict(copy.deepcopy(_mapping(template.get("metadata"))))
    meta.pop("name", None)
    cluster_meta = _mapping(cluster.get("metadata"))
    owners = [
        ref
        for ref in meta.get("ownerReferences") or ()
        if isinstance(ref, Mapping) and not ref.get("controller")
    ]
    out: dict[str, Any] = {
        "generateName": prefix,
        "namespace": cluster_meta.get("namespace", ""),
        **{k: v for k, v in meta.items() if k not in ("labels", "annotations", "ownerReferences")},
        "labels": labels,
    }
    if annotations:
        out["annotations"] = annotations
    out["ownerReferences"] = [*owners, names.cluster_owner_reference(cluster)]
    return out


def _annotations(cluster: Mapping[str, Any], template: Mapping[str, Any]) -> dict[str, str]:
    written = _mapping(_mapping(template.get("metadata")).get("annotations"))
    annotations = {str(k): str(v) for k, v in written.items()}
    cluster_annotations = _mapping(_mapping(cluster.get("metadata")).get("annotations"))
    if str(cluster_annotations.get(names.OVERWRITE_COMMAND_ANNOTATION, "")).lower() == "true":
        annotations[names.OVERWRITE_COMMAND_ANNOTATION] = "true"
    return annotations


def _memory_size_limit(container: Mapping[str, Any]) -> str | None:
    resources = _mapping(container.get("resources"))
    for source in ("limits", "requests"):
        amounts = _mapping(resources.get(source))
        if "memory" in amounts:
            parsed = quantity.parse(amounts["memory"])
            return str(parsed) if parsed is not None else str(amounts["memory"])
    return None


def _add_empty_dir(
    pod_spec: dict[str, Any],
    container: dict[str, Any],
    *,
    volume: str,
    path: str,
    memory: bool,
) -> None:
    if any(_mapping(m).get("mountPath") == path for m in container.get("volumeMounts") or ()):
        return
    volumes = list(pod_spec.get("volumes") or ())
    if not any(_mapping(v).get("name") == volume for v in volumes):
        empty_dir: dict[str, Any] = {}
        if memory:
            empty_dir["medium"] = "Memory"
            limit = _memory_size_limit(container)
            if limit is not None:
                empty_dir["sizeLimit"] = limit
        volumes.append({"name": volume, "emptyDir": empty_dir})
        pod_spec["volumes"] = volumes
    container["volumeMounts"] = [
        *(container.get("volumeMounts") or ()),
        {"mountPath": path, "name": volume},
    ]


def _add_metrics_port(container: dict[str, Any]) -> None:
    ports = list(container.get("ports") or ())
    if not any(_mapping(p).get("name") == "metrics" for p in ports):
        ports.append({"name": "metrics", "containerPort": raystart.METRICS_PORT})
    container["ports"] = ports


def _set_command(container: dict[str, Any], start: str, *, overwrite: bool) -> None:
    user = "".join(f" {part} " for part in container.get("command") or ())
    user += "".join(f" {part} " for part in container.get("args") or ())
    if overwrite or "ray start" in user:
        return  # the user starts Ray themselves; the command is still in KUBERAY_GEN_RAY_START_CMD
    generated = f"{_ULIMIT}; {start}"
    container["command"] = list(additions.SHELL)
    container["args"] = [f"{user} && {generated}" if user else generated]


def _finish(
    cluster: Mapping[str, Any],
    pod_spec: dict[str, Any],
    *,
    node_type: str,
    params: dict[str, str],
    labels: dict[str, str],
    annotations: dict[str, str],
) -> None:
    """``BuildPod``: volumes, the command, the environment, the probes."""
    containers: list[dict[str, Any]] = pod_spec["containers"]
    ray = containers[0]
    serve_cluster = names.is_rayservice_cluster(cluster)
    if serve_cluster:
        labels[names.SERVE_LABEL] = "false" if node_type == "head" else "true"
    if "plasma-directory" not in params:
        _add_empty_dir(pod_spec, ray, volume=_SHM_VOLUME, path="/dev/shm", memory=True)
    if node_type == "head" and _autoscaling(cluster):
        # The autoscaler writes event logs the head reads: a volume both containers mount.
        sidecar = next(c for c in containers if c.get("name") == additions.AUTOSCALER)
        _add_empty_dir(pod_spec, ray, volume=_LOG_VOLUME, path="/tmp/ray", memory=False)
        _add_empty_dir(pod_spec, sidecar, volume=_LOG_VOLUME, path="/tmp/ray", memory=False)
    start = raystart.ray_start_command(
        params, node_type=node_type, container_resources=_mapping(ray.get("resources"))
    )
    overwrite = annotations.get(names.OVERWRITE_COMMAND_ANNOTATION, "").lower() == "true"
    _set_command(ray, start, overwrite=overwrite)
    fqdn = names.head_service_fqdn(cluster)
    port = raystart.head_port(_head_params(cluster))
    for init in pod_spec.get("initContainers") or ():
        additions.append_env(
            init,
            additions.env("FQ_RAY_IP", fqdn),
            additions.env("RAY_IP", fqdn.split(".", maxsplit=1)[0]),
        )
    additions.ray_env(
        ray, node_type=node_type, fqdn=fqdn, port=port, start=start, serve_cluster=serve_cluster
    )
    probes.add_probes(
        ray,
        node_type=node_type,
        serve_cluster=serve_cluster,
        params=params,
        ray_version=str(_spec(cluster).get("rayVersion") or ""),
    )


def _head_params(cluster: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(_mapping(_spec(cluster).get("headGroupSpec")).get("rayStartParams"))


def _pod(metadata: dict[str, Any], pod_spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}


def _template(group: Mapping[str, Any]) -> tuple[Mapping[str, Any], dict[str, Any]]:
    template = _mapping(group.get("template"))
    pod_spec = copy.deepcopy(dict(_mapping(template.get("spec"))))
    pod_spec["containers"] = [dict(c) for c in pod_spec.get("containers") or ()]
    if not pod_spec["containers"]:
        raise ValueError("the Pod template has no containers")
    if pod_spec.get("initContainers"):
        pod_spec["initContainers"] = [dict(c) for c in pod_spec["initContainers"]]
    return template, pod_spec


def build_head_pod(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """The head Pod of ``cluster`` (a RayCluster as the API returns it), ready to POST.

    Raises ``ValueError`` when the head template has no container.
    """
    name = str(_mapping(cluster.get("metadata")).get("name", ""))
    head = _mapping(_spec(cluster).get("headGroupSpec"))
    template, pod_spec = _template(head)
    ray = pod_spec["containers"][0]
    autoscaling = _autoscaling(cluster)
    params = raystart.start_params(head, node_type="head", autoscaler=autoscaling)
    labels = _labels(name, "head", names.HEAD_GROUP, template, head)
    annotations = _annotations(cluster, template)
    if autoscaling:
        pod_spec["serviceAccountName"] = names.autoscaler_account_name(cluster)
        pod_spec["containers"].append(additions.autoscaler_container(cluster, ray.get("image")))
        version = _autoscaler_version(cluster)
        if version == "v2":
            additions.append_env(ray, additions.env("RAY_enable_autoscaler_v2", "true"))
            pod_spec["restartPolicy"] = "Never"
        elif version == "v1":
            additions.append_env(ray, additions.env("RAY_enable_autoscaler_v2", "false"))
    ft = _ft_enabled(cluster)
    annotations[names.FT_ENABLED_ANNOTATION] = "true" if ft else "false"
    if ft:
        additions.configure_ft_head(cluster, ray, params, annotations)
    _add_metrics_port(ray)
    _finish(
        cluster, pod_spec, node_type="head", params=params, labels=labels, annotations=annotations
    )
    metadata = _metadata(
        cluster,
        template,
        prefix=names.head_pod_prefix(name),
        labels=labels,
        annotations=annotations,
    )
    return _pod(metadata, pod_spec)


def build_worker_pod(cluster: Mapping[str, Any], group: Mapping[str, Any]) -> dict[str, Any]:
    """One worker Pod of ``group`` (an entry of ``spec.workerGroupSpecs``), ready to POST.

    Raises ``ValueError`` when the group's template has no container.
    """
    name = str(_mapping(cluster.get("metadata")).get("name", ""))
    group_name = str(group.get("groupName", ""))
    template, pod_spec = _template(group)
    ray = pod_spec["containers"][0]
    fqdn = names.head_service_fqdn(cluster)
    address = f"{fqdn}:{raystart.head_port(_head_params(cluster))}"
    pod_spec["initContainers"] = [
        *(pod_spec.get("initContainers") or ()),
        additions.wait_gcs_container(ray, address),
    ]
    params = raystart.start_params(group, node_type="worker", head_address=address)
    labels = _labels(name, "worker", group_name, template, group)
    annotations = _annotations(cluster, template)
    if _ft_enabled(cluster):
        # Workers outlive a restarting head only if they wait long enough for the new GCS.
        additions.append_env_if_missing(
            ray, additions.env("RAY_gcs_rpc_server_reconnect_timeout_s", "600")
        )
    _add_metrics_port(ray)
    if _autoscaling(cluster) and _autoscaler_version(cluster) == "v2":
        pod_spec["restartPolicy"] = "Never"
    _finish(
        cluster, pod_spec, node_type="worker", params=params, labels=labels, annotations=annotations
    )
    metadata = _metadata(
        cluster,
        template,
        prefix=names.worker_pod_prefix(name, group_name),
        labels=labels,
        annotations=annotations,
    )
    return _pod(metadata, pod_spec)


def worker_groups(cluster: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    """``spec.workerGroupSpecs``, the entries that are objects."""
    groups = _spec(cluster).get("workerGroupSpecs")
    if not isinstance(groups, list):
        return ()
    return [g for g in groups if isinstance(g, Mapping)]
