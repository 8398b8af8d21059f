"""What a user sees on ``kubectl apply``: the real kubectl, localkube, and ``raysvc webhook``.

Everything runs as separate processes, as in a cluster: ``raysvc localkube`` serves the project's
CRDs (``raysvc crds``), ``raysvc webhook --cert-secret`` issues its own certificates into a
Secret and injects the CA into the webhook configurations, and localkube calls it over TLS
through a Service, trusting only that injected caBundle.
"""

from __future__ import annotations

import base64
import copy
import json
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rayservice import evaluate
from tests.builders import SAMPLE_PATH, Obj, put, sample, with_serve, worker
from tests.commands import KUBECTL, RAYSVC, Result, kubectl, warnings
from tests.integration.webhook.support import Webhook

pytestmark = pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl is not installed")

WEBHOOKS = """
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: raysvc}
webhooks:
  - name: mutate.raysvc.io
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: 5
    clientConfig:
      service: {namespace: raysvc-system, name: raysvc-webhook, path: /mutate, port: 443}
    rules:
      - apiGroups: [ray.io]
        apiVersions: [v1, v1alpha1]
        resources: [rayservices]
        operations: [CREATE, UPDATE]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: raysvc}
webhooks:
  - name: validate.raysvc.io
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: 5
    clientConfig:
      service: {namespace: raysvc-system, name: raysvc-webhook, path: /validate, port: 443}
    rules:
      - apiGroups: [ray.io]
        apiVersions: [v1, v1alpha1]
        resources: [rayservices]
        operations: [CREATE, UPDATE]
"""


