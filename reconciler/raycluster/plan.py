"""One reconcile of one RayCluster: from what was observed, the writes that converge it.

``plan(observed, now)`` is pure. It returns the actions in the order they must run; the executor
stops at the first failure and the next reconcile starts again from what the API says.

What it keeps (KubeRay's RayCluster controller, ``raycluster_controller.go`` ``reconcilePods``):

1. the autoscaler's ServiceAccount, Role and RoleBinding, then the head Service (and the headless
   one of multi-host groups) exist: created when missing, never updated (KubeRay neither);
2. ``suspend: true`` deletes every Pod and creates none;
3. the head: a head that can never run again (``Failed``, ``Succeeded``, or its Ray container
   exited under ``restartPolicy: Never``) is deleted, and a new one is created once no head Pod is
   left; of two heads (a stale cache), the older stays;
4. each worker group: replaced Pods as for the head; then the Pods named in
   ``scaleStrategy.workersToDelete`` are deleted (the Ray autoscaler's protocol), and the list is
   cleared by one JSON patch whose ``test`` ops fail if it changed meanwhile; then the group is
   brought to ``replicas`` clamped into [``minReplicas``, ``maxReplicas``] times ``numOfHosts``
   Pods: missing ones created, extra ones deleted (the least advanced first) unless the in-tree
   autoscaler runs, which alone decides what to remove;
5. template changes never touch running Pods: only new Pods get the new template;
6. the status (``status.compute_status``) is written when it differs from the observed one.

Events: a Normal event for each kind of write, after it; Warning events about the spec (a replica
count outside its bounds, a spec that cannot be built, fields raysvc ignores) once per
generation: only in the reconcile that first observes a generation, which is also the one that
writes ``observedGeneration``. No state in memory is needed for that.

A RayCluster that is being deleted, or whose ``spec.managedBy`` names another controller, gets an
empty plan. A spec that cannot be built (``checks.spec_errors``) gets its Warning event and its
status, and nothing is created or deleted.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal

from reconciler.actions import (
    Create,
    Delete,
    JsonPatch,
    Plan,
    RecordEvent,
    Ref,
    WriteStatus,
    ref_of,
)
from reconciler.raycluster import checks, names, rbac, replicas
from reconciler.raycluster.build import Manifests, build, multi_host
from reconciler.raycluster.observed import Observed
from reconciler.raycluster.status import compute_status

__all__ = ["plan"]

_KUBERAY_MANAGER: Final = "ray.io/kuberay-operator"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_mapping(obj.get("metadata")).get("name", ""))


def _labels(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(_mapping(pod.get("metadata")).get("labels"))


def _pods(count: int, kind: str = "") -> str:
    return f"{count} {kind}Pod{'' if count == 1 else 's'}"


class _Writer:
    """Collects the actions of one plan, with the cluster they are about."""

    def __init__(self, cluster: Mapping[str, Any]) -> None:
        self.regarding = ref_of(cluster, precondition=True)
        self.namespace = str(_mapping(cluster.get("metadata")).get("namespace", ""))
        self.actions: list[Any] = []

    def event(self, kind: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.actions.append(RecordEvent(self.regarding, kind, reason, message))

    def create(self, manifest: Mapping[str, Any], why: str) -> None:
        self.actions.append(Create(copy.deepcopy(dict(manifest)), why=why))

    def delete_pod(self, pod: Mapping[str, Any], why: str) -> None:
        self.actions.append(
            Delete(ref_of({"apiVersion": "v1", "kind": "Pod", **pod}, precondition=True), why=why)
        )


def _spec_events(writer: _Writer, cluster: Mapping[str, Any], errors: Sequence[Any]) -> None:
    """Warnings about the spec; called only when a generation is first observed."""
    if errors:
        writer.event(
            "Warning",
            "InvalidRayClusterSpec",
            "nothing is created for this RayCluster: " + "; ".join(str(e) for e in errors),
        )
    for warning in checks.spec_warnings(cluster):
        writer.event("Warning", "UnsupportedRayClusterSpec", str(warning))
    groups = _mapping(cluster.get("spec")).get("workerGroupSpecs") or ()
    for index, group in enumerate(groups):
        clamp = replicas.clamp(_mapping(group))
        if clamp is not None:
            writer.event(
                "Warning",
                "ReplicasOutOfBounds",
                f"spec.workerGroupSpecs[{index}].replicas: {clamp.message}",
            )


class _Manifests:
    """The cluster's manifests, built on first use: a cluster at rest never builds them."""

    def __init__(self, cluster: Mapping[str, Any]) -> None:
        self._cluster = cluster
        self._built: Manifests | None = None

    def get(self) -> Manifests:
        if self._built is None:
            self._built = build(self._cluster)
        return self._built


