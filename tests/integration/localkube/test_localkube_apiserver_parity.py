"""Where localkube once answered differently from kube-apiserver, pinned through the real kubectl
and raw requests: DeleteOptions in a DELETE body, no-op server-side apply, Tables in watches,
deprecated CRD versions."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client

from localkube import LocalKube, protobuf
from tests.integration.localkube.conftest import KUBECTL, Kubectl
from tests.integration.localkube.helpers import eventually, manifest, merge_patch, raw, rayservice

pytestmark = [pytest.mark.asyncio(loop_scope="session")]

needs_kubectl = pytest.mark.skipif(
    not KUBECTL.exists(), reason="/usr/bin/kubectl is not installed on this machine"
)


def configmap(name: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"a": "1"})


# DeleteOptions in the body ----------------------------------------------------------------------
@pytest.mark.kubectl
@needs_kubectl
async def test_delete_dry_run_sent_in_the_body_deletes_nothing(
    kubectl: Kubectl, core: client.CoreV1Api, kube_namespace: str
) -> None:
    await core.create_namespaced_config_map(kube_namespace, configmap("kept"))
    code, out, err = await kubectl("delete", "configmap", "kept", "--dry-run=server")
    assert (code, out.strip()) == (0, 'configmap "kept" deleted (server dry run)'), err
    code, out, err = await kubectl("delete", "configmaps", "--all", "--dry-run=server")
    assert code == 0, err
    assert (await core.read_namespaced_config_map("kept", kube_namespace)).data == {"a": "1"}


async def test_delete_preconditions_in_the_body_are_409_on_mismatch(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    created = await core.create_namespaced_config_map(kube_namespace, configmap("pre"))
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps/pre"
    status, body, _ = await raw(
        localkube.url, "DELETE", path, body={"preconditions": {"uid": "other"}}
    )
    assert status == 409
    assert body["message"] == (
        'Operation cannot be fulfilled on configmaps "pre": Precondition failed: UID in '
        f"precondition: other, UID in object meta: {created.metadata.uid}"
    )
    status, body, _ = await raw(
        localkube.url, "DELETE", path, body={"preconditions": {"resourceVersion": "1"}}
    )
    assert status == 409
    status, body, _ = await raw(localkube.url, "DELETE", path, body={"gracePeriodSeconds": "soon"})
    assert (status, body["message"]) == (
        400,
        "json: cannot unmarshal string into Go struct field DeleteOptions.gracePeriodSeconds "
        "of type int64",
    )
    status, body, _ = await raw(
        localkube.url,
        "DELETE",
        path,
        body={"preconditions": {"uid": created.metadata.uid}, "propagationPolicy": "Orphan"},
    )
    assert status == 200


async def test_delete_collection_honours_a_dry_run_in_the_body(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    await core.create_namespaced_config_map(kube_namespace, configmap("coll"))
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps"
    status, body, _ = await raw(localkube.url, "DELETE", path, body={"dryRun": ["All"]})
    assert status == 200
    assert [i["metadata"]["name"] for i in body["items"]] == ["coll"]
    assert (await core.read_namespaced_config_map("coll", kube_namespace)).metadata.name == "coll"


async def test_a_protobuf_delete_body_carries_its_dry_run(
    localkube: LocalKube, core: client.CoreV1Api, kube_namespace: str
) -> None:
    await core.create_namespaced_config_map(kube_namespace, configmap("keep"))
    options = protobuf.encode(
        {"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions", "dryRun": ["All"]}
    )
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps/keep"
    async with (
        aiohttp.ClientSession() as session,
        session.delete(
            localkube.url + path,
            data=options,
            headers={"Content-Type": protobuf.MEDIA_TYPE, "Accept": "application/json"},
        ) as response,
    ):
        assert response.status == 200
    assert (await core.read_namespaced_config_map("keep", kube_namespace)).metadata.name == "keep"


async def test_a_grace_period_that_is_not_a_number_is_400(
    localkube: LocalKube, kube_namespace: str
) -> None:
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps/x?gracePeriodSeconds=abc"
    status, body, _ = await raw(localkube.url, "DELETE", path)
    assert (status, body["reason"]) == (400, "BadRequest")
    assert body["message"] == (
        'strconv.ParseInt: parsing "abc": invalid syntax for parameter gracePeriodSeconds'
    )


# no-op server-side apply --------------------------------------------------------------------------
async def _next_second(after: str) -> None:
    """Wait (polling) until the wall clock's second is past the timestamp ``after``."""

    async def later() -> bool:
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") > after

    await eventually(later, within=3)