class Cluster:
    """localkube and the webhook as processes, and a kubectl bound to them."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.kubeconfig = work / "kubeconfig"
        self.processes: list[subprocess.Popen[str]] = []
        self.webhooks: list[Webhook] = []

    def start_localkube(self) -> None:
        process = subprocess.Popen(
            [RAYSVC, "localkube", "--port", "0", "--kubeconfig-out", str(self.kubeconfig)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.processes.append(process)
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://"), url

    def start_webhook(self) -> Webhook:
        webhook = Webhook(
            self.work,
            args=(
                "--cert-secret",
                "raysvc-system/raysvc-webhook-tls",
                "--webhook-config",
                "raysvc",
                "--kubeconfig",
                str(self.kubeconfig),
            ),
        )
        self.webhooks.append(webhook)
        return webhook

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> Result:
        return kubectl(self.kubeconfig, self.work, *args, stdin=stdin, check=check)

    def apply(self, obj: Obj, *extra: str, check: bool = True) -> Result:
        return self.kubectl("apply", "-f", "-", *extra, stdin=yaml.safe_dump(obj), check=check)

    def get(self, name: str = "rayservice-sample") -> Obj:
        stored: Obj = json.loads(self.kubectl("get", "rayservice", name, "-o", "json").out)
        return stored

    def stop(self) -> None:
        for webhook in self.webhooks:
            webhook.stop()
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            process.wait(30)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start_localkube()
        crds = subprocess.run([RAYSVC, "crds"], capture_output=True, text=True, check=True).stdout
        cluster.kubectl("apply", "-f", "-", stdin=crds)
        cluster.kubectl(
            "create",
            "-f",
            "-",
            stdin=yaml.safe_dump(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "raysvc-system"}}
            ),
        )
        cluster.kubectl("apply", "-f", "-", stdin=WEBHOOKS)
        port = cluster.start_webhook().port
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "raysvc-webhook", "namespace": "raysvc-system"},
            "spec": {"ports": [{"port": 443, "targetPort": 9443}]},
        }
        endpoints = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "raysvc-webhook", "namespace": "raysvc-system"},
            "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": port}]}],
        }
        cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all([service, endpoints]))
        yield cluster
    finally:
        cluster.stop()


def test_the_webhook_injected_its_ca_into_both_configurations(cluster: Cluster) -> None:
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        bundle = cluster.kubectl(
            "get", kind, "raysvc", "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}"
        ).out
        assert "BEGIN CERTIFICATE" in base64.b64decode(bundle).decode()
    secret = json.loads(
        cluster.kubectl(
            "get", "secret", "-n", "raysvc-system", "raysvc-webhook-tls", "-o", "json"
        ).out
    )
    assert secret["type"] == "kubernetes.io/tls"


def test_apply_creates_a_defaulted_annotated_rayservice_and_says_what_happens(
    cluster: Cluster,
) -> None:
    result = cluster.kubectl("apply", "-f", str(SAMPLE_PATH))
    assert "rayservice.ray.io/rayservice-sample created" in result.out
    assert warnings(result) == [
        "creates a RayCluster with 2 pods (2.5 CPU, 4Gi memory); the Serve config is submitted "
        "when its head is ready"
    ]
    stored = cluster.get()
    annotations = stored["metadata"]["annotations"]
    assert annotations["raysvc.io/change"] == "create"
    assert len(annotations["raysvc.io/cluster-hash"]) == 64
    assert stored["spec"]["rayClusterDeletionDelaySeconds"] == 60
    assert stored["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["numOfHosts"] == 1
    # The CRD pruned nothing: the stored spec is exactly what the webhook's patch made of it.
    assert stored["spec"] == evaluate(sample()).mutated["spec"]


def test_a_serve_only_change_is_classified_and_explained(cluster: Cluster) -> None:
    obj = sample()
    with_serve(obj, lambda c: c["applications"][0]["deployments"][0]["user_config"].update(price=4))
    result = cluster.apply(obj)
    assert "configured" in result.out
    assert warnings(result) == ["the Serve config is re-applied in place to the running RayCluster"]
    assert cluster.get()["metadata"]["annotations"]["raysvc.io/change"] == "serve-only"


def test_replicas_are_autoscaler_owned(cluster: Cluster) -> None:
    obj = sample()
    with_serve(obj, lambda c: c["applications"][0]["deployments"][0]["user_config"].update(price=4))
    worker(obj)["replicas"] = 2
    result = cluster.apply(obj)
    assert warnings(result) == [
        "replicas/workersToDelete are owned by the Ray autoscaler: not propagated to the running "
        "RayCluster"
    ]
    assert cluster.get()["metadata"]["annotations"]["raysvc.io/change"] == "autoscaler-owned"


def test_a_dry_run_upgrade_is_explained_and_changes_nothing(cluster: Cluster) -> None:
    before = cluster.get()
    obj = copy.deepcopy(sample())
    with_serve(obj, lambda c: c["applications"][0]["deployments"][0]["user_config"].update(price=4))
    worker(obj)["replicas"] = 2
    put(obj, "spec.rayClusterConfig.rayVersion", "2.100.0")
    result = cluster.apply(obj, "--dry-run=server")
    assert "(server dry run)" in result.out
    assert warnings(result) == [
        "spec.rayClusterConfig.rayVersion: 2.100.0 does not match the head image tag 2.52.0",
        "cluster upgrade: a new RayCluster with 3 pods (3 CPU, 6Gi memory) starts before the old "
        "one is deleted",
        "capacity doubles during the upgrade; traffic moves when the new cluster's apps run",
    ]
    after = cluster.get()
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"] == before["spec"]


def test_an_invalid_rayservice_is_refused_with_every_field_path(cluster: Cluster) -> None:
    obj = put(sample(), "metadata.name", "rayservice-bad")
    worker(obj)["minReplicas"] = 6
    with_serve(obj, lambda c: c["applications"][1].update(route_prefix="/fruit"))
    result = cluster.apply(obj, check=False)
    assert result.code == 1
    # kubectl lists the causes of a 422 Invalid, as for the API server's own schema errors.
    assert result.err.splitlines() == [
        'The RayService "rayservice-bad" is invalid: ',
        "* spec.rayClusterConfig.workerGroupSpecs[0].minReplicas: Invalid value: 6: must be less "
        "than or equal to maxReplicas (5)",
        '* spec.serveConfigV2.applications[1].route_prefix: Duplicate value: "/fruit": already '
        "used by applications[0]",
    ]
    assert cluster.kubectl("get", "rayservice", "rayservice-bad", check=False).code == 1


def test_annotations_cannot_be_forged(cluster: Cluster) -> None:
    good = cluster.get()["metadata"]["annotations"]["raysvc.io/cluster-hash"]
    cluster.kubectl(
        "annotate",
        "--overwrite",
        "rayservice",
        "rayservice-sample",
        f"raysvc.io/cluster-hash={'0' * 64}",
    )
    assert cluster.get()["metadata"]["annotations"]["raysvc.io/cluster-hash"] == good


def test_server_side_apply_goes_through_the_same_admission(cluster: Cluster) -> None:
    obj = put(sample(), "metadata.name", "rayservice-ssa")
    result = cluster.apply(obj, "--server-side")
    assert "serverside-applied" in result.out
    assert cluster.get("rayservice-ssa")["metadata"]["annotations"]["raysvc.io/change"] == "create"


def test_v1alpha1_objects_are_admitted_with_a_deprecation_warning(cluster: Cluster) -> None:
    obj = put(put(sample(), "apiVersion", "ray.io/v1alpha1"), "metadata.name", "rayservice-old")
    result = cluster.apply(obj)
    assert "apiVersion: ray.io/v1alpha1 RayService is deprecated; use ray.io/v1" in warnings(result)


def test_delete_removes_the_rayservice(cluster: Cluster) -> None:
    cluster.kubectl("delete", "rayservice", "rayservice-ssa", "--wait=true", "--timeout=30s")
    assert cluster.kubectl("get", "rayservice", "rayservice-ssa", check=False).code == 1


@pytest.mark.parametrize("how", ["apply --server-side", "replace"])
def test_re_applying_an_unchanged_manifest_is_a_no_op_that_keeps_the_last_change(
    cluster: Cluster, how: str
) -> None:
    name = f"rayservice-{how.split()[0]}-again"
    obj = put(sample(), "metadata.name", name)
    cluster.apply(obj, "--server-side")
    upgraded = put(copy.deepcopy(obj), "spec.rayClusterConfig.rayVersion", "2.53.0")
    cluster.apply(upgraded, "--server-side")
    before = cluster.get(name)
    assert before["metadata"]["annotations"]["raysvc.io/change"] == "cluster-upgrade"
    cluster.kubectl(*how.split(), "-f", "-", stdin=yaml.safe_dump(upgraded))
    after = cluster.get(name)
    assert after["metadata"]["annotations"]["raysvc.io/change"] == "cluster-upgrade"
    assert without_write_stamps(after) == without_write_stamps(before)
    if stamps(after) == stamps(before):  # localkube re-stamps managedFields on a new second
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def stamps(obj: Obj) -> list[str]:
    return [entry.get("time", "") for entry in obj["metadata"].get("managedFields", [])]


def without_write_stamps(obj: Obj) -> Obj:
    """``obj`` without what any write changes: resourceVersion and managedFields' times."""
    out = copy.deepcopy(obj)
    out["metadata"].pop("resourceVersion", None)
    for entry in out["metadata"].get("managedFields", []):
        entry.pop("time", None)
    return out


@pytest.mark.parametrize("taken", ["--port", "--health-port"])
def test_a_webhook_that_cannot_bind_leaves_the_cluster_untouched(
    cluster: Cluster, taken: str
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        ports = {"--port": "0", "--health-port": "0", taken: str(holder.getsockname()[1])}
        done = subprocess.run(
            [
                RAYSVC,
                "webhook",
                "--cert-secret",
                "raysvc-system/never-created",
                "--webhook-config",
                "raysvc",
                "--kubeconfig",
                str(cluster.kubeconfig),
                "--host",
                "127.0.0.1",
                "--health-host",
                "127.0.0.1",
                *(item for pair in ports.items() for item in pair),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert "address already in use" in done.stderr.splitlines()[-1]
    missing = cluster.kubectl("get", "secret", "never-created", "-n", "raysvc-system", check=False)
    assert missing.code != 0
    assert "NotFound" in missing.err
