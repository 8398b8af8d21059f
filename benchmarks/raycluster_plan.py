"""CPU per reconcile of the RayCluster controller's pure core: ``plan(observed, now)``.

Prints, for the seed sample's RayCluster and for a large one (50 worker groups of 4 workers,
201 Pods), the median time of:

- ``idle``: the cluster is converged (Pods running, status written); the plan is empty. This is
  what every resync or unrelated event costs, per cluster;
- ``new``: the first plan of a new cluster (builds every manifest, plans every create);
- ``baseline``: ``json.loads`` of the observed objects (the RayCluster, its Pods, its head
  Service) from their JSON text, the least any reconcile of them costs, measured in the same run
  so the ratios travel across noisy machines.

It also prints the idle plan of 1,000 sample clusters, one after the other (a full resync).

Run: ``.venv/bin/python benchmarks/raycluster_plan.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.raycluster import Observed, plan
from tests.raycluster_objects import World, sample_cluster

Obj = dict[str, Any]


def large_cluster() -> Obj:
    cluster = sample_cluster()
    base = cluster["spec"]["workerGroupSpecs"][0]
    groups = []
    for index in range(50):
        group = copy.deepcopy(base)
        group.update(groupName=f"group-{index}", replicas=4, minReplicas=0, maxReplicas=10)
        groups.append(group)
    cluster["spec"]["workerGroupSpecs"] = groups
    return cluster


def median_seconds(call: Callable[[], object], rounds: int) -> float:
    samples = []
    gc.collect()
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def as_json(observed: Observed) -> str:
    return json.dumps(
        {"cluster": observed.cluster, "pods": observed.pods, "service": observed.head_service}
    )


def measure(name: str, cluster: Obj, rounds: int) -> None:
    fresh = World(copy.deepcopy(cluster))
    new = fresh.observed()
    world = World(copy.deepcopy(cluster))
    world.converge()
    idle = world.observed()
    assert plan(idle, world.now).actions == (), "the converged cluster must plan nothing"
    text = as_json(idle)
    base = median_seconds(lambda: json.loads(text), rounds)
    idle_s = median_seconds(lambda: plan(idle, world.now), rounds)
    new_s = median_seconds(lambda: plan(new, fresh.now), rounds)
    print(
        f"{name:<28} {len(idle.pods):>5} pods  baseline {base * 1e3:7.3f} ms  "
        f"idle {idle_s * 1e3:7.3f} ms ({idle_s / base:5.1f}x)  "
        f"new {new_s * 1e3:7.3f} ms ({new_s / base:5.1f}x)"
    )


def resync(count: int) -> None:
    worlds = []
    for index in range(count):
        cluster = sample_cluster()
        cluster["metadata"]["name"] = f"cluster-{index}"
        cluster["metadata"]["uid"] = f"uid-{index}"
        world = World(cluster)
        world.converge()
        worlds.append((world.observed(), world.now))
    texts = [as_json(observed) for observed, _ in worlds]
    gc.collect()
    start = time.perf_counter()
    for text in texts:
        json.loads(text)
    base = time.perf_counter() - start
    start = time.perf_counter()
    for observed, now in worlds:
        plan(observed, now)
    total = time.perf_counter() - start
    print(
        f"{count} idle sample clusters, one plan each: {total * 1e3:.1f} ms "
        f"({total / base:.1f}x json.loads of their objects, {base * 1e3:.1f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    measure("sample (1 worker)", sample_cluster(), args.rounds)
    measure("large (50 groups x 4)", large_cluster(), max(args.rounds // 10, 10))
    resync(1000)


if __name__ == "__main__":
    main()
