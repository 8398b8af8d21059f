"""The node keeps working when the API server fails it: status writes that time out or keep
failing, Endpoints writes that time out, seen through the API and the Pods' namespaces."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from localkube import Fault
from localkube.node import ApiFailure
from tests.nodekit import Cluster, eventually, local_cluster, needs_root, netns_names, pod, service

pytestmark = [needs_root, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

NS = "default"
NS_PATH = f"/api/v1/namespaces/{NS}"
PODS = f"{NS_PATH}/pods"
SERVICES = f"{NS_PATH}/services"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    async with local_cluster(tmp_path_factory.mktemp("faults"), restart_backoff=0.2) as c:
        yield c


@contextlib.contextmanager
def short_requests(cluster: Cluster, seconds: float) -> Iterator[None]:
    """The node's API requests time out after ``seconds`` (watches keep their own limit)."""
    before = cluster.api.timeout
    cluster.api.timeout = seconds
    try:
        yield
    finally:
        cluster.api.timeout = before
        cluster.kube.faults.clear()


def pod_sandboxes(cluster: Cluster) -> list[str]:
    return [n for n in netns_names(cluster.node.network.id) if not n.endswith("-c")]


async def running(cluster: Cluster, name: str) -> dict[str, Any]:
    async def check() -> dict[str, Any]:
        found = await cluster.pod(NS, name)
        status = found.get("status") or {}
        assert status.get("phase") == "Running", status
        assert status.get("podIP"), status
        return found

    return await eventually(check, within=30)


async def gone(cluster: Cluster, name: str) -> bool:
    try:
        await cluster.pod(NS, name)
    except ApiFailure as e:
        return e.code == 404
    return False


async def test_a_pods_status_is_written_after_a_status_write_timed_out(cluster: Cluster) -> None:
    with short_requests(cluster, 1.0):
        slow = cluster.kube.faults.add(
            Fault(verb="patch", resource="pods", subresource="status", code=504, delay=3)
        )
        await cluster.create(PODS, pod("late-status", ["sleep", "600"]))
        await running(cluster, "late-status")
        assert slow.hits == 1
    await cluster.api.request("DELETE", f"{PODS}/late-status")
    await eventually(lambda: gone(cluster, "late-status"), within=30)


async def test_a_deleted_pods_sandbox_is_removed_when_its_last_status_writes_time_out(
    cluster: Cluster,
) -> None:
    before = pod_sandboxes(cluster)
    await cluster.create(
        PODS, pod("last-status", ["sleep", "600"], terminationGracePeriodSeconds=1)
    )
    await running(cluster, "last-status")
    assert len(pod_sandboxes(cluster)) == len(before) + 1
    with short_requests(cluster, 1.0):
        cluster.kube.faults.add(
            Fault(
                verb="patch", resource="pods", subresource="status", code=504, delay=3, times=None
            )
        )
        await cluster.api.request("DELETE", f"{PODS}/last-status")

        async def removed() -> bool:
            return await gone(cluster, "last-status") and pod_sandboxes(cluster) == before

        await eventually(removed, within=30)


async def test_status_writes_that_keep_failing_back_off_and_are_logged_once(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="localkube.node.pods")
    with short_requests(cluster, 30.0):
        failing = cluster.kube.faults.fail(
            500, verb="patch", resource="pods", subresource="status", times=None
        )
        started = time.monotonic()
        await cluster.create(PODS, pod("refused-status", ["sleep", "600"]))

        async def retried() -> bool:
            return failing.hits >= 5

        await eventually(retried, within=30)
        # waits of 0.1, 0.2, 0.4 and 0.8 s (at least) lie between five attempts
        assert time.monotonic() - started >= 1.5
        cluster.kube.faults.clear()
        await running(cluster, "refused-status")
    warnings = [r for r in caplog.records if r.getMessage() == "pod status failed"]
    assert len(warnings) == 1
    await cluster.api.request("DELETE", f"{PODS}/refused-status")
    await eventually(lambda: gone(cluster, "refused-status"), within=30)


async def test_the_service_proxy_serves_after_an_endpoints_write_timed_out(
    cluster: Cluster,
) -> None:
    probe = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    body = pod(
        "echo-web",
        ["python", "-m", "http.server", "8080"],
        labels={"app": "echo-web"},
        readinessProbe=probe,
    )
    with short_requests(cluster, 1.0):
        slow = cluster.kube.faults.add(
            Fault(verb="update", resource="endpoints", code=504, delay=3, times=1)
        )
        await cluster.create(PODS, body)
        created = await cluster.create(
            SERVICES, service("echo-web", {"app": "echo-web"}, [{"port": 80, "targetPort": 8080}])
        )
        ip = created["spec"]["clusterIP"]
        await cluster.answers_http(ip, within=30)

        async def listed() -> bool:
            try:
                found = await cluster.api.request("GET", f"{NS_PATH}/endpoints/echo-web")
            except ApiFailure as e:
                if e.code != 404:
                    raise
                return False
            return bool(found.get("subsets"))

        await eventually(listed, within=30)
        assert slow.hits == 1
    await cluster.api.request("DELETE", f"{SERVICES}/echo-web")
    await cluster.api.request("DELETE", f"{PODS}/echo-web")
    await eventually(lambda: gone(cluster, "echo-web"), within=30)
