"""What the RayCluster controller builds, compared with what KubeRay builds for the same spec.

The golden files under ``golden/`` are the seed sample's objects, written out field by field from
KubeRay's source (their comments name the KubeRay function each part comes from). The tables
below pin the rules those files do not exercise.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.raycluster import build
from reconciler.raycluster.checks import spec_errors
from reconciler.raycluster.names import head_service_fqdn
from tests.raycluster_objects import CLUSTER_NAME, Obj, sample_cluster

GOLDEN = Path(__file__).parent / "golden"


def golden(name: str) -> Any:
    return yaml.safe_load((GOLDEN / name).read_text())


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Every field where ``actual`` departs from ``expected``, as readable paths."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual), key=str):
            if key not in actual:
                out.append(f"{path}.{key}: missing")
            elif key not in expected:
                out.append(f"{path}.{key}: unexpected {actual[key]!r}")
            else:
                out += differences(expected[key], actual[key], f"{path}.{key}")
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(actual)} items, expected {len(expected)}"]
        return [
            d
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for d in differences(e, a, f"{path}[{i}]")
        ]
    return [] if expected == actual else [f"{path}: {actual!r}, expected {expected!r}"]


def ray_container(pod: Obj) -> Obj:
    container: Obj = pod["spec"]["containers"][0]
    return container


def env_of(container: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def start_flags(container: Obj) -> dict[str, str]:
    """The ``ray start`` flags of a container's generated command."""
    command = env_of(container)["KUBERAY_GEN_RAY_START_CMD"]
    return dict(
        (m.group(1), m.group(2) or "") for m in re.finditer(r"--([\w-]+)(?:=(\S+))?", command)
    )


def head_with(edit: Any) -> Obj:
    cluster = sample_cluster()
    edit(cluster["spec"]["headGroupSpec"]["template"])
    return build(cluster).head_pod


# --- golden files: the seed sample -------------------------------------------------------------


@pytest.mark.parametrize(
    ("golden_file", "pick"),
    [
        ("sample-head-pod.yaml", lambda m: m.head_pod),
        ("sample-worker-pod.yaml", lambda m: m.worker_pods[0][1]),
        ("sample-head-service.yaml", lambda m: m.head_service),
    ],
)
def test_the_samples_objects_are_field_by_field_kuberays(golden_file: str, pick: Any) -> None:
    assert differences(golden(golden_file), pick(build(sample_cluster()))) == []


def test_the_sample_builds_one_pod_per_group_and_no_rbac_or_headless_service() -> None:
    manifests = build(sample_cluster())
    assert [group for group, _ in manifests.worker_pods] == ["small-group"]
    assert manifests.headless_service is None
    assert (manifests.service_account, manifests.role, manifests.role_binding) == (None, None, None)


def test_the_samples_worker_joins_the_head_by_the_head_services_dns_name() -> None:
    cluster = sample_cluster()
    manifests = build(cluster)
    service, head = manifests.head_service, manifests.head_pod
    worker = ray_container(manifests.worker_pods[0][1])
    dns = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    gcs = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "gcs-server")
    assert start_flags(worker)["address"] == f"{dns}:{gcs}"
    assert env_of(worker)["FQ_RAY_IP"] == dns == head_service_fqdn(cluster)
    assert env_of(worker)["RAY_ADDRESS"] == f"{dns}:{gcs}"
    # ... and that name leads to the head: the Service selects the head Pod and nothing else.
    selector = service["spec"]["selector"].items()
    assert selector <= head["metadata"]["labels"].items()
    assert not selector <= manifests.worker_pods[0][1]["metadata"]["labels"].items()
    # The head's GCS listens where the worker knocks: Ray's default port, no --port override.
    assert "port" not in start_flags(ray_container(head))


