"""The RayCluster controller's plans against an API server: localkube, the project's CRDs, kubectl.

The reconciler's machinery (informers, the executor) is not under test here: a few lines below
read the objects with kubernetes-asyncio, perform each action with one API call, and play the
kubelet. What is under test is that every manifest the plans create is accepted as written, that
generateName, the status subresource with its resourceVersion precondition, the guarded JSON
patch and the owner references behave as the plans expect, and that ``kubectl get raycluster``
shows walkthrough step 4.2's columns.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes_asyncio import client

from localkube import LocalKube, Settings
from rayservice.crd import rayservice_crds
from reconciler.actions import Create, Delete, JsonPatch, Plan, RecordEvent, WriteStatus
from reconciler.raycluster import Observed, lookups, plan
from tests.raycluster_objects import CLUSTER_NAME, sample_cluster

KUBECTL = Path("/usr/bin/kubectl")
GROUP, VERSION, PLURAL = "ray.io", "v1", "rayclusters"

pytestmark = pytest.mark.timeout(120)

Obj = dict[str, Any]


class Api:
    """Just enough of an observer and an executor to run plans against an API server."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        # Manifests go out as JSON objects, not the client's model classes.
        self.core: Any = client.CoreV1Api(api)
        self.rbac: Any = client.RbacAuthorizationV1Api(api)
        self.custom: Any = client.CustomObjectsApi(api)

    def _json(self, obj: object) -> Obj:
        return cast(Obj, self.api.sanitize_for_serialization(obj))

    async def _get(self, call: Any, name: str) -> Obj | None:
        try:
            return self._json(await call(name, self.namespace))
        except client.ApiException as e:
            if e.status == 404:
                return None
            raise

    async def observe(self, name: str) -> Observed:
        cluster = await self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        where = lookups(cluster)
        selector = ",".join(f"{k}={v}" for k, v in where.pod_selector.items())
        pods = await self.core.list_namespaced_pod(self.namespace, label_selector=selector)
        return Observed(
            cluster=cluster,
            pods=tuple(self._json(p) for p in pods.items),
            head_service=await self._get(self.core.read_namespaced_service, where.head_service),
            headless_service=await self._get(
                self.core.read_namespaced_service, where.headless_service
            ),
            service_account=await self._get(
                self.core.read_namespaced_service_account, where.service_account
            ),
            role=await self._get(self.rbac.read_namespaced_role, where.role),
            role_binding=await self._get(
                self.rbac.read_namespaced_role_binding, where.role_binding
            ),
        )

    async def perform(self, actions: Plan) -> None:
        for action in actions.actions:
            if isinstance(action, Create):
                await self._create(dict(action.obj))
            elif isinstance(action, Delete):
                options = client.V1DeleteOptions(
                    preconditions=client.V1Preconditions(uid=action.ref.uid)
                )
                await self.core.delete_namespaced_pod(action.ref.name, self.namespace, body=options)
            elif isinstance(action, WriteStatus):
                current = await self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, action.ref.name
                )
                current["metadata"]["resourceVersion"] = action.ref.resource_version
                current["status"] = dict(action.status)
                await self.custom.replace_namespaced_custom_object_status(
                    GROUP, VERSION, self.namespace, PLURAL, action.ref.name, current
                )
            elif isinstance(action, JsonPatch):
                await self.custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    action.ref.name,
                    list(action.ops),
                    _content_type="application/json-patch+json",
                )
            elif isinstance(action, RecordEvent):
                await self.core.create_namespaced_event(
                    self.namespace,
                    {
                        "metadata": {"generateName": f"{action.regarding.name}."},
                        "involvedObject": {
                            "apiVersion": action.regarding.api_version,
                            "kind": action.regarding.kind,
                            "name": action.regarding.name,
                            "namespace": self.namespace,
                            "uid": action.regarding.uid,
                        },
                        "type": action.type,
                        "reason": action.reason,
                        "message": action.message,
                    },
                )
            else:
                raise AssertionError(action)

    async def _create(self, manifest: Obj) -> None:
        kind = manifest["kind"]
        if kind == "Pod":
            await self.core.create_namespaced_pod(self.namespace, manifest)
        elif kind == "Service":
            await self.core.create_namespaced_service(self.namespace, manifest)
        elif kind == "ServiceAccount":
            await self.core.create_namespaced_service_account(self.namespace, manifest)
        elif kind == "Role":
            await self.rbac.create_namespaced_role(self.namespace, manifest)
        elif kind == "RoleBinding":
            await self.rbac.create_namespaced_role_binding(self.namespace, manifest)
        else:
            raise AssertionError(kind)

    async def edit_group(self, **changes: Any) -> None:
        """Change the sample's worker group as a user or the autoscaler would (merge patch)."""
        group = {**sample_cluster()["spec"]["workerGroupSpecs"][0], **changes}
        await self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            CLUSTER_NAME,
            {"spec": {"workerGroupSpecs": [group]}},
            _content_type="application/merge-patch+json",
        )

    async def kubelet(self) -> None:
        """Mark every Pod Running and Ready, with an IP."""
        pods = await self.core.list_namespaced_pod(self.namespace)
        for index, pod in enumerate(pods.items):
            body = self._json(pod)
            body["status"] = {
                "phase": "Running",
                "podIP": f"127.0.0.{index + 10}",
                "conditions": [{"type": "Ready", "status": "True"}],
            }
            await self.core.replace_namespaced_pod_status(pod.metadata.name, self.namespace, body)

    async def converge(self, name: str, *, rounds: int = 6) -> int:
        for applied in range(rounds):
            actions = plan(await self.observe(name), datetime.now(UTC))
            if not actions.actions:
                return applied
            await self.perform(actions)
            await self.kubelet()
        raise AssertionError(f"no convergence in {rounds} reconciles")


