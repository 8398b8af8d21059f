"""The node agent runs Pods as processes: probes, status, logs, restarts, environment, DNS,
cluster IPs and graceful deletion, seen through the API and the real kubectl (no Ray here).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from localkube.node import ApiFailure, netns
from tests.nodekit import Cluster, alive, eventually, local_cluster, needs_root, pod, service

pytestmark = [needs_root, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

NS = "default"
PODS = f"/api/v1/namespaces/{NS}/pods"
SERVICES = f"/api/v1/namespaces/{NS}/services"
WEB = ["python", "-m", "http.server", "8080"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    async with local_cluster(tmp_path_factory.mktemp("node"), restart_backoff=0.2) as c:
        yield c


async def test_a_pod_becomes_ready_through_its_http_probe_and_reports_its_ip(
    cluster: Cluster,
) -> None:
    probe = {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}
    body = pod("web", WEB, labels={"app": "web"}, readinessProbe=probe)
    body["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080}]
    await cluster.create(PODS, body)
    ready = await cluster.ready(NS, "web")
    status = ready["status"]
    assert status["phase"] == "Running"
    assert status["podIP"].startswith("10.244.")
    assert ready["spec"]["nodeName"] == "localkube-node"
    [container] = status["containerStatuses"]
    assert container["ready"]
    assert container["started"]
    assert container["restartCount"] == 0
    assert "running" in container["state"]
    nodes = (await cluster.kubectl("get", "nodes")).splitlines()
    assert nodes[0].split() == ["NAME", "STATUS", "VERSION", "AGE"]
    assert nodes[1].split()[:2] == ["localkube-node", "Ready"]


async def test_a_cluster_ip_reaches_ready_pods_and_endpoints_list_them(cluster: Cluster) -> None:
    await cluster.ready(NS, "web")
    created = await cluster.create(
        SERVICES, service("web", {"app": "web"}, [{"name": "http", "port": 80, "targetPort": 8080}])
    )
    ip = created["spec"]["clusterIP"]
    await cluster.answers_http(ip, within=10)
    web = await cluster.pod(NS, "web")
    path = "jsonpath={.subsets[0].addresses[0].ip}:{.subsets[0].ports[0].port}"
    endpoints = await cluster.kubectl("get", "endpoints", "web", "-o", path)
    assert endpoints == f"{web['status']['podIP']}:8080"


async def test_pods_resolve_service_names_in_every_form(cluster: Cluster) -> None:
    service_ip = (await cluster.api.request("GET", f"{SERVICES}/web"))["spec"]["clusterIP"]
    script = (
        "getent hosts web && getent hosts web.default && "
        "getent hosts web.default.svc.cluster.local && wget -q -O- http://web/ >/dev/null && "
        "echo fetched"
    )
    await cluster.create(PODS, pod("dns", ["sh", "-c", script], restartPolicy="Never"))

    async def finished() -> bool:
        return bool((await cluster.pod(NS, "dns"))["status"].get("phase") == "Succeeded")

    await eventually(finished)
    logs = await cluster.kubectl("logs", "dns")
    assert logs.count(service_ip) == 3
    assert "fetched" in logs


async def test_the_environment_expands_references_and_shows_the_pod_ip_and_cpus(
    cluster: Cluster,
) -> None:
    env = [
        {"name": "GREETING", "value": "hello"},
        {"name": "MESSAGE", "value": "$(GREETING) from $(POD_NAME)"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]
    script = 'echo "$MESSAGE|$POD_IP|$(cat /sys/fs/cgroup/cpu.max)|$(id -u)"'
    body = pod(
        "env",
        ["sh", "-c", script],
        env=env,
        restartPolicy="Never",
        resources={"requests": {"cpu": "500m"}},
        securityContext={"runAsUser": 65534},
    )
    await cluster.create(PODS, body)

    async def printed() -> str:
        return (await cluster.kubectl("logs", "env")).strip()

    line = await eventually(printed)
    # $(POD_NAME) is defined after MESSAGE, so it stays as written (kubelet's expansion).
    message, ip, cpu_max, uid = line.split("|")
    assert message == "hello from $(POD_NAME)"
    assert ip == (await cluster.pod(NS, "env"))["status"]["podIP"]
    assert cpu_max == "100000 100000"
    assert uid == "65534"


async def test_a_failing_container_restarts_and_logs_of_the_previous_run_stay(
    cluster: Cluster,
) -> None:
    await cluster.create(PODS, pod("crash", ["sh", "-c", "echo run $RANDOM; sleep 0.3; exit 3"]))

    async def restarted() -> dict[str, Any]:
        status = (await cluster.pod(NS, "crash"))["status"]
        [container] = status.get("containerStatuses") or [{}]
        assert int(container.get("restartCount", 0)) >= 2
        return dict(container)

    container = await eventually(restarted)
    last = container["lastState"]
    assert isinstance(last, dict)
    assert last["terminated"]["exitCode"] == 3
    assert "run" in await cluster.kubectl("logs", "crash", "--previous")


async def test_a_failing_liveness_probe_restarts_the_container(cluster: Cluster) -> None:
    probe = {
        "exec": {"command": ["test", "-f", "alive"]},
        "periodSeconds": 1,
        "failureThreshold": 2,
    }
    body = pod(
        "sick", ["sh", "-c", "touch alive; sleep 2; rm alive; sleep 60"], livenessProbe=probe
    )
    await cluster.create(PODS, body)

    async def restarted() -> bool:
        status = (await cluster.pod(NS, "sick"))["status"]
        return any(c.get("restartCount", 0) >= 1 for c in status.get("containerStatuses") or [])

    await eventually(restarted, within=30)
    events = await cluster.kubectl("get", "events", "--field-selector=involvedObject.name=sick")
    assert "Liveness probe failed" in events


async def test_kubectl_logs_follow_streams_until_the_container_ends(cluster: Cluster) -> None:
    script = "for i in 1 2 3; do echo line $i; sleep 0.3; done"
    await cluster.create(PODS, pod("talk", ["sh", "-c", script], restartPolicy="Never"))
    await eventually(lambda: _phase_in(cluster, "talk", ("Running", "Succeeded")), within=20)
    started = time.monotonic()
    logs = await cluster.kubectl("logs", "-f", "talk")
    assert logs.split() == ["line", "1", "line", "2", "line", "3"]
    assert time.monotonic() - started < 10


async def _phase_in(cluster: Cluster, name: str, phases: tuple[str, ...]) -> bool:
    return (await cluster.pod(NS, name))["status"].get("phase") in phases


async def test_delete_sends_sigterm_then_sigkill_after_the_grace_period(cluster: Cluster) -> None:
    stubborn = "trap 'echo got TERM' TERM; while true; do sleep 0.1; done"
    body = pod("stubborn", ["sh", "-c", stubborn], terminationGracePeriodSeconds=2)
    await cluster.create(PODS, body)
    ready = await cluster.ready(NS, "stubborn")
    sandbox = next(
        s for s in cluster.node.network._sandboxes.values() if s.ip == ready["status"]["podIP"]
    )
    pids = netns.pids_in(sandbox.path)
    assert pids
    deleted = await cluster.api.request("DELETE", f"{PODS}/stubborn")
    assert deleted["metadata"]["deletionGracePeriodSeconds"] == 2
    started = time.monotonic()

    async def gone() -> bool:
        pods = await cluster.api.request("GET", PODS)
        return all(p["metadata"]["name"] != "stubborn" for p in pods["items"])

    await eventually(gone, within=15)
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 8
    assert not alive(pids)
    assert not sandbox.path.exists()


async def test_a_service_switches_to_the_pods_its_new_selector_picks_at_once(
    cluster: Cluster,
) -> None:
    for name in ("blue", "green"):
        script = (
            f"mkdir -p s && echo {name} > s/index.html && cd s && exec python -m http.server 8080"
        )
        await cluster.create(PODS, pod(name, ["sh", "-c", script], labels={"color": name}))
        await cluster.ready(NS, name)
    created = await cluster.create(
        SERVICES, service("color", {"color": "blue"}, [{"port": 80, "targetPort": 8080}])
    )
    url = f"http://{created['spec']['clusterIP']}/"
    async with aiohttp.ClientSession(connector=cluster.node.network.connector()) as http:

        async def color() -> str:
            try:
                async with http.get(url) as response:
                    return (await response.text()).strip()
            except aiohttp.ClientError:
                return ""

        assert await eventually(color, within=10) == "blue"
        patch = [{"op": "replace", "path": "/spec/selector/color", "value": "green"}]
        await cluster.api.request(
            "PATCH", f"{SERVICES}/color", body=patch, content_type="application/json-patch+json"
        )
        await eventually(lambda: _is(color, "green"), within=5)
        answers = [await color() for _ in range(20)]
        assert set(answers) == {"green"}


async def _is(probe: object, value: str) -> bool:
    assert callable(probe)
    return bool(await probe() == value)


async def test_a_terminating_pod_still_ready_is_serving_but_not_ready_in_its_endpointslice(
    cluster: Cluster,
) -> None:
    stubborn = "trap 'echo got TERM' TERM; while true; do sleep 0.1; done"
    body = pod(
        "draining",
        ["sh", "-c", stubborn],
        labels={"app": "draining"},
        terminationGracePeriodSeconds=30,
    )
    await cluster.create(PODS, body)
    await cluster.ready(NS, "draining")
    await cluster.create(
        SERVICES, service("draining", {"app": "draining"}, [{"port": 80, "targetPort": 8080}])
    )
    path = f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices/draining-local"

    async def conditions(terminating: bool) -> dict[str, Any] | None:
        try:
            endpoints = (await cluster.api.request("GET", path)).get("endpoints") or []
        except ApiFailure as e:
            if e.code != 404:
                raise
            return None
        found: dict[str, Any] | None = endpoints[0]["conditions"] if endpoints else None
        return found if found and found["terminating"] == terminating else None

    serving = {"ready": True, "serving": True, "terminating": False}
    assert await eventually(lambda: conditions(False), within=10) == serving
    await cluster.api.request("DELETE", f"{PODS}/draining")
    draining = {"ready": False, "serving": True, "terminating": True}
    assert await eventually(lambda: conditions(True), within=10) == draining
    now = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0}
    await cluster.api.request("DELETE", f"{PODS}/draining", body=now)
    await cluster.api.request("DELETE", f"{SERVICES}/draining")


async def test_stopping_the_node_removes_its_namespaces_and_directories(
    tmp_path: Path,
) -> None:
    async with local_cluster(tmp_path) as c:
        await c.create(PODS, pod("sleeper", ["sleep", "300"]))
        await c.ready(NS, "sleeper")
        instance, directory = c.node.network.id, c.node.network.directory
        sandbox = next(iter(c.node.network._sandboxes.values()))
        pids = netns.pids_in(sandbox.path)
        assert len(pids) == 1
    assert not any(n.startswith(f"rsv{instance}-") for n in _netns())
    assert not directory.exists()
    await asyncio.sleep(0)
    assert not alive(pids)


def _netns() -> list[str]:
    try:
        return [p.name for p in Path("/run/netns").iterdir()]
    except FileNotFoundError:
        return []
