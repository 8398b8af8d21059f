"""Objects for the RayCluster controller's tests: the sample as a RayCluster, and its Pods.

``sample_cluster()`` is the seed sample's ``rayClusterConfig`` as the RayService controller would
create it (``rayservice-sample-raycluster-abcde`` in ``default``, labelled as RayService-made),
as the API server returns it. The Pod helpers play the API server and the kubelet: they give a
built manifest a name, a uid and a status, so a test can say "the head is running and ready".
``World`` does the same for whole plans: it performs their actions as the API server would.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonpatch

from reconciler.actions import Create, Delete, JsonPatch, Plan, RecordEvent, WriteStatus
from reconciler.raycluster import Observed, lookups, plan
from tests.builders import sample

Obj = dict[str, Any]

CLUSTER_NAME = "rayservice-sample-raycluster-abcde"
CLUSTER_UID = "6f1c8a52-0b7e-4c35-9a57-3f0d1e2a4b6c"
_SUFFIXES = itertools.count()


def sample_cluster(*, generation: int = 1, observed: bool = False) -> Obj:
    """The sample's RayCluster; with ``observed``, its status already records ``generation``."""
    spec = copy.deepcopy(sample()["spec"]["rayClusterConfig"])
    for group in spec.get("workerGroupSpecs", ()):
        group.setdefault("numOfHosts", 1)  # the CRD's default, applied by the API server
    cluster: Obj = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {
            "name": CLUSTER_NAME,
            "namespace": "default",
            "uid": CLUSTER_UID,
            "generation": generation,
            "resourceVersion": "100",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {
                "ray.io/originated-from-cr-name": "rayservice-sample",
                "ray.io/originated-from-crd": "RayService",
            },
        },
        "spec": spec,
    }
    if observed:
        cluster["status"] = {"observedGeneration": generation}
    return cluster


def created(manifest: Obj, *, name: str | None = None, at: str = "2026-01-01T00:00:10Z") -> Obj:
    """``manifest`` as the API server stores it: named from generateName, with a uid."""
    obj = copy.deepcopy(manifest)
    meta = obj["metadata"]
    if name is None:
        name = f"{meta.pop('generateName')}{next(_SUFFIXES):05d}"
    else:
        meta.pop("generateName", None)
    meta["name"] = name
    meta["uid"] = f"uid-{name}"
    meta["creationTimestamp"] = at
    meta["resourceVersion"] = "1"
    return obj


def running(pod: Obj, *, ready: bool = True, ip: str = "10.0.0.1") -> Obj:
    """``pod`` as the kubelet reports it once started: Running, Ready or not, with an IP."""
    pod = copy.deepcopy(pod)
    pod.setdefault("spec", {})["nodeName"] = "node-1"
    pod["status"] = {
        "phase": "Running",
        "podIP": ip,
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                **({} if ready else {"reason": "ContainersNotReady"}),
            },
        ],
        "containerStatuses": [
            {
                "name": pod["spec"]["containers"][0]["name"],
                "ready": ready,
                "state": {"running": {"startedAt": "2026-01-01T00:00:20Z"}},
            }
        ],
    }
    return pod


def pending(pod: Obj) -> Obj:
    """``pod`` waiting to be scheduled."""
    pod = copy.deepcopy(pod)
    pod["status"] = {"phase": "Pending"}
    return pod


def failed(pod: Obj) -> Obj:
    """``pod`` after its containers exited and it will not restart."""
    pod = copy.deepcopy(pod)
    pod["status"] = {"phase": "Failed", "reason": "Error"}
    return pod


def terminating(pod: Obj) -> Obj:
    """``pod`` after a DELETE, while it shuts down."""
    pod = copy.deepcopy(pod)
    pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:05:00Z"
    return pod


def head_service(manifest: Obj) -> Obj:
    """The head Service as the API server stores it (targetPort defaulted to port)."""
    service = created(manifest, name=manifest["metadata"]["name"])
    for port in service["spec"]["ports"]:
        port["targetPort"] = port["port"]
        port["protocol"] = "TCP"
    return service


