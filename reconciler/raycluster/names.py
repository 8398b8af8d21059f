"""The names, labels and constants of what a RayCluster owns, as KubeRay spells them.

Dashboards, scripts, the Ray autoscaler and the RayService controller find a cluster's Pods and
Services by these labels, so they are KubeRay's (``ray-operator/controllers/ray/utils/
constant.go``, ``common/pod.go`` ``labelPod``, ``common/service.go``), including
``app.kubernetes.io/created-by: kuberay-operator``: selectors written for KubeRay keep working.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "APP_NAME",
    "CLUSTER_LABEL",
    "CREATED_BY",
    "CREATED_BY_LABEL",
    "FT_ENABLED_ANNOTATION",
    "GROUP_LABEL",
    "HEADLESS_SERVICE_LABEL",
    "HEAD_GROUP",
    "IDENTIFIER_LABEL",
    "IS_RAY_NODE_LABEL",
    "NAME_LABEL",
    "NODE_TYPE_LABEL",
    "ORIGINATED_FROM_CRD_LABEL",
    "OVERWRITE_COMMAND_ANNOTATION",
    "SERVE_LABEL",
    "autoscaler_account_name",
    "check_label",
    "check_name",
    "cluster_owner_reference",
    "head_pod_prefix",
    "head_service_fqdn",
    "head_service_name",
    "headless_service_name",
    "identifier",
    "is_rayservice_cluster",
    "worker_pod_prefix",
]

IS_RAY_NODE_LABEL: Final = "ray.io/is-ray-node"
CLUSTER_LABEL: Final = "ray.io/cluster"
NODE_TYPE_LABEL: Final = "ray.io/node-type"
GROUP_LABEL: Final = "ray.io/group"
IDENTIFIER_LABEL: Final = "ray.io/identifier"
SERVE_LABEL: Final = "ray.io/serve"
ORIGINATED_FROM_CRD_LABEL: Final = "ray.io/originated-from-crd"
HEADLESS_SERVICE_LABEL: Final = "ray.io/headless-worker-svc"
NAME_LABEL: Final = "app.kubernetes.io/name"
CREATED_BY_LABEL: Final = "app.kubernetes.io/created-by"
APP_NAME: Final = "kuberay"
CREATED_BY: Final = "kuberay-operator"
HEAD_GROUP: Final = "headgroup"
FT_ENABLED_ANNOTATION: Final = "ray.io/ft-enabled"
OVERWRITE_COMMAND_ANNOTATION: Final = "ray.io/overwrite-container-cmd"
CLUSTER_DOMAIN: Final = "cluster.local"
_MAX_PREFIX: Final = 50  # 63 minus "-worker-" and the 5 characters the API server appends


def _meta(cluster: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = cluster.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _head_group(cluster: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = cluster.get("spec")
    head = spec.get("headGroupSpec") if isinstance(spec, Mapping) else None
    return head if isinstance(head, Mapping) else {}


def is_rayservice_cluster(cluster: Mapping[str, Any]) -> bool:
    """Whether a RayService made this cluster (its Pods then get the Serve labels and probes)."""
    labels = _meta(cluster).get("labels")
    return isinstance(labels, Mapping) and labels.get(ORIGINATED_FROM_CRD_LABEL) == "RayService"


def check_label(value: str) -> str:
    """A label value KubeRay derives from ``value``: the last 63 characters, not starting with
    punctuation (``utils.CheckLabel``)."""
    value = value[-63:]
    if value and not value[0].isalnum():
        value = "r" + value[1:]
    return value


def check_name(value: str) -> str:
    """An object name KubeRay derives from ``value``: the last 50 characters, starting with a
    letter (``utils.CheckName``)."""
    value = value[-_MAX_PREFIX:]
    if value and not value[0].isalpha():
        value = "r" + value[1:]
    return value


def identifier(cluster_name: str, node_type: str) -> str:
    """The ``ray.io/identifier`` label of a cluster's head or worker Pods."""
    return check_label(f"{cluster_name}-{node_type}")


def head_pod_prefix(cluster_name: str) -> str:
    """``metadata.generateName`` of the head Pod: ``<cluster>-head-``."""
    return f"{cluster_name[:_MAX_PREFIX]}-head-".lower()


def worker_pod_prefix(cluster_name: str, group_name: str) -> str:
    """``metadata.generateName`` of a worker Pod: ``<cluster>-<group>-worker-``."""
    return f"{f'{cluster_name}-{group_name}'[:_MAX_PREFIX]}-worker-".lower()


def head_service_name(cluster: Mapping[str, Any]) -> str:
    """``<cluster>-head-svc``, or the name set in ``headGroupSpec.headService``."""
    service = _head_group(cluster).get("headService")
    meta = service.get("metadata") if isinstance(service, Mapping) else None
    name = meta.get("name") if isinstance(meta, Mapping) else None
    if isinstance(name, str) and name:
        return name
    return f"{_meta(cluster).get('name', '')}-head-svc"


def headless_service_name(cluster_name: str) -> str:
    """The headless Service of multi-host worker groups: ``<cluster>-headless``."""
    return f"{cluster_name}-headless"


def head_service_fqdn(cluster: Mapping[str, Any]) -> str:
    """The head Service's cluster DNS name, which workers join: ``<svc>.<ns>.svc.cluster.local``."""
    namespace = _meta(cluster).get("namespace", "")
    return f"{head_service_name(cluster)}.{namespace}.svc.{CLUSTER_DOMAIN}"


def autoscaler_account_name(cluster: Mapping[str, Any]) -> str:
    """The head Pod's ServiceAccount when the autoscaler runs: the template's, else the cluster's
    name (``utils.GetHeadGroupServiceAccountName``), clipped as KubeRay clips it."""
    template = _head_group(cluster).get("template")
    spec = template.get("spec") if isinstance(template, Mapping) else None
    account = spec.get("serviceAccountName") if isinstance(spec, Mapping) else None
    if isinstance(account, str) and account:
        return check_name(account)
    return check_name(str(_meta(cluster).get("name", "")))


def cluster_owner_reference(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """A controller ownerReference to the RayCluster, so its objects go when it goes."""
    meta = _meta(cluster)
    return {
        "apiVersion": str(cluster.get("apiVersion", "ray.io/v1")),
        "kind": "RayCluster",
        "name": str(meta.get("name", "")),
        "uid": str(meta.get("uid", "")),
        "controller": True,
        "blockOwnerDeletion": True,
    }
