"""The local node runs real Ray: KubeRay-shaped Pods become Ready through their probes, the
sample's Serve apps answer through a Service's cluster IP and a host port, the seed's
interactive steps work through kubectl (exec ``ray status``, port-forward to the dashboard, a
curl Pod asking the serve Service), two heads with the standard ports run side by side, the
serve Service switches between them without a failed request, and deleting the Pods leaves no
process or namespace behind.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml

from localkube.node import netns
from localkube.node.apps import build_sample_apps
from tests.e2e.node.raypods import head_pod, head_service, serve_service, worker_pod
from tests.nodekit import (
    Cluster,
    PortForward,
    alive,
    eventually,
    local_cluster,
    needs_root,
    netns_names,
)

pytestmark = [
    pytest.mark.e2e,
    needs_root,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(600),
]

NS = "default"
SAMPLE = Path(__file__).parents[3] / "examples" / "rayservice-sample.yaml"


def serve_config(*, mango_price: int = 3, mango_replicas: int = 2) -> dict[str, Any]:
    """The sample's serveConfigV2 as the JSON the dashboard takes."""
    sample = yaml.safe_load(SAMPLE.read_text())
    config: dict[str, Any] = yaml.safe_load(sample["spec"]["serveConfigV2"])
    mango = config["applications"][0]["deployments"][0]
    mango["user_config"]["price"] = mango_price
    mango["num_replicas"] = mango_replicas
    return config


async def deploy(cluster: Cluster, http: aiohttp.ClientSession, head: str, config: Any) -> None:
    """PUT the Serve config on the head's dashboard and wait until every app is RUNNING."""
    pod = await cluster.ready(NS, head, within=120)
    url = f"http://{pod['status']['podIP']}:8265/api/serve/applications/"

    async def accepted() -> bool:
        try:
            async with http.put(url, json=config) as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    await eventually(accepted, within=60)

    async def running() -> bool:
        async with http.get(url) as response:
            apps = (await response.json())["applications"]
        return bool(apps) and all(a["status"] == "RUNNING" for a in apps.values())

    await eventually(running, within=120)