class World:
    """Plays the API server, and the kubelet when asked, for one RayCluster's plans.

    ``apply`` performs a plan's actions as the API server would (names from generateName, uid
    and resourceVersion preconditions checked, JSON patches applied with their ``test`` ops);
    ``kubelet`` starts every Pod. Nothing here decides anything the controller should.
    """

    def __init__(self, cluster: Obj) -> None:
        self.cluster = cluster
        self.pods: dict[str, Obj] = {}
        self.objects: dict[tuple[str, str], Obj] = {}
        self.events: list[RecordEvent] = []
        self.now = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
        self._serial = itertools.count()

    def observed(self) -> Observed:
        where = lookups(self.cluster)
        return Observed(
            cluster=copy.deepcopy(self.cluster),
            pods=tuple(
                copy.deepcopy(p)
                for p in self.pods.values()
                if where.pod_selector.items() <= p["metadata"]["labels"].items()
            ),
            head_service=self.objects.get(("Service", where.head_service)),
            headless_service=self.objects.get(("Service", where.headless_service)),
            service_account=self.objects.get(("ServiceAccount", where.service_account)),
            role=self.objects.get(("Role", where.role)),
            role_binding=self.objects.get(("RoleBinding", where.role_binding)),
        )

    def plan(self) -> Plan:
        return plan(self.observed(), self.now)

    def tick(self, seconds: int = 60) -> None:
        self.now += timedelta(seconds=seconds)

    def _bump(self, *, spec: bool) -> None:
        meta = self.cluster["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        if spec:
            meta["generation"] += 1

    def edit_spec(self, change: Callable[[Obj], object]) -> None:
        """A user (or the autoscaler) changes the spec: a new generation."""
        change(self.cluster["spec"])
        self._bump(spec=True)

    def apply(self, actions: Plan) -> None:
        for action in actions.actions:
            if isinstance(action, Create):
                self._create(dict(action.obj))
            elif isinstance(action, Delete):
                assert action.ref.kind == "Pod", action
                pod = self.pods.pop(action.ref.name)
                assert action.ref.uid == pod["metadata"]["uid"]
            elif isinstance(action, WriteStatus):
                assert action.ref.uid == self.cluster["metadata"]["uid"]
                assert action.ref.resource_version == self.cluster["metadata"]["resourceVersion"]
                self.cluster["status"] = copy.deepcopy(dict(action.status))
                self._bump(spec=False)
            elif isinstance(action, JsonPatch):
                self.cluster = jsonpatch.apply_patch(self.cluster, list(action.ops))
                self._bump(spec=True)
            elif isinstance(action, RecordEvent):
                self.events.append(action)
            else:
                raise AssertionError(f"unexpected action {action!r}")

    def _create(self, manifest: Obj) -> None:
        kind = manifest["kind"]
        if kind == "Pod":
            prefix = manifest["metadata"]["generateName"]
            pod = pending(
                created(manifest, name=f"{prefix}{next(self._serial):05d}", at=self._stamp())
            )
            self.pods[pod["metadata"]["name"]] = pod
            return
        name = manifest["metadata"]["name"]
        assert (kind, name) not in self.objects, f"{kind} {name} created twice"
        stored = head_service(manifest) if kind == "Service" else created(manifest, name=name)
        self.objects[(kind, name)] = stored

    def _stamp(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def kubelet(self, *, ready: bool = True) -> None:
        """Start every Pod that is not running yet."""
        for index, (name, pod) in enumerate(sorted(self.pods.items())):
            if pod.get("status", {}).get("phase") != "Running":
                self.pods[name] = running(pod, ready=ready, ip=f"10.0.0.{index + 10}")

    def converge(self, *, rounds: int = 10) -> int:
        """Reconcile, start Pods, repeat until a plan is empty; returns the plans applied."""
        for applied in range(rounds):
            actions = self.plan()
            if not actions.actions:
                return applied
            self.apply(actions)
            self.kubelet()
        raise AssertionError(f"no convergence in {rounds} reconciles")

    def pods_of(self, node_type: str) -> list[Obj]:
        return [
            p
            for _, p in sorted(self.pods.items())
            if p["metadata"]["labels"]["ray.io/node-type"] == node_type
        ]
