"""Objects for tests: the sample RayService as a valid base, and modifiers that change one thing.

Every test starts from ``sample()`` (the project's ``examples/rayservice-sample.yaml``) and alters
what it is about, so a test reads as "the sample, except ...".
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_PATH = ROOT / "examples" / "rayservice-sample.yaml"
_SAMPLE: dict[str, Any] = yaml.safe_load(SAMPLE_PATH.read_text())

Obj = dict[str, Any]


def sample() -> Obj:
    """A fresh deep copy of the sample RayService."""
    return copy.deepcopy(_SAMPLE)


def get(obj: Obj, path: str) -> Any:
    """Read a dotted path with ``[i]`` indexes, e.g. ``spec.a.workerGroupSpecs[0]``."""
    node: Any = obj
    for part in _parts(path):
        node = node[part]
    return node


def put(obj: Obj, path: str, value: Any) -> Obj:
    """Set a dotted path (creating maps on the way) and return ``obj``."""
    parts = _parts(path)
    node: Any = obj
    for part in parts[:-1]:
        if isinstance(part, str) and part not in node:
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value
    return obj


def drop(obj: Obj, path: str) -> Obj:
    """Remove a dotted path and return ``obj``."""
    parts = _parts(path)
    node: Any = obj
    for part in parts[:-1]:
        node = node[part]
    del node[parts[-1]]
    return obj


def _parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for chunk in path.split("."):
        name, _, rest = chunk.partition("[")
        if name:
            parts.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            parts.append(int(index))
            rest = rest.removeprefix("[")
    return parts


def serve_config(obj: Obj) -> Obj:
    """The parsed serveConfigV2 of ``obj``."""
    loaded: Obj = yaml.safe_load(obj["spec"]["serveConfigV2"])
    return loaded


def with_serve(obj: Obj, change: Callable[[Obj], None]) -> Obj:
    """Parse serveConfigV2, let ``change`` edit it, write it back as YAML; returns ``obj``."""
    config = serve_config(obj)
    change(config)
    obj["spec"]["serveConfigV2"] = yaml.safe_dump(config, sort_keys=False)
    return obj


def large_rayservice() -> Obj:
    """The sample grown to 50 worker groups and 100 applications (3 deployments each)."""
    obj = sample()
    base = obj["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    groups = []
    for index in range(50):
        group = copy.deepcopy(base)
        group["groupName"] = f"group-{index}"
        group["template"]["spec"]["containers"][0]["env"] = [
            {"name": f"VAR_{i}", "value": str(i)} for i in range(5)
        ]
        groups.append(group)
    obj["spec"]["rayClusterConfig"]["workerGroupSpecs"] = groups
    apps = [
        {
            "name": f"app_{i}",
            "import_path": f"module_{i}.app",
            "route_prefix": f"/route-{i}",
            "runtime_env": {"working_dir": "file:///tmp/raysvc/examples/test_dag.zip"},
            "deployments": [
                {
                    "name": f"Deployment{j}",
                    "num_replicas": 1,
                    "user_config": {"price": j},
                    "ray_actor_options": {"num_cpus": 0.1},
                }
                for j in range(3)
            ],
        }
        for i in range(100)
    ]
    obj["spec"]["serveConfigV2"] = yaml.safe_dump({"applications": apps}, sort_keys=False)
    return obj


def worker(obj: Obj, index: int = 0) -> Obj:
    """Worker group ``index`` of ``obj``."""
    group: Obj = obj["spec"]["rayClusterConfig"]["workerGroupSpecs"][index]
    return group


def head_container(obj: Obj) -> Obj:
    """The head container (the first) of ``obj``."""
    container: Obj = obj["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"][
        "containers"
    ][0]
    return container


def app(config: Obj, name: str) -> Obj:
    """The application called ``name`` in a parsed Serve config."""
    return next(a for a in config["applications"] if a["name"] == name)


def deployment(config: Obj, app_name: str, name: str) -> Obj:
    """A deployment of an application in a parsed Serve config."""
    return next(d for d in app(config, app_name)["deployments"] if d["name"] == name)


def admission_review(
    obj: Obj | None,
    old: Obj | None = None,
    *,
    operation: str | None = None,
    uid: str = "4b1f5a7e-0000-4000-8000-000000000001",
    dry_run: bool = False,
) -> Obj:
    """An AdmissionReview v1 request for a RayService, as kube-apiserver sends it."""
    operation = operation or ("UPDATE" if old is not None else "CREATE")
    source = obj if obj is not None else old or {}
    version = str(source.get("apiVersion", "ray.io/v1")).partition("/")[2] or "v1"
    meta = source.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    options_kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions"}.get(
        operation, "DeleteOptions"
    )
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "ray.io", "version": version, "kind": "RayService"},
            "resource": {"group": "ray.io", "version": version, "resource": "rayservices"},
            "requestKind": {"group": "ray.io", "version": version, "kind": "RayService"},
            "requestResource": {"group": "ray.io", "version": version, "resource": "rayservices"},
            "name": str(meta.get("name", "")),
            "namespace": str(meta.get("namespace", "default")),
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
            "object": obj,
            "oldObject": old,
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": options_kind},
        },
    }
