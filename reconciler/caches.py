"""The informer caches the controllers share, and how their objects are indexed.

One process watches each kind once, whichever controllers run: RayServices, RayClusters, the Pods
KubeRay-style clusters are made of (label ``ray.io/node-type``, as KubeRay's own cache narrows
them) and Services. Indexes find what belongs together without scanning:

- ``owner``: the uid of an object's controller ownerReference;
- ``cluster``: ``<namespace>/<ray.io/cluster label>`` (Pods and per-cluster Services);
- ``origin``: ``<namespace>/<ray.io/originated-from-cr-name label>`` (RayClusters).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from reconciler.informer import Informer
from reconciler.kube import KubeClient, kind_of
from reconciler.raycluster.names import (
    CLUSTER_LABEL,
    CREATED_BY,
    CREATED_BY_LABEL,
    NODE_TYPE_LABEL,
)
from reconciler.rayservice.names import ORIGIN_NAME

__all__ = ["CLUSTER", "ORIGIN", "OWNER", "Caches", "controller_uid"]

OWNER: Final = "owner"
CLUSTER: Final = "cluster"
ORIGIN: Final = "origin"


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controlling owner, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller") and ref.get("uid"):
            return str(ref["uid"])
    return None


def _owner(obj: Mapping[str, Any]) -> Iterable[str]:
    uid = controller_uid(obj)
    return (uid,) if uid else ()


def _label_index(label: str) -> Any:
    def index(obj: Mapping[str, Any]) -> Iterable[str]:
        meta = obj.get("metadata") or {}
        value = (meta.get("labels") or {}).get(label)
        return (f"{meta.get('namespace', '')}/{value}",) if value else ()

    return index


@dataclass(frozen=True)
class Caches:
    """The shared informers (start them with :meth:`informers`)."""

    rayservices: Informer
    rayclusters: Informer
    pods: Informer
    services: Informer
    serviceaccounts: Informer | None = None
    roles: Informer | None = None
    rolebindings: Informer | None = None

    @classmethod
    def build(
        cls, kube: KubeClient, *, namespaces: Sequence[str] = (), rbac: bool = False
    ) -> Caches:
        """The caches; with ``rbac``, also the autoscaler's ServiceAccounts, Roles and
        RoleBindings (those KubeRay-style controllers label as theirs)."""

        def informer(api_version: str, kind: str, selector: str = "") -> Informer:
            return Informer(
                kube, kind_of(api_version, kind), namespaces=namespaces, label_selector=selector
            )

        ours = f"{CREATED_BY_LABEL}={CREATED_BY}"
        caches = cls(
            rayservices=informer("ray.io/v1", "RayService"),
            rayclusters=informer("ray.io/v1", "RayCluster"),
            pods=informer("v1", "Pod", NODE_TYPE_LABEL),
            services=informer("v1", "Service"),
            serviceaccounts=informer("v1", "ServiceAccount", ours) if rbac else None,
            roles=informer("rbac.authorization.k8s.io/v1", "Role", ours) if rbac else None,
            rolebindings=(
                informer("rbac.authorization.k8s.io/v1", "RoleBinding", ours) if rbac else None
            ),
        )
        caches.rayclusters.add_index(OWNER, _owner)
        caches.rayclusters.add_index(ORIGIN, _label_index(ORIGIN_NAME))
        caches.pods.add_index(CLUSTER, _label_index(CLUSTER_LABEL))
        caches.services.add_index(OWNER, _owner)
        caches.services.add_index(CLUSTER, _label_index(CLUSTER_LABEL))
        return caches

    def informers(self) -> list[Informer]:
        every = [self.rayservices, self.rayclusters, self.pods, self.services]
        return every + [i for i in (self.serviceaccounts, self.roles, self.rolebindings) if i]

    def rbac(self) -> tuple[Informer, Informer, Informer]:
        """The autoscaler RBAC caches (built with ``rbac=True``)."""
        if self.serviceaccounts is None or self.roles is None or self.rolebindings is None:
            raise RuntimeError("the caches were built without rbac=True")
        return self.serviceaccounts, self.roles, self.rolebindings

    def by_kind(self) -> dict[tuple[str, str], Informer]:
        """For read-your-writes: the cache of each kind."""
        return {(i.kind.api_version, i.kind.kind): i for i in self.informers()}
