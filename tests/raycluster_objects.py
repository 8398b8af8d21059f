"""Objects for the RayCluster controller's tests: the sample as a RayCluster, and its Pods.

``sample_cluster()`` is the seed sample's ``rayClusterConfig`` as the RayService controller would
create it (``rayservice-sample-raycluster-abcde`` in ``default``, labelled as RayService-made),
as the API server returns it. The Pod helpers play the API server and the kubelet: they give a
built manifest a name, a uid and a status, so a test can say "the head is running and ready".
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from tests.builders import sample

Obj = dict[str, Any]

CLUSTER_NAME = "rayservice-sample-raycluster-abcde"
CLUSTER_UID = "6f1c8a52-0b7e-4c35-9a57-3f0d1e2a4b6c"
_SUFFIXES = itertools.count()


def sample_cluster(*, generation: int = 1, observed: bool = False) -> Obj:
    """The sample's RayCluster; with ``observed``, its status already records ``generation``."""
    spec = copy.deepcopy(sample()["spec"]["rayClusterConfig"])
    for group in spec.get("workerGroupSpecs", ()):
        group.setdefault("numOfHosts", 1)  # the CRD's default, applied by the API server
    cluster: Obj = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {
            "name": CLUSTER_NAME,
            "namespace": "default",
            "uid": CLUSTER_UID,
            "generation": generation,
            "resourceVersion": "100",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {
                "ray.io/originated-from-cr-name": "rayservice-sample",
                "ray.io/originated-from-crd": "RayService",
            },
        },
        "spec": spec,
    }
    if observed:
        cluster["status"] = {"observedGeneration": generation}
    return cluster


def created(manifest: Obj, *, name: str | None = None, at: str = "2026-01-01T00:00:10Z") -> Obj:
    """``manifest`` as the API server stores it: named from generateName, with a uid."""
    obj = copy.deepcopy(manifest)
    meta = obj["metadata"]
    if name is None:
        name = f"{meta.pop('generateName')}{next(_SUFFIXES):05d}"
    else:
        meta.pop("generateName", None)
    meta["name"] = name
    meta["uid"] = f"uid-{name}"
    meta["creationTimestamp"] = at
    meta["resourceVersion"] = "1"
    return obj


def running(pod: Obj, *, ready: bool = True, ip: str = "10.0.0.1") -> Obj:
    """``pod`` as the kubelet reports it once started: Running, Ready or not, with an IP."""
    pod = copy.deepcopy(pod)
    pod.setdefault("spec", {})["nodeName"] = "node-1"
    pod["status"] = {
        "phase": "Running",
        "podIP": ip,
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                **({} if ready else {"reason": "ContainersNotReady"}),
            },
        ],
        "containerStatuses": [
            {
                "name": pod["spec"]["containers"][0]["name"],
                "ready": ready,
                "state": {"running": {"startedAt": "2026-01-01T00:00:20Z"}},
            }
        ],
    }
    return pod


def pending(pod: Obj) -> Obj:
    """``pod`` waiting to be scheduled."""
    pod = copy.deepcopy(pod)
    pod["status"] = {"phase": "Pending"}
    return pod


def failed(pod: Obj) -> Obj:
    """``pod`` after its containers exited and it will not restart."""
    pod = copy.deepcopy(pod)
    pod["status"] = {"phase": "Failed", "reason": "Error"}
    return pod


def terminating(pod: Obj) -> Obj:
    """``pod`` after a DELETE, while it shuts down."""
    pod = copy.deepcopy(pod)
    pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:05:00Z"
    return pod


def head_service(manifest: Obj) -> Obj:
    """The head Service as the API server stores it (targetPort defaulted to port)."""
    service = created(manifest, name=manifest["metadata"]["name"])
    for port in service["spec"]["ports"]:
        port["targetPort"] = port["port"]
        port["protocol"] = "TCP"
    return service
