"""The RayService controller's decisions as tables: one observed world in, the actions out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from rayservice import evaluate
from reconciler.actions import Create, Delete, JsonPatch, MergePatch, Plan, RecordEvent, WriteStatus
from reconciler.dashboard import AppStatus, DeploymentStatus, ServeStatus
from reconciler.rayservice import names
from reconciler.rayservice.goal import goal_of
from reconciler.rayservice.observed import ClusterView, Head, Observed, PlanSettings
from reconciler.rayservice.plan import SubmitServeConfig, plan
from reconciler.times import rfc3339
from tests.builders import put, sample

NOW = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC)
SETTINGS = PlanSettings()
RUNNING = ServeStatus({"fruit_app": AppStatus("RUNNING"), "math_app": AppStatus("RUNNING")})
DEPLOYING = ServeStatus({"fruit_app": AppStatus("DEPLOYING"), "math_app": AppStatus("RUNNING")})


def rayservice(**fields: Any) -> dict[str, Any]:
    """The sample as stored: defaulted and annotated by the webhook, with an identity."""
    obj = sample()
    for path, value in fields.items():
        put(obj, path, value)
    mutated = dict(evaluate(obj).mutated)
    mutated["metadata"] = {
        **mutated["metadata"],
        "namespace": "default",
        "uid": "rs-uid",
        "generation": 1,
        "resourceVersion": str(abs(hash(repr(fields))) % 10**9),
        "finalizers": [names.FINALIZER],
    }
    return mutated


def cluster(
    name: str,
    rs: Mapping[str, Any],
    *,
    purpose: str = "create",
    applied: str | None = "goal",
    built: str | None = None,
    delete_after: dt.datetime | None = None,
    created: dt.datetime = NOW - dt.timedelta(minutes=5),
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    goal = goal_of(rs)
    notes = {names.BUILT_CLUSTER_HASH: built or goal.cluster_hash, names.PURPOSE: purpose}
    if applied is not None:
        notes[names.APPLIED_SERVE_HASH] = goal.serve_hash if applied == "goal" else applied
    if delete_after is not None:
        notes[names.DELETE_AFTER] = rfc3339(delete_after)
    notes.update(annotations or {})
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"{name}-uid",
            "annotations": notes,
            "creationTimestamp": rfc3339(created),
        },
        "spec": dict(goal.cluster_spec),
    }


def view(
    obj: dict[str, Any],
    serve: ServeStatus | None = RUNNING,
    *,
    ready: bool = True,
    proxy: bool | None = True,
    label: str | None = "true",
    error: str | None = None,
) -> ClusterView:
    head = Head(f"{obj['metadata']['name']}-head-x", "10.0.0.5", ready, label)
    return ClusterView(obj, head, serve if ready else None, error, proxy if ready else None)


def services(rs: Mapping[str, Any], cluster_obj: Mapping[str, Any]) -> dict[str, Any]:
    from reconciler.rayservice import build

    out = {}
    for svc in (build.head_service(rs, cluster_obj), build.serve_service(rs, cluster_obj)):
        out[svc["metadata"]["name"]] = svc
    return out


def converge(o: Observed, *, at: dt.datetime = NOW) -> Observed:
    """The same world with the status the plan wants written (as if it had been written)."""
    decided = plan(o, at, SETTINGS)
    for action in decided.actions:
        if isinstance(action, WriteStatus):
            return replace(o, rayservice={**o.rayservice, "status": dict(action.status)})
    return o


def steady(rs: dict[str, Any] | None = None) -> Observed:
    """A RayService running on one cluster, everything in place and its status written."""
    rs = rs or rayservice()
    active = cluster("rs-raycluster-aaaaa", rs)
    rs = {**rs, "status": {"activeServiceStatus": {"rayClusterName": "rs-raycluster-aaaaa"}}}
    o = Observed(
        rs,
        goal_of(rs),
        (view(active),),
        services(rs, active),
        {"rs-raycluster-aaaaa": 2},
    )
    return converge(o)


def kinds(p: Plan) -> list[str]:
    return [type(a).__name__ for a in p.actions]


def events(p: Plan) -> list[str]:
    return [a.reason for a in p.actions if isinstance(a, RecordEvent)]


def status_of(p: Plan) -> dict[str, Any]:
    (write,) = [a for a in p.actions if isinstance(a, WriteStatus)]
    return dict(write.status)


# ---------------------------------------------------------------------------------------------


def test_a_converged_rayservice_plans_nothing_and_polls_at_the_idle_interval() -> None:
    decided = plan(steady(), NOW, SETTINGS)
    assert decided.actions == ()
    assert decided.requeue_after == SETTINGS.idle_poll


def test_a_new_rayservice_gets_its_finalizer_and_a_raycluster_built_for_its_hash() -> None:
    rs = rayservice()
    rs["metadata"]["finalizers"] = []
    decided = plan(Observed(rs, goal_of(rs)), NOW, SETTINGS)
    assert kinds(decided) == ["MergePatch", "Create", "WriteStatus"]
    finalizer, create = decided.actions[0], decided.actions[1]
    assert finalizer.patch == {"metadata": {"finalizers": [names.FINALIZER]}}
    meta = create.obj["metadata"]
    assert meta["generateName"] == "rayservice-sample-raycluster-"
    assert meta["labels"][names.ORIGIN_NAME] == "rayservice-sample"
    assert meta["labels"][names.ORIGIN_CRD] == "RayService"
    assert meta["annotations"][names.BUILT_CLUSTER_HASH] == goal_of(rs).cluster_hash
    assert meta["ownerReferences"][0]["uid"] == "rs-uid"
    assert create.obj["spec"]["rayVersion"] == "2.52.0"
    assert decided.requeue_after == SETTINGS.busy_poll


def test_a_cluster_built_for_the_goal_but_missing_from_status_is_adopted_not_duplicated() -> None:
    rs = rayservice()
    made = cluster("rayservice-sample-raycluster-bbbbb", rs, applied=None)
    decided = plan(Observed(rs, goal_of(rs), (view(made, ready=False),)), NOW, SETTINGS)
    assert "Create" not in kinds(decided)
    pending = status_of(decided)["pendingServiceStatus"]
    assert pending["rayClusterName"] == "rayservice-sample-raycluster-bbbbb"


def test_the_serve_config_goes_to_the_ready_head_by_pod_ip_and_dashboard_port() -> None:
    rs = rayservice()
    rs["status"] = {"pendingServiceStatus": {"rayClusterName": "c1"}}
    made = cluster("c1", rs, applied=None)
    decided = plan(Observed(rs, goal_of(rs), (view(made, ServeStatus({})),)), NOW, SETTINGS)
    (submit,) = [a for a in decided.actions if isinstance(a, SubmitServeConfig)]
    assert submit.url == "http://10.0.0.5:8265"
    assert submit.serve_hash == goal_of(rs).serve_hash
    assert [a["name"] for a in submit.config["applications"]] == ["fruit_app", "math_app"]


def test_a_head_that_is_not_ready_gets_nothing_yet() -> None:
    rs = rayservice()
    rs["status"] = {"pendingServiceStatus": {"rayClusterName": "c1"}}
    made = cluster("c1", rs, applied=None)
    decided = plan(Observed(rs, goal_of(rs), (view(made, ready=False),)), NOW, SETTINGS)
    assert not [a for a in decided.actions if isinstance(a, SubmitServeConfig)]


def test_the_first_cluster_ready_gets_both_services_and_becomes_active() -> None:
    rs = rayservice()
    rs["status"] = {"pendingServiceStatus": {"rayClusterName": "c1"}}
    made = cluster("c1", rs)
    decided = plan(Observed(rs, goal_of(rs), (view(made),), {}, {"c1": 2}), NOW, SETTINGS)
    creates = [a.obj["metadata"]["name"] for a in decided.actions if isinstance(a, Create)]
    assert creates == ["rayservice-sample-head-svc", "rayservice-sample-serve-svc"]
    status = status_of(decided)
    assert status["activeServiceStatus"]["rayClusterName"] == "c1"
    assert "pendingServiceStatus" not in status
    assert status["serviceStatus"] == "Running"
    assert events(decided) == ["ServiceReady"]


def test_a_serve_only_change_is_submitted_to_the_active_cluster() -> None:
    o = steady()
    changed = rayservice(
        **{"spec.serveConfigV2": o.spec["serveConfigV2"].replace("price: 3", "price: 4")}
    )
    changed["status"] = o.status
    new = Observed(changed, goal_of(changed), o.clusters, o.services, o.serve_endpoints)
    decided = plan(new, NOW, SETTINGS)
    (submit,) = [a for a in decided.actions if isinstance(a, SubmitServeConfig)]
    assert submit.cluster.name == "rs-raycluster-aaaaa"
    assert "Create" not in kinds(decided)


def test_applications_that_vanished_are_submitted_again() -> None:
    o = steady()
    (active,) = o.clusters
    gone = replace(o, clusters=(replace(active, serve=ServeStatus({})),))
    assert kinds(plan(gone, NOW, SETTINGS))[0] == "SubmitServeConfig"


def test_a_refused_serve_hash_is_not_submitted_again() -> None:
    o = steady()
    (active,) = o.clusters
    goal = o.goal
    refused = cluster(
        "rs-raycluster-aaaaa",
        o.rayservice,
        applied="older",
        annotations={names.REFUSED_SERVE_HASH: str(goal.serve_hash), names.REFUSED_MESSAGE: "bad"},
    )
    decided = plan(replace(o, clusters=(replace(active, obj=refused),)), NOW, SETTINGS)
    assert not [a for a in decided.actions if isinstance(a, SubmitServeConfig)]
    conditions = {c["type"]: c for c in status_of(decided)["conditions"]}
    assert conditions["ServeConfigApplied"]["reason"] == "Refused"
    assert conditions["ServeConfigApplied"]["message"] == "bad"


def upgraded(o: Observed, **fields: Any) -> Observed:
    rs = rayservice(**{"spec.rayClusterConfig.rayVersion": "2.100.0", **fields})
    rs["status"] = o.status
    return Observed(rs, goal_of(rs), o.clusters, o.services, o.serve_endpoints)


def test_a_cluster_change_prepares_a_pending_cluster_and_submits_nothing_to_the_active() -> None:
    decided = plan(upgraded(steady()), NOW, SETTINGS)
    assert kinds(decided)[:2] == ["Create", "RecordEvent"]
    assert decided.actions[0].obj["metadata"]["annotations"][names.PURPOSE] == "upgrade"
    assert events(decided) == ["UpgradeStarted"]
    assert not [a for a in decided.actions if isinstance(a, SubmitServeConfig)]


def test_upgrade_strategy_none_leaves_the_cluster_and_says_so() -> None:
    o = upgraded(steady(), **{"spec.upgradeStrategy": {"type": "None"}})
    decided = plan(o, NOW, SETTINGS)
    assert "Create" not in kinds(decided)
    conditions = {c["type"]: c for c in status_of(decided)["conditions"]}
    assert conditions["ClusterSpecApplied"]["reason"] == "UpgradeStrategyNone"


def with_pending(
    o: Observed, pending_obj: dict[str, Any], serve: ServeStatus = DEPLOYING
) -> Observed:
    status = {
        **o.status,
        "pendingServiceStatus": {"rayClusterName": pending_obj["metadata"]["name"]},
    }
    rs = {**o.rayservice, "status": status}
    return replace(o, rayservice=rs, clusters=(*o.clusters, view(pending_obj, serve)))


def test_a_pending_cluster_whose_apps_run_takes_the_traffic_and_the_old_one_gets_a_deadline() -> (
    None
):
    o = upgraded(steady())
    new = cluster("rs-raycluster-bbbbb", o.rayservice, purpose="upgrade")
    decided = plan(with_pending(o, new, RUNNING), NOW, SETTINGS)
    patches = [a for a in decided.actions if isinstance(a, MergePatch)]
    selectors = [
        p.patch["spec"]["selector"][names.CLUSTER_LABEL] for p in patches if "spec" in p.patch
    ]
    assert selectors == ["rs-raycluster-bbbbb", "rs-raycluster-bbbbb"]
    deadline = [p for p in patches if p.ref.name == "rs-raycluster-aaaaa"]
    assert deadline[0].patch["metadata"]["annotations"][names.DELETE_AFTER] == rfc3339(
        NOW + dt.timedelta(seconds=60)
    )
    assert status_of(decided)["activeServiceStatus"]["rayClusterName"] == "rs-raycluster-bbbbb"
    assert events(decided) == ["TrafficSwitched"]


def test_a_change_back_to_the_active_hash_cancels_the_upgrade() -> None:
    o = steady()
    new = cluster("rs-raycluster-bbbbb", o.rayservice, purpose="upgrade", built="other-hash")
    decided = plan(with_pending(o, new), NOW, SETTINGS)
    (delete,) = [a for a in decided.actions if isinstance(a, Delete)]
    assert delete.ref.name == "rs-raycluster-bbbbb"
    assert "Create" not in kinds(decided)
    assert events(decided) == ["UpgradeCancelled"]
    assert "pendingServiceStatus" not in status_of(decided)


def test_a_newer_cluster_change_replaces_the_pending_cluster() -> None:
    o = upgraded(steady())
    stale = cluster("rs-raycluster-bbbbb", o.rayservice, purpose="upgrade", built="older-goal")
    decided = plan(with_pending(o, stale), NOW, SETTINGS)
    assert [a.ref.name for a in decided.actions if isinstance(a, Delete)] == ["rs-raycluster-bbbbb"]
    assert len([a for a in decided.actions if isinstance(a, Create)]) == 1
    assert events(decided) == ["UpgradeSuperseded"]


def test_a_pending_cluster_past_the_upgrade_timeout_is_deleted_and_remembered() -> None:
    o = upgraded(steady())
    o.rayservice["metadata"].setdefault("annotations", {})["raysvc.io/upgrade-timeout-seconds"] = (
        "600"
    )
    slow = cluster(
        "rs-raycluster-bbbbb",
        o.rayservice,
        purpose="upgrade",
        created=NOW - dt.timedelta(seconds=601),
    )
    decided = plan(with_pending(o, slow), NOW, SETTINGS)
    assert [a.ref.name for a in decided.actions if isinstance(a, Delete)] == ["rs-raycluster-bbbbb"]
    assert events(decided) == ["UpgradeTimedOut"]
    status = status_of(decided)
    assert status["upgradeTimedOut"] == {"clusterHash": o.goal.cluster_hash, "timeoutSeconds": 600}
    # later, without the pending cluster: no new attempt under the same setting
    after = replace(o, rayservice={**o.rayservice, "status": status})
    assert "Create" not in kinds(plan(after, NOW, SETTINGS))
    # a new timeout setting is a new attempt
    retry = dict(after.rayservice)
    retry["metadata"] = {
        **retry["metadata"],
        "annotations": {
            **retry["metadata"]["annotations"],
            "raysvc.io/upgrade-timeout-seconds": "1200",
        },
    }
    assert "Create" in kinds(plan(replace(after, rayservice=retry), NOW, SETTINGS))


def test_a_pending_cluster_within_the_timeout_sets_a_timer_for_its_deadline() -> None:
    o = upgraded(steady())
    o.rayservice["metadata"].setdefault("annotations", {})["raysvc.io/upgrade-timeout-seconds"] = (
        "600"
    )
    slow = cluster(
        "rs-raycluster-bbbbb",
        o.rayservice,
        purpose="upgrade",
        created=NOW - dt.timedelta(seconds=599),
    )
    polls = replace(SETTINGS, busy_poll=5.0, settle_poll=5.0)  # slower than the deadline
    decided = plan(with_pending(o, slow), NOW, polls)
    assert "Delete" not in kinds(decided)
    assert decided.requeue_after == pytest.approx(1.0)  # the deadline, 1 s away


@pytest.mark.parametrize(
    ("threshold_field", "elapsed", "replaced"),
    [
        ("deploymentUnhealthySecondThreshold", 31, True),
        ("deploymentUnhealthySecondThreshold", 29, False),
        ("serviceUnhealthySecondThreshold", 31, True),
        ("serviceUnhealthySecondThreshold", 29, False),
    ],
)
def test_an_active_cluster_unhealthy_past_its_threshold_gets_a_replacement(
    threshold_field: str, elapsed: int, replaced: bool
) -> None:
    """The spec's threshold (30 s here) decides; under it, a timer for when it passes."""
    o = steady(rayservice(**{f"spec.{threshold_field}": 30}))
    (active,) = o.clusters
    status = dict(o.status)
    since = rfc3339(NOW - dt.timedelta(seconds=elapsed))
    if threshold_field == "deploymentUnhealthySecondThreshold":
        status["activeServiceStatus"] = {
            **status["activeServiceStatus"],
            "dashboardUnreachableSince": since,
        }
        o = replace(o, clusters=(replace(active, serve=None, dashboard_error="timeout"),))
    else:
        apps = dict(status["activeServiceStatus"]["applicationStatuses"])
        apps["math_app"] = {**apps["math_app"], "status": "UNHEALTHY", "unhealthySince": since}
        status["activeServiceStatus"] = {
            **status["activeServiceStatus"],
            "applicationStatuses": apps,
        }
        unhealthy = ServeStatus(
            {"fruit_app": AppStatus("RUNNING"), "math_app": AppStatus("UNHEALTHY")}
        )
        o = replace(o, clusters=(replace(active, serve=unhealthy),))
    o = replace(o, rayservice={**o.rayservice, "status": status})
    decided = plan(o, NOW, SETTINGS)
    creates = [a for a in decided.actions if isinstance(a, Create)]
    if replaced:
        (create,) = creates
        assert create.obj["metadata"]["annotations"][names.PURPOSE] == "replace"
        assert events(decided) == ["UnhealthyClusterReplaced"]
    else:
        assert creates == []
        assert "UnhealthyClusterReplaced" not in events(decided)
        assert decided.requeue_after is not None
        assert decided.requeue_after <= 2.0  # back when the threshold has passed