def _supporting_objects(writer: _Writer, observed: Observed, manifests: _Manifests) -> None:
    cluster = observed.cluster
    autoscaling = _mapping(cluster.get("spec")).get("enableInTreeAutoscaling") is True
    wanted: tuple[tuple[bool, object, Callable[[Manifests], Mapping[str, Any] | None], str], ...]
    wanted = (
        (
            autoscaling and not rbac.user_service_account(cluster),
            observed.service_account,
            lambda m: m.service_account,
            "CreatedServiceAccount",
        ),
        (autoscaling, observed.role, lambda m: m.role, "CreatedRole"),
        (autoscaling, observed.role_binding, lambda m: m.role_binding, "CreatedRoleBinding"),
        (True, observed.head_service, lambda m: m.head_service, "CreatedService"),
        (
            multi_host(cluster),
            observed.headless_service,
            lambda m: m.headless_service,
            "CreatedService",
        ),
    )
    for needed, existing, pick, reason in wanted:
        manifest = pick(manifests.get()) if needed and existing is None else None
        if manifest is None:
            continue
        kind = str(manifest["kind"])
        writer.create(manifest, why=f"the cluster's {kind}")
        writer.event("Normal", reason, f"Created {kind} {writer.namespace}/{_name(manifest)}")


def _delete_all(writer: _Writer, pods: Sequence[Mapping[str, Any]], reason: str) -> None:
    active = [p for p in pods if replicas.is_active(p)]
    for pod in active:
        writer.delete_pod(pod, why=reason)
    if active:
        writer.event("Normal", "DeletedPod", f"Deleted {_pods(len(active))}: {reason}")


def _head(writer: _Writer, pods: Sequence[Mapping[str, Any]], manifests: _Manifests) -> None:
    heads = sorted(pods, key=replicas.age_key)
    active = [p for p in heads if replicas.is_active(p)]
    healthy = []
    for pod in active:
        reason = replicas.replacement_reason(pod)
        if reason is None:
            healthy.append(pod)
        else:
            writer.delete_pod(pod, why=f"head Pod cannot run again: {reason}")
            writer.event(
                "Normal",
                "DeletedHeadPod",
                f"Deleted head Pod {writer.namespace}/{_name(pod)}: {reason}",
            )
    for extra in healthy[1:]:
        writer.delete_pod(extra, why="a second head Pod")
        writer.event(
            "Normal",
            "DeletedHeadPod",
            f"Deleted head Pod {writer.namespace}/{_name(extra)}: a cluster has one head",
        )
    if not heads:
        # Only once the old head is gone: two heads would both be behind the head Service.
        writer.create(manifests.get().head_pod, why="head Pod")
        writer.event("Normal", "CreatedHeadPod", "Created a head Pod")


def _group(
    writer: _Writer,
    group: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    manifest: Callable[[], Mapping[str, Any]],
    *,
    autoscaling: bool,
) -> None:
    group_name = str(group.get("groupName", ""))
    active = [p for p in pods if replicas.is_active(p)]
    if group.get("suspend") is True:
        _delete_all(writer, active, f"worker group {group_name} is suspended")
        return
    gone: set[str] = set()
    for pod in active:
        reason = replicas.replacement_reason(pod)
        if reason is not None:
            writer.delete_pod(pod, why=f"worker Pod cannot run again: {reason}")
            writer.event(
                "Normal",
                "DeletedWorkerPod",
                f"Deleted worker Pod {writer.namespace}/{_name(pod)}: {reason}",
            )
            gone.add(_name(pod))
    listed = set(_to_delete(group))
    for pod in active:
        if _name(pod) in listed and _name(pod) not in gone:
            writer.delete_pod(pod, why="named in scaleStrategy.workersToDelete")
            writer.event(
                "Normal",
                "DeletedWorkerPod",
                f"Deleted worker Pod {writer.namespace}/{_name(pod)}: named in workersToDelete",
            )
            gone.add(_name(pod))
    remaining = [p for p in active if _name(p) not in gone]
    missing = replicas.desired_workers(group) - len(remaining)
    for _ in range(missing):
        writer.create(manifest(), why=f"worker Pod of group {group_name}")
    if missing > 0:
        created = _pods(missing, "worker ")
        writer.event("Normal", "CreatedWorkerPod", f"Created {created} in group {group_name}")
    if missing < 0 and not autoscaling:
        extra = replicas.choose_removals(remaining, -missing)
        for pod in extra:
            writer.delete_pod(pod, why=f"group {group_name} has more Pods than replicas")
        writer.event(
            "Normal",
            "DeletedWorkerPod",
            f"Deleted {_pods(len(extra), 'worker ')} in group {group_name}: more than its replicas",
        )


