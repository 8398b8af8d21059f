"""The seed walkthrough through the RayService controller, with the real webhook, on localkube.

Ray and the kubelet are played by ``fakeray``; everything the reconciler does goes through the
API server as it would in a cluster, and each step asserts what a user would see: the clusters,
the Services' selectors, what each head received, the status and the Events.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio import client

from localkube import LocalKube
from reconciler.rayservice.observed import PlanSettings
from tests.builders import get, put, sample
from tests.integration.reconciler.fakeray import FakeKubelet, submitted_prices
from tests.integration.reconciler.support import (
    Cluster,
    eventually,
    metric_total,
    running_reconciler,
    selected_cluster,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

WORKER = "spec.rayClusterConfig.workerGroupSpecs[0]"


def mango(price: int) -> Any:
    def change(rs: dict[str, Any]) -> None:
        text = rs["spec"]["serveConfigV2"]
        rs["spec"]["serveConfigV2"] = text.replace("price: 3", f"price: {price}")

    return change


async def test_the_walkthrough_from_create_to_delete(
    rk_api: client.ApiClient, namespace: str, kubelet: FakeKubelet
) -> None:
    kube = Cluster(rk_api, namespace)
    body = sample()
    put(body, "spec.rayClusterDeletionDelaySeconds", 1)
    await kube.create(body)
    async with running_reconciler(rk_api, namespace):
        # steps 3-5: one cluster, its Services once the apps run, the status in KubeRay's shape
        rs = await eventually(kube.running)
        (first,) = await kube.live_clusters()
        name = first["metadata"]["name"]
        assert name.startswith("rayservice-sample-raycluster-")
        assert len(name) == len("rayservice-sample-raycluster-") + 5
        assert first["metadata"]["labels"]["ray.io/originated-from-cr-name"] == "rayservice-sample"
        assert first["metadata"]["ownerReferences"][0]["kind"] == "RayService"
        services = await kube.services()
        assert selected_cluster(services["rayservice-sample-head-svc"]) == name
        assert selected_cluster(services["rayservice-sample-serve-svc"]) == name
        assert services["rayservice-sample-serve-svc"]["spec"]["ports"][0]["port"] == 8000
        active = rs["status"]["activeServiceStatus"]
        assert active["rayClusterName"] == name
        fruit = active["applicationStatuses"]["fruit_app"]
        assert fruit["status"] == "RUNNING"
        assert fruit["serveDeploymentStatuses"]["MangoStand"]["status"] == "HEALTHY"
        assert rs["status"]["numServeEndpoints"] >= 1
        head = kubelet.head(name)
        assert len(head.submissions) == 1
        assert submitted_prices(head) == {"price": 3}

        # step 7: serve-only goes to the same cluster
        await kube.update(mango(4))
        await eventually(lambda: _true(submitted_prices(head) == {"price": 4}))
        assert [c["metadata"]["name"] for c in await kube.live_clusters()] == [name]
        await eventually(kube.running)

        # step 8.1-8.3: replicas are the autoscaler's: nothing propagates, nothing is submitted
        updated = await kube.update(lambda rs: put(rs, f"{WORKER}.replicas", 2))
        assert updated["metadata"]["annotations"]["raysvc.io/change"] == "autoscaler-owned"
        await asyncio.sleep(1.0)
        (same,) = await kube.live_clusters()
        assert get(same, "spec.workerGroupSpecs[0].replicas") == 1
        assert len(head.submissions) == 2

        # scale bounds: patched into the running cluster in place
        await kube.update(lambda rs: put(rs, f"{WORKER}.maxReplicas", 6))

        async def bounds_applied() -> bool:
            (cluster,) = await kube.live_clusters()
            return bool(get(cluster, "spec.workerGroupSpecs[0].maxReplicas") == 6)

        await eventually(bounds_applied)
        assert [c["metadata"]["name"] for c in await kube.live_clusters()] == [name]

        # steps 8.4-8.7: a cluster upgrade: a new cluster, the current config, the switch
        await kube.update(lambda rs: put(rs, "spec.rayClusterConfig.rayVersion", "2.100.0"))

        async def switched() -> str:
            services = await kube.services()
            serving = selected_cluster(services["rayservice-sample-serve-svc"])
            return serving if serving != name else ""

        new = await eventually(switched)
        assert selected_cluster((await kube.services())["rayservice-sample-head-svc"]) == new
        new_cluster = next(c for c in await kube.rayclusters() if c["metadata"]["name"] == new)
        assert get(new_cluster, "spec.workerGroupSpecs[0].replicas") == 2  # the current spec
        assert submitted_prices(kubelet.head(new)) == {"price": 4}
        assert len(head.submissions) == 2  # the old cluster got nothing more
        await eventually(lambda: _only(kube, new))
        rs = await eventually(kube.running)
        assert rs["status"]["activeServiceStatus"]["rayClusterName"] == new

    # step 9: delete; everything goes
    async with running_reconciler(rk_api, namespace):
        await kube.delete()

        async def all_gone() -> bool:
            try:
                await kube.rayservice()
            except client.ApiException as e:
                return e.status == 404
            return False

        await eventually(all_gone)
        assert await kube.rayclusters() == []
    await eventually(lambda: _no_services(kube))
    await eventually(lambda: _no_ray_pods(kube))
    reasons = await kube.reasons()
    for reason in ("ServeConfigSubmitted", "ServiceReady", "UpgradeStarted", "TrafficSwitched"):
        assert reason in reasons


async def _true(value: object) -> bool:
    return bool(value)


async def _only(kube: Cluster, name: str) -> bool:
    return [c["metadata"]["name"] for c in await kube.rayclusters()] == [name]


async def _no_services(kube: Cluster) -> bool:
    return not await kube.services()


async def test_an_idle_rayservice_costs_no_api_write(
    rk_api: client.ApiClient, rk_kube: LocalKube, namespace: str, kubelet: FakeKubelet
) -> None:
    kube = Cluster(rk_api, namespace)
    await kube.create()
    polling = PlanSettings(busy_poll=0.2, idle_poll=0.2)
    async with running_reconciler(rk_api, namespace, plan=polling) as reconciler:
        await eventually(kube.running)
        await asyncio.sleep(1.0)  # let the last status settle
        reconciles = metric_total(reconciler, "raysvc_reconciles_total")
        revision = rk_kube.revision
        await asyncio.sleep(3.0)
        assert metric_total(reconciler, "raysvc_reconciles_total") > reconciles + 5
        assert rk_kube.revision == revision


async def test_a_rayservice_admitted_without_the_webhook_gets_its_hashes_computed(
    rk_api: client.ApiClient, unhooked_namespace: str
) -> None:
    kube = Cluster(rk_api, unhooked_namespace)
    await kube.create()
    async with (
        FakeKubelet(rk_api, unhooked_namespace),
        running_reconciler(rk_api, unhooked_namespace),
    ):
        rs = await eventually(kube.running)
        assert "raysvc.io/cluster-hash" not in (rs["metadata"].get("annotations") or {})
        assert "AnnotationsComputed" in await kube.reasons()


async def test_an_invalid_rayservice_admitted_without_the_webhook_is_reported_not_built(
    rk_api: client.ApiClient, unhooked_namespace: str
) -> None:
    kube = Cluster(rk_api, unhooked_namespace)
    await kube.create(put(sample(), f"{WORKER}.minReplicas", 6))
    async with running_reconciler(rk_api, unhooked_namespace):

        async def failed() -> dict[str, Any] | None:
            rs = await kube.rayservice()
            conditions = {c["type"]: c for c in (rs.get("status") or {}).get("conditions", [])}
            ready = conditions.get("Ready") or {}
            return ready if ready.get("reason") == "ValidationFailed" else None

        ready = await eventually(failed)
        assert (
            "minReplicas: Invalid value: 6: must be less than or equal to maxReplicas"
            in (ready["message"])
        )
        assert "ValidationFailed" in await kube.reasons()
        assert await kube.rayclusters() == []


async def _no_ray_pods(kube: Cluster) -> bool:
    return not [p for p in await kube.pods() if "ray.io/cluster" in p["metadata"].get("labels", {})]
