"""``helm install`` into localkube, and the webhook started exactly as the chart's pod runs it.

helm 4 applies the release server-side, so localkube serves it as it would a cluster: the
release's objects are stored, ``helm list``, ``helm upgrade`` and ``helm uninstall`` work. Then
``raysvc webhook`` runs with the arguments and environment of the stored Deployment's container
(the image's entrypoint is ``raysvc``), its certificates kept in the Secret the chart names,
its CA injected into the chart's webhook configurations; the webhook Service's Endpoints point at
it, and the real kubectl's server-side dry runs go through it.

Differences from a pod, all about where it runs: free loopback ports instead of 9443/8081 (the
chart's ``--port``/``--health-port`` are overridden by later flags), ``KUBECONFIG`` instead of
the in-cluster service account, and the certificate pass every 0.2 s.

The tests of this module run in order against one installation (about 20 s): install,
upgrade, the webhook, an upgrade once the webhook has injected its CA, uninstall.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.builders import SAMPLE_PATH, put, sample, with_serve, worker
from tests.commands import KUBECTL, RAYSVC, Result, kubectl, warnings
from tests.integration.helm.chart import CHART, Helm
from tests.integration.webhook.support import Webhook

ROOT = Path(__file__).resolve().parents[3]
NAMESPACE = "raysvc-system"
USERS = "team-a"  # where RayServices live; the release namespace is not intercepted
Obj = dict[str, Any]

pytestmark = pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl is not installed")


class Cluster:
    """localkube as a process, and kubectl and helm bound to it."""

    def __init__(self, work: Path, helm: Helm) -> None:
        self.work = work
        self.helm = helm
        self.kubeconfig = work / "kubeconfig"
        self.process = subprocess.Popen(
            [RAYSVC, "localkube", "--port", "0", "--kubeconfig-out", str(self.kubeconfig)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        assert self.url.startswith("http://"), self.url

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> Result:
        return kubectl(self.kubeconfig, self.work, *args, stdin=stdin, check=check)

    def get(self, *args: str) -> Obj:
        obj: Obj = json.loads(self.kubectl("get", *args, "-o", "json").out)
        return obj

    def run_helm(self, *args: str, check: bool = True) -> Result:
        return self.helm.run(*args, kubeconfig=self.kubeconfig, check=check)

    def releases(self) -> list[Obj]:
        listed: list[Obj] = json.loads(self.run_helm("list", "-n", NAMESPACE, "-o", "json").out)
        return listed

    def manifest(self) -> str:
        return self.run_helm("get", "manifest", "raysvc", "-n", NAMESPACE).out

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        assert self.process.stdout is not None
        self.process.stdout.close()


@dataclass
class Installed:
    cluster: Cluster
    install: Result


@pytest.fixture(scope="module")
def installed(helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    cluster = Cluster(tmp_path_factory.mktemp("helm-install"), helm)
    try:
        install = cluster.run_helm(
            "install", "raysvc", str(CHART), "--namespace", NAMESPACE, "--create-namespace"
        )
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": USERS}}
        cluster.kubectl("create", "-f", "-", stdin=yaml.safe_dump(namespace))
        yield Installed(cluster, install)
    finally:
        cluster.stop()


def entrypoint() -> list[str]:
    """The image's ENTRYPOINT (exec form)."""
    (line,) = re.findall(r"^ENTRYPOINT (.+)$", (ROOT / "Dockerfile").read_text(), re.M)
    command: list[str] = json.loads(line)
    return command


def start_like_the_pod(cluster: Cluster) -> Webhook:
    """``raysvc webhook`` with the stored Deployment's container arguments and environment."""
    deployment = cluster.get("deployment", "raysvc-webhook", "-n", NAMESPACE)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert entrypoint() == ["raysvc"]
    subcommand, *args = container["args"]
    assert subcommand == "webhook"  # the helper runs `raysvc webhook`, then these arguments
    env = {"KUBECONFIG": str(cluster.kubeconfig)}
    for variable in container["env"]:
        field = variable["valueFrom"]["fieldRef"]["fieldPath"]
        assert field == "metadata.namespace"
        env[variable["name"]] = deployment["metadata"]["namespace"]
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        webhook = Webhook(cluster.work, args=tuple(args))
    ports = {port["name"]: port for port in container["ports"]}
    endpoints = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "raysvc-webhook", "namespace": NAMESPACE},
        "subsets": [
            {
                "addresses": [{"ip": "127.0.0.1"}],
                "ports": [
                    {"name": "https", "port": webhook.port},
                    {"name": "metrics", "port": webhook.health_port},
                ],
            }
        ],
    }
    assert set(ports) == {"https", "health"}
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(endpoints))
    return webhook