def test_the_head_pods_containers_keep_the_users_fields() -> None:
    user_env = [{"name": "MY_SETTING", "value": "1"}, {"name": "RAY_ADDRESS", "value": "mine:1"}]
    user_probe = {"tcpSocket": {"port": 6379}, "periodSeconds": 7}

    def edit(template: Obj) -> None:
        template["metadata"] = {"labels": {"team": "ml", "ray.io/cluster": "spoofed"}}
        template["spec"]["nodeSelector"] = {"pool": "cpu"}
        template["spec"]["tolerations"] = [{"key": "ray", "operator": "Exists"}]
        container = template["spec"]["containers"][0]
        container["env"] = copy.deepcopy(user_env)
        container["ports"] = [{"containerPort": 8265, "name": "dashboard"}]
        container["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        container["imagePullPolicy"] = "Always"
        container["securityContext"] = {"runAsUser": 1000}
        container["livenessProbe"] = copy.deepcopy(user_probe)
        container["lifecycle"] = {"preStop": {"exec": {"command": ["ray", "stop"]}}}
        template["spec"]["containers"].append({"name": "log-shipper", "image": "fluent-bit"})
        template["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]

    pod = head_with(edit)
    ray = ray_container(pod)
    assert pod["spec"]["nodeSelector"] == {"pool": "cpu"}
    assert pod["spec"]["tolerations"] == [{"key": "ray", "operator": "Exists"}]
    assert pod["spec"]["containers"][1] == {"name": "log-shipper", "image": "fluent-bit"}
    assert pod["metadata"]["labels"]["team"] == "ml"
    assert pod["metadata"]["labels"]["ray.io/cluster"] == CLUSTER_NAME  # not overridable
    assert ray["env"][:2] == user_env  # the user's first; KubeRay's RAY_ADDRESS only if absent
    assert [e["value"] for e in ray["env"] if e["name"] == "RAY_ADDRESS"] == ["mine:1"]
    assert ray["ports"] == [
        {"containerPort": 8265, "name": "dashboard"},
        {"name": "metrics", "containerPort": 8080},
    ]
    assert ray["volumeMounts"] == [
        {"name": "data", "mountPath": "/data"},
        {"mountPath": "/dev/shm", "name": "shared-mem"},
    ]
    assert pod["spec"]["volumes"][0] == {"name": "data", "emptyDir": {}}
    assert ray["imagePullPolicy"] == "Always"
    assert ray["securityContext"] == {"runAsUser": 1000}
    assert ray["livenessProbe"] == user_probe  # a probe the user wrote is theirs
    assert ray["readinessProbe"]["failureThreshold"] == 10  # the one left out is KubeRay's
    assert ray["lifecycle"] == {"preStop": {"exec": {"command": ["ray", "stop"]}}}


def test_a_user_command_runs_before_ray_start_unless_it_starts_ray_itself() -> None:
    def prelude(template: Obj) -> None:
        template["spec"]["containers"][0]["command"] = ["echo", "hello"]

    def own_start(template: Obj) -> None:
        template["spec"]["containers"][0]["args"] = ["ray start --head --block"]

    ray = ray_container(head_with(prelude))
    assert ray["command"] == ["/bin/bash", "-c", "--"]
    assert ray["args"][0].startswith(
        " echo  hello  && ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; ray start --head "
    )
    ray = ray_container(head_with(own_start))
    assert "command" not in ray
    assert ray["args"] == ["ray start --head --block"]
    assert env_of(ray)["KUBERAY_GEN_RAY_START_CMD"].startswith("ray start --head ")


def test_the_overwrite_annotation_leaves_the_command_to_the_user() -> None:
    cluster = sample_cluster()
    cluster["metadata"]["annotations"] = {"ray.io/overwrite-container-cmd": "true"}
    cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["command"] = ["my-entry"]
    pod = build(cluster).head_pod
    assert ray_container(pod)["command"] == ["my-entry"]
    assert pod["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
    assert "KUBERAY_GEN_RAY_START_CMD" in env_of(ray_container(pod))


# --- ray start ----------------------------------------------------------------------------------


def worker_flags(edit: Any) -> dict[str, str]:
    cluster = sample_cluster()
    edit(cluster["spec"]["workerGroupSpecs"][0])
    return start_flags(ray_container(build(cluster).worker_pods[0][1]))


def set_limits(**limits: Any) -> Any:
    def edit(group: Obj) -> None:
        group["template"]["spec"]["containers"][0]["resources"] = {"limits": limits}

    return edit


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(lambda g: None, {"num-cpus": "1", "memory": "2147483648"}, id="the sample"),
        pytest.param(
            set_limits(cpu="500m", memory="1.5Gi"),
            {"num-cpus": "1", "memory": "1610612736"},
            id="fractions round up",
        ),
        pytest.param(
            lambda g: g["template"]["spec"]["containers"][0].update(
                resources={"requests": {"cpu": "3", "memory": "1Gi"}}
            ),
            {"num-cpus": "3", "memory": None},
            id="CPU falls back to the request, memory does not",
        ),
        pytest.param(
            set_limits(cpu=2, **{"nvidia.com/gpu": 1}),
            {"num-cpus": "2", "num-gpus": "1"},
            id="GPUs",
        ),
        pytest.param(
            set_limits(**{"nvidia.com/mig-2g.32gb": 2}), {"num-gpus": "2"}, id="MIG slices are GPUs"
        ),
        pytest.param(
            set_limits(**{"google.com/tpu": 4}), {"resources": """'{"TPU":4}'"""}, id="TPUs"
        ),
        pytest.param(
            lambda g: g.update(rayStartParams={"num-cpus": "7", "object-store-memory": "100"}),
            {"num-cpus": "7", "object-store-memory": "100", "memory": "2147483648"},
            id="the user's params win over the container's resources",
        ),
        pytest.param(
            lambda g: g.update(resources={"CPU": "4", "memory": "1Gi", "custom": "0.5"}),
            {"num-cpus": "4", "memory": "1073741824", "resources": """'{"custom":0.5}'"""},
            id="the group's resources win over everything",
        ),
        pytest.param(
            lambda g: g.update(labels={"zone": "b", "disk": "ssd"}),
            {"labels": "disk=ssd,zone=b"},
            id="group labels become --labels, sorted",
        ),
        pytest.param(
            lambda g: g.update(
                rayStartParams={
                    "disable-usage-stats": "true",
                    "include-dashboard": "false",
                    "x": "False",
                }
            ),
            {"disable-usage-stats": "", "include-dashboard": "false", "x": None},
            id="true is a bare flag, false is dropped except where Ray takes it",
        ),
    ],
)
def test_ray_start_flags_come_from_params_and_resources_as_kuberays(
    edit: Any, expected: dict[str, str | None]
) -> None:
    flags = worker_flags(edit)
    for name, value in expected.items():
        assert flags.get(name) == value, name
    assert flags["block"] == ""
    assert flags["metrics-export-port"] == "8080"
    assert flags["dashboard-agent-listen-port"] == "52365"


def test_a_head_port_moves_the_workers_address_and_environment() -> None:
    cluster = sample_cluster()
    cluster["spec"]["headGroupSpec"]["rayStartParams"] = {"port": "6380"}
    manifests = build(cluster)
    worker = ray_container(manifests.worker_pods[0][1])
    assert start_flags(worker)["address"].endswith(".svc.cluster.local:6380")
    assert env_of(worker)["RAY_PORT"] == "6380"
    assert start_flags(ray_container(manifests.head_pod))["port"] == "6380"
    assert env_of(ray_container(manifests.head_pod))["RAY_ADDRESS"] == "127.0.0.1:6380"


# --- probes -------------------------------------------------------------------------------------


def test_ray_253_and_later_is_probed_over_http_on_the_agent_port() -> None:
    cluster = sample_cluster()
    cluster["spec"]["rayVersion"] = "2.53.0"
    manifests = build(cluster)
    head = ray_container(manifests.head_pod)
    assert head["livenessProbe"]["httpGet"] == {"path": "/api/healthz", "port": 52365}
    assert head["readinessProbe"]["httpGet"] == {"path": "/api/healthz", "port": 52365}
    worker = ray_container(manifests.worker_pods[0][1])
    # A Serve worker's readiness still checks its proxy, so it stays an exec probe.
    assert "httpGet" not in worker["readinessProbe"]
    assert worker["readinessProbe"]["exec"]["command"][2].endswith(
        "http://localhost:8000/-/healthz | grep success"
    )


@pytest.mark.parametrize(
    ("version", "http"),
    [
        ("2.52.0", False),
        ("2.53.0", True),
        ("2.100.0", True),
        ("3.0", True),
        ("nightly", False),
        ("", False),
    ],
)
def test_the_health_check_style_follows_the_ray_version(version: str, http: bool) -> None:
    cluster = sample_cluster()
    cluster["spec"]["rayVersion"] = version
    assert ("httpGet" in ray_container(build(cluster).head_pod)["livenessProbe"]) is http


def test_a_plain_raycluster_gets_no_serve_labels_probes_or_environment() -> None:
    cluster = sample_cluster()
    del cluster["metadata"]["labels"]
    manifests = build(cluster)
    for pod in (manifests.head_pod, manifests.worker_pods[0][1]):
        assert "ray.io/serve" not in pod["metadata"]["labels"]
        assert "RAY_SERVE_KV_TIMEOUT_S" not in env_of(ray_container(pod))
    worker = ray_container(manifests.worker_pods[0][1])
    assert "-/healthz" not in worker["readinessProbe"]["exec"]["command"][2]
    assert worker["readinessProbe"]["failureThreshold"] == 10
    tags = env_of(ray_container(manifests.head_pod))["RAY_USAGE_STATS_EXTRA_TAGS"]
    assert tags == "kuberay_version=raysvc;kuberay_crd=RayCluster"


def test_a_serve_port_the_worker_declares_is_the_one_its_readiness_probe_checks() -> None:
    cluster = sample_cluster()
    container = cluster["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    container["ports"] = [{"name": "serve", "containerPort": 9000}]
    worker = ray_container(build(cluster).worker_pods[0][1])
    assert "http://localhost:9000/-/healthz" in worker["readinessProbe"]["exec"]["command"][2]


# --- the head Service ---------------------------------------------------------------------------


def service_with(edit: Any) -> Obj:
    cluster = sample_cluster()
    edit(cluster)
    return build(cluster).head_service


def head_container(cluster: Obj) -> Obj:
    container: Obj = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    return container


def test_declared_head_ports_replace_the_defaults_and_metrics_is_always_there() -> None:
    def edit(cluster: Obj) -> None:
        head_container(cluster)["ports"] = [
            {"name": "serve", "containerPort": 8000},
            {"containerPort": 9999},
            {"name": "gcs-server", "containerPort": 6379},
        ]

    ports = service_with(edit)["spec"]["ports"]
    assert [(p["name"], p["port"]) for p in ports] == [
        ("9999-port", 9999),
        ("gcs-server", 6379),
        ("metrics", 8080),
        ("serve", 8000),
    ]


def test_a_service_type_other_than_cluster_ip_is_not_headless() -> None:
    service = service_with(lambda c: c["spec"]["headGroupSpec"].update(serviceType="NodePort"))
    assert service["spec"]["type"] == "NodePort"
    assert "clusterIP" not in service["spec"]


def test_the_head_service_template_keeps_its_fields_but_not_its_selector() -> None:
    def edit(cluster: Obj) -> None:
        cluster["spec"]["headServiceAnnotations"] = {"team": "ours"}
        cluster["spec"]["headGroupSpec"]["headService"] = {
            "metadata": {"annotations": {"team": "theirs", "lb": "x"}, "labels": {"a": "b"}},
            "spec": {"selector": {"app": "other"}, "sessionAffinity": "ClientIP"},
        }

    service = service_with(edit)
    assert service["metadata"]["name"] == f"{CLUSTER_NAME}-head-svc"
    assert service["metadata"]["annotations"] == {"team": "ours", "lb": "x"}
    assert service["metadata"]["labels"]["a"] == "b"
    assert service["spec"]["selector"]["ray.io/node-type"] == "head"
    assert "app" not in service["spec"]["selector"]
    assert service["spec"]["sessionAffinity"] == "ClientIP"


def test_the_head_templates_app_name_label_carries_into_the_selector() -> None:
    def edit(cluster: Obj) -> None:
        cluster["spec"]["headGroupSpec"]["template"]["metadata"] = {
            "labels": {"app.kubernetes.io/name": "fruit"}
        }

    cluster = sample_cluster()
    edit(cluster)
    manifests = build(cluster)
    assert manifests.head_service["spec"]["selector"]["app.kubernetes.io/name"] == "fruit"
    assert (
        manifests.head_service["spec"]["selector"].items()
        <= manifests.head_pod["metadata"]["labels"].items()
    )


# --- names, autoscaling, multi-host, fault tolerance --------------------------------------------


def test_long_names_are_cut_so_generated_pod_names_and_labels_fit_63_characters() -> None:
    cluster = sample_cluster()
    cluster["metadata"]["name"] = "c" * 53
    cluster["spec"]["workerGroupSpecs"][0]["groupName"] = "g" * 40
    manifests = build(cluster)
    for pod in (manifests.head_pod, manifests.worker_pods[0][1]):
        assert len(pod["metadata"]["generateName"]) + 5 <= 63
        assert all(len(v) <= 63 for v in pod["metadata"]["labels"].values())
    assert manifests.worker_pods[0][1]["metadata"]["generateName"].endswith("-worker-")


def test_autoscaling_adds_the_sidecar_its_rbac_and_nothing_else() -> None:
    plain = build(sample_cluster())
    cluster = sample_cluster()
    cluster["spec"]["enableInTreeAutoscaling"] = True
    manifests = build(cluster)
    sidecar, account, role, binding = yaml.safe_load_all(
        (GOLDEN / "sample-autoscaler.yaml").read_text()
    )
    head = manifests.head_pod
    assert differences(sidecar, head["spec"]["containers"][1]) == []
    assert differences(account, manifests.service_account) == []
    assert differences(role, manifests.role) == []
    assert differences(binding, manifests.role_binding) == []
    # The head Pod otherwise differs from the plain one only in these ways:
    expected = copy.deepcopy(plain.head_pod)
    ray = ray_container(expected)
    for place in (ray["args"], ray["env"][4]):
        key = 0 if isinstance(place, list) else "value"
        place[key] = place[key].replace("--num-cpus=2 ", "--no-monitor  --num-cpus=2 ")
    ray["volumeMounts"].append({"mountPath": "/tmp/ray", "name": "ray-logs"})
    expected["spec"]["containers"].append(head["spec"]["containers"][1])
    expected["spec"]["serviceAccountName"] = CLUSTER_NAME
    expected["spec"]["volumes"].append({"name": "ray-logs", "emptyDir": {}})
    assert differences(expected, head) == []
    assert manifests.worker_pods == plain.worker_pods


def test_autoscaler_v2_makes_pods_never_restart_and_says_so_to_ray() -> None:
    cluster = sample_cluster()
    cluster["spec"]["enableInTreeAutoscaling"] = True
    cluster["spec"]["autoscalerOptions"] = {
        "version": "v2",
        "image": "autoscaler:1",
        "env": [{"name": "EXTRA", "value": "1"}],
    }
    manifests = build(cluster)
    assert manifests.head_pod["spec"]["restartPolicy"] == "Never"
    assert manifests.worker_pods[0][1]["spec"]["restartPolicy"] == "Never"
    assert env_of(ray_container(manifests.head_pod))["RAY_enable_autoscaler_v2"] == "true"
    sidecar = manifests.head_pod["spec"]["containers"][1]
    assert sidecar["image"] == "autoscaler:1"
    assert sidecar["env"][-1] == {"name": "EXTRA", "value": "1"}


def test_a_service_account_the_head_names_is_the_users_to_create() -> None:
    cluster = sample_cluster()
    cluster["spec"]["enableInTreeAutoscaling"] = True
    cluster["spec"]["headGroupSpec"]["template"]["spec"]["serviceAccountName"] = "ray-admin"
    manifests = build(cluster)
    assert manifests.service_account is None
    assert manifests.head_pod["spec"]["serviceAccountName"] == "ray-admin"
    assert manifests.role_binding is not None
    assert manifests.role_binding["subjects"][0]["name"] == "ray-admin"


def test_a_multi_host_group_gets_the_headless_worker_service() -> None:
    cluster = sample_cluster()
    cluster["spec"]["workerGroupSpecs"][0]["numOfHosts"] = 2
    service = build(cluster).headless_service
    assert service is not None
    assert service["metadata"]["name"] == f"{CLUSTER_NAME}-headless"
    assert service["spec"] == {
        "clusterIP": "None",
        "selector": {"ray.io/cluster": CLUSTER_NAME, "ray.io/node-type": "worker"},
        "type": "ClusterIP",
        "publishNotReadyAddresses": True,
    }


def test_gcs_fault_tolerance_on_redis_wires_the_head_and_keeps_workers_waiting() -> None:
    cluster = sample_cluster()
    cluster["spec"]["gcsFaultToleranceOptions"] = {
        "redisAddress": "redis:6379",
        "redisPassword": {"valueFrom": {"secretKeyRef": {"name": "redis", "key": "password"}}},
    }
    manifests = build(cluster)
    head = ray_container(manifests.head_pod)
    assert manifests.head_pod["metadata"]["annotations"] == {
        "ray.io/ft-enabled": "true",
        "ray.io/external-storage-namespace": cluster["metadata"]["uid"],
    }
    env = env_of(head)
    assert env["RAY_external_storage_namespace"] == cluster["metadata"]["uid"]
    assert env["RAY_REDIS_ADDRESS"] == "redis:6379"
    assert env["REDIS_PASSWORD"] == {"secretKeyRef": {"name": "redis", "key": "password"}}
    assert start_flags(head)["redis-password"] == "$REDIS_PASSWORD"
    worker = ray_container(manifests.worker_pods[0][1])
    assert env_of(worker)["RAY_gcs_rpc_server_reconnect_timeout_s"] == "600"


def test_the_same_cluster_always_builds_the_same_manifests_without_sharing_state() -> None:
    cluster = sample_cluster()
    before = copy.deepcopy(cluster)
    first, second = build(cluster), build(cluster)
    assert first == second
    assert cluster == before  # the input is not touched
    first.head_pod["spec"]["containers"][0]["env"].clear()
    assert ray_container(second.head_pod)["env"]
    assert (
        ray_container(first.head_pod)["livenessProbe"]
        is not ray_container(first.head_pod)["readinessProbe"]
    )


def test_a_template_without_a_container_cannot_be_built() -> None:
    cluster = sample_cluster()
    cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"] = []
    with pytest.raises(ValueError, match="no containers"):
        build(cluster)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("lots", "quantities must match the regular expression"),
        ("1e30", "must be no more than 9223372036854775807 in magnitude"),
    ],
)
def test_a_bad_quantity_is_a_field_error_with_the_api_servers_detail(
    text: str, detail: str
) -> None:
    cluster = sample_cluster()
    container = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    container["resources"]["limits"]["cpu"] = text
    (error,) = spec_errors(cluster)
    message = str(error)
    assert "spec.headGroupSpec.template.spec.containers[0].resources.limits[cpu]" in message
    assert detail in message
