"""The change cases of the seed walkthrough, shared by the core tests and the CLI tests.

Each case edits the sample (``tests.builders.sample``) and names the class the change must get.
"""

from __future__ import annotations

from collections.abc import Callable

from rayservice import ChangeClass
from tests.builders import (
    Obj,
    deployment,
    drop,
    head_container,
    put,
    sample,
    with_serve,
    worker,
)


def mango_price(price: int) -> Callable[[Obj], object]:
    def edit(obj: Obj) -> None:
        def change(config: Obj) -> None:
            deployment(config, "fruit_app", "MangoStand")["user_config"]["price"] = price

        with_serve(obj, change)

    return edit


def both(*edits: Callable[[Obj], object]) -> Callable[[Obj], None]:
    def edit(obj: Obj) -> None:
        for one in edits:
            one(obj)

    return edit


def reformat_serve_config(obj: Obj) -> None:
    text = obj["spec"]["serveConfigV2"]
    obj["spec"]["serveConfigV2"] = "# a comment\n" + text.replace("\n", "\n\n") + "\n# trailing\n"


def reorder_serve_keys(obj: Obj) -> None:
    def change(config: Obj) -> None:
        for application in config["applications"]:
            for key in list(application)[::-1]:
                application[key] = application.pop(key)

    with_serve(obj, change)


SEED_CASES = [
    ("MangoStand price 3 -> 4 is serve-only", mango_price(4), ChangeClass.SERVE_ONLY),
    (
        "replicas 1 -> 2 is autoscaler-owned",
        lambda o: put(o, "spec.rayClusterConfig.workerGroupSpecs[0].replicas", 2),
        ChangeClass.AUTOSCALER_OWNED,
    ),
    (
        "workersToDelete alone is autoscaler-owned",
        lambda o: put(
            o, "spec.rayClusterConfig.workerGroupSpecs[0].scaleStrategy.workersToDelete", ["w-1"]
        ),
        ChangeClass.AUTOSCALER_OWNED,
    ),
    (
        "rayVersion change is a cluster upgrade",
        lambda o: put(o, "spec.rayClusterConfig.rayVersion", "2.100.0"),
        ChangeClass.CLUSTER_UPGRADE,
    ),
    (
        "replicas and rayVersion together are a cluster upgrade",
        both(
            lambda o: put(o, "spec.rayClusterConfig.workerGroupSpecs[0].replicas", 2),
            lambda o: put(o, "spec.rayClusterConfig.rayVersion", "2.100.0"),
        ),
        ChangeClass.CLUSTER_UPGRADE,
    ),
    (
        "serve and cluster together are a cluster upgrade",
        both(mango_price(4), lambda o: put(o, "spec.rayClusterConfig.rayVersion", "2.100.0")),
        ChangeClass.CLUSTER_UPGRADE,
    ),
    (
        "a comment or whitespace edit of serveConfigV2 is none",
        reformat_serve_config,
        ChangeClass.NONE,
    ),
    ("reordering keys in serveConfigV2 is none", reorder_serve_keys, ChangeClass.NONE),
    (
        "a label-only edit is none",
        lambda o: put(o, "metadata.labels", {"team": "a"}),
        ChangeClass.NONE,
    ),
    (
        "an annotation-only edit is none",
        lambda o: put(o, "metadata.annotations", {"note": "x"}),
        ChangeClass.NONE,
    ),
    (
        "a status change is none",
        lambda o: put(o, "status", {"serviceStatus": "Running"}),
        ChangeClass.NONE,
    ),
    (
        "maxReplicas 5 -> 10 is scale-bounds",
        lambda o: put(o, "spec.rayClusterConfig.workerGroupSpecs[0].maxReplicas", 10),
        ChangeClass.SCALE_BOUNDS,
    ),
    (
        "minReplicas with replicas is scale-bounds",
        both(
            lambda o: put(o, "spec.rayClusterConfig.workerGroupSpecs[0].minReplicas", 2),
            lambda o: put(o, "spec.rayClusterConfig.workerGroupSpecs[0].replicas", 2),
        ),
        ChangeClass.SCALE_BOUNDS,
    ),
    (
        "a container image change is a cluster upgrade",
        lambda o: put(head_container(o), "image", "rayproject/ray:2.53.0"),
        ChangeClass.CLUSTER_UPGRADE,
    ),
    (
        "adding a worker group is a cluster upgrade",
        lambda o: o["spec"]["rayClusterConfig"]["workerGroupSpecs"].append(
            {**worker(sample()), "groupName": "large-group"}
        ),
        ChangeClass.CLUSTER_UPGRADE,
    ),
    (
        "a threshold change is settings",
        lambda o: put(o, "spec.serviceUnhealthySecondThreshold", 600),
        ChangeClass.SETTINGS,
    ),
    (
        "an empty env list added to a container is none",
        lambda o: put(head_container(o), "env", []),
        ChangeClass.NONE,
    ),
    (
        "dropping rayStartParams is none (it defaults to {})",
        lambda o: drop(o, "spec.rayClusterConfig.headGroupSpec.rayStartParams"),
        ChangeClass.NONE,
    ),
    (
        "serve config and replicas together are serve-only",
        both(
            mango_price(4),
            lambda o: put(o, "spec.rayClusterConfig.workerGroupSpecs[0].replicas", 3),
        ),
        ChangeClass.SERVE_ONLY,
    ),
]
