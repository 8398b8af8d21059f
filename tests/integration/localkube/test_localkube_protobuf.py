"""kubectl's typed generators send protobuf: create namespace|configmap|secret|deployment, run,
expose. localkube accepts it for the built-in kinds and answers protobuf to clients that ask."""

from __future__ import annotations

import json
import uuid

import aiohttp
import pytest
from kubernetes_asyncio import client

from localkube import LocalKube, protobuf
from tests.integration.localkube.conftest import KUBECTL, Kubectl

pytestmark = [pytest.mark.asyncio(loop_scope="session")]

needs_kubectl = pytest.mark.skipif(
    not KUBECTL.exists(), reason="/usr/bin/kubectl is not installed on this machine"
)


@pytest.mark.kubectl
@needs_kubectl
async def test_kubectls_typed_generators_create_objects_through_protobuf(
    kubectl: Kubectl, core: client.CoreV1Api, kube_namespace: str
) -> None:
    namespace = f"demo-{uuid.uuid4().hex[:8]}"
    steps = [
        (("create", "namespace", namespace), f"namespace/{namespace} created"),
        (("create", "configmap", "c", "--from-literal=a=b"), "configmap/c created"),
        (("create", "secret", "generic", "s", "--from-literal=p=q"), "secret/s created"),
        (("create", "deployment", "d", "--image=x"), "deployment.apps/d created"),
        (("run", "p", "--image=x"), "pod/p created"),
        (("expose", "deployment", "d", "--port=80"), "service/d exposed"),
    ]
    for args, said in steps:
        code, out, err = await kubectl(*args)
        assert (code, out.strip()) == (0, said), err
    configmap = await core.read_namespaced_config_map("c", kube_namespace)
    assert configmap.data == {"a": "b"}
    secret = await core.read_namespaced_secret("s", kube_namespace)
    assert secret.data == {"p": "cQ=="}
    code, out, err = await kubectl("get", "deployment", "d", "-o", "json")
    deployment = json.loads(out)
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "d"}}
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "x"
    service = await core.read_namespaced_service("d", kube_namespace)
    assert service.spec.ports[0].port == 80
    assert service.spec.selector == {"app": "d"}
    pod = await core.read_namespaced_pod("p", kube_namespace)
    assert pod.metadata.labels == {"run": "p"}
    await core.delete_namespace(namespace)


@pytest.mark.kubectl
@needs_kubectl
async def test_a_generator_keeps_a_zero_replica_count_it_sent(kubectl: Kubectl) -> None:
    code, out, err = await kubectl(
        "create", "deployment", "z", "--image=x", "--replicas=0", "--dry-run=server", "-o", "json"
    )
    assert code == 0, err
    assert json.loads(out)["spec"]["replicas"] == 0


async def _request(
    kube: LocalKube, method: str, path: str, body: bytes | None, *, accept: str, content_type: str
) -> tuple[int, str, bytes]:
    headers = {"Accept": accept, "Content-Type": content_type}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, kube.url + path, data=body, headers=headers) as response,
    ):
        return response.status, response.content_type, await response.read()


async def test_the_answer_is_protobuf_when_the_client_asks_for_it_first(
    localkube: LocalKube, kube_namespace: str
) -> None:
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "pb"},
        "data": {"k": "v"},
    }
    body = protobuf.encode(configmap)
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps"
    accept = f"{protobuf.MEDIA_TYPE}, application/json"
    status, media, raw = await _request(
        localkube, "POST", path, body, accept=accept, content_type=protobuf.MEDIA_TYPE
    )
    assert (status, media) == (201, protobuf.MEDIA_TYPE)
    created = protobuf.decode(raw)
    assert created["data"] == {"k": "v"}
    assert created["metadata"]["uid"]
    status, media, raw = await _request(
        localkube, "GET", path, None, accept=accept, content_type=protobuf.MEDIA_TYPE
    )
    assert (status, media) == (200, protobuf.MEDIA_TYPE)
    listed = protobuf.decode(raw)
    assert listed["kind"] == "ConfigMapList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["pb"]
    status, media, raw = await _request(
        localkube, "GET", f"{path}/absent", None, accept=accept, content_type=protobuf.MEDIA_TYPE
    )
    assert (status, media) == (404, protobuf.MEDIA_TYPE)
    assert protobuf.decode(raw)["message"] == 'configmaps "absent" not found'
    status, media, raw = await _request(
        localkube, "GET", path, None, accept="application/json", content_type="application/json"
    )
    assert (status, media) == (200, "application/json")


async def test_protobuf_for_a_custom_resource_is_unsupported_media(
    localkube: LocalKube, kube_namespace: str, ray_crds: list[str]
) -> None:
    path = f"/apis/ray.io/v1/namespaces/{kube_namespace}/rayservices"
    status, _, raw = await _request(
        localkube,
        "POST",
        path,
        protobuf.MAGIC,
        accept="application/json",
        content_type=protobuf.MEDIA_TYPE,
    )
    assert status == 415
    assert json.loads(raw)["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml"
    )
