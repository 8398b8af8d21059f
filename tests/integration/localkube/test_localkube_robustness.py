"""Robustness kept as tests (small counts here; raise them through the environment variables
below for a soak): kill -9 loses no acknowledged write, concurrent watches see the exact
resourceVersion sequence, concurrent read-modify-write loses no update, and no random request
is answered with a 5xx."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes_asyncio import client, watch

from localkube import LocalKube

pytestmark = pytest.mark.asyncio(loop_scope="session")

KILL_CYCLES = int(os.environ.get("LOCALKUBE_KILL_CYCLES", "2"))
WATCHES = int(os.environ.get("LOCALKUBE_WATCHES", "20"))
WRITERS = int(os.environ.get("LOCALKUBE_WRITERS", "5"))
FUZZ_EXAMPLES = int(os.environ.get("LOCALKUBE_FUZZ_EXAMPLES", "150"))


async def _serve(state: Path) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "raysvc",
        "localkube",
        "--port",
        "0",
        "--state",
        str(state),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    return process, line.decode().strip()


async def test_kill_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    acknowledged: set[str] = set()
    for cycle in range(KILL_CYCLES):
        process, url = await _serve(state)
        some_written = asyncio.Event()
        try:
            async with client.ApiClient(client.Configuration(host=url)) as api:
                core = client.CoreV1Api(api)
                prefix = f"c{cycle}-"

                async def write(
                    name: str,
                    core: client.CoreV1Api = core,
                    prefix: str = prefix,
                    some_written: asyncio.Event = some_written,
                ) -> None:
                    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name))
                    await core.create_namespaced_config_map("default", body)
                    acknowledged.add(name)
                    if len([n for n in acknowledged if n.startswith(prefix)]) >= 20:
                        some_written.set()

                writers = [asyncio.create_task(write(f"{prefix}{i}")) for i in range(200)]
                await asyncio.wait_for(some_written.wait(), 30)
                process.send_signal(signal.SIGKILL)  # while the other writes are in flight
                await asyncio.gather(*writers, return_exceptions=True)
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
    process, url = await _serve(state)
    try:
        async with client.ApiClient(client.Configuration(host=url)) as api:
            stored = await client.CoreV1Api(api).list_namespaced_config_map("default")
        names = {cm.metadata.name for cm in stored.items}
        assert acknowledged <= names
        assert len(acknowledged) >= 20 * KILL_CYCLES
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)


async def test_concurrent_watches_see_the_exact_resource_version_sequence(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    listed = await core.list_namespaced_config_map(kube_namespace)
    start = listed.metadata.resource_version
    writes = 30
    configuration = client.Configuration(host=localkube.url)
    configuration.connection_pool_maxsize = WATCHES + 5  # one connection per open watch

    async def follow(watches: client.CoreV1Api) -> list[str]:
        seen: list[str] = []
        async with watch.Watch() as stream:
            stream.stream(
                watches.list_namespaced_config_map,
                kube_namespace,
                resource_version=start,
                timeout_seconds=30,
            )
            async for event in stream:
                seen.append(event["raw_object"]["metadata"]["resourceVersion"])
                if len(seen) == writes:
                    break
        return seen

    async with client.ApiClient(configuration) as api:
        watches = client.CoreV1Api(api)
        watchers = [asyncio.create_task(follow(watches)) for _ in range(WATCHES)]
        expected = []
        for i in range(writes):
            body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"w{i}"))
            created = await core.create_namespaced_config_map(kube_namespace, body)
            expected.append(created.metadata.resource_version)
        results = await asyncio.wait_for(asyncio.gather(*watchers), 60)
    assert all(seen == expected for seen in results)


async def test_concurrent_read_modify_write_loses_no_update(
    core: client.CoreV1Api, kube_namespace: str
) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="counter"), data={"n": "0"})
    await core.create_namespaced_config_map(kube_namespace, body)
    rounds = 20

    async def increment() -> None:
        for _ in range(rounds):
            for _attempt in range(200):  # a stale read conflicts and is retried, boundedly
                current = await core.read_namespaced_config_map("counter", kube_namespace)
                current.data["n"] = str(int(current.data["n"]) + 1)
                try:
                    await core.replace_namespaced_config_map("counter", kube_namespace, current)
                    break
                except client.ApiException as e:
                    if e.status != 409:  # a stale read conflicts; anything else is a failure
                        raise
            else:
                raise AssertionError("an increment lost every one of 200 attempts")

    await asyncio.wait_for(asyncio.gather(*(increment() for _ in range(WRITERS))), 60)
    final = await core.read_namespaced_config_map("counter", kube_namespace)
    assert final.data["n"] == str(WRITERS * rounds)


# no 5xx for any input -----------------------------------------------------------------------------
_PATHS = [
    "/api/v1/namespaces/{ns}/configmaps",
    "/api/v1/namespaces/{ns}/configmaps/x",
    "/api/v1/namespaces/{ns}/pods",
    "/api/v1/namespaces/{ns}/pods/p/log",
    "/api/v1/namespaces/{ns}/services/s/status",
    "/apis/apps/v1/namespaces/{ns}/deployments",
    "/apis/apps/v1/namespaces/{ns}/deployments/d",
    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/fuzz",
    "/apis/ray.io/v1/namespaces/{ns}/rayservices",
    "/apis/ray.io/v1/namespaces/{ns}/rayservices/r",
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/fuzz",
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/fuzz.example.com",
]
_CLUSTER_LEFTOVERS = _PATHS[7], _PATHS[10], _PATHS[11]
_PARAMS = [
    "watch",
    "timeoutSeconds",
    "limit",
    "continue",
    "labelSelector",
    "fieldSelector",
    "resourceVersion",
    "dryRun",
    "fieldValidation",
    "gracePeriodSeconds",
    "propagationPolicy",
    "tailLines",
    "allowWatchBookmarks",
    "force",
    "fieldManager",
]
_CONTENT = [
    "application/json",
    "application/yaml",
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/vnd.kubernetes.protobuf",
    "text/plain",
]
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
_objects = st.fixed_dictionaries(
    {},
    optional={
        "apiVersion": st.sampled_from(["v1", "apps/v1", "ray.io/v1", "x"]) | st.text(max_size=4),
        "kind": st.sampled_from(["ConfigMap", "Deployment", "RayService", "Pod"]) | _json,
        "metadata": st.fixed_dictionaries(
            {},
            optional={
                "name": st.sampled_from(["x", "d", "r", "fuzz"]) | _json,
                "labels": _json,
                "ownerReferences": _json,
                "finalizers": _json,
                "resourceVersion": _json,
            },
        )
        | _json,
        "spec": _json,
        "data": _json,
        "webhooks": _json,
    },
)
_requests = st.tuples(
    st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    st.sampled_from(_PATHS),
    st.lists(st.tuples(st.sampled_from(_PARAMS), st.text(max_size=6)), max_size=3),
    st.sampled_from(_CONTENT),
    _objects.map(lambda o: json.dumps(o).encode())
    | st.binary(max_size=40)
    | _json.map(lambda o: json.dumps(o).encode()),
)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_no_random_request_is_answered_with_a_server_error(
    localkube: LocalKube, kube_namespace: str, ray_crds: list[str]
) -> None:
    answers: list[tuple[int, str]] = []
    async with aiohttp.ClientSession() as session:
        loop = asyncio.get_running_loop()

        async def send(request: tuple[str, str, list[tuple[str, str]], str, bytes]) -> None:
            method, path, params, content_type, body = request
            url = localkube.url + path.format(ns=kube_namespace)
            query = [(k, v) for k, v in params]
            keys = {k for k, _ in query}
            if "watch" in keys and "timeoutSeconds" not in keys:  # every watch ends in time
                query.append(("timeoutSeconds", "1"))
            async with session.request(
                method,
                url,
                params=query,
                data=body if method != "GET" else None,
                headers={"Content-Type": content_type},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                await response.read()
                answers.append((response.status, f"{method} {path} {query} {body[:80]!r}"))

        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(_requests)
        def run(request: Any) -> None:
            future = asyncio.run_coroutine_threadsafe(send(request), loop)
            future.result(30)

        try:
            await asyncio.to_thread(run)
        finally:
            for path in _CLUSTER_LEFTOVERS:
                async with session.delete(localkube.url + path) as response:
                    await response.read()
    errors = [what for status, what in answers if status >= 500]
    assert errors == []
    assert len(answers) == FUZZ_EXAMPLES