async def kubectl(kube: LocalKube, work: Path, *args: str) -> str:
    config = kube.write_kubeconfig(work / "kubeconfig", namespace="default")
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


async def start(api: client.ApiClient) -> Api:
    extensions = client.ApiextensionsV1Api(api)
    for crd in rayservice_crds():
        await extensions.create_custom_resource_definition(cast(Any, crd))
    cluster = sample_cluster()
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation"):
        del cluster["metadata"][key]
    store = Api(api, "default")
    await store.custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, cluster)
    return store


async def poll(check: Any, *, seconds: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@pytest.mark.kubectl
@pytest.mark.skipif(not KUBECTL.exists(), reason="/usr/bin/kubectl is not installed")
async def test_the_sample_converges_and_kubectl_shows_walkthrough_step_4(tmp_path: Path) -> None:
    async with (
        LocalKube(Settings()) as kube,
        client.ApiClient(client.Configuration(host=kube.url)) as raw,
    ):
        api = await start(raw)
        assert await api.converge(CLUSTER_NAME) == 2
        assert plan(await api.observe(CLUSTER_NAME), datetime.now(UTC)) == Plan()

        table = (await kubectl(kube, tmp_path, "get", "raycluster")).splitlines()
        assert table[0].split()[:5] == ["NAME", "DESIRED", "WORKERS", "AVAILABLE", "WORKERS"]
        row = table[1].split()
        assert row[:3] == [CLUSTER_NAME, "1", "1"]
        assert row[3:6] == ["2500m", "4Gi", "ready"]

        pods = await kubectl(
            kube, tmp_path, "get", "pods", "-l", "ray.io/is-ray-node=yes", "-o", "name"
        )
        names = sorted(pods.split())
        assert len(names) == 2
        assert names[0].startswith(f"pod/{CLUSTER_NAME}-head-")
        assert names[1].startswith(f"pod/{CLUSTER_NAME}-small-group-worker-")
        assert len(names[0]) == len(f"pod/{CLUSTER_NAME}-head-") + 5

        described = await kubectl(kube, tmp_path, "describe", "raycluster", CLUSTER_NAME)
        for reason in ("CreatedService", "CreatedHeadPod", "CreatedWorkerPod"):
            assert reason in described

        # Deleting the RayCluster takes its Pods and Service with it (owner references).
        await api.custom.delete_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, CLUSTER_NAME
        )

        async def all_gone() -> bool:
            left = await api.core.list_namespaced_pod("default")
            services = await api.core.list_namespaced_service("default")
            return not left.items and not [
                s for s in services.items if s.metadata.name != "kubernetes"
            ]

        await poll(all_gone)


async def test_scale_down_by_workers_to_delete_and_a_stale_status_write_are_refused_safely() -> (
    None
):
    async with (
        LocalKube(Settings()) as kube,
        client.ApiClient(client.Configuration(host=kube.url)) as raw,
    ):
        api = await start(raw)
        await api.edit_group(replicas=3)
        await api.converge(CLUSTER_NAME)
        workers = [
            p
            for p in (await api.observe(CLUSTER_NAME)).pods
            if p["metadata"]["labels"]["ray.io/node-type"] == "worker"
        ]
        assert len(workers) == 3
        doomed = workers[0]["metadata"]["name"]
        # The autoscaler's scale-down: replicas 2, and which worker goes.
        await api.edit_group(replicas=2, scaleStrategy={"workersToDelete": [doomed]})
        observed = await api.observe(CLUSTER_NAME)
        stale = plan(observed, datetime.now(UTC))
        await api.perform(stale)
        after = await api.observe(CLUSTER_NAME)
        names = [
            p["metadata"]["name"]
            for p in after.pods
            if p["metadata"]["labels"]["ray.io/node-type"] == "worker"
        ]
        assert doomed not in names
        assert len(names) == 2
        assert (
            after.cluster["spec"]["workerGroupSpecs"][0]["scaleStrategy"]["workersToDelete"] == []
        )
        # Replaying the same plan now: its status write is pinned to an old resourceVersion.
        writes = Plan(tuple(a for a in stale.actions if isinstance(a, WriteStatus)))
        with pytest.raises(client.ApiException) as conflict:
            await api.perform(writes)
        assert conflict.value.status == 409
        # ... and its patch tests a list that is no longer there.
        patches = Plan(tuple(a for a in stale.actions if isinstance(a, JsonPatch)))
        with pytest.raises(client.ApiException) as invalid:
            await api.perform(patches)
        assert invalid.value.status == 422
        assert await api.converge(CLUSTER_NAME) == 1  # the new generation's status, then quiet