def test_unhealthy_for_less_than_the_threshold_only_starts_the_clock() -> None:
    o = steady()
    (active,) = o.clusters
    down = replace(o, clusters=(replace(active, serve=None, dashboard_error="refused"),))
    decided = plan(down, NOW, SETTINGS)
    assert "Create" not in kinds(decided)
    since = status_of(decided)["activeServiceStatus"]["dashboardUnreachableSince"]
    assert since == rfc3339(NOW)
    # the time survives: the next look keeps it
    later = converge(down)
    again = plan(later, NOW + dt.timedelta(seconds=10), SETTINGS)
    assert "WriteStatus" not in kinds(again)


def test_a_cluster_that_serves_nothing_is_deleted_after_its_stamped_deadline() -> None:
    o = steady()
    old = cluster("rs-raycluster-old00", o.rayservice, delete_after=NOW + dt.timedelta(seconds=30))
    waiting = replace(o, clusters=(*o.clusters, view(old)))
    decided = plan(waiting, NOW, SETTINGS)
    assert decided.actions == ()
    assert decided.requeue_after == 30
    due = plan(waiting, NOW + dt.timedelta(seconds=31), SETTINGS)
    assert [a.ref.name for a in due.actions if isinstance(a, Delete)] == ["rs-raycluster-old00"]