async def post(http: aiohttp.ClientSession, url: str, body: Any) -> Any:
    """The answer: JSON decoded, or the text of a plain-text answer (Serve sends a str so)."""
    async with http.post(url, json=body, timeout=aiohttp.ClientTimeout(total=10)) as response:
        text = await response.text()
        assert response.status == 200, text
        if response.content_type == "application/json":
            return json.loads(text)
        return text


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ray(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """Cluster "blue": a head and a worker, the sample's apps deployed on it."""
    build_sample_apps()
    async with local_cluster(tmp_path_factory.mktemp("node")) as cluster:
        base = f"/api/v1/namespaces/{NS}"
        await cluster.create(f"{base}/services", head_service("blue"))
        await cluster.create(f"{base}/services", serve_service("sample-serve-svc", "blue"))
        await cluster.create(f"{base}/pods", head_pod("blue"))
        await cluster.create(f"{base}/pods", worker_pod("blue", NS))
        async with aiohttp.ClientSession(connector=cluster.node.network.connector()) as http:
            await cluster.ready(NS, "blue-worker", within=120)
            await deploy(cluster, http, "blue-head", serve_config())
        yield cluster


async def test_the_fruit_stand_answers_through_the_cluster_ip_and_a_host_port(
    ray: Cluster,
) -> None:
    service = await ray.api.request("GET", f"/api/v1/namespaces/{NS}/services/sample-serve-svc")
    cluster_ip = service["spec"]["clusterIP"]
    async with aiohttp.ClientSession(connector=ray.node.network.connector()) as inside:
        assert await post(inside, f"http://{cluster_ip}:8000/fruit/", ["MANGO", 2]) == 6
        calc = f"http://{cluster_ip}:8000/calc/"
        assert await post(inside, calc, ["MUL", 3]) == "15 pizzas please!"
        assert await post(inside, calc, ["ADD", 2]) == "5 pizzas please!"
    exposed = await ray.node.expose(NS, "sample-serve-svc", 8000)
    async with aiohttp.ClientSession() as host:
        url = f"http://127.0.0.1:{exposed.port}/fruit/"
        assert await post(host, url, ["MANGO", 2]) == 6
        assert await post(host, url, ["KIWI", 2]) == -1
    head = await ray.pod(NS, "blue-head")
    path = "jsonpath={.subsets[0].addresses[*].ip}:{.subsets[0].ports[0].port}"
    endpoints = await ray.kubectl("get", "endpoints", "sample-serve-svc", "-o", path)
    assert endpoints == f"{head['status']['podIP']}:8000"


async def test_kubectl_logs_show_what_the_ray_head_printed(ray: Cluster) -> None:
    logs = await ray.kubectl("logs", "blue-head")
    assert "Ray runtime started" in logs
    tail = await ray.kubectl("logs", "blue-worker", "-c", "ray-worker", "--tail=50")
    assert tail.strip()


async def test_workers_join_the_head_through_its_headless_service_name(ray: Cluster) -> None:
    logs = await ray.kubectl("logs", "blue-worker")
    assert "Ray runtime started" in logs
    state = await ray.kubectl("get", "pods", "-o", "wide")
    assert state.count("Running") == 2


async def test_the_seeds_interactive_steps_reach_the_ray_pods_through_kubectl(
    ray: Cluster,
) -> None:
    """Steps 5.2 and 6.1-6.3 of the seed walkthrough, on hand-made Ray Pods and Services."""
    code, out, err = await ray.run_kubectl("exec", "blue-head", "--", "ray", "status")
    assert code == 0, err
    assert "Node status" in out
    active = out.split("Active:")[1].split("Pending:")[0]
    assert active.count("node_") == 2, out  # the head and the worker
    forward = await PortForward.start(ray, "svc/blue-head-svc", 8265)
    try:
        async with (
            aiohttp.ClientSession() as host,
            host.get(f"http://127.0.0.1:{forward.port}/api/version") as response,
        ):
            assert response.status == 200
            assert "ray_version" in await response.json()
    finally:
        await forward.stop()
    await ray.create(
        f"/api/v1/namespaces/{NS}/services", serve_service("rayservice-sample-serve-svc", "blue")
    )
    code, out, err = await ray.run_kubectl(
        "run",
        "curl",
        "--image=radial/busyboxplus:curl",
        "--rm",
        "-i",
        "--restart=Never",
        "--",
        "curl",
        "-s",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "rayservice-sample-serve-svc:8000/fruit/",
        "-d",
        '["MANGO", 2]',
        within=120,
    )
    assert code == 0, err
    assert out.startswith("6"), out
    assert out.removeprefix("6").strip() == 'pod "curl" deleted'


async def test_a_second_head_with_the_standard_ports_serves_and_the_service_switches_to_it(
    ray: Cluster,
) -> None:
    base = f"/api/v1/namespaces/{NS}"
    await ray.create(f"{base}/services", head_service("green"))
    await ray.create(f"{base}/pods", head_pod("green"))
    async with aiohttp.ClientSession(connector=ray.node.network.connector()) as inside:
        await deploy(ray, inside, "green-head", serve_config(mango_price=4, mango_replicas=1))
    exposed = await ray.node.expose(NS, "sample-serve-svc", 8000)
    url = f"http://127.0.0.1:{exposed.port}/fruit/"
    answers: list[Any] = []
    failures: list[str] = []
    switched = asyncio.Event()

    async def client() -> None:
        # Bounded: at most 60 s and 3,000 requests, about 50 per second, new connection each.
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            for _ in range(3000):
                if time.monotonic() > deadline or (switched.is_set() and answers[-20:] == [8] * 20):
                    return
                try:
                    answers.append(await post(s, url, ["MANGO", 2]))
                except (aiohttp.ClientError, AssertionError, TimeoutError) as e:
                    failures.append(repr(e))
                await asyncio.sleep(0.02)

    load = asyncio.create_task(client())
    await eventually(lambda: _count(answers, 6, 20), within=30)
    patch = [{"op": "replace", "path": "/spec/selector/ray.io~1cluster", "value": "green"}]
    await ray.api.request(
        "PATCH",
        f"{base}/services/sample-serve-svc",
        body=patch,
        content_type="application/json-patch+json",
    )
    switched.set()
    await load
    print(f"requests: {len(answers) + len(failures)}, failed: {len(failures)}")
    assert failures == []
    assert answers[-1] == 8
    first_green = answers.index(8)
    assert set(answers[:first_green]) == {6}
    assert set(answers[first_green:]) == {8}


async def _count(answers: list[Any], value: Any, n: int) -> bool:
    return answers.count(value) >= n


async def test_deleting_the_pods_ends_their_processes_and_namespaces(ray: Cluster) -> None:
    sandboxes = list(ray.node.network._sandboxes.values())
    assert len(sandboxes) == 3
    paths = [s.path for s in sandboxes]
    pids = [pid for path in paths for pid in netns.pids_in(path)]
    assert pids
    started = time.monotonic()
    await ray.kubectl("delete", "pods", "--all", "--timeout=60s")
    elapsed = time.monotonic() - started
    print(f"three Ray pods deleted in {elapsed:.1f} s")

    async def gone() -> bool:
        return not alive(pids)

    await eventually(gone, within=15)

    async def namespaces_removed() -> bool:
        return netns_names(ray.node.network.id) == [ray.node.network.cluster_netns]

    await eventually(namespaces_removed, within=15)
    assert "No resources found" in await ray.kubectl("get", "pods", check=False)