@pytest.fixture(scope="module")
def webhook(installed: Installed) -> Iterator[Webhook]:
    webhook = start_like_the_pod(installed.cluster)
    yield webhook
    webhook.stop()


def ca_bundles(cluster: Cluster) -> list[str]:
    return [
        webhook["clientConfig"].get("caBundle", "")
        for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration")
        for webhook in cluster.get(kind, "raysvc")["webhooks"]
    ]


def test_helm_install_stores_every_object_of_the_release(installed: Installed) -> None:
    cluster = installed.cluster
    assert "STATUS: deployed" in installed.install.out
    assert "kubectl apply --dry-run=server -f" in installed.install.out  # NOTES
    rendered = [doc for doc in yaml.safe_load_all(cluster.manifest()) if doc]
    listed = json.loads(
        cluster.kubectl("get", "-f", "-", "-o", "json", stdin=cluster.manifest()).out
    )
    items = listed["items"] if listed.get("kind") == "List" else [listed]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in items) == sorted(
        (o["kind"], o["metadata"]["name"]) for o in rendered
    )
    for obj in items:
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert obj["metadata"]["annotations"]["meta.helm.sh/release-name"] == "raysvc"
    deployment = cluster.get("deployment", "raysvc-webhook", "-n", NAMESPACE)
    assert deployment["spec"]["replicas"] == 2
    # The CRDs of crds/ went in first.
    for crd in ("rayservices.ray.io", "rayclusters.ray.io"):
        conditions = cluster.get("crd", crd)["status"]["conditions"]
        assert {c["type"]: c["status"] for c in conditions}["Established"] == "True"
    (release,) = cluster.releases()
    assert (release["name"], release["status"], release["revision"]) == ("raysvc", "deployed", "1")
    assert (release["chart"], release["app_version"]) == ("raysvc-0.1.0", "0.1.0")


def upgrade(cluster: Cluster, *settings: str) -> Result:
    flags = [arg for setting in settings for arg in ("--set", setting)]
    return cluster.run_helm(
        "upgrade", "raysvc", str(CHART), "--namespace", NAMESPACE, "--reuse-values", *flags
    )


def test_helm_upgrade_applies_changed_values(installed: Installed) -> None:
    cluster = installed.cluster
    result = upgrade(
        cluster,
        "webhook.timeoutSeconds=7",
        "webhook.failurePolicy=Ignore",
        "reconciler.enabled=true",
    )
    assert "has been upgraded" in result.out
    (mutating,) = cluster.get("mutatingwebhookconfiguration", "raysvc")["webhooks"]
    (validating,) = cluster.get("validatingwebhookconfiguration", "raysvc")["webhooks"]
    assert (mutating["timeoutSeconds"], mutating["failurePolicy"]) == (7, "Ignore")
    assert (validating["timeoutSeconds"], validating["failurePolicy"]) == (7, "Fail")
    # The standalone profile's objects were added.
    reconciler = cluster.get("deployment", "raysvc-reconciler", "-n", NAMESPACE)
    assert reconciler["spec"]["template"]["spec"]["containers"][0]["args"][0] == "reconcile"
    cluster.get("clusterrole", "raysvc-reconciler")
    (release,) = cluster.releases()
    assert (release["status"], release["revision"]) == ("deployed", "2")
    history = json.loads(cluster.run_helm("history", "raysvc", "-n", NAMESPACE, "-o", "json").out)
    assert [(h["revision"], h["status"]) for h in history] == [(1, "superseded"), (2, "deployed")]


