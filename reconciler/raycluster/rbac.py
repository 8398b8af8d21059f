"""What the autoscaler sidecar may do: a ServiceAccount, a Role and a RoleBinding per cluster.

From ``ray-operator/controllers/ray/common/rbac.go`` and ``raycluster_controller.go``
(``reconcileAutoscalerServiceAccount``, ``...Role``, ``...RoleBinding``). Only with
``enableInTreeAutoscaling: true``. The Role lets ``ray kuberay-autoscaler`` read and patch the
cluster's Pods (and resize them) and get and patch the RayCluster (``replicas``,
``workersToDelete``), in the cluster's namespace only. All three are named after the cluster
(clipped as KubeRay clips names); a ServiceAccount the head template names is the user's to
create, so none is built then, and the RoleBinding binds that account.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.raycluster import names

__all__ = ["build_role", "build_role_binding", "build_service_account", "user_service_account"]


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _metadata(cluster: Mapping[str, Any], name: str) -> dict[str, Any]:
    meta = _mapping(cluster.get("metadata"))
    return {
        "name": name,
        "namespace": meta.get("namespace", ""),
        "labels": {
            names.CLUSTER_LABEL: str(meta.get("name", "")),
            names.NAME_LABEL: names.APP_NAME,
            names.CREATED_BY_LABEL: names.CREATED_BY,
        },
        "ownerReferences": [names.cluster_owner_reference(cluster)],
    }


def _cluster_name(cluster: Mapping[str, Any]) -> str:
    return str(_mapping(cluster.get("metadata")).get("name", ""))


def user_service_account(cluster: Mapping[str, Any]) -> bool:
    """Whether the head template names its own ServiceAccount (then raysvc creates none)."""
    template = _mapping(
        _mapping(_mapping(cluster.get("spec")).get("headGroupSpec")).get("template")
    )
    return bool(_mapping(template.get("spec")).get("serviceAccountName"))


def build_service_account(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """The autoscaler's ServiceAccount, named after the cluster."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(cluster, names.autoscaler_account_name(cluster)),
    }


def build_role(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """The autoscaler's Role: the cluster's Pods and the RayCluster itself."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(cluster, names.check_name(_cluster_name(cluster))),
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "patch"]},
            {"apiGroups": [""], "resources": ["pods/resize"], "verbs": ["patch"]},
            {"apiGroups": ["ray.io"], "resources": ["rayclusters"], "verbs": ["get", "patch"]},
        ],
    }


def build_role_binding(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """Binds the Role to the head Pod's ServiceAccount."""
    name = names.check_name(_cluster_name(cluster))
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(cluster, name),
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": names.autoscaler_account_name(cluster),
                "namespace": _mapping(cluster.get("metadata")).get("namespace", ""),
            }
        ],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
    }
