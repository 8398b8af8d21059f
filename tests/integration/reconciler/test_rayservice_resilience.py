"""The reconciler loses nothing: SIGKILLed at every step of an upgrade, faced with conflicts,
errors, dropped watches and expired versions, and run as two replicas with leader election."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from localkube import LocalKube
from reconciler.manager import Reconciler, ReconcilerSettings
from tests.builders import put, sample
from tests.integration.reconciler.fakeray import FakeKubelet, submitted_prices
from tests.integration.reconciler.support import (
    Cluster,
    ReconcilerProcess,
    eventually,
    running_reconciler,
    selected_cluster,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _annotation(cluster: dict[str, Any], key: str) -> str | None:
    value = (cluster["metadata"].get("annotations") or {}).get(key)
    return str(value) if value is not None else None


async def test_a_reconciler_killed_at_every_step_of_an_upgrade_converges_without_duplicates(
    rk_api: client.ApiClient,
    rk_kube: LocalKube,
    namespace: str,
    kubelet: FakeKubelet,
    tmp_path: Path,
) -> None:
    kube = Cluster(rk_api, namespace)
    config = rk_kube.write_kubeconfig(tmp_path / "kubeconfig")
    await kube.create(put(sample(), "spec.rayClusterDeletionDelaySeconds", 3))
    process = ReconcilerProcess(config, namespace)
    try:
        rs = await eventually(kube.running)
        old = rs["status"]["activeServiceStatus"]["rayClusterName"]
        old_head = kubelet.head(old)
        submitted_before = len(old_head.submissions)
        process.kill()

        await kube.update(
            lambda rs: (
                put(rs, "spec.rayClusterConfig.rayVersion", "2.100.0"),
                rs["spec"].update(
                    serveConfigV2=rs["spec"]["serveConfigV2"].replace("price: 3", "price: 4")
                ),
            )
        )

        async def two_clusters() -> str:
            names = [c["metadata"]["name"] for c in await kube.live_clusters()]
            return next((n for n in names if n != old), "")

        async def new_has_config() -> bool:
            new = await two_clusters()
            return bool(new) and new in kubelet.heads and bool(kubelet.head(new).submissions)

        async def switched() -> bool:
            services = await kube.services()
            return selected_cluster(services["rayservice-sample-serve-svc"]) not in ("", old)

        deadlines: list[str] = []  # the old cluster's deletion deadline, as each process saw it

        async def old_deadline() -> str | None:
            for cluster in await kube.rayclusters():
                if cluster["metadata"]["name"] == old:
                    value = _annotation(cluster, "raysvc.io/delete-after")
                    if value:
                        deadlines.append(value)
                    return value
            return None

        async def old_marked() -> bool:
            return await old_deadline() is not None

        async def old_gone() -> bool:
            await old_deadline()  # a restarted process must keep the deadline it finds
            return old not in [c["metadata"]["name"] for c in await kube.rayclusters()]

        for step in (two_clusters, new_has_config, switched, old_marked, old_gone):
            process = ReconcilerProcess(config, namespace)
            await eventually(step, within=30)
            process.kill()
        process = ReconcilerProcess(config, namespace)
        rs = await eventually(kube.running, within=30)
        new = rs["status"]["activeServiceStatus"]["rayClusterName"]
        assert new != old
        assert [c["metadata"]["name"] for c in await kube.rayclusters()] == [new]
        services = await kube.services()
        assert selected_cluster(services["rayservice-sample-head-svc"]) == new
        assert selected_cluster(services["rayservice-sample-serve-svc"]) == new
        assert sorted(kubelet.heads) == sorted([old, new])  # no third cluster was ever made
        new_head = kubelet.head(new)
        assert len(new_head.submissions) == 1  # no duplicate submission
        assert submitted_prices(new_head) == {"price": 4}
        assert len(old_head.submissions) == submitted_before  # nothing went to the old one
        assert len(deadlines) >= 2, deadlines  # seen by the process that set it and the next
        assert len(set(deadlines)) == 1  # the deletion delay was not restarted
        assert not [
            p for p in await kube.pods() if p["metadata"]["labels"]["ray.io/cluster"] == old
        ]
    finally:
        process.kill()


async def test_conflicts_errors_dropped_watches_and_expired_versions_do_not_stop_it(
    rk_api: client.ApiClient, rk_kube: LocalKube, namespace: str, kubelet: FakeKubelet
) -> None:
    kube = Cluster(rk_api, namespace)
    faults = rk_kube.faults
    injected = [
        faults.fail(409, verb="patch", resource="rayservices", namespace=namespace, times=3),
        faults.fail(500, verb="create", resource="rayclusters", namespace=namespace, times=2),
        faults.fail(409, verb="create", resource="services", namespace=namespace, times=1),
    ]
    try:
        await kube.create()
        async with running_reconciler(rk_api, namespace):
            rs = await eventually(kube.running)
            cluster = rs["status"]["activeServiceStatus"]["rayClusterName"]
            head = kubelet.head(cluster)
            # watches end and the history is compacted: the caches must list again (410)
            rk_kube.compact()
            assert faults.drop_watches() > 0
            await kube.update(
                lambda rs: rs["spec"].update(
                    serveConfigV2=rs["spec"]["serveConfigV2"].replace("price: 3", "price: 7")
                )
            )
            await eventually(lambda: _async(submitted_prices(head) == {"price": 7}))
            injected.append(faults.fail(500, verb="list", resource="pods", times=2))
            rk_kube.compact()  # so the caches list again, and the Pods' list fails twice first
            assert faults.drop_watches() > 0
            await kube.update(
                lambda rs: rs["spec"].update(
                    serveConfigV2=rs["spec"]["serveConfigV2"].replace("price: 7", "price: 8")
                )
            )
            await eventually(lambda: _async(submitted_prices(head) == {"price": 8}))
            assert len(await kube.live_clusters()) == 1
            assert [f.hits for f in injected] == [f.times for f in injected]  # every fault fired
    finally:
        faults.clear()


async def _async(value: bool) -> bool:
    return value


async def test_two_replicas_elect_one_leader_and_the_other_takes_over_when_it_dies(
    rk_api: client.ApiClient,
    rk_kube: LocalKube,
    namespace: str,
    kubelet: FakeKubelet,
    tmp_path: Path,
) -> None:
    kube = Cluster(rk_api, namespace)
    config = rk_kube.write_kubeconfig(tmp_path / "kubeconfig")
    election = ("--leader-elect", "--leader-election-namespace", namespace)
    first = ReconcilerProcess(config, namespace, *election)
    await eventually(lambda: _async(first.said("leading")), within=15)
    second = ReconcilerProcess(config, namespace, *election)
    try:
        await eventually(lambda: _async(second.said("caches synced")), within=15)
        await kube.create()
        rs = await eventually(kube.running)
        assert not second.said("leading")
        assert not second.said("object created")
        coordination = client.CoordinationV1Api(rk_api)
        lease = await coordination.read_namespaced_lease("raysvc-reconciler", namespace)
        leader = lease.spec.holder_identity
        first.kill()
        head = kubelet.head(rs["status"]["activeServiceStatus"]["rayClusterName"])
        await kube.update(
            lambda rs: rs["spec"].update(
                serveConfigV2=rs["spec"]["serveConfigV2"].replace("price: 3", "price: 9")
            )
        )
        loop = asyncio.get_running_loop()
        killed = loop.time()
        await eventually(lambda: _async(submitted_prices(head) == {"price": 9}), within=30)
        took = loop.time() - killed
        assert second.said("leading")
        lease = await coordination.read_namespaced_lease("raysvc-reconciler", namespace)
        assert lease.spec.holder_identity != leader
        assert took < 20, f"the second replica took over after {took:.1f}s"
    finally:
        first.kill()
        second.kill()


def _settings(namespace: str, **changes: Any) -> ReconcilerSettings:
    return ReconcilerSettings(
        namespaces=(namespace,),
        health_host="127.0.0.1",
        health_port=0,
        metrics_host="127.0.0.1",
        metrics_port=0,
        **changes,
    )


async def test_caches_that_cannot_be_filled_end_the_process_with_1(
    rk_api: client.ApiClient, rk_kube: LocalKube, namespace: str
) -> None:
    """As controller-runtime's cache-sync timeout: a forbidden list is not waited on forever."""
    forbidden = rk_kube.faults.fail(
        403, verb="list", resource="rayservices", namespace=namespace, times=None
    )
    try:
        reconciler = Reconciler(rk_api, _settings(namespace, cache_sync_timeout=1.0))
        code = await asyncio.wait_for(reconciler.run(asyncio.Event()), 10)
    finally:
        rk_kube.faults.clear()
    assert code == 1
    assert forbidden.hits >= 1
    assert not reconciler.synced


async def test_a_stop_while_the_caches_fill_ends_at_once(
    rk_api: client.ApiClient, rk_kube: LocalKube, namespace: str
) -> None:
    rk_kube.faults.fail(403, verb="list", resource="rayservices", namespace=namespace, times=None)
    stop = asyncio.Event()
    try:
        reconciler = Reconciler(rk_api, _settings(namespace))  # a 120 s sync timeout
        task = asyncio.create_task(reconciler.run(stop))
        await asyncio.sleep(0.5)
        stop.set()
        code = await asyncio.wait_for(task, 5)
    finally:
        rk_kube.faults.clear()
    assert code == 0
