"""Cluster upgrades that do not simply succeed: superseded, cancelled, timed out; a refused
Serve config; and the health thresholds that replace an unhealthy cluster."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio import client

from tests.builders import put, sample
from tests.integration.reconciler.fakeray import FakeKubelet, submitted_prices
from tests.integration.reconciler.support import (
    Cluster,
    eventually,
    running_reconciler,
    selected_cluster,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

VERSION = "spec.rayClusterConfig.rayVersion"


def version(value: str) -> Any:
    return lambda rs: put(rs, VERSION, value)


async def start(kube: Cluster, **fields: Any) -> str:
    """Create the sample (with ``fields`` put), wait until it runs; returns the active cluster."""
    body = put(sample(), "spec.rayClusterDeletionDelaySeconds", 1)
    for path, value in fields.items():
        put(body, path, value)
    await kube.create(body)
    rs = await eventually(kube.running)
    return str(rs["status"]["activeServiceStatus"]["rayClusterName"])


async def pending_name(kube: Cluster) -> str:
    rs = await kube.rayservice()
    return str(
        ((rs.get("status") or {}).get("pendingServiceStatus") or {}).get("rayClusterName", "")
    )


async def condition(kube: Cluster, kind: str) -> dict[str, Any]:
    rs = await kube.rayservice()
    for item in (rs.get("status") or {}).get("conditions") or []:
        if item["type"] == kind:
            return dict(item)
    return {}


async def test_a_newer_cluster_change_replaces_the_pending_cluster(
    rk_api: client.ApiClient, namespace: str, kubelet: FakeKubelet
) -> None:
    kube = Cluster(rk_api, namespace)
    async with running_reconciler(rk_api, namespace):
        active = await start(kube)
        kubelet.paused = True  # new clusters get no Pods: the upgrade cannot finish
        await kube.update(version("2.100.0"))
        first = await eventually(lambda: pending_name(kube))
        await kube.update(version("2.101.0"))

        async def replaced() -> str:
            name = await pending_name(kube)
            return name if name and name != first else ""

        second = await eventually(replaced)
        live = {c["metadata"]["name"] for c in await kube.live_clusters()}
        assert live == {active, second}
        kubelet.paused = False

        async def serving() -> bool:
            services = await kube.services()
            return selected_cluster(services["rayservice-sample-serve-svc"]) == second

        await eventually(serving)
        await eventually(lambda: _live_is(kube, {second}))
        assert "UpgradeSuperseded" in await kube.reasons()


async def _live_is(kube: Cluster, names: set[str]) -> bool:
    return {c["metadata"]["name"] for c in await kube.rayclusters()} == names


async def test_a_change_back_to_the_active_spec_cancels_the_upgrade(
    rk_api: client.ApiClient, namespace: str, kubelet: FakeKubelet
) -> None:
    kube = Cluster(rk_api, namespace)
    async with running_reconciler(rk_api, namespace):
        active = await start(kube)
        kubelet.paused = True
        await kube.update(version("2.100.0"))
        await eventually(lambda: pending_name(kube))
        await kube.update(version("2.52.0"))
        await eventually(lambda: _live_is(kube, {active}))
        await asyncio.sleep(0.6)  # several reconciles: no new cluster comes
        assert await _live_is(kube, {active})
        assert await pending_name(kube) == ""
        assert (await condition(kube, "UpgradeInProgress"))["status"] == "False"
        assert "UpgradeCancelled" in await kube.reasons()
        services = await kube.services()
        assert selected_cluster(services["rayservice-sample-serve-svc"]) == active


async def test_a_pending_cluster_past_the_upgrade_timeout_is_deleted_and_not_retried(
    rk_api: client.ApiClient, namespace: str, kubelet: FakeKubelet
) -> None:
    kube = Cluster(rk_api, namespace)
    async with running_reconciler(rk_api, namespace):
        active = await start(kube)
        kubelet.paused = True

        def slow_upgrade(rs: dict[str, Any]) -> None:
            put(rs, VERSION, "2.100.0")
            rs["metadata"].setdefault("annotations", {})["raysvc.io/upgrade-timeout-seconds"] = "1"

        await kube.update(slow_upgrade)

        async def timed_out() -> dict[str, Any]:
            found = await condition(kube, "UpgradeInProgress")
            return found if found.get("reason") == "UpgradeTimedOut" else {}

        found = await eventually(timed_out, within=10)
        assert active in found["message"]
        await eventually(lambda: _live_is(kube, {active}))
        await asyncio.sleep(1.0)
        assert await _live_is(kube, {active})  # not retried while nothing changes
        assert "UpgradeTimedOut" in await kube.reasons()
        # a longer timeout is a new attempt
        kubelet.paused = False
        await kube.update(
            lambda rs: rs["metadata"]["annotations"].update(
                {"raysvc.io/upgrade-timeout-seconds": "60"}
            )
        )

        async def upgraded() -> bool:
            services = await kube.services()
            return selected_cluster(services["rayservice-sample-serve-svc"]) not in ("", active)

        await eventually(upgraded)


async def test_a_refused_serve_config_is_reported_once_and_not_retried(
    rk_api: client.ApiClient, namespace: str, kubelet: FakeKubelet
) -> None:
    kube = Cluster(rk_api, namespace)
    async with running_reconciler(rk_api, namespace):
        active = await start(kube)
        head = kubelet.head(active)
        refusal = "1 validation error for ServeDeploySchema\napplications.0: bad"
        head.refuse = (400, refusal)
        puts_before = head.puts
        await kube.update(
            lambda rs: rs["spec"].update(
                serveConfigV2=rs["spec"]["serveConfigV2"].replace("price: 3", "price: 5")
            )
        )

        async def refused() -> dict[str, Any]:
            found = await condition(kube, "ServeConfigApplied")
            return found if found.get("reason") == "Refused" else {}

        found = await eventually(refused)
        assert "1 validation error for ServeDeploySchema" in found["message"]
        await asyncio.sleep(1.0)
        assert head.puts == puts_before + 1
        refusals = [e for e in await kube.events() if e["reason"] == "ServeConfigRefused"]
        assert [e.get("count", 1) for e in refusals] == [1]  # said once, not once per retry
        # a new serve config is tried again
        head.refuse = None
        await kube.update(
            lambda rs: rs["spec"].update(
                serveConfigV2=rs["spec"]["serveConfigV2"].replace("price: 5", "price: 6")
            )
        )

        async def applied() -> bool:
            return (await condition(kube, "ServeConfigApplied")).get("reason") == "Applied"

        await eventually(applied)
        assert head.puts == puts_before + 2


async def test_an_unreachable_dashboard_past_its_threshold_replaces_the_cluster(
    rk_api: client.ApiClient, namespace: str, kubelet: FakeKubelet
) -> None:
    kube = Cluster(rk_api, namespace)
    async with running_reconciler(rk_api, namespace):
        active = await start(kube, **{"spec.deploymentUnhealthySecondThreshold": 1})
        kubelet.head(active).dashboard_up = False

        async def replaced() -> str:
            services = await kube.services()
            serving = selected_cluster(services["rayservice-sample-serve-svc"])
            return serving if serving != active else ""

        new = await eventually(replaced, within=15)
        await eventually(lambda: _live_is(kube, {new}))
        assert "UnhealthyClusterReplaced" in await kube.reasons()
        assert kubelet.head(new).submissions


async def test_an_application_unhealthy_past_its_threshold_replaces_the_cluster(
    rk_api: client.ApiClient, namespace: str, kubelet: FakeKubelet
) -> None:
    kube = Cluster(rk_api, namespace)
    async with running_reconciler(rk_api, namespace):
        active = await start(kube, **{"spec.serviceUnhealthySecondThreshold": 1})
        kubelet.head(active).forced["math_app"] = "UNHEALTHY"

        async def replaced() -> str:
            services = await kube.services()
            serving = selected_cluster(services["rayservice-sample-serve-svc"])
            return serving if serving != active else ""

        new = await eventually(replaced, within=15)

        async def reported() -> bool:  # the status follows the switch in the same reconcile
            active = (await kube.rayservice())["status"]["activeServiceStatus"]
            apps = active.get("applicationStatuses") or {}
            return bool(
                active.get("rayClusterName") == new
                and apps.get("math_app", {}).get("status") == "RUNNING"
            )

        await eventually(reported, within=10)


async def test_a_serve_service_setting_is_applied_to_the_live_service_in_place(
    rk_api: client.ApiClient, namespace: str, kubelet: FakeKubelet
) -> None:
    kube = Cluster(rk_api, namespace)
    async with running_reconciler(rk_api, namespace):
        active = await start(kube)
        before = (await kube.services())["rayservice-sample-serve-svc"]

        def annotate(rs: dict[str, Any]) -> None:
            rs["spec"]["serveService"] = {
                "metadata": {"annotations": {"example.com/team": "fruit"}},
                "spec": {"ports": [{"name": "serve", "port": 9000, "targetPort": 8000}]},
            }

        updated = await kube.update(annotate)
        assert updated["metadata"]["annotations"]["raysvc.io/change"] == "settings"

        async def applied() -> dict[str, Any] | None:
            live = (await kube.services())["rayservice-sample-serve-svc"]
            ports = [(p["port"], p["targetPort"]) for p in live["spec"]["ports"]]
            notes = live["metadata"].get("annotations") or {}
            return live if ports == [(9000, 8000)] and notes.get("example.com/team") else None

        live = await eventually(applied)
        assert live["metadata"]["uid"] == before["metadata"]["uid"]
        assert live["spec"]["clusterIP"] == before["spec"]["clusterIP"]
        assert selected_cluster(live) == active
        assert await _live_is(kube, {active})


async def test_with_upgrade_strategy_none_cluster_changes_wait_and_serve_changes_apply(
    rk_api: client.ApiClient, namespace: str, kubelet: FakeKubelet
) -> None:
    kube = Cluster(rk_api, namespace)
    async with running_reconciler(rk_api, namespace):
        active = await start(kube, **{"spec.upgradeStrategy": {"type": "None"}})
        head = kubelet.head(active)

        def both(rs: dict[str, Any]) -> None:
            put(rs, VERSION, "2.100.0")
            text = rs["spec"]["serveConfigV2"]
            rs["spec"]["serveConfigV2"] = text.replace("price: 3", "price: 11")

        await kube.update(both)

        async def not_applied() -> dict[str, Any]:
            found = await condition(kube, "ClusterSpecApplied")
            return found if found.get("reason") == "UpgradeStrategyNone" else {}

        await eventually(not_applied)
        await eventually(lambda: _is(submitted_prices(head), {"price": 11}))
        await asyncio.sleep(0.6)
        assert await _live_is(kube, {active})


async def _is(value: object, expected: object) -> bool:
    return value == expected
