"""How the RayCluster controller keeps a cluster: ``plan(observed, now)`` as tables.

Each case starts from the seed sample's RayCluster, converged (its Pods running, its status
written) by ``World``, which plays the API server and the kubelet; then something happens (a
user edit, the autoscaler, a Pod dying) and the case states the writes the next plan makes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jsonpatch
import pytest

from reconciler.actions import Create, Delete, JsonPatch, Plan, RecordEvent, WriteStatus
from reconciler.raycluster import Observed, plan, replicas
from reconciler.rayservice.observe import head_view
from tests.raycluster_objects import (
    CLUSTER_NAME,
    CLUSTER_UID,
    Obj,
    World,
    created,
    failed,
    running,
    sample_cluster,
    terminating,
)

HEAD = f"{CLUSTER_NAME}-head-"
WORKER = f"{CLUSTER_NAME}-small-group-worker-"


def summary(actions: Plan) -> list[str]:
    """A plan in words: ``create Pod <generateName>``, ``delete Pod <name>``, ``event ...``."""
    out = []
    for action in actions.actions:
        if isinstance(action, Create):
            meta = action.obj["metadata"]
            out.append(f"create {action.obj['kind']} {meta.get('name') or meta['generateName']}")
        elif isinstance(action, Delete):
            out.append(f"delete {action.ref.kind} {action.ref.name}")
        elif isinstance(action, RecordEvent):
            out.append(f"event {action.type} {action.reason}")
        elif isinstance(action, WriteStatus):
            out.append("write status")
        elif isinstance(action, JsonPatch):
            out.append("patch RayCluster")
        else:
            raise AssertionError(action)
    return out


def converged(change: Callable[[Obj], object] | None = None) -> World:
    """The sample (optionally changed before its creation), converged: Pods up, status written."""
    cluster = sample_cluster()
    if change is not None:
        change(cluster["spec"])
    world = World(cluster)
    world.converge()
    world.tick()
    return world


def group(spec: Obj) -> Obj:
    first: Obj = spec["workerGroupSpecs"][0]
    return first


def status_of(actions: Plan) -> dict[str, Any]:
    written = [a for a in actions.actions if isinstance(a, WriteStatus)]
    assert len(written) == 1
    return dict(written[0].status)


# --- a new cluster, and a converged one ---------------------------------------------------------


def test_a_new_cluster_gets_its_head_service_head_and_workers_then_a_status() -> None:
    world = World(sample_cluster())
    actions = world.plan()
    assert summary(actions) == [
        f"create Service {CLUSTER_NAME}-head-svc",
        "event Normal CreatedService",
        f"create Pod {HEAD}",
        "event Normal CreatedHeadPod",
        f"create Pod {WORKER}",
        "event Normal CreatedWorkerPod",
        "write status",
    ]
    # Events name the cluster with its uid: kubectl describe finds events by it.
    events = [a for a in actions.actions if isinstance(a, RecordEvent)]
    assert {(e.regarding.kind, e.regarding.name, e.regarding.uid) for e in events} == {
        ("RayCluster", CLUSTER_NAME, CLUSTER_UID)
    }
    status = status_of(actions)
    assert "state" not in status
    assert status["desiredWorkerReplicas"] == 1
    assert "availableWorkerReplicas" not in status  # zero, left out as KubeRay's omitempty
    assert status["conditions"][0] == {
        "type": "HeadPodReady",
        "status": "False",
        "lastTransitionTime": "2026-01-01T00:01:00Z",
        "reason": "HeadPodNotFound",
        "message": "Head Pod not found",
    }


def test_a_new_cluster_converges_in_two_reconciles_and_then_plans_nothing() -> None:
    world = World(sample_cluster())
    assert world.converge() == 2  # create everything; then write the ready status
    idle = world.plan()
    assert idle == Plan()
    world.tick(3600)  # time passing changes nothing: no timestamp ticks
    assert world.plan() == Plan()


def test_the_converged_status_reads_as_kubectl_get_raycluster_shows_it() -> None:
    world = converged()
    status = world.cluster["status"]
    head = world.pods_of("head")[0]
    assert status["state"] == "ready"
    assert (status["desiredWorkerReplicas"], status["availableWorkerReplicas"]) == (1, 1)
    assert (status["desiredCPU"], status["desiredMemory"]) == ("2500m", "4Gi")
    assert (status["desiredGPU"], status["desiredTPU"]) == ("0", "0")
    assert (status["minWorkerReplicas"], status["maxWorkerReplicas"]) == (1, 5)
    assert status["head"] == {
        "podIP": head["status"]["podIP"],
        "serviceIP": head["status"]["podIP"],  # headless: the head Pod's IP, as KubeRay
        "podName": head["metadata"]["name"],
        "serviceName": f"{CLUSTER_NAME}-head-svc",
    }
    assert status["endpoints"] == {
        "client": "10001",
        "dashboard": "8265",
        "gcs-server": "6379",
        "metrics": "8080",
        "serve": "8000",
    }
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("HeadPodReady", "True", "HeadPodRunningAndReady"),
        ("RayClusterProvisioned", "True", "AllPodRunningAndReadyFirstTime"),
    ]
    assert status["observedGeneration"] == 1


# --- what happens next, as a table --------------------------------------------------------------


def edit(change: Callable[[Obj], object]) -> Callable[[World], None]:
    return lambda world: world.edit_spec(change)


def lose_worker(world: World) -> None:
    del world.pods[world.pods_of("worker")[0]["metadata"]["name"]]


def fail_worker(world: World) -> None:
    name = world.pods_of("worker")[0]["metadata"]["name"]
    world.pods[name] = failed(world.pods[name])


def fail_head(world: World) -> None:
    name = world.pods_of("head")[0]["metadata"]["name"]
    world.pods[name] = failed(world.pods[name])


def ray_exits_under_never(world: World) -> None:
    name = world.pods_of("worker")[0]["metadata"]["name"]
    pod = world.pods[name]
    pod["spec"]["restartPolicy"] = "Never"
    pod["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 1}}


def second_head(world: World) -> None:
    head = world.pods_of("head")[0]
    twin = copy.deepcopy(head)
    twin["metadata"].update(
        name=f"{HEAD}zzzzz", uid="uid-twin", creationTimestamp="2026-01-01T00:09:00Z"
    )
    world.pods[twin["metadata"]["name"]] = twin


def foreign_pod(world: World) -> None:
    stray = copy.deepcopy(world.pods_of("worker")[0])
    stray["metadata"].update(name="stray", uid="uid-stray")
    stray["metadata"]["ownerReferences"][0]["uid"] = "another-cluster"
    world.pods["stray"] = stray


def image_change(spec: Obj) -> None:
    for template in (spec["headGroupSpec"]["template"], group(spec)["template"]):
        template["spec"]["containers"][0]["image"] = "rayproject/ray:2.53.0"


@pytest.mark.parametrize(
    ("happening", "expected"),
    [
        pytest.param(lambda w: None, [], id="nothing happens: nothing is written"),
        pytest.param(
            edit(lambda s: group(s).update(replicas=3)),
            [
                f"create Pod {WORKER}",
                f"create Pod {WORKER}",
                "event Normal CreatedWorkerPod",
                "write status",
            ],
            id="scale up",
        ),
        pytest.param(
            edit(lambda s: group(s).update(replicas=8)),
            [f"create Pod {WORKER}"] * 4
            + [
                "event Normal CreatedWorkerPod",
                "event Warning ReplicasOutOfBounds",
                "write status",
            ],
            id="replicas above maxReplicas run maxReplicas, with a warning",
        ),
        pytest.param(
            edit(lambda s: group(s).update(minReplicas=3, replicas=2)),
            [f"create Pod {WORKER}"] * 2
            + [
                "event Normal CreatedWorkerPod",
                "event Warning ReplicasOutOfBounds",
                "write status",
            ],
            id="replicas below minReplicas run minReplicas, with a warning",
        ),
        pytest.param(
            edit(lambda s: group(s).update(numOfHosts=2)),
            [
                f"create Service {CLUSTER_NAME}-headless",
                "event Normal CreatedService",
                f"create Pod {WORKER}",
                "event Normal CreatedWorkerPod",
                "write status",
            ],
            id="numOfHosts multiplies the Pods of each replica",
        ),
        pytest.param(
            lose_worker,
            [f"create Pod {WORKER}", "event Normal CreatedWorkerPod", "write status"],
            id="a deleted worker is recreated",
        ),
        pytest.param(
            fail_worker,
            [
                f"delete Pod {WORKER}00001",
                "event Normal DeletedWorkerPod",
                f"create Pod {WORKER}",
                "event Normal CreatedWorkerPod",
                "write status",
            ],
            id="a failed worker is deleted and replaced",
        ),
        pytest.param(
            ray_exits_under_never,
            [
                f"delete Pod {WORKER}00001",
                "event Normal DeletedWorkerPod",
                f"create Pod {WORKER}",
                "event Normal CreatedWorkerPod",
            ],
            id="a worker whose Ray exited under restartPolicy Never is replaced",
        ),
        pytest.param(
            fail_head,
            [f"delete Pod {HEAD}00000", "event Normal DeletedHeadPod", "write status"],
            id="a failed head is deleted; its successor waits until it is gone",
        ),
        pytest.param(
            lambda w: w.pods.update(
                {p["metadata"]["name"]: terminating(p) for p in w.pods_of("head")}
            ),
            ["write status"],
            id="no second head while the old one terminates",
        ),
        pytest.param(
            second_head,
            [f"delete Pod {HEAD}zzzzz", "event Normal DeletedHeadPod"],
            id="of two heads the younger is deleted",
        ),
        pytest.param(
            foreign_pod,
            [],
            id="a Pod with the cluster's label but another owner is left alone",
        ),
        pytest.param(
            edit(image_change),
            ["write status"],
            id="a template change does not roll running Pods",
        ),
        pytest.param(
            edit(lambda s: s.update(suspend=True)),
            [
                f"delete Pod {HEAD}00000",
                f"delete Pod {WORKER}00001",
                "event Normal DeletedPod",
                "write status",
            ],
            id="suspend deletes every Pod",
        ),
        pytest.param(
            edit(lambda s: group(s).update(suspend=True)),
            [f"delete Pod {WORKER}00001", "event Normal DeletedPod", "write status"],
            id="a suspended group loses its Pods",
        ),
        pytest.param(
            lambda w: w.cluster["metadata"].update(deletionTimestamp="2026-01-01T00:09:00Z"),
            [],
            id="a cluster being deleted is left to the garbage collector",
        ),
        pytest.param(
            edit(lambda s: s.update(managedBy="kueue.x-k8s.io/multikueue", suspend=True)),
            [],
            id="a cluster another controller manages is left alone",
        ),
    ],
)
def test_what_the_next_plan_writes(happening: Callable[[World], None], expected: list[str]) -> None:
    world = converged()
    happening(world)
    assert summary(world.plan()) == expected


def test_scaling_down_removes_the_least_advanced_workers_first() -> None:
    world = converged(lambda s: group(s).update(replicas=4))
    workers = [p["metadata"]["name"] for p in world.pods_of("worker")]
    world.pods[workers[1]]["status"] = {"phase": "Pending"}
    world.pods[workers[3]] = running(world.pods[workers[3]], ready=False)
    world.edit_spec(lambda s: group(s).update(replicas=2))
    assert summary(world.plan()) == [
        f"delete Pod {workers[1]}",
        f"delete Pod {workers[3]}",
        "event Normal DeletedWorkerPod",
        "write status",
    ]


def test_scaling_down_among_equals_removes_the_newest() -> None:
    world = converged(lambda s: group(s).update(replicas=3))
    workers = world.pods_of("worker")
    for index, pod in enumerate(workers):
        pod["metadata"]["creationTimestamp"] = f"2026-01-01T00:0{index}:00Z"
    world.edit_spec(lambda s: group(s).update(replicas=1))
    deleted = [a.ref.name for a in world.plan().actions if isinstance(a, Delete)]
    assert deleted == [workers[2]["metadata"]["name"], workers[1]["metadata"]["name"]]


def test_with_the_autoscaler_on_only_the_autoscaler_removes_workers() -> None:
    world = converged(
        lambda s: (s.update(enableInTreeAutoscaling=True), group(s).update(replicas=3))
    )
    world.edit_spec(lambda s: group(s).update(replicas=1))
    assert summary(world.plan()) == ["write status"]


def test_a_new_autoscaling_cluster_gets_its_account_role_and_binding_before_its_head() -> None:
    world = World(sample_cluster())
    world.edit_spec(lambda s: s.update(enableInTreeAutoscaling=True))
    assert summary(world.plan())[:8] == [
        f"create ServiceAccount {CLUSTER_NAME}",
        "event Normal CreatedServiceAccount",
        f"create Role {CLUSTER_NAME}",
        "event Normal CreatedRole",
        f"create RoleBinding {CLUSTER_NAME}",
        "event Normal CreatedRoleBinding",
        f"create Service {CLUSTER_NAME}-head-svc",
        "event Normal CreatedService",
    ]
    world.converge()
    assert world.plan() == Plan()


# --- workersToDelete: the Ray autoscaler's protocol ---------------------------------------------


def test_workers_to_delete_are_deleted_then_the_list_is_cleared_in_one_guarded_patch() -> None:
    world = converged(lambda s: group(s).update(replicas=3))
    doomed = world.pods_of("worker")[1]["metadata"]["name"]
    # The autoscaler's scale-down: one fewer replica, and which Pod to remove.
    world.edit_spec(
        lambda s: group(s).update(
            replicas=2, scaleStrategy={"workersToDelete": [doomed, "gone-already"]}
        )
    )
    actions = world.plan()
    assert summary(actions) == [
        f"delete Pod {doomed}",
        "event Normal DeletedWorkerPod",
        "write status",
        "patch RayCluster",
    ]
    patch = actions.actions[-1]
    assert patch.ops == [
        {"op": "test", "path": "/spec/workerGroupSpecs/0/groupName", "value": "small-group"},
        {
            "op": "test",
            "path": "/spec/workerGroupSpecs/0/scaleStrategy/workersToDelete",
            "value": [doomed, "gone-already"],
        },
        {
            "op": "replace",
            "path": "/spec/workerGroupSpecs/0/scaleStrategy/workersToDelete",
            "value": [],
        },
    ]
    world.apply(actions)
    assert group(world.cluster["spec"])["scaleStrategy"]["workersToDelete"] == []
    assert doomed not in world.pods
    assert len(world.pods_of("worker")) == 2
    world.converge()  # the patch was a new generation: one more status write, then quiet
    assert world.plan() == Plan()


def test_a_listed_worker_is_replaced_when_replicas_did_not_drop() -> None:
    world = converged()
    doomed = world.pods_of("worker")[0]["metadata"]["name"]
    world.edit_spec(lambda s: group(s).update(scaleStrategy={"workersToDelete": [doomed]}))
    assert summary(world.plan()) == [
        f"delete Pod {doomed}",
        "event Normal DeletedWorkerPod",
        f"create Pod {WORKER}",
        "event Normal CreatedWorkerPod",
        "write status",
        "patch RayCluster",
    ]


def test_the_clearing_patch_fails_if_the_list_changed_since_it_was_read() -> None:
    world = converged(lambda s: group(s).update(replicas=2))
    first, second = (p["metadata"]["name"] for p in world.pods_of("worker"))
    world.edit_spec(
        lambda s: group(s).update(replicas=1, scaleStrategy={"workersToDelete": [first]})
    )
    patch = world.plan().actions[-1]
    assert isinstance(patch, JsonPatch)
    # Meanwhile the autoscaler lists another worker: the stale patch must not erase it.
    world.edit_spec(lambda s: group(s)["scaleStrategy"]["workersToDelete"].append(second))
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(world.cluster, list(patch.ops))
    # ... nor apply to another group that moved into its index.
    world.edit_spec(
        lambda s: s["workerGroupSpecs"].insert(0, copy.deepcopy(group(s)) | {"groupName": "new"})
    )
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(world.cluster, list(patch.ops))


# --- warnings once per generation ---------------------------------------------------------------


def test_a_clamped_replica_count_is_warned_about_once_per_generation() -> None:
    world = converged()
    world.edit_spec(lambda s: group(s).update(replicas=9))
    first = world.plan()
    warnings = [a for a in first.actions if isinstance(a, RecordEvent) and a.type == "Warning"]
    assert [w.message for w in warnings] == [
        "spec.workerGroupSpecs[0].replicas: 9 is more than maxReplicas 5; the group runs 5 replicas"
    ]
    world.apply(first)
    world.kubelet()
    for _ in range(3):  # later reconciles of the same generation: no repeat
        later = world.plan()
        assert not [a for a in later.actions if isinstance(a, RecordEvent) and a.type == "Warning"]
        world.apply(later)
    assert world.plan() == Plan()
    world.edit_spec(lambda s: group(s).update(replicas=10))  # a new generation, still clamped
    assert "event Warning ReplicasOutOfBounds" in summary(world.plan())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            lambda s: s["headGroupSpec"]["template"]["spec"].update(containers=[]),
            "spec.headGroupSpec.template.spec.containers: Required value: the Ray container comes first",
            id="a head template without a container",
        ),
        pytest.param(
            lambda s: s["workerGroupSpecs"].append(copy.deepcopy(s["workerGroupSpecs"][0])),
            'spec.workerGroupSpecs[1].groupName: Duplicate value: "small-group"',
            id="two groups of one name",
        ),
        pytest.param(
            lambda s: group(s)["template"]["spec"]["containers"][0]["resources"]["limits"].update(
                cpu="lots"
            ),
            'spec.workerGroupSpecs[0].template.spec.containers[0].resources.limits[cpu]: Invalid value: "lots"',
            id="a quantity the API server refuses",
        ),
        pytest.param(
            lambda s: s.update(authOptions={"mode": "token"}),
            'spec.authOptions.mode: Unsupported value: "token"',
            id="token authentication raysvc cannot set up",
        ),
    ],
)
def test_a_spec_that_cannot_be_built_creates_nothing_and_says_why_once(
    change: Callable[[Obj], object], message: str
) -> None:
    cluster = sample_cluster()
    change(cluster["spec"])
    world = World(cluster)
    actions = world.plan()
    assert summary(actions) == ["event Warning InvalidRayClusterSpec", "write status"]
    event = actions.actions[0]
    assert isinstance(event, RecordEvent)
    assert message in event.message
    world.apply(actions)
    assert world.plan() == Plan()


def test_fields_raysvc_does_not_build_are_warned_about_and_the_rest_is_built() -> None:
    cluster = sample_cluster()
    cluster["spec"]["headGroupSpec"]["enableIngress"] = True
    world = World(cluster)
    words = summary(world.plan())
    assert "event Warning UnsupportedRayClusterSpec" in words
    assert f"create Pod {HEAD}" in words


# --- suspend and resume -------------------------------------------------------------------------


def test_a_suspended_cluster_ends_with_no_pods_and_state_suspended_then_resumes() -> None:
    world = converged()
    world.edit_spec(lambda s: s.update(suspend=True))
    world.converge()
    assert world.pods == {}
    status = world.cluster["status"]
    assert status["state"] == "suspended"
    assert status["conditions"][1]["status"] == "False"
    assert status["conditions"][1]["message"] == "RayCluster has been suspended"
    assert world.plan() == Plan()
    world.edit_spec(lambda s: s.update(suspend=False))
    assert summary(world.plan())[2:4] == [f"create Pod {WORKER}", "event Normal CreatedWorkerPod"]
    world.converge()
    assert world.cluster["status"]["state"] == "ready"


# --- status details -----------------------------------------------------------------------------


def test_a_condition_moves_its_transition_time_only_when_its_status_changes() -> None:
    world = converged()
    since = world.cluster["status"]["conditions"][1]["lastTransitionTime"]
    head = world.pods_of("head")[0]["metadata"]["name"]
    world.tick()
    world.pods[head] = running(world.pods[head], ready=False)
    world.pods[head]["status"]["containerStatuses"][0]["state"] = {
        "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}
    }
    status = status_of(world.plan())
    ready, provisioned = status["conditions"]
    assert ready == {
        "type": "HeadPodReady",
        "status": "False",
        "lastTransitionTime": "2026-01-01T00:03:00Z",
        "reason": "CrashLoopBackOff",
        "message": "ray-head: back-off 5m0s",
    }
    assert provisioned["status"] == "True"  # once provisioned, always provisioned
    assert provisioned["lastTransitionTime"] == since
    assert "state" not in status  # the head is not Ready, so the cluster is not ready


def test_the_head_service_ip_is_its_cluster_ip_when_it_is_not_headless() -> None:
    world = converged(lambda s: s["headGroupSpec"].update(serviceType="NodePort"))
    service = world.objects[("Service", f"{CLUSTER_NAME}-head-svc")]
    service["spec"]["clusterIP"] = "10.96.0.20"
    for index, port in enumerate(service["spec"]["ports"]):
        port["nodePort"] = 30000 + index
    status = status_of(world.plan())
    assert status["head"]["serviceIP"] == "10.96.0.20"
    assert status["endpoints"]["client"] == "30000"


def test_the_status_write_is_pinned_to_the_version_it_was_computed_from() -> None:
    world = World(sample_cluster())
    written = [a for a in world.plan().actions if isinstance(a, WriteStatus)]
    assert written[0].ref.uid == CLUSTER_UID
    assert written[0].ref.resource_version == world.cluster["metadata"]["resourceVersion"]


def test_pods_being_deleted_do_not_count_as_available() -> None:
    world = converged()
    worker = world.pods_of("worker")[0]["metadata"]["name"]
    world.pods[worker] = terminating(world.pods[worker])
    actions = world.plan()
    assert f"create Pod {WORKER}" in summary(actions)
    assert "availableWorkerReplicas" not in status_of(actions)


def test_pods_listed_without_kind_are_deleted_as_pods_and_the_input_is_untouched() -> None:
    world = converged()
    fail_worker(world)
    observed = world.observed()
    # Items of a PodList carry no apiVersion or kind.
    pods = tuple(
        {k: v for k, v in p.items() if k not in ("apiVersion", "kind")} for p in observed.pods
    )
    bare = Observed(cluster=observed.cluster, pods=pods, head_service=observed.head_service)
    before = copy.deepcopy(bare)
    actions = plan(bare, datetime(2026, 1, 1, 1, 0, tzinfo=UTC))
    assert bare == before
    (delete,) = [a for a in actions.actions if isinstance(a, Delete)]
    assert (delete.ref.api_version, delete.ref.kind, delete.ref.namespace) == (
        "v1",
        "Pod",
        "default",
    )
    assert delete.ref.uid == f"uid-{delete.ref.name}"


def test_a_created_pod_manifest_is_a_copy_the_executor_may_keep() -> None:
    world = World(sample_cluster())
    creates = [a for a in world.plan().actions if isinstance(a, Create)]
    pods = [a.obj for a in creates if a.obj["kind"] == "Pod"]
    template = copy.deepcopy(world.cluster["spec"])
    again = [
        a.obj for a in world.plan().actions if isinstance(a, Create) and a.obj["kind"] == "Pod"
    ]
    for pod in pods:  # what the executor may do to a manifest it was handed
        pod["spec"]["containers"][0]["image"] = "changed"
        pod["metadata"]["labels"]["changed"] = "yes"
    assert world.cluster["spec"] == template
    assert all(p["spec"]["containers"][0]["image"] != "changed" for p in again)
    assert all("changed" not in p["metadata"]["labels"] for p in again)
    named = created(dict(pods[1]))
    assert named["metadata"]["name"].startswith(WORKER)


def test_the_rayservice_side_talks_to_the_head_this_controller_keeps() -> None:
    """With two heads (one about to be deleted as the second), both controllers pick the same."""

    def head(name: str, created: str, deleting: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": name,
            "creationTimestamp": created,
            "labels": {"ray.io/node-type": "head"},
        }
        if deleting:
            meta["deletionTimestamp"] = "2026-01-01T00:00:09Z"
        return {"metadata": meta, "status": {"phase": "Running"}}

    pods = [
        head("young", "2026-01-01T00:00:05Z"),
        head("old", "2026-01-01T00:00:01Z"),
        head("oldest-going", "2026-01-01T00:00:00Z", deleting=True),
    ]
    kept = replicas.head_pod(pods)
    assert kept is not None
    assert kept["metadata"]["name"] == "old"  # the oldest not being deleted; "young" goes
    seen = head_view(list(pods))
    assert seen is not None
    assert seen.name == "old"