@pytest.mark.kubectl
@needs_kubectl
async def test_an_identical_server_side_apply_is_a_no_op_that_keeps_the_resource_version(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}}
    for doc, what in ((cm, "configmap/ssa"), (rayservice("ssa"), "rayservice.ray.io/ssa")):
        path = manifest(tmp_path, doc)
        code, out, err = await kubectl("apply", "--server-side", "-f", path)
        assert (code, out.strip()) == (0, f"{what} serverside-applied"), err
        code, out, _ = await kubectl("get", what, "-o", "json", "--show-managed-fields")
        before = json.loads(out)["metadata"]
        await _next_second(before["managedFields"][0]["time"])
        code, out, err = await kubectl("apply", "--server-side", "-f", path)
        assert (code, out.strip()) == (0, f"{what} serverside-applied"), err
        code, out, _ = await kubectl("get", what, "-o", "json", "--show-managed-fields")
        after = json.loads(out)["metadata"]
        assert after["resourceVersion"] == before["resourceVersion"]
        assert after["managedFields"] == before["managedFields"]


# Tables in watches --------------------------------------------------------------------------------
def _deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "example/c:1"}]},
            },
        },
    }


@pytest.mark.kubectl
@needs_kubectl
async def test_get_watch_prints_every_event_as_a_table_row_under_one_header(
    kubectl: Kubectl, tmp_path: Path, kube_api: client.ApiClient, kube_namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    await apps.create_namespaced_deployment(kube_namespace, _deployment("w1"))  # type: ignore[arg-type]
    process = await asyncio.create_subprocess_exec(
        str(KUBECTL),
        "--cache-dir",
        str(tmp_path / "cache"),
        "get",
        "deployments",
        "--watch",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "KUBECONFIG": str(tmp_path / "kubeconfig"), "HOME": str(tmp_path)},
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            lines.append((await process.stdout.readline()).decode())
            lines.append((await process.stdout.readline()).decode())
            await apps.create_namespaced_deployment(kube_namespace, _deployment("w2"))  # type: ignore[arg-type]
            lines.append((await process.stdout.readline()).decode())
            await merge_patch(
                apps.patch_namespaced_deployment,
                "w1",
                kube_namespace,
                {"spec": {"replicas": 3}},
            )
            lines.append((await process.stdout.readline()).decode())
    finally:
        process.kill()
        await process.wait()
    rows = [line.split() for line in lines]
    assert rows[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert [r[:2] for r in rows[1:]] == [["w1", "0/1"], ["w2", "0/1"], ["w1", "0/3"]]
    assert all(len(r) == 5 for r in rows[1:])


# deprecated CRD versions --------------------------------------------------------------------------
def _widget_crd(group: str) -> dict[str, Any]:
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": schema},
                {
                    "name": "v1beta1",
                    "served": True,
                    "storage": False,
                    "deprecated": True,
                    "deprecationWarning": f"{group}/v1beta1 Widget is deprecated; use {group}/v1",
                    "schema": schema,
                },
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": False,
                    "deprecated": True,
                    "schema": schema,
                },
            ],
        },
    }


@pytest.mark.kubectl
@needs_kubectl
async def test_every_request_to_a_deprecated_crd_version_carries_its_warning(
    kubectl: Kubectl, tmp_path: Path, localkube: LocalKube, kube_namespace: str
) -> None:
    group = f"{kube_namespace}.example.com"
    crd = tmp_path / "crd.yaml"
    crd.write_text(json.dumps(_widget_crd(group)))
    code, _, err = await kubectl("apply", "-f", str(crd))
    assert code == 0, err
    try:
        widget = {"apiVersion": f"{group}/v1beta1", "kind": "Widget", "metadata": {"name": "w"}}
        code, _, err = await kubectl("apply", "-f", manifest(tmp_path, widget))
        assert code == 0, err
        warning = f"Warning: {group}/v1beta1 Widget is deprecated; use {group}/v1"
        assert warning in err.splitlines()
        code, _, err = await kubectl("get", f"widgets.v1beta1.{group}", "w")
        assert code == 0
        assert warning in err.splitlines()
        code, _, err = await kubectl("get", f"widgets.v1beta1.{group}", "absent")
        assert code == 1
        assert warning in err.splitlines()
        path = (
            f"/apis/{group}/v1alpha1/namespaces/{kube_namespace}/widgets?watch=1&timeoutSeconds=1"
        )
        status, _, warnings = await raw(localkube.url, "GET", path)
        assert (status, warnings) == (200, [f'299 - "{group}/v1alpha1 Widget is deprecated"'])
        code, _, err = await kubectl("get", f"widgets.v1.{group}", "w")
        assert (code, "Warning" in err) == (0, False)
    finally:
        await kubectl("delete", "-f", str(crd), "--wait=false")