def test_scale_bounds_are_patched_into_the_running_cluster_in_place() -> None:
    o = steady()
    rs = rayservice(**{"spec.rayClusterConfig.workerGroupSpecs[0].maxReplicas": 7})
    rs["status"] = o.status
    decided = plan(
        Observed(rs, goal_of(rs), o.clusters, o.services, o.serve_endpoints), NOW, SETTINGS
    )
    (patch,) = [a for a in decided.actions if isinstance(a, JsonPatch)]
    assert patch.ops == [
        {"op": "test", "path": "/spec/workerGroupSpecs/0/groupName", "value": "small-group"},
        {"op": "add", "path": "/spec/workerGroupSpecs/0/maxReplicas", "value": 7},
    ]
    assert "Create" not in kinds(decided)


def test_replicas_alone_change_nothing() -> None:
    o = steady()
    rs = rayservice(**{"spec.rayClusterConfig.workerGroupSpecs[0].replicas": 3})
    rs["status"] = o.status
    decided = plan(
        Observed(rs, goal_of(rs), o.clusters, o.services, o.serve_endpoints), NOW, SETTINGS
    )
    assert decided.actions == ()


@pytest.mark.parametrize(
    ("healthy", "exclude", "want"),
    [(True, False, "true"), (False, False, "false"), (True, True, "false")],
)
def test_the_head_serve_label_follows_its_proxy_health(
    healthy: bool, exclude: bool, want: str
) -> None:
    o = steady(rayservice(**{"spec.excludeHeadPodFromServeSvc": exclude}))
    (active,) = o.clusters
    other = "false" if want == "true" else "true"
    assert active.head is not None
    flipped = replace(active, proxy_healthy=healthy, head=replace(active.head, serve_label=other))
    decided = plan(replace(o, clusters=(flipped,)), NOW, SETTINGS)
    (label,) = [a for a in decided.actions if isinstance(a, MergePatch) and a.ref.kind == "Pod"]
    assert label.patch == {"metadata": {"labels": {"ray.io/serve": want}}}


