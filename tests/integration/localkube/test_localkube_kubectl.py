"""The real ``/usr/bin/kubectl`` (1.32) against localkube with its default flags: apply
(client-side, --server-side, --dry-run=server), get (-l, -o yaml/json/jsonpath), describe,
delete --wait, api-resources, logs, and how webhook warnings and denials reach the user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kubernetes_asyncio import client

from localkube import LocalKube, MemoryLogs
from tests.integration.localkube.conftest import KUBECTL, Kubectl
from tests.integration.localkube.helpers import manifest, rayservice
from tests.integration.localkube.hookserver import Registrar

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.kubectl,
    pytest.mark.skipif(
        not KUBECTL.exists(), reason="/usr/bin/kubectl is not installed on this machine"
    ),
]


async def test_api_resources_lists_builtin_and_custom_resources(kubectl: Kubectl) -> None:
    code, out, err = await kubectl("api-resources")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "rs" in lines["rayservices"].split()
    assert "ray.io/v1" in lines["rayservices"]
    assert {"pods", "configmaps", "leases", "customresourcedefinitions"} <= set(lines)


async def test_client_side_apply_creates_then_configures_and_bumps_generation(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    rs = rayservice("cs")
    code, out, err = await kubectl("apply", "-f", manifest(tmp_path, rs))
    assert (code, out.strip()) == (0, "rayservice.ray.io/cs created"), err
    rs["spec"]["serviceUnhealthySecondThreshold"] = 30
    code, out, err = await kubectl("apply", "-f", manifest(tmp_path, rs))
    assert (code, out.strip()) == (0, "rayservice.ray.io/cs configured"), err
    code, out, _ = await kubectl("apply", "-f", manifest(tmp_path, rs))
    assert out.strip() == "rayservice.ray.io/cs unchanged"
    code, out, _ = await kubectl(
        "get", "rayservices", "cs", "-o", "jsonpath={.metadata.generation}"
    )
    assert out == "2"


async def test_client_side_apply_of_a_core_type_sends_a_strategic_merge_patch_that_works(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm"},
        "data": {"a": "1", "b": "2"},
    }
    code, out, err = await kubectl("apply", "-f", manifest(tmp_path, cm))
    assert code == 0, err
    cm["data"] = {"a": "1", "c": "3"}
    code, out, err = await kubectl("apply", "-f", manifest(tmp_path, cm))
    assert (code, out.strip()) == (0, "configmap/cm configured"), err
    code, out, _ = await kubectl("get", "cm", "cm", "-o", "json")
    assert json.loads(out)["data"] == {"a": "1", "c": "3"}


async def test_server_side_apply_applies_and_takes_over_from_client_side_apply(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    rs = rayservice("ss")
    code, out, err = await kubectl("apply", "--server-side", "-f", manifest(tmp_path, rs))
    assert (code, out.strip()) == (0, "rayservice.ray.io/ss serverside-applied"), err
    rs2 = rayservice("ss2")
    await kubectl("apply", "-f", manifest(tmp_path, rs2))
    rs2["spec"]["serviceUnhealthySecondThreshold"] = 12
    code, out, err = await kubectl("apply", "--server-side", "-f", manifest(tmp_path, rs2))
    assert (code, out.strip()) == (0, "rayservice.ray.io/ss2 serverside-applied"), err
    code, out, _ = await kubectl("get", "rayservices", "ss2", "-o", "yaml", "--show-managed-fields")
    managers = {e["manager"] for e in yaml.safe_load(out)["metadata"]["managedFields"]}
    assert "kubectl" in managers


async def test_server_dry_run_validates_without_storing(
    kubectl: Kubectl, tmp_path: Path, custom: client.CustomObjectsApi, kube_namespace: str
) -> None:
    code, out, err = await kubectl(
        "apply", "--dry-run=server", "-f", manifest(tmp_path, rayservice("dr"))
    )
    assert (code, out.strip()) == (0, "rayservice.ray.io/dr created (server dry run)"), err
    listed = await custom.list_namespaced_custom_object(
        "ray.io", "v1", kube_namespace, "rayservices"
    )
    assert listed["items"] == []
    bad = rayservice("dr", notAField=1)
    code, out, err = await kubectl("apply", "--dry-run=server", "-f", manifest(tmp_path, bad))
    assert code == 1
    assert 'strict decoding error: unknown field "spec.notAField"' in err


async def test_get_filters_by_label_and_prints_yaml_json_jsonpath_and_columns(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    a, b = rayservice("ga"), rayservice("gb")
    a["metadata"]["labels"] = {"app": "fruit"}
    await kubectl("apply", "-f", manifest(tmp_path, a, b))
    code, out, err = await kubectl("get", "rayservices", "-l", "app=fruit", "-o", "name")
    assert (code, out.split()) == (0, ["rayservice.ray.io/ga"]), err
    code, out, _ = await kubectl("get", "rayservices", "ga", "-o", "yaml")
    shown = yaml.safe_load(out)
    assert shown["kind"] == "RayService"
    assert shown["metadata"]["labels"] == {"app": "fruit"}
    code, out, _ = await kubectl("get", "rayservices", "-o", "json")
    assert [i["metadata"]["name"] for i in json.loads(out)["items"]] == ["ga", "gb"]
    code, out, _ = await kubectl("get", "rayservices", "-o", "jsonpath={.items[*].metadata.name}")
    assert out == "ga gb"
    code, out, _ = await kubectl("get", "rayservices")
    assert out.splitlines()[0].split() == ["NAME", "SERVICE", "STATUS", "READY", "AGE"]
    assert out.splitlines()[1].split()[0] == "ga"


async def test_describe_prints_the_object_and_its_events(
    kubectl: Kubectl, tmp_path: Path, core: client.CoreV1Api, kube_namespace: str
) -> None:
    await kubectl("apply", "-f", manifest(tmp_path, rayservice("desc")))
    code, out, _ = await kubectl("get", "rayservices", "desc", "-o", "jsonpath={.metadata.uid}")
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="desc.1"),
        involved_object=client.V1ObjectReference(
            api_version="ray.io/v1",
            kind="RayService",
            name="desc",
            namespace=kube_namespace,
            uid=out,
        ),
        reason="ClusterCreated",
        message="created the RayCluster",
        type="Normal",
        count=1,
    )
    await core.create_namespaced_event(kube_namespace, event)
    code, out, err = await kubectl("describe", "rayservice", "desc")
    assert code == 0, err
    assert "Name:         desc" in out
    assert "Kind:         RayService" in out
    assert "ClusterCreated" in out
    assert "created the RayCluster" in out


async def test_delete_waits_until_the_object_is_gone(kubectl: Kubectl, tmp_path: Path) -> None:
    path = manifest(tmp_path, rayservice("del"))
    await kubectl("apply", "-f", path)
    code, out, err = await kubectl("delete", "-f", path, "--wait")
    assert (code, out.strip()) == (0, 'rayservice.ray.io "del" deleted'), err
    code, _, err = await kubectl("get", "rayservices", "del")
    assert code == 1
    assert 'rayservices.ray.io "del" not found' in err


async def test_logs_come_from_the_pluggable_log_source(
    kubectl: Kubectl, tmp_path: Path, localkube: LocalKube, kube_namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "logger"},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }
    await kubectl("apply", "-f", manifest(tmp_path, pod))
    logs = localkube.logs
    assert isinstance(logs, MemoryLogs)
    logs.append(kube_namespace, "logger", "main", "hello\nworld\n")
    code, out, err = await kubectl("logs", "logger")
    assert (code, out) == (0, "hello\nworld\n"), err
    code, out, _ = await kubectl("logs", "logger", "--tail=1")
    assert out == "world\n"


async def test_webhook_warnings_are_printed_and_denials_read_like_kube_apiserver(
    kubectl: Kubectl, tmp_path: Path, register: Registrar
) -> None:
    await register("/warn?msg=serve+config+will+be+redeployed", mutating=True)
    code, _out, err = await kubectl("apply", "-f", manifest(tmp_path, rayservice("hooked")))
    assert code == 0, err
    assert "Warning: serve config will be redeployed" in err
    name = await register("/deny?msg=upgradeStrategy+None+is+not+allowed")
    path = manifest(tmp_path, rayservice("denied"))
    code, _, err = await kubectl("apply", "-f", path)
    assert code == 1
    assert err.strip().startswith("Error from server")
    assert (
        f'error when creating "{path}": admission webhook "{name}" denied the request: '
        "upgradeStrategy None is not allowed"
    ) in err
