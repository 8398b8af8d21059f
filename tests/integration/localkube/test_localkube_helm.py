"""What a Helm 4 client needs of localkube: install, list, upgrade, rollback and uninstall of a
small chart (releases stored in labelled Secrets, resources applied server-side).

Uses the helm the chart tests fetch (``tests/integration/helm/helmbin.py``); skipped, with the
reason, only when it cannot be fetched."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from localkube import LocalKube
from tests.integration.helm.helmbin import HelmUnavailable, helm_binary

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def helm_path() -> str:
    try:
        return str(helm_binary())
    except HelmUnavailable as e:
        pytest.skip(f"helm could not be fetched: {e}")


CHART = {
    "Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    "values.yaml": "image: example/web:1\nreplicas: 1\n",
    "templates/all.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata: {name: "{{ .Release.Name }}-cfg"}
data: {replicas: "{{ .Values.replicas }}"}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: "{{ .Release.Name }}"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: "{{ .Release.Name }}", labels: {app: "{{ .Release.Name }}"}}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: "{{ .Release.Name }}"}}
  template:
    metadata: {labels: {app: "{{ .Release.Name }}"}}
    spec:
      serviceAccountName: "{{ .Release.Name }}"
      containers: [{name: web, image: "{{ .Values.image }}"}]
---
apiVersion: v1
kind: Service
metadata: {name: "{{ .Release.Name }}"}
spec:
  selector: {app: "{{ .Release.Name }}"}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: "{{ .Release.Name }}"}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: "{{ .Release.Name }}"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: "{{ .Release.Name }}"}
subjects: [{kind: ServiceAccount, name: "{{ .Release.Name }}"}]
""",
}


async def test_helm_installs_lists_upgrades_rolls_back_and_uninstalls_a_release(
    localkube: LocalKube,
    tmp_path: Path,
    kube_namespace: str,
    kube_api: client.ApiClient,
    helm_path: str,
) -> None:
    chart = tmp_path / "chart"
    for name, text in CHART.items():
        (chart / name).parent.mkdir(parents=True, exist_ok=True)
        (chart / name).write_text(text)
    config = localkube.write_kubeconfig(tmp_path / "kubeconfig", namespace=kube_namespace)
    env = {
        **os.environ,
        "KUBECONFIG": str(config),
        "HELM_CACHE_HOME": str(tmp_path / "cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "config"),
        "HELM_DATA_HOME": str(tmp_path / "data"),
    }

    async def helm(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            helm_path,
            *args,
            "--namespace",
            kube_namespace,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        return out.decode()

    apps = client.AppsV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    await helm("install", "demo", str(chart))
    releases = json.loads(await helm("list", "--output", "json"))
    assert [(r["name"], r["revision"], r["status"]) for r in releases] == [
        ("demo", "1", "deployed")
    ]
    secrets = await core.list_namespaced_secret(kube_namespace, label_selector="owner=helm")
    assert [s.metadata.name for s in secrets.items] == ["sh.helm.release.v1.demo.v1"]
    await helm("upgrade", "demo", str(chart), "--set", "replicas=3")
    assert (await apps.read_namespaced_deployment("demo", kube_namespace)).spec.replicas == 3
    await helm("rollback", "demo", "1")
    assert (await apps.read_namespaced_deployment("demo", kube_namespace)).spec.replicas == 1
    releases = json.loads(await helm("list", "--output", "json"))
    assert [(r["name"], r["revision"]) for r in releases] == [("demo", "3")]
    await helm("uninstall", "demo")
    assert json.loads(await helm("list", "--output", "json")) == []
    rbac = client.RbacAuthorizationV1Api(kube_api)
    for listing in (
        apps.list_namespaced_deployment,
        core.list_namespaced_service,
        core.list_namespaced_config_map,
        core.list_namespaced_service_account,
        rbac.list_namespaced_role,
        rbac.list_namespaced_role_binding,
    ):
        names = [o.metadata.name for o in (await listing(kube_namespace)).items]
        left = [n for n in names if n.startswith("demo")]
        assert left == [], listing.__name__  # every object of the release is gone
    secrets = await core.list_namespaced_secret(kube_namespace, label_selector="owner=helm")
    assert secrets.items == []
