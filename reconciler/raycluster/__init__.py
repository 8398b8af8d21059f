"""The RayCluster controller's pure core (standalone profile): what a RayCluster owns, and how
one reconcile converges it.

- ``build``: the manifests KubeRay would create for a RayCluster (head and worker Pods, head
  Service, headless Service, the autoscaler's ServiceAccount, Role and RoleBinding);
- ``plan``: ``plan(observed, now) -> Plan``, the writes that bring a RayCluster to its spec,
  empty when it is there;
- ``observed``: :class:`Observed`, the input of ``plan``, and where an informer finds it;
- ``status``: the status KubeRay shows, computed from what was observed;
- ``checks``: what stops a spec from being built, and what is built without.

All of these are pure: no I/O, no clock (``now`` is passed in). ``controller`` is the shell:
it fills ``Observed`` from the shared informer caches and performs the plan with the executor.
"""

from reconciler.raycluster.build import Manifests, build, multi_host
from reconciler.raycluster.checks import spec_errors, spec_warnings
from reconciler.raycluster.observed import Lookups, Observed, lookups
from reconciler.raycluster.plan import plan
from reconciler.raycluster.status import HEAD_POD_READY, PROVISIONED, compute_status

__all__ = [
    "HEAD_POD_READY",
    "PROVISIONED",
    "Lookups",
    "Manifests",
    "Observed",
    "build",
    "compute_status",
    "lookups",
    "multi_host",
    "plan",
    "spec_errors",
    "spec_warnings",
]
