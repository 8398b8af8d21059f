"""The Pod subresources a node answers, as the API server sees them without a node: log
options (timestamps, since, kube-apiserver's checks), and the answers exec, attach and
port-forward get before any node is reached (no host, no node agent, wrong upgrade)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client

from localkube import LocalKube, MemoryLogs
from localkube.kubelet import KubeletError, PodRef, StreamOptions, Streams
from tests.integration.localkube.conftest import KUBECTL, Kubectl
from tests.integration.localkube.helpers import raw

pytestmark = [pytest.mark.asyncio(loop_scope="session")]

needs_kubectl = pytest.mark.skipif(
    not KUBECTL.exists(), reason="/usr/bin/kubectl is not installed on this machine"
)


async def _pod(core: client.CoreV1Api, namespace: str, name: str, node: str = "") -> None:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
    await core.create_namespaced_pod(namespace, body)  # type: ignore[arg-type]


@needs_kubectl
@pytest.mark.kubectl
async def test_kubectl_logs_prints_timestamps_and_skips_lines_older_than_since(
    kubectl: Kubectl, localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    await _pod(core, kube_namespace, "stamped")
    logs = localkube.logs
    assert isinstance(logs, MemoryLogs)
    logs.append(kube_namespace, "stamped", "main", "old line\n", at=time.time() - 3600)
    logs.append(kube_namespace, "stamped", "main", "new line\n")
    code, out, err = await kubectl("logs", "stamped", "--since=10m")
    assert (code, out) == (0, "new line\n"), err
    code, out, err = await kubectl("logs", "stamped", "--timestamps")
    assert code == 0, err
    old, new = out.splitlines()
    assert old.endswith("Z old line")
    assert new.endswith("Z new line")
    stamp = old.split()[0]  # RFC 3339 with nine fractional digits, as the kubelet prints it
    assert len(stamp) == len("2026-01-02T03:04:05.123456789Z")
    assert old.split()[0] < new.split()[0]
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
    code, out, err = await kubectl("logs", "stamped", f"--since-time={since}")
    assert (code, out) == (0, "new line\n"), err


async def test_log_options_are_checked_as_kube_apiserver_checks_them(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    await _pod(core, kube_namespace, "checked")
    base = f"/api/v1/namespaces/{kube_namespace}/pods/checked/log"
    cases = {
        "tailLines=-1": 'PodLogOptions "checked" is invalid: tailLines: Invalid value: -1: '
        "must be greater than or equal to 0",
        "limitBytes=0": 'PodLogOptions "checked" is invalid: limitBytes: Invalid value: 0: '
        "must be greater than 0",
        "sinceSeconds=0": 'PodLogOptions "checked" is invalid: sinceSeconds: Invalid value: 0: '
        "must be greater than 0",
        "sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z": 'PodLogOptions "checked" is invalid: '
        "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
    }
    for query, message in cases.items():
        status, body, _ = await raw(localkube.url, "GET", f"{base}?{query}")
        assert (status, body["reason"], body["message"]) == (422, "Invalid", message), query
    status, body, _ = await raw(localkube.url, "GET", f"{base}?sinceTime=yesterday")
    assert status == 400
    assert 'parsing time "yesterday"' in body["message"]
    pair = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pair"},
        "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "x"}]},
    }
    await core.create_namespaced_pod(kube_namespace, pair)  # type: ignore[arg-type]
    pair_logs = f"/api/v1/namespaces/{kube_namespace}/pods/pair/log"
    status, body, _ = await raw(localkube.url, "GET", pair_logs)
    assert (status, body["message"]) == (
        400,
        "a container name must be specified for pod pair, choose one of: [a b]",
    )
    status, body, _ = await raw(localkube.url, "GET", f"{base}?previous=true")
    assert (status, body["message"]) == (
        400,
        'previous terminated container "main" in pod "checked" not found',
    )


async def test_exec_attach_and_port_forward_are_listed_and_refused_before_a_node_is_reached(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    status, resources, _ = await raw(localkube.url, "GET", "/api/v1")
    verbs = {r["name"]: r["verbs"] for r in resources["resources"]}
    for sub in ("exec", "attach", "portforward"):
        assert verbs[f"pods/{sub}"] == ["create", "get"]
    await _pod(core, kube_namespace, "nowhere")
    await _pod(core, kube_namespace, "elsewhere", node="gone-node")
    pods = f"/api/v1/namespaces/{kube_namespace}/pods"
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Protocol": "v5.channel.k8s.io",
    }
    exec_query = "command=ls&stdout=true"
    answers = {
        f"{pods}/nowhere/exec?{exec_query}": (400, "pod nowhere does not have a host assigned"),
        f"{pods}/elsewhere/exec?{exec_query}": (
            503,
            'error dialing backend: no node agent serves node "gone-node" in this process',
        ),
        f"{pods}/elsewhere/exec?stdout=true": (400, "you must specify at least 1 command"),
        f"{pods}/elsewhere/attach": (
            400,
            "you must specify at least 1 of stdin, stdout, stderr",
        ),
        f"{pods}/elsewhere/exec?{exec_query}&container=other": (
            400,
            "container other is not valid for pod elsewhere",
        ),
    }
    for path, (code, message) in answers.items():
        status, body, _ = await raw(localkube.url, "GET", path, headers=upgrade)
        assert (status, body["message"]) == (code, message), path
    status, body, _ = await raw(localkube.url, "DELETE", f"{pods}/elsewhere/portforward")
    assert status == 405


class NodeWithoutPods:
    """A node agent that runs no Pod: every session is refused as the kubelet refuses it."""

    def check(self, pod: PodRef, container: str, *, attach: bool = False) -> None:
        raise KubeletError("pod does not exist")

    async def exec(self, pod: PodRef, options: StreamOptions, streams: Streams) -> int:
        raise KubeletError("pod does not exist")

    async def attach(self, pod: PodRef, options: StreamOptions, streams: Streams) -> None:
        raise KubeletError("pod does not exist")

    async def port_forward(
        self, pod: PodRef, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        raise KubeletError("pod does not exist")


async def test_upgrades_other_than_the_served_websocket_protocols_get_a_clear_400(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    node = NodeWithoutPods()
    localkube.kubelets.register(f"{kube_namespace}-node", node)
    try:
        await _pod(core, kube_namespace, "talker", node=f"{kube_namespace}-node")
        path = f"/api/v1/namespaces/{kube_namespace}/pods/talker"
        url = f"{localkube.url}{path}/exec?command=ls&stdout=1"
        status, body, _ = await raw(url, "POST", "", headers={"Upgrade": "SPDY/3.1"})
        assert status == 400
        assert body["message"].startswith("unable to upgrade connection: SPDY is not served")
        status, body, _ = await raw(url, "GET", "")
        assert (status, body["message"]) == (400, "Upgrade request required")
        handshake = {
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        }
        offered = {"Sec-WebSocket-Protocol": "channel.k8s.io, base64.channel.k8s.io"}
        status, body, _ = await raw(url, "GET", "", headers={**handshake, **offered})
        assert (status, body["message"]) == (
            400,
            "unable to upgrade connection: requested protocol(s) are not supported: "
            "[channel.k8s.io base64.channel.k8s.io]; "
            "supports [v5.channel.k8s.io v4.channel.k8s.io]",
        )
        offered = {"Sec-WebSocket-Protocol": "v5.channel.k8s.io"}
        status, body, _ = await raw(url, "GET", "", headers={**handshake, **offered})
        assert (status, body["reason"], body["message"]) == (
            404,
            "NotFound",
            "pod does not exist",
        )
        offered = {"Sec-WebSocket-Protocol": "SPDY/3.1+portforward.k8s.io"}
        forward = f"{localkube.url}{path}/portforward"
        status, body, _ = await raw(forward, "GET", "", headers={**handshake, **offered})
        assert (status, body["message"]) == (404, "pod does not exist")
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await session.ws_connect(forward, protocols=("portforward.k8s.io",))
        assert caught.value.status == 400
    finally:
        localkube.kubelets.unregister(f"{kube_namespace}-node", node)