def test_services_already_moved_to_the_pending_cluster_promote_it_after_a_crash() -> None:
    o = upgraded(steady())
    new = cluster("rs-raycluster-bbbbb", o.rayservice, purpose="upgrade")
    crashed = with_pending(o, new, RUNNING)
    crashed = replace(crashed, services=services(o.rayservice, new))
    decided = plan(crashed, NOW, SETTINGS)
    assert status_of(decided)["activeServiceStatus"]["rayClusterName"] == "rs-raycluster-bbbbb"
    assert "Create" not in kinds(decided)


def test_a_deleted_rayservice_deletes_its_clusters_then_drops_its_finalizer() -> None:
    o = steady()
    gone = dict(o.rayservice)
    gone["metadata"] = {**gone["metadata"], "deletionTimestamp": rfc3339(NOW)}
    decided = plan(replace(o, rayservice=gone), NOW, SETTINGS)
    assert [type(a).__name__ for a in decided.actions] == ["Delete"]
    empty = plan(replace(o, rayservice=gone, clusters=()), NOW, SETTINGS)
    (patch,) = empty.actions
    assert isinstance(patch, JsonPatch)
    assert patch.ops == [
        {"op": "test", "path": "/metadata/finalizers/0", "value": names.FINALIZER},
        {"op": "remove", "path": "/metadata/finalizers/0"},
    ]


