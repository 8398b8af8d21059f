"""The RayCluster controller on localkube: what ``kubectl`` shows at walkthrough step 4, and how
it keeps the Pods (scale, ``workersToDelete``, clamping, a deleted Pod, suspend), with a fake
kubelet marking Pods ready."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from kubernetes_asyncio import client

from localkube import LocalKube
from reconciler.manager import Reconciler
from tests.integration.reconciler.fakeray import FakeKubelet
from tests.integration.reconciler.support import eventually, metric_total, running_reconciler
from tests.raycluster_objects import CLUSTER_NAME, sample_cluster

pytestmark = pytest.mark.asyncio(loop_scope="session")

KUBECTL = Path("/usr/bin/kubectl")
GROUP, VERSION, PLURAL = "ray.io", "v1", "rayclusters"
Obj = dict[str, Any]


class Clusters:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        # patch calls take _content_type, which the client's stubs do not declare
        self.custom: Any = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    async def create(self, **group: Any) -> None:
        cluster = sample_cluster()
        for key in ("uid", "resourceVersion", "creationTimestamp", "generation"):
            del cluster["metadata"][key]
        cluster["metadata"]["namespace"] = self.namespace
        cluster["spec"]["workerGroupSpecs"][0].update(group)
        await self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, cluster
        )

    async def get(self) -> Obj:
        got: Obj = await self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, CLUSTER_NAME
        )
        return got

    async def edit_group(self, **changes: Any) -> None:
        """Change the worker group as a user or the autoscaler would (merge patch)."""
        group = {**(await self.get())["spec"]["workerGroupSpecs"][0], **changes}
        await self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            CLUSTER_NAME,
            {"spec": {"workerGroupSpecs": [group]}},
            _content_type="application/merge-patch+json",
        )

    async def pods(self, node_type: str = "") -> list[Obj]:
        listed = await self.core.list_namespaced_pod(self.namespace)
        pods = [self.api.sanitize_for_serialization(p) for p in listed.items]
        return [
            p
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and (not node_type or p["metadata"]["labels"].get("ray.io/node-type") == node_type)
        ]

    async def workers(self, count: int) -> list[Obj] | None:
        found = await self.pods("worker")
        return found if len(found) == count else None

    async def ready(self) -> Obj | None:
        cluster = await self.get()
        status = cluster.get("status") or {}
        wanted = status.get("desiredWorkerReplicas")
        if status.get("state") == "ready" and status.get("availableWorkerReplicas") == wanted:
            return cluster
        return None

    async def reasons(self) -> list[str]:
        listed = await self.core.list_namespaced_event(self.namespace)
        return [e.reason for e in listed.items]


@pytest_asyncio.fixture(loop_scope="session")
async def clusters(
    rk_api: client.ApiClient, namespace: str, kubelet: FakeKubelet
) -> AsyncIterator[tuple[Clusters, Reconciler]]:
    async with running_reconciler(rk_api, namespace, controllers=("raycluster",)) as reconciler:
        yield Clusters(rk_api, namespace), reconciler


async def kubectl(kube: LocalKube, work: Path, namespace: str, *args: str) -> str:
    config = kube.write_kubeconfig(work / "kubeconfig", namespace=namespace)
    process = await asyncio.create_subprocess_exec(
        str(KUBECTL),
        "--cache-dir",
        str(work / "cache"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "KUBECONFIG": str(config), "HOME": str(work)},
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


@pytest.mark.kubectl
@pytest.mark.skipif(not KUBECTL.exists(), reason="/usr/bin/kubectl is not installed")
async def test_kubectl_shows_walkthrough_step_4_and_an_idle_cluster_costs_no_write(
    rk_kube: LocalKube, clusters: tuple[Clusters, Reconciler], namespace: str, tmp_path: Path
) -> None:
    api, reconciler = clusters
    await api.create()
    await eventually(api.ready)
    table = (await kubectl(rk_kube, tmp_path, namespace, "get", "raycluster")).splitlines()
    assert table[0].split()[:5] == ["NAME", "DESIRED", "WORKERS", "AVAILABLE", "WORKERS"]
    row = table[1].split()
    assert row[:3] == [CLUSTER_NAME, "1", "1"]
    assert row[3:6] == ["2500m", "4Gi", "ready"]
    pods = await kubectl(
        rk_kube, tmp_path, namespace, "get", "pods", "-l", "ray.io/is-ray-node=yes", "-o", "name"
    )
    names = sorted(pods.split())
    assert len(names) == 2
    assert names[0].startswith(f"pod/{CLUSTER_NAME}-head-")
    assert len(names[0]) == len(f"pod/{CLUSTER_NAME}-head-") + 5
    assert names[1].startswith(f"pod/{CLUSTER_NAME}-small-group-worker-")
    services = await kubectl(rk_kube, tmp_path, namespace, "get", "services", "-o", "name")
    assert f"service/{CLUSTER_NAME}-head-svc" in services.split()
    described = await kubectl(rk_kube, tmp_path, namespace, "describe", "raycluster", CLUSTER_NAME)
    for reason in ("CreatedService", "CreatedHeadPod", "CreatedWorkerPod"):
        assert reason in described
    # An event on the idle cluster wakes the controller, which finds nothing to write.
    await asyncio.sleep(1.0)  # let the last status settle
    reconciles = metric_total(reconciler, "raysvc_reconciles_total")
    revision = rk_kube.revision
    await kubectl(rk_kube, tmp_path, namespace, "annotate", names[1], "touched=yes")
    await asyncio.sleep(1.5)
    assert metric_total(reconciler, "raysvc_reconciles_total") > reconciles
    assert rk_kube.revision == revision + 1  # the annotation, and nothing after it


async def test_workers_scale_up_and_the_autoscaler_chooses_which_go(
    clusters: tuple[Clusters, Reconciler],
) -> None:
    api, _ = clusters
    await api.create(replicas=3)
    workers = await eventually(lambda: api.workers(3))
    doomed = workers[0]["metadata"]["name"]
    await api.edit_group(replicas=2, scaleStrategy={"workersToDelete": [doomed]})

    async def seen() -> tuple[list[str], Any]:
        left = [p["metadata"]["name"] for p in await api.pods("worker")]
        group = (await api.get())["spec"]["workerGroupSpecs"][0]
        return left, (group.get("scaleStrategy") or {}).get("workersToDelete")

    async def scaled_down() -> bool:
        left, doomed_list = await seen()
        return len(left) == 2 and doomed not in left and doomed_list == []

    try:
        await eventually(scaled_down)
    except AssertionError as e:
        raise AssertionError(f"workers and workersToDelete: {await seen()}") from e
    await eventually(api.ready)


async def test_replicas_beyond_max_are_clamped_with_a_warning(
    clusters: tuple[Clusters, Reconciler],
) -> None:
    api, _ = clusters
    await api.create(replicas=9)
    await eventually(lambda: api.workers(5))
    await asyncio.sleep(0.5)
    assert len(await api.pods("worker")) == 5
    assert (await api.reasons()).count("ReplicasOutOfBounds") == 1


async def test_a_deleted_pod_comes_back_and_suspend_deletes_every_pod(
    clusters: tuple[Clusters, Reconciler],
) -> None:
    api, _ = clusters
    await api.create()
    await eventually(api.ready)
    (worker,) = await api.pods("worker")
    await api.core.delete_namespaced_pod(worker["metadata"]["name"], api.namespace)

    async def replaced() -> bool:
        now = await api.pods("worker")
        return len(now) == 1 and now[0]["metadata"]["name"] != worker["metadata"]["name"]

    await eventually(replaced)
    await api.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        api.namespace,
        PLURAL,
        CLUSTER_NAME,
        {"spec": {"suspend": True}},
        _content_type="application/merge-patch+json",
    )

    async def empty() -> bool:  # terminating Pods count: suspend ends every process
        return not (await api.core.list_namespaced_pod(api.namespace)).items

    await eventually(empty)
