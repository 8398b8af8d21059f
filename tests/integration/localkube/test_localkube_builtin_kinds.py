"""The built-in kinds a real cluster's users apply (apps, batch, RBAC, policy, discovery,
networking), through the real kubectl: stored, defaulted, validated, discovered, printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from tests.integration.localkube.conftest import KUBECTL, Kubectl
from tests.integration.localkube.helpers import manifest

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.kubectl,
    pytest.mark.skipif(
        not KUBECTL.exists(), reason="/usr/bin/kubectl is not installed on this machine"
    ),
]


def _template(app: str, *, restart: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": app, "image": f"example/{app}:1"}]}
    if restart:
        spec["restartPolicy"] = restart
    return {"metadata": {"labels": {"app": app}}, "spec": spec}


def _selected(app: str) -> dict[str, Any]:
    return {"selector": {"matchLabels": {"app": app}}, "template": _template(app)}


def workloads(suffix: str) -> list[dict[str, Any]]:
    """One manifest of every built-in kind (cluster-scoped names carry ``suffix``)."""
    rbac = "rbac.authorization.k8s.io"
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, **_selected("web")},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "rset"},
            "spec": _selected("rset"),
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {"serviceName": "db", **_selected("db")},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "agent"},
            "spec": _selected("agent"),
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once"},
            "spec": {"template": _template("once", restart="Never")},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "nightly"},
            "spec": {
                "schedule": "0 3 * * *",
                "jobTemplate": {"spec": {"template": _template("nightly", restart="OnFailure")}},
            },
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "Role",
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "default"}],
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"viewer-{suffix}"},
            "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}],
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"viewer-{suffix}"},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": f"viewer-{suffix}"},
            "subjects": [{"kind": "User", "name": "alice", "apiGroup": rbac}],
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.0.0.1"]}],
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "web"},
            "spec": {
                "rules": [
                    {
                        "host": "web.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "web", "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ]
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny"},
            "spec": {"podSelector": {}},
        },
    ]


async def _versions(kubectl: Kubectl, path: str) -> dict[str, str]:
    code, out, err = await kubectl("get", "-f", path, "-o", "json")
    assert code == 0, err
    listed = json.loads(out)
    return {
        f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
        for o in listed["items"]
    }


async def test_kubectl_apply_stores_every_built_in_kind_and_reapplying_changes_nothing(
    kubectl: Kubectl, tmp_path: Path, kube_namespace: str
) -> None:
    suffix = kube_namespace
    path = manifest(tmp_path, *workloads(suffix))
    code, out, err = await kubectl("apply", "-f", path)
    assert code == 0, err
    created = out.splitlines()
    assert created == [
        "deployment.apps/web created",
        "replicaset.apps/rset created",
        "statefulset.apps/db created",
        "daemonset.apps/agent created",
        "job.batch/once created",
        "cronjob.batch/nightly created",
        "role.rbac.authorization.k8s.io/reader created",
        "rolebinding.rbac.authorization.k8s.io/reader created",
        f"clusterrole.rbac.authorization.k8s.io/viewer-{suffix} created",
        f"clusterrolebinding.rbac.authorization.k8s.io/viewer-{suffix} created",
        "poddisruptionbudget.policy/web created",
        "endpointslice.discovery.k8s.io/web-1 created",
        "ingress.networking.k8s.io/web created",
        "networkpolicy.networking.k8s.io/deny created",
    ]
    versions = await _versions(kubectl, path)
    code, out, err = await kubectl("apply", "-f", path)
    assert code == 0, err
    # kubectl's patch for a PDB is never empty (its selector's patch strategy is "replace"),
    # so it says "configured" against any API server; the server finds nothing to change.
    assert out.splitlines() == [
        line.replace(" created", " configured" if "poddisruptionbudget" in line else " unchanged")
        for line in created
    ]
    assert await _versions(kubectl, path) == versions  # nothing was written
    await kubectl("delete", "clusterrole,clusterrolebinding", f"viewer-{suffix}")


async def test_get_prints_the_columns_of_kube_apiservers_printers(
    kubectl: Kubectl, tmp_path: Path, kube_namespace: str
) -> None:
    await kubectl("apply", "-f", manifest(tmp_path, *workloads(kube_namespace)))
    code, out, err = await kubectl("get", "deployments")
    assert code == 0, err
    assert out.splitlines()[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert out.splitlines()[1].split()[:4] == ["web", "0/2", "0", "0"]
    code, out, _ = await kubectl("get", "deployment", "web", "-o", "wide")
    assert out.splitlines()[0].split()[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert out.splitlines()[1].split()[5:] == ["web", "example/web:1", "app=web"]
    code, out, _ = await kubectl("get", "jobs")
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert out.splitlines()[1].split()[:3] == ["once", "Running", "0/1"]
    code, out, _ = await kubectl("get", "rolebindings")
    assert out.splitlines()[0].split() == ["NAME", "ROLE", "AGE"]
    assert out.splitlines()[1].split()[:2] == ["reader", "Role/reader"]
    code, out, _ = await kubectl("get", "roles")
    assert out.splitlines()[0].split() == ["NAME", "CREATED", "AT"]
    code, out, _ = await kubectl("get", "pdb")
    assert out.splitlines()[1].split()[:4] == ["web", "N/A", "1", "0"]
    await kubectl("delete", "clusterrole,clusterrolebinding", f"viewer-{kube_namespace}")


async def test_discovery_lists_built_in_groups_before_custom_ones_so_rs_means_replicasets(
    kubectl: Kubectl, tmp_path: Path, kube_namespace: str
) -> None:
    code, out, err = await kubectl("api-resources", "--api-group=apps", "-o", "name")
    assert code == 0, err
    assert out.split() == [
        "daemonsets.apps",
        "deployments.apps",
        "replicasets.apps",
        "statefulsets.apps",
    ]
    await kubectl("apply", "-f", manifest(tmp_path, workloads(kube_namespace)[1]))
    code, out, err = await kubectl("get", "rs", "-o", "name")
    assert (code, out.split()) == (0, ["replicaset.apps/rset"]), err


async def test_a_workload_without_selector_is_invalid_with_kube_apiservers_wording(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bad"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "c"}]},
            }
        },
    }
    code, _, err = await kubectl("apply", "-f", manifest(tmp_path, bad))
    assert code == 1
    assert err.splitlines() == [
        'The Deployment "bad" is invalid: ',
        "* spec.selector: Required value",
        '* spec.template.metadata.labels: Invalid value: map[string]string{"app":"x"}: `selector` does not match template `labels`',
        "* spec.template.spec.containers[0].image: Required value",
    ]


async def test_a_job_needs_a_restart_policy_and_gets_its_selector_from_its_uid(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    template = _template("j")
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {"template": template},
    }
    code, _, err = await kubectl("apply", "-f", manifest(tmp_path, job))
    assert code == 1
    assert err.strip() == (
        'The Job "j" is invalid: spec.template.spec.restartPolicy: '
        'Required value: valid values: "OnFailure", "Never"'
    )
    template["spec"]["restartPolicy"] = "Never"
    code, _, err = await kubectl("apply", "-f", manifest(tmp_path, job))
    assert code == 0, err
    code, out, _ = await kubectl("get", "job", "j", "-o", "json")
    stored = json.loads(out)
    uid = stored["metadata"]["uid"]
    assert stored["spec"]["selector"] == {
        "matchLabels": {"batch.kubernetes.io/controller-uid": uid}
    }
    assert stored["spec"]["template"]["metadata"]["labels"]["job-name"] == "j"
    assert (stored["spec"]["backoffLimit"], stored["spec"]["completions"]) == (6, 1)


async def test_a_bindings_role_ref_cannot_change(kubectl: Kubectl, tmp_path: Path) -> None:
    binding = workloads("x")[7]
    await kubectl("apply", "-f", manifest(tmp_path, binding))
    binding["roleRef"]["name"] = "writer"
    code, _, err = await kubectl("apply", "-f", manifest(tmp_path, binding))
    assert code == 1
    assert 'The RoleBinding "reader" is invalid: roleRef: Invalid value:' in err
    assert "cannot change roleRef" in err


async def test_a_deployment_counts_generations_and_merges_containers_by_name(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    deployment = workloads("x")[0]
    containers = deployment["spec"]["template"]["spec"]["containers"]
    containers.append({"name": "sidecar", "image": "example/sidecar:1"})
    await kubectl("apply", "-f", manifest(tmp_path, deployment))
    code, out, _ = await kubectl("get", "deployment", "web", "-o", "yaml")
    stored = yaml.safe_load(out)
    assert stored["metadata"]["generation"] == 1
    assert stored["spec"]["strategy"]["rollingUpdate"] == {
        "maxSurge": "25%",
        "maxUnavailable": "25%",
    }
    assert stored["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    code, out, err = await kubectl("set", "image", "deployment/web", "web=example/web:2")
    assert code == 0, err
    code, out, err = await kubectl("label", "deployment", "web", "tier=front")
    assert code == 0, err
    code, out, _ = await kubectl("get", "deployment", "web", "-o", "json")
    stored = json.loads(out)
    assert stored["metadata"]["generation"] == 2  # the label is not a spec change
    assert stored["metadata"]["labels"]["tier"] == "front"
    containers = stored["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [
        ("web", "example/web:2"),  # merged by name: the other container is untouched
        ("sidecar", "example/sidecar:1"),
    ]


async def test_core_kinds_print_kube_apiservers_columns(
    kubectl: Kubectl, core: client.CoreV1Api, kube_namespace: str
) -> None:
    await kubectl("create", "configmap", "c", "--from-literal=a=b", "--from-literal=c=d")
    await kubectl("run", "p", "--image=x")
    await kubectl("create", "service", "clusterip", "s", "--tcp=80:8080")
    _, out, err = await kubectl("get", "configmap", "c")
    assert [line.split()[:2] for line in out.splitlines()] == [["NAME", "DATA"], ["c", "2"]], err
    _, out, _ = await kubectl("get", "pod", "p")
    assert out.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert out.splitlines()[1].split()[:4] == ["p", "0/1", "Pending", "0"]
    _, out, _ = await kubectl("get", "service", "s")
    assert out.splitlines()[0].split() == [
        "NAME",
        "TYPE",
        "CLUSTER-IP",
        "EXTERNAL-IP",
        "PORT(S)",
        "AGE",
    ]
    service = await core.read_namespaced_service("s", kube_namespace)
    assert out.splitlines()[1].split()[:5] == [
        "s",
        "ClusterIP",
        service.spec.cluster_ip,
        "<none>",
        "80/TCP",
    ]