def test_the_webhook_started_like_its_pod_injects_its_ca_into_the_charts_configurations(
    installed: Installed, webhook: Webhook
) -> None:
    cluster = installed.cluster
    for bundle in ca_bundles(cluster):
        assert "BEGIN CERTIFICATE" in base64.b64decode(bundle).decode()
    secret = cluster.get("secret", "raysvc-webhook-tls", "-n", NAMESPACE)
    assert secret["type"] == "kubernetes.io/tls"
    assert base64.b64decode(secret["data"]["ca.crt"]) in base64.b64decode(ca_bundles(cluster)[0])
    assert webhook.health("/readyz")[0] == 200


def test_a_server_side_dry_run_of_the_sample_is_allowed_and_explained(
    installed: Installed, webhook: Webhook
) -> None:
    result = installed.cluster.kubectl(
        "apply", "--dry-run=server", "-n", USERS, "-f", str(SAMPLE_PATH)
    )
    assert result.out.strip() == "rayservice.ray.io/rayservice-sample created (server dry run)"
    assert warnings(result) == [
        "creates a RayCluster with 2 pods (2.5 CPU, 4Gi memory); the Serve config is submitted "
        "when its head is ready"
    ]
    assert installed.cluster.kubectl("get", "rayservices", "-n", USERS).err.startswith(
        "No resources found"
    )


def broken() -> Obj:
    obj = put(sample(), "metadata.name", "rayservice-bad")
    worker(obj)["minReplicas"] = 6
    with_serve(obj, lambda c: c["applications"][1].update(route_prefix="/fruit"))
    return obj


def test_a_broken_rayservice_is_denied_with_every_field_path(
    installed: Installed, webhook: Webhook
) -> None:
    result = installed.cluster.kubectl(
        "apply",
        "--dry-run=server",
        "-n",
        USERS,
        "-f",
        "-",
        stdin=yaml.safe_dump(broken()),
        check=False,
    )
    assert result.code == 1
    assert result.err.splitlines() == [
        'The RayService "rayservice-bad" is invalid: ',
        "* spec.rayClusterConfig.workerGroupSpecs[0].minReplicas: Invalid value: 6: must be less "
        "than or equal to maxReplicas (5)",
        '* spec.serveConfigV2.applications[1].route_prefix: Duplicate value: "/fruit": already '
        "used by applications[0]",
    ]


def test_rayservices_in_the_release_namespace_are_not_sent_to_the_webhook(
    installed: Installed, webhook: Webhook
) -> None:
    result = installed.cluster.kubectl(
        "apply", "--dry-run=server", "-n", NAMESPACE, "-f", "-", stdin=yaml.safe_dump(broken())
    )
    assert result.out.strip() == "rayservice.ray.io/rayservice-bad created (server dry run)"
    assert warnings(result) == []


def test_helm_upgrade_after_the_webhook_injected_its_ca_keeps_it(
    installed: Installed, webhook: Webhook
) -> None:
    cluster = installed.cluster
    before = ca_bundles(cluster)
    webhook.stop()  # nothing may re-inject the CA while helm re-applies the configurations
    result = upgrade(cluster, "webhook.timeoutSeconds=9")
    assert "has been upgraded" in result.out
    (validating,) = cluster.get("validatingwebhookconfiguration", "raysvc")["webhooks"]
    assert validating["timeoutSeconds"] == 9
    assert ca_bundles(cluster) == before


def test_helm_uninstall_removes_the_release_but_keeps_the_crds_and_the_certificates(
    installed: Installed,
) -> None:
    cluster = installed.cluster
    manifest = cluster.manifest()
    result = cluster.run_helm("uninstall", "raysvc", "--namespace", NAMESPACE)
    assert 'release "raysvc" uninstalled' in result.out
    left = cluster.kubectl("get", "-f", "-", "--ignore-not-found", "-o", "name", stdin=manifest)
    assert left.out == ""
    assert cluster.releases() == []
    # helm never deletes crds/ (RayServices would go with them), nor what the webhook created.
    cluster.get("crd", "rayservices.ray.io")
    cluster.get("secret", "raysvc-webhook-tls", "-n", NAMESPACE)
