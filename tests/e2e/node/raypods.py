"""Pods and Services shaped like KubeRay's, built by hand for the node's end-to-end tests."""

from __future__ import annotations

from typing import Any

HEALTH = "wget -T 2 -q -O- http://localhost:52365/api/local_raylet_healthz | grep success"
GCS = "wget -T 2 -q -O- http://localhost:8265/api/gcs_healthz | grep success"
COMMON = (
    "--metrics-export-port=8080 --dashboard-agent-listen-port=52365 "
    "--object-store-memory=100000000 --disable-usage-stats --block"
)


def _probe(command: str, failure_threshold: int) -> dict[str, Any]:
    return {
        "exec": {"command": ["bash", "-c", command]},
        "initialDelaySeconds": 2,
        "periodSeconds": 1,
        "timeoutSeconds": 3,
        "failureThreshold": failure_threshold,
    }


def _labels(cluster: str, kind: str, serve: bool) -> dict[str, str]:
    return {
        "ray.io/is-ray-node": "yes",
        "ray.io/cluster": cluster,
        "ray.io/node-type": kind,
        "ray.io/group": "headgroup" if kind == "head" else "small-group",
        "ray.io/identifier": f"{cluster}-{kind}",
        "ray.io/serve": "true" if serve else "false",
    }


def head_pod(cluster: str) -> dict[str, Any]:
    command = f"ulimit -n 65536; ray start --head --dashboard-host=0.0.0.0 --num-cpus=2 {COMMON}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{cluster}-head", "labels": _labels(cluster, "head", True)},
        "spec": {
            "terminationGracePeriodSeconds": 10,
            "containers": [
                {
                    "name": "ray-head",
                    "image": "rayproject/ray:2.52.0",
                    "command": ["/bin/bash", "-c", "--"],
                    "args": [command],
                    "resources": {"limits": {"cpu": "2"}, "requests": {"cpu": "2"}},
                    "ports": [
                        {"name": "gcs-server", "containerPort": 6379},
                        {"name": "dashboard", "containerPort": 8265},
                        {"name": "client", "containerPort": 10001},
                        {"name": "serve", "containerPort": 8000},
                    ],
                    "readinessProbe": _probe(f"{HEALTH} && {GCS}", 30),
                    "livenessProbe": _probe(f"{HEALTH} && {GCS}", 120),
                }
            ],
        },
    }


def worker_pod(cluster: str, namespace: str) -> dict[str, Any]:
    address = f"{cluster}-head-svc.{namespace}.svc.cluster.local:6379"
    command = f"ulimit -n 65536; ray start --address={address} --num-cpus=1 {COMMON}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{cluster}-worker", "labels": _labels(cluster, "worker", False)},
        "spec": {
            "terminationGracePeriodSeconds": 10,
            "containers": [
                {
                    "name": "ray-worker",
                    "image": "rayproject/ray:2.52.0",
                    "command": ["/bin/bash", "-c", "--"],
                    "args": [command],
                    "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "500m"}},
                    "readinessProbe": _probe(HEALTH, 30),
                }
            ],
        },
    }


def head_service(cluster: str) -> dict[str, Any]:
    """``<cluster>-head-svc``: headless, publishing not-ready addresses (workers join by it)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{cluster}-head-svc"},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {"ray.io/cluster": cluster, "ray.io/node-type": "head"},
            "ports": [
                {"name": "gcs-server", "port": 6379, "targetPort": 6379},
                {"name": "dashboard", "port": 8265, "targetPort": 8265},
                {"name": "client", "port": 10001, "targetPort": 10001},
            ],
        },
    }


def serve_service(name: str, cluster: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"ray.io/cluster": cluster, "ray.io/serve": "true"},
            "ports": [{"name": "serve", "port": 8000, "targetPort": "serve"}],
        },
    }
