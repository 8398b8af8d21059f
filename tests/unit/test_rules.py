"""Validation rules, one row each: the sample with one thing wrong gets exactly that error."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from rayservice import evaluate
from rayservice.clusters import validated_cluster
from tests.builders import Obj, deployment, head_container, put, sample, with_serve, worker


def errors_of(obj: Obj, old: Obj | None = None) -> list[str]:
    return [str(error) for error in evaluate(obj, old).errors]


def warnings_of(obj: Obj) -> list[str]:
    return [str(warning) for warning in evaluate(obj).warnings]


def serve(change: Callable[[Obj], None]) -> Callable[[Obj], object]:
    return lambda obj: with_serve(obj, change)


def set_worker(**fields: object) -> Callable[[Obj], object]:
    return lambda obj: worker(obj).update(fields)


def set_head_container(**fields: object) -> Callable[[Obj], object]:
    return lambda obj: head_container(obj).update(fields)


W0 = "spec.rayClusterConfig.workerGroupSpecs[0]"
HEAD = "spec.rayClusterConfig.headGroupSpec"
APPS = "spec.serveConfigV2.applications"

ERROR_CASES: list[tuple[str, Callable[[Obj], object], str]] = [
    (
        "minReplicas above maxReplicas",
        set_worker(minReplicas=6),
        f"{W0}.minReplicas: Invalid value: 6: must be less than or equal to maxReplicas (5)",
    ),
    (
        "negative maxReplicas",
        set_worker(maxReplicas=-1, minReplicas=0),
        f"{W0}.maxReplicas: Invalid value: -1: must be greater than or equal to 0",
    ),
    (
        "a string where an integer belongs",
        set_worker(minReplicas="1"),
        f'{W0}.minReplicas: Invalid value: "1": must be an integer',
    ),
    (
        "a missing rayClusterConfig",
        lambda o: o["spec"].pop("rayClusterConfig"),
        "spec.rayClusterConfig: Required value",
    ),
    (
        "a missing head template",
        lambda o: o["spec"]["rayClusterConfig"]["headGroupSpec"].pop("template"),
        f"{HEAD}.template: Required value",
    ),
    (
        "a head pod without containers",
        lambda o: put(o, f"{HEAD}.template.spec.containers", []),
        f"{HEAD}.template.spec.containers: Required value: at least one container is required",
    ),
    (
        "a worker pod without containers",
        lambda o: put(o, f"{W0}.template.spec.containers", []),
        f"{W0}.template.spec.containers: Required value: at least one container is required",
    ),
    (
        "a duplicate worker group name",
        lambda o: o["spec"]["rayClusterConfig"]["workerGroupSpecs"].append(dict(worker(sample()))),
        'spec.rayClusterConfig.workerGroupSpecs[1].groupName: Duplicate value: "small-group": '
        "already used by workerGroupSpecs[0]",
    ),
    (
        "a group name that cannot be a label value",
        set_worker(groupName="small group"),
        f'{W0}.groupName: Invalid value: "small group": must be a valid label value',
    ),
    (
        "a name longer than 47 characters",
        lambda o: put(o, "metadata.name", "r" * 48),
        "metadata.name: Invalid value: " + '"' + "r" * 48 + '"' + ": must be no more than 47",
    ),
    (
        "a name that is not a DNS-1035 label",
        lambda o: put(o, "metadata.name", "1service"),
        'metadata.name: Invalid value: "1service": a DNS-1035 label must consist of',
    ),
    (
        "neither name nor generateName",
        lambda o: o["metadata"].pop("name"),
        "metadata.name: Required value: name or generateName is required",
    ),
    (
        "a generateName too long for the 5 generated characters",
        lambda o: (o["metadata"].pop("name"), put(o, "metadata.generateName", "g" * 43)),
        "metadata.generateName: Invalid value: "
        + '"'
        + "g" * 43
        + '"'
        + ": must be no more than 42",
    ),
    (
        "a bad initializing-timeout annotation",
        lambda o: put(o, "metadata.annotations", {"ray.io/initializing-timeout": "-5m"}),
        'metadata.annotations[ray.io/initializing-timeout]: Invalid value: "-5m": must be a '
        "positive duration",
    ),
    (
        "a bad upgrade-timeout setting",
        lambda o: put(o, "metadata.annotations", {"raysvc.io/upgrade-timeout-seconds": "soon"}),
        'metadata.annotations[raysvc.io/upgrade-timeout-seconds]: Invalid value: "soon": must be a '
        "positive integer",
    ),
    (
        "a named head service",
        lambda o: put(o, f"{HEAD}.headService", {"metadata": {"name": "my-head"}}),
        f"{HEAD}.headService.metadata.name: Forbidden: the RayService names head services itself",
    ),
    (
        "an unknown upgrade strategy",
        lambda o: put(o, "spec.upgradeStrategy", {"type": "BlueGreen"}),
        'spec.upgradeStrategy.type: Unsupported value: "BlueGreen": supported values: '
        '"NewCluster", "NewClusterWithIncrementalUpgrade", "None"',
    ),
    (
        "a negative deletion delay",
        lambda o: put(o, "spec.rayClusterDeletionDelaySeconds", -1),
        "spec.rayClusterDeletionDelaySeconds: Invalid value: -1: must be greater than or equal to 0",
    ),
    (
        "an incremental upgrade without autoscaling",
        lambda o: put(
            o,
            "spec.upgradeStrategy",
            {
                "type": "NewClusterWithIncrementalUpgrade",
                "clusterUpgradeOptions": {
                    "stepSizePercent": 10,
                    "intervalSeconds": 30,
                    "gatewayClassName": "istio",
                },
            },
        ),
        "spec.rayClusterConfig.enableInTreeAutoscaling: Required value: incremental upgrades",
    ),
    (
        "an incremental step above the surge",
        lambda o: (
            put(o, "spec.rayClusterConfig.enableInTreeAutoscaling", True),
            put(
                o,
                "spec.upgradeStrategy",
                {
                    "type": "NewClusterWithIncrementalUpgrade",
                    "clusterUpgradeOptions": {
                        "maxSurgePercent": 20,
                        "stepSizePercent": 30,
                        "intervalSeconds": 30,
                        "gatewayClassName": "istio",
                    },
                },
            ),
        ),
        "spec.upgradeStrategy.clusterUpgradeOptions.stepSizePercent: Invalid value: 30: must be "
        "less than or equal to maxSurgePercent (20)",
    ),
    (
        "an unsupported managedBy",
        lambda o: put(o, "spec.managedBy", "me"),
        'spec.managedBy: Unsupported value: "me": supported values: "ray.io/kuberay-operator"',
    ),
    (
        "kubernetes token auth",
        lambda o: put(
            o, "spec.rayClusterConfig.authOptions", {"mode": "token", "enableK8sTokenAuth": True}
        ),
        "spec.rayClusterConfig.authOptions.enableK8sTokenAuth: Forbidden: Kubernetes token "
        "authentication is not supported for RayService",
    ),
    (
        "token auth on an old Ray",
        lambda o: (
            put(o, "spec.rayClusterConfig.authOptions", {"mode": "token"}),
            put(o, "spec.rayClusterConfig.rayVersion", "2.46.0"),
        ),
        'spec.rayClusterConfig.rayVersion: Invalid value: "2.46.0": token authentication needs '
        "rayVersion 2.52.0 or later",
    ),
    (
        "rayStartParams resources beside the group resources map",
        lambda o: (
            put(o, f"{W0}.resources", {"GPU": "1"}),
            put(o, f"{W0}.rayStartParams", {"num-cpus": "1"}),
        ),
        f"{W0}.rayStartParams[num-cpus]: Forbidden: may not be set together with {W0}.resources",
    ),
    (
        "labels in rayStartParams",
        lambda o: put(o, f"{HEAD}.rayStartParams", {"labels": "a=b"}),
        f"{HEAD}.rayStartParams[labels]: Forbidden: use {HEAD}.labels instead",
    ),
    (
        "a rayStartParams value that is not a string",
        lambda o: put(o, f"{HEAD}.rayStartParams", {"num-cpus": 1}),
        f"{HEAD}.rayStartParams[num-cpus]: Invalid value: 1: must be a string",
    ),
    (
        "RAY_REDIS_ADDRESS without fault tolerance",
        set_head_container(env=[{"name": "RAY_REDIS_ADDRESS", "value": "redis:6379"}]),
        f"{HEAD}.template.spec.containers[0].env: Forbidden: RAY_REDIS_ADDRESS enables GCS fault",
    ),
    (
        "the ft-enabled annotation with gcsFaultToleranceOptions",
        lambda o: (
            put(o, "metadata.annotations", {"ray.io/ft-enabled": "true"}),
            put(
                o, "spec.rayClusterConfig.gcsFaultToleranceOptions", {"redisAddress": "redis:6379"}
            ),
        ),
        "metadata.annotations[ray.io/ft-enabled]: Forbidden: may not be set together with "
        "spec.rayClusterConfig.gcsFaultToleranceOptions",
    ),
    (
        "storage on the redis backend",
        lambda o: put(
            o,
            "spec.rayClusterConfig.gcsFaultToleranceOptions",
            {"redisAddress": "redis:6379", "storage": {"size": "1Gi"}},
        ),
        "spec.rayClusterConfig.gcsFaultToleranceOptions.storage: Forbidden: only for the rocksdb",
    ),
    (
        "autoscaler v2 env without autoscaling",
        set_head_container(env=[{"name": "RAY_enable_autoscaler_v2", "value": "1"}]),
        f"{HEAD}.template.spec.containers[0].env: Forbidden: RAY_enable_autoscaler_v2 needs",
    ),
    (
        "autoscaler v2 with a restarting head",
        lambda o: (
            put(o, "spec.rayClusterConfig.enableInTreeAutoscaling", True),
            put(o, "spec.rayClusterConfig.autoscalerOptions", {"version": "v2"}),
            put(o, f"{HEAD}.template.spec.restartPolicy", "Always"),
        ),
        f'{HEAD}.template.spec.restartPolicy: Unsupported value: "Always": autoscaler v2 needs',
    ),
    (
        "a negative autoscaler idle timeout",
        lambda o: put(o, "spec.rayClusterConfig.autoscalerOptions", {"idleTimeoutSeconds": -1}),
        "spec.rayClusterConfig.autoscalerOptions.idleTimeoutSeconds: Invalid value: -1",
    ),
    (
        "a worker idle timeout without autoscaler v2",
        set_worker(idleTimeoutSeconds=60),
        f"{W0}.idleTimeoutSeconds: Forbidden: needs the in-tree autoscaler v2",
    ),
    (
        "a worker priority without autoscaler v2",
        set_worker(priority=5),
        f"{W0}.priority: Forbidden: needs the in-tree autoscaler v2",
    ),
    (
        "a Recreate upgrade strategy on the owned cluster",
        lambda o: put(o, "spec.rayClusterConfig.upgradeStrategy", {"type": "Recreate"}),
        "spec.rayClusterConfig.upgradeStrategy.type: Forbidden: a RayService upgrades its clusters",
    ),
    (
        "head ports without a serve port",
        set_head_container(ports=[{"name": "dashboard", "containerPort": 8265}]),
        f"{HEAD}.template.spec.containers[0].ports: Required value: declare a port named serve",
    ),
    (
        "serveConfigV2 written as a mapping instead of a string",
        lambda o: put(o, "spec.serveConfigV2", {"applications": []}),
        "spec.serveConfigV2: Invalid value: must be a string: write the Serve config as a YAML block",
    ),
    (
        "a duplicate application name",
        serve(lambda c: c["applications"][1].update(name="fruit_app")),
        f'{APPS}[1].name: Duplicate value: "fruit_app": already used by applications[0]',
    ),
    (
        "a duplicate route prefix",
        serve(lambda c: c["applications"][1].update(route_prefix="/fruit")),
        f'{APPS}[1].route_prefix: Duplicate value: "/fruit": already used by applications[0]',
    ),
    (
        "a route prefix without a leading slash",
        serve(lambda c: c["applications"][0].update(route_prefix="fruit")),
        f"{APPS}[0].route_prefix: Invalid value: \"fruit\": must start with a forward slash ('/')",
    ),
    (
        "a route prefix with a trailing slash",
        serve(lambda c: c["applications"][0].update(route_prefix="/fruit/")),
        f"{APPS}[0].route_prefix: Invalid value: \"/fruit/\": may not end with a trailing '/'",
    ),
    (
        "a route prefix with a wildcard",
        serve(lambda c: c["applications"][0].update(route_prefix="/fruit/{id}")),
        f'{APPS}[0].route_prefix: Invalid value: "/fruit/{{id}}": may not contain wildcards',
    ),
    (
        "an import path without an attribute",
        serve(lambda c: c["applications"][0].update(import_path="fruit")),
        f'{APPS}[0].import_path: Invalid value: "fruit": must have the form module.attribute',
    ),
    (
        "an import path with two colons",
        serve(lambda c: c["applications"][0].update(import_path="a:b:c")),
        f'{APPS}[0].import_path: Invalid value: "a:b:c": must have the form',
    ),
    (
        "a duplicate deployment name",
        serve(lambda c: c["applications"][0]["deployments"][1].update(name="MangoStand")),
        f'{APPS}[0].deployments[1].name: Duplicate value: "MangoStand"',
    ),
    (
        "zero replicas",
        serve(lambda c: deployment(c, "fruit_app", "MangoStand").update(num_replicas=0)),
        f"{APPS}[0].deployments[0].num_replicas: Invalid value: 0: must be an integer greater "
        'than or equal to 1, or "auto"',
    ),
    (
        "a user_config that is a list",
        serve(lambda c: deployment(c, "fruit_app", "MangoStand").update(user_config=[1, 2])),
        f"{APPS}[0].deployments[0].user_config: Invalid value: [1,2]: must be a mapping",
    ),
    (
        "a working_dir without a package extension",
        serve(
            lambda c: c["applications"][0].update(runtime_env={"working_dir": "file:///opt/apps"})
        ),
        f'{APPS}[0].runtime_env.working_dir: Invalid value: "file:///opt/apps": must name a .zip',
    ),
    (
        "a working_dir that is a plain path",
        serve(lambda c: c["applications"][0].update(runtime_env={"working_dir": "/opt/apps.zip"})),
        f'{APPS}[0].runtime_env.working_dir: Invalid value: "/opt/apps.zip": must be a remote URI',
    ),
    (
        "a per-application port",
        serve(lambda c: c["applications"][0].update(port=8001)),
        f"{APPS}[0].port: Forbidden: set port in http_options at the top level",
    ),
    (
        "num_replicas beside autoscaling_config",
        serve(
            lambda c: deployment(c, "fruit_app", "MangoStand").update(
                autoscaling_config={"min_replicas": 1, "max_replicas": 3}
            )
        ),
        f"{APPS}[0].deployments[0].num_replicas: Forbidden: may not be set with autoscaling_config",
    ),
    (
        "autoscaling min above max",
        serve(
            lambda c: deployment(c, "fruit_app", "MangoStand").update(
                num_replicas="auto", autoscaling_config={"min_replicas": 4, "max_replicas": 3}
            )
        ),
        f"{APPS}[0].deployments[0].autoscaling_config.min_replicas: Invalid value: 4: must be "
        "less than or equal to max_replicas (3)",
    ),
    (
        "invalid YAML in serveConfigV2",
        lambda o: put(o, "spec.serveConfigV2", "applications:\n  - name: [unclosed\n"),
        "spec.serveConfigV2: Invalid value: invalid YAML: line 3, column 1:",
    ),
    (
        "a serveConfigV2 that is a list",
        lambda o: put(o, "spec.serveConfigV2", "- a\n- b\n"),
        "spec.serveConfigV2: Invalid value: must be a YAML mapping with an applications list",
    ),
    (
        "a serveConfigV2 without applications",
        lambda o: put(o, "spec.serveConfigV2", "proxy_location: HeadOnly\n"),
        "spec.serveConfigV2.applications: Required value",
    ),
    (
        "an unknown proxy location",
        serve(lambda c: c.update(proxy_location="Everywhere")),
        'spec.serveConfigV2.proxy_location: Unsupported value: "Everywhere": supported values: '
        '"Disabled", "HeadOnly", "EveryNode"',
    ),
    (
        "an infinite number",
        lambda o: put(o, "spec.serveConfigV2", "applications: []\ntarget_capacity: .inf\n"),
        'spec.serveConfigV2.target_capacity: Invalid value: "inf": must be a finite number',
    ),
]


@pytest.mark.parametrize(
    ("edit", "expected"), [case[1:] for case in ERROR_CASES], ids=[case[0] for case in ERROR_CASES]
)
def test_each_rule_reports_its_field_and_reason(
    edit: Callable[[Obj], object], expected: str
) -> None:
    obj = sample()
    edit(obj)
    errors = errors_of(obj)
    assert any(error.startswith(expected) for error in errors), errors


def test_the_sample_is_allowed_without_warnings() -> None:
    result = evaluate(sample())
    assert result.allowed
    assert result.warnings == ()


def test_every_error_is_reported_not_just_the_first() -> None:
    obj = sample()
    worker(obj).update(minReplicas=6)
    obj["metadata"]["name"] = "Bad_Name"
    with_serve(obj, lambda c: c["applications"][1].update(route_prefix="/fruit"))
    fields = {error.field for error in evaluate(obj).errors}
    assert {
        f"{W0}.minReplicas",
        "metadata.name",
        f"{APPS}[1].route_prefix",
    } <= fields


def test_managed_by_is_immutable() -> None:
    old = put(sample(), "spec.managedBy", "ray.io/kuberay-operator")
    new = put(sample(), "spec.managedBy", "kueue.x-k8s.io/multikueue")
    assert 'spec.managedBy: Invalid value: "kueue.x-k8s.io/multikueue": field is immutable' in (
        errors_of(new, old)
    )


def test_a_serve_port_in_serve_service_satisfies_the_port_rule() -> None:
    obj = sample()
    head_container(obj)["ports"] = [{"name": "dashboard", "containerPort": 8265}]
    obj["spec"]["serveService"] = {"spec": {"ports": [{"name": "serve", "port": 8000}]}}
    assert errors_of(obj) == []


def test_a_declared_serve_port_satisfies_the_port_rule() -> None:
    obj = sample()
    head_container(obj)["ports"] = [{"name": "serve", "containerPort": 8000}]
    assert errors_of(obj) == []


WARNING_CASES: list[tuple[str, Callable[[Obj], object], str]] = [
    (
        "replicas above maxReplicas",
        set_worker(replicas=9),
        f"{W0}.replicas: 9 is above maxReplicas (5): 5 workers start",
    ),
    (
        "replicas below minReplicas",
        set_worker(replicas=1, minReplicas=2),
        f"{W0}.replicas: 1 is below minReplicas (2): 2 workers start",
    ),
    (
        "an unknown spec field",
        lambda o: put(o, "spec.rayClusterConfig.headGroupSpecs", {}),
        "spec.rayClusterConfig.headGroupSpecs: unknown field; the API server prunes it",
    ),
    (
        "a camelCase Serve key",
        serve(lambda c: deployment(c, "fruit_app", "MangoStand").update(numReplicas=2)),
        f"{APPS}[0].deployments[0].numReplicas: unknown key, ignored by Ray (did you mean num_replicas?)",
    ),
    (
        "a renamed Serve key",
        serve(lambda c: deployment(c, "fruit_app", "MangoStand").update(max_concurrent_queries=5)),
        f"{APPS}[0].deployments[0].max_concurrent_queries: renamed to max_ongoing_requests",
    ),
    (
        "a rayVersion that does not match the image",
        lambda o: put(o, "spec.rayClusterConfig.rayVersion", "2.100.0"),
        "spec.rayClusterConfig.rayVersion: 2.100.0 does not match the head image tag 2.52.0",
    ),
    (
        "a negative threshold",
        lambda o: put(o, "spec.serviceUnhealthySecondThreshold", -1),
        "spec.serviceUnhealthySecondThreshold: negative threshold (-1)",
    ),
    (
        "an empty serveConfigV2",
        lambda o: o["spec"].pop("serveConfigV2"),
        "spec.serveConfigV2: no Serve config: the RayService never becomes ready",
    ),
    (
        "an empty applications list",
        lambda o: put(o, "spec.serveConfigV2", "applications: []\n"),
        "spec.serveConfigV2.applications: no applications",
    ),
    (
        "a gated KubeRay feature",
        lambda o: put(o, "spec.rayClusterConfig.networkPolicy", {"mode": "DenyAllIngress"}),
        "spec.rayClusterConfig.networkPolicy: feature-gated in KubeRay",
    ),
]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [case[1:] for case in WARNING_CASES],
    ids=[case[0] for case in WARNING_CASES],
)
def test_suspicious_settings_are_allowed_with_a_warning(
    edit: Callable[[Obj], object], expected: str
) -> None:
    obj = sample()
    edit(obj)
    result = evaluate(obj)
    assert result.allowed, [str(e) for e in result.errors]
    assert any(str(w).startswith(expected) for w in result.warnings), [
        str(w) for w in result.warnings
    ]


def test_v1alpha1_is_checked_and_warned_as_deprecated() -> None:
    obj = put(sample(), "apiVersion", "ray.io/v1alpha1")
    result = evaluate(obj)
    assert result.allowed
    assert "apiVersion: ray.io/v1alpha1 RayService is deprecated; use ray.io/v1" in [
        str(w) for w in result.warnings
    ]


def test_v1alpha1_warns_about_fields_it_lacks() -> None:
    obj = put(sample(), "apiVersion", "ray.io/v1alpha1")
    obj["spec"]["upgradeStrategy"] = {"type": "NewCluster"}
    assert any(
        str(w).startswith("spec.upgradeStrategy: unknown field") for w in evaluate(obj).warnings
    )


def test_warnings_fit_in_a_kubectl_warning_line() -> None:
    obj = sample()
    worker(obj)["replicas"] = 2147483647
    obj["spec"]["rayClusterConfig"]["rayVersion"] = "2.100.0"
    for warning in evaluate(obj).warnings:
        assert len(str(warning)) <= 120, str(warning)


def test_the_rules_kept_for_a_cluster_follow_the_annotations_they_read() -> None:
    with_ft = put(sample(), "metadata.annotations", {"ray.io/ft-enabled": "true"})
    put(with_ft, "spec.rayClusterConfig.gcsFaultToleranceOptions", {"redisAddress": "r:6379"})
    without = put(copy.deepcopy(with_ft), "metadata.annotations", {})
    for obj, expected in ((with_ft, 1), (without, 0), (with_ft, 1)):
        errors = [e for e in errors_of(obj) if "ft-enabled" in e]
        assert len(errors) == expected


def test_a_cluster_is_kept_from_its_second_sighting_unless_too_large() -> None:
    obj = sample()
    head_container(obj)["env"] = [{"name": f"V{i}", "value": "v" * 100} for i in range(40000)]
    huge = obj["spec"]["rayClusterConfig"]
    models = [validated_cluster(huge) for _ in range(3)]  # held, so no id is reused
    assert models[0] is not models[1]
    assert models[1] is not models[2]
    once = put(sample(), "spec.rayClusterConfig.rayVersion", "2.77.7")["spec"]["rayClusterConfig"]
    first, second, third = (validated_cluster(once) for _ in range(3))
    assert first is not second
    assert second is third