def _to_delete(group: Mapping[str, Any]) -> list[str]:
    listed = _mapping(group.get("scaleStrategy")).get("workersToDelete")
    return [str(n) for n in listed] if isinstance(listed, list) else []


def _clear_workers_to_delete(writer: _Writer, cluster: Mapping[str, Any]) -> None:
    """One patch that empties every non-empty list, guarded by ``test`` ops on what was read."""
    ops: list[dict[str, Any]] = []
    groups = _mapping(cluster.get("spec")).get("workerGroupSpecs") or ()
    for index, group in enumerate(groups):
        group = _mapping(group)
        listed = _mapping(group.get("scaleStrategy")).get("workersToDelete")
        if not isinstance(listed, list) or not listed:
            continue
        base = f"/spec/workerGroupSpecs/{index}"
        path = f"{base}/scaleStrategy/workersToDelete"
        ops += [
            {"op": "test", "path": f"{base}/groupName", "value": group.get("groupName")},
            {"op": "test", "path": path, "value": list(listed)},
            {"op": "replace", "path": path, "value": []},
        ]
    if ops:
        meta = _mapping(cluster.get("metadata"))
        ref = Ref(
            api_version=str(cluster.get("apiVersion", "ray.io/v1")),
            kind="RayCluster",
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            uid=str(meta["uid"]) if meta.get("uid") else None,
        )
        writer.actions.append(JsonPatch(ref, ops, why="the listed workers are deleted"))


def _pod_actions(
    writer: _Writer, cluster: Mapping[str, Any], manifests: _Manifests, pods: Sequence[Any]
) -> None:
    spec = _mapping(cluster.get("spec"))
    if spec.get("suspend") is True:
        _delete_all(writer, pods, "the RayCluster is suspended")
        return
    heads = [p for p in pods if _labels(p).get(names.NODE_TYPE_LABEL) == "head"]
    _head(writer, heads, manifests)
    autoscaling = spec.get("enableInTreeAutoscaling") is True
    by_group: dict[str, list[Any]] = {}
    for pod in pods:
        labels = _labels(pod)
        if labels.get(names.NODE_TYPE_LABEL) == "worker":
            by_group.setdefault(str(labels.get(names.GROUP_LABEL)), []).append(pod)
    groups = [_mapping(g) for g in spec.get("workerGroupSpecs") or () if isinstance(g, Mapping)]
    for index, group in enumerate(groups):
        members = by_group.get(str(group.get("groupName", "")), [])

        def manifest(index: int = index) -> Mapping[str, Any]:
            return manifests.get().worker_pods[index][1]

        _group(writer, group, members, manifest, autoscaling=autoscaling)


def plan(observed: Observed, now: datetime) -> Plan:
    """The writes that bring ``observed.cluster`` to its spec; empty when it is there."""
    cluster = observed.cluster
    meta = _mapping(cluster.get("metadata"))
    spec = _mapping(cluster.get("spec"))
    if meta.get("deletionTimestamp"):
        return Plan()  # the garbage collector removes what it owns
    manager = spec.get("managedBy")
    if manager not in (None, "", _KUBERAY_MANAGER):
        return Plan()
    uid = str(meta.get("uid") or "")
    pods = [p for p in observed.pods if replicas.owned_by(p, uid)]
    writer = _Writer(cluster)
    errors = checks.spec_errors(cluster)
    if not errors:
        manifests = _Manifests(cluster)
        _supporting_objects(writer, observed, manifests)
        _pod_actions(writer, cluster, manifests, pods)
    status = compute_status(cluster, pods=pods, head_service=observed.head_service, now=now)
    previous = _mapping(cluster.get("status"))
    if previous.get("observedGeneration") != meta.get("generation"):
        _spec_events(writer, cluster, errors)
    if status != previous:
        ref = ref_of(cluster, precondition=True)
        version = meta.get("resourceVersion")
        if version:
            ref = Ref(ref.api_version, ref.kind, ref.namespace, ref.name, ref.uid, str(version))
        writer.actions.append(WriteStatus(ref, status))
    if not errors and spec.get("suspend") is not True:
        _clear_workers_to_delete(writer, cluster)
    return Plan(tuple(writer.actions))