def test_an_invalid_rayservice_gets_no_cluster_and_one_event_per_generation() -> None:
    rs = rayservice(**{"spec.rayClusterConfig.workerGroupSpecs[0].minReplicas": 9})
    del rs["metadata"]["annotations"]  # admitted without the webhook
    o = Observed(rs, goal_of(rs))
    decided = plan(o, NOW, SETTINGS)
    assert kinds(decided) == ["RecordEvent", "WriteStatus"]
    assert events(decided) == ["ValidationFailed"]
    ready = status_of(decided)["conditions"][0]
    assert ready["reason"] == "ValidationFailed"
    assert "must be less than or equal to maxReplicas" in ready["message"]
    assert plan(converge(o), NOW, SETTINGS).actions == ()


def test_a_config_ray_already_runs_is_stamped_not_submitted_twice() -> None:
    o = steady()
    (active,) = o.clusters
    config = o.goal.serve_config
    assert config is not None
    runs = ServeStatus(
        {app["name"]: AppStatus("RUNNING", deployed_config=app) for app in config["applications"]}
    )
    unstamped = cluster("rs-raycluster-aaaaa", o.rayservice, applied=None)
    decided = plan(
        replace(o, clusters=(replace(active, obj=unstamped, serve=runs),)), NOW, SETTINGS
    )
    assert not [a for a in decided.actions if isinstance(a, SubmitServeConfig)]
    (stamp,) = [a for a in decided.actions if isinstance(a, MergePatch)]
    assert stamp.patch == {
        "metadata": {"annotations": {names.APPLIED_SERVE_HASH: o.goal.serve_hash}}
    }
    # a config that differs in one value is submitted
    changed = dict(config["applications"][0], route_prefix="/other")
    other = ServeStatus(
        {**runs.apps, changed["name"]: AppStatus("RUNNING", deployed_config=changed)}
    )
    decided = plan(
        replace(o, clusters=(replace(active, obj=unstamped, serve=other),)), NOW, SETTINGS
    )
    assert [a for a in decided.actions if isinstance(a, SubmitServeConfig)]


def test_an_applied_config_that_is_still_moving_is_looked_at_again_soon() -> None:
    o = steady()
    (active,) = o.clusters
    moving = ServeStatus(
        {
            "fruit_app": AppStatus(
                "DEPLOYING", deployments={"MangoStand": DeploymentStatus("UPDATING")}
            ),
            "math_app": AppStatus("RUNNING"),
        }
    )
    decided = plan(replace(o, clusters=(replace(active, serve=moving),)), NOW, SETTINGS)
    assert decided.requeue_after == SETTINGS.settle_poll


def test_the_goal_is_computed_once_per_spec_not_once_per_status_write() -> None:
    rs = rayservice()
    rewritten = {
        **rs,
        "metadata": {**rs["metadata"], "resourceVersion": "999"},
        "status": {"serviceStatus": "Running"},
    }
    assert goal_of(rewritten) is goal_of(rs)
    changed = {**rs, "spec": {**rs["spec"], "serviceUnhealthySecondThreshold": 5}}
    assert goal_of(changed) is not goal_of(rs)
