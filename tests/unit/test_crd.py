"""The project's CRDs: structural, complete, and in step with the models and the defaults."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rayservice.crd import rayservice_crds
from rayservice.defaults import DEFAULT_RULES
from rayservice.models import RayClusterSpec, RayServiceSpec, WorkerGroupSpec


def schema_of(kind: str, version: str) -> dict[str, Any]:
    crd = next(c for c in rayservice_crds() if c["spec"]["names"]["kind"] == kind)
    found = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    schema: dict[str, Any] = found["schema"]["openAPIV3Schema"]
    return schema


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for key, child in schema.get("properties", {}).items():
        yield from nodes(child, f"{path}.{key}")
    if "items" in schema:
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


def test_every_schema_node_is_structural() -> None:
    for kind, version in (("RayService", "v1"), ("RayService", "v1alpha1"), ("RayCluster", "v1")):
        for path, node in nodes(schema_of(kind, version)):
            assert "type" in node or node.get("x-kubernetes-int-or-string"), (kind, path)
            if node.get("type") == "object" and path != ".metadata":  # the API server's own
                assert (
                    "properties" in node
                    or "additionalProperties" in node
                    or node.get("x-kubernetes-preserve-unknown-fields")
                ), (kind, path)


def test_every_model_field_is_declared() -> None:
    spec = schema_of("RayService", "v1")["properties"]["spec"]
    assert set(spec["properties"]) == {f.alias for f in RayServiceSpec.model_fields.values()}
    cluster = spec["properties"]["rayClusterConfig"]
    assert set(cluster["properties"]) == {f.alias for f in RayClusterSpec.model_fields.values()}
    group = cluster["properties"]["workerGroupSpecs"]["items"]
    assert set(group["properties"]) == {f.alias for f in WorkerGroupSpec.model_fields.values()}
    assert set(group["required"]) == {"groupName", "template"}


def test_v1alpha1_lacks_the_fields_added_in_v1() -> None:
    spec = schema_of("RayService", "v1alpha1")["properties"]["spec"]["properties"]
    assert "upgradeStrategy" not in spec
    assert {"serveConfigV2", "rayClusterConfig", "serveService"} <= set(spec)


def test_worker_defaults_are_the_webhooks_defaults() -> None:
    group = schema_of("RayService", "v1")["properties"]["spec"]["properties"]["rayClusterConfig"][
        "properties"
    ]["workerGroupSpecs"]["items"]["properties"]
    for rule in DEFAULT_RULES:
        if rule.scope == "worker" and rule.key != "rayStartParams":
            assert group[rule.key]["default"] == rule.value, rule.name


def test_pod_templates_and_status_keep_every_field() -> None:
    spec = schema_of("RayCluster", "v1")["properties"]["spec"]
    template = spec["properties"]["headGroupSpec"]["properties"]["template"]
    assert template == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    status = schema_of("RayCluster", "v1")["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True


def test_the_raycluster_columns_are_the_walkthroughs() -> None:
    crd = next(c for c in rayservice_crds() if c["spec"]["names"]["kind"] == "RayCluster")
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns[:2] == ["Desired Workers", "Available Workers"]
    assert "Status" in columns
