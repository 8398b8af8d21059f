"""The RayCluster controller's pure core (standalone profile): what a RayCluster owns.

- ``build``: the manifests KubeRay would create for a RayCluster (head and worker Pods, head
  Service, headless Service, the autoscaler's ServiceAccount, Role and RoleBinding).

No I/O and no clock here.
"""

from reconciler.raycluster.build import Manifests, build, multi_host

__all__ = ["Manifests", "build", "multi_host"]
