"""``charts/raysvc`` rendered by the real helm: both profiles and every option.

Each rendering is linted, validated offline against the Kubernetes API schemas of the oldest
supported and the newest bundled Kubernetes version (``kubernetes-validate``, strict: unknown
fields fail), and the fields the chart promises are asserted.
"""

from __future__ import annotations

import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.commands import RAYSVC
from tests.integration.helm.chart import CHART, Helm, Manifests

Obj = dict[str, Any]

PROFILES: dict[str, Obj] = {
    "webhook-only": {},
    "standalone": {"reconciler": {"enabled": True}},
    "cert-manager": {"certManager": {"enabled": True}},
    "cert-manager-with-issuer": {
        "certManager": {"enabled": True, "issuerRef": {"kind": "ClusterIssuer", "name": "corp-ca"}}
    },
    "standalone-in-two-namespaces": {
        "reconciler": {"enabled": True},
        "watchNamespaces": ["team-a", "team-b"],
    },
    "one-replica-each": {
        "webhook": {"replicas": 1},
        "reconciler": {"enabled": True, "replicas": 1},
    },
    "service-monitor": {
        "reconciler": {"enabled": True},
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
    },
    "fail-open-mutation": {"webhook": {"failurePolicy": "Ignore", "timeoutSeconds": 10}},
    "pinned-image": {
        "image": {"repository": "registry.example/raysvc", "digest": "sha256:" + "a" * 64}
    },
}
# Kinds of other projects' CRDs: no bundled schema, their fields are asserted below instead.
FOREIGN_KINDS = {
    "cert-manager.io/v1": {"Certificate", "Issuer"},
    "monitoring.coreos.com/v1": {"ServiceMonitor"},
}
OLDEST_KUBERNETES = "1.27"  # Chart.yaml kubeVersion

WEBHOOK = "raysvc-webhook"
RECONCILER = "raysvc-reconciler"


def test_the_chart_lints_clean_for_every_profile_and_option(helm: Helm) -> None:
    for name, values in PROFILES.items():
        result = helm.lint(values)
        assert result.code == 0, (name, result)
        assert "[WARNING]" not in result.out, (name, result.out)
        assert "[ERROR]" not in result.out, (name, result.out)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_rendered_object_is_valid_against_the_kubernetes_schemas(
    helm: Helm, profile: str
) -> None:
    manifests = helm.render(PROFILES[profile], include_crds=True)
    unchecked = set()
    for obj in manifests.objects:
        if obj["kind"] in FOREIGN_KINDS.get(obj["apiVersion"], ()):
            unchecked.add(obj["kind"])
            continue
        for version in (OLDEST_KUBERNETES, kubernetes_validate.latest_version()):
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                pytest.fail(
                    f"{obj['kind']}/{obj['metadata']['name']} on {version}: {path}: {e.message}"
                )
    assert unchecked <= {"Certificate", "Issuer", "ServiceMonitor"}


def test_the_webhook_only_profile_installs_the_webhook_and_nothing_else(helm: Helm) -> None:
    manifests = helm.render()
    assert manifests.kinds() == [
        ("ClusterRole", WEBHOOK),
        ("ClusterRoleBinding", WEBHOOK),
        ("Deployment", WEBHOOK),
        ("MutatingWebhookConfiguration", "raysvc"),
        ("PodDisruptionBudget", WEBHOOK),
        ("Role", WEBHOOK),
        ("RoleBinding", WEBHOOK),
        ("Service", WEBHOOK),
        ("ServiceAccount", WEBHOOK),
        ("ValidatingWebhookConfiguration", "raysvc"),
    ]
    assert all(
        obj["metadata"].get("namespace", "raysvc-system") == "raysvc-system"
        for obj in manifests.objects
    )
    deployment = manifests.get("Deployment", WEBHOOK)
    assert deployment["spec"]["replicas"] == 2


def test_both_webhooks_match_rayservices_of_both_versions_on_create_and_update(helm: Helm) -> None:
    manifests = helm.render()
    mutating = manifests.get("MutatingWebhookConfiguration", "raysvc")["webhooks"]
    validating = manifests.get("ValidatingWebhookConfiguration", "raysvc")["webhooks"]
    assert [w["name"] for w in mutating] == ["mutate.raysvc.io"]
    assert [w["name"] for w in validating] == ["validate.raysvc.io"]
    for webhook, path in ((mutating[0], "/mutate"), (validating[0], "/validate")):
        assert webhook["admissionReviewVersions"] == ["v1"]
        assert webhook["sideEffects"] == "None"
        assert webhook["matchPolicy"] == "Equivalent"
        assert webhook["timeoutSeconds"] == 5
        assert webhook["failurePolicy"] == "Fail"
        assert webhook["clientConfig"] == {
            "service": {"namespace": "raysvc-system", "name": WEBHOOK, "path": path, "port": 443}
        }
        assert "caBundle" not in webhook["clientConfig"]  # set at run time, never rendered
        assert webhook["rules"] == [
            {
                "apiGroups": ["ray.io"],
                "apiVersions": ["v1", "v1alpha1"],
                "resources": ["rayservices"],
                "operations": ["CREATE", "UPDATE"],
                "scope": "Namespaced",
            }
        ]
        assert webhook["namespaceSelector"] == {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": ["raysvc-system", "kube-system"],
                }
            ]
        }
    assert mutating[0]["reinvocationPolicy"] == "IfNeeded"


def test_only_the_mutating_webhook_may_fail_open(helm: Helm) -> None:
    manifests = helm.render(PROFILES["fail-open-mutation"])
    (mutating,) = manifests.get("MutatingWebhookConfiguration", "raysvc")["webhooks"]
    (validating,) = manifests.get("ValidatingWebhookConfiguration", "raysvc")["webhooks"]
    assert (mutating["failurePolicy"], mutating["timeoutSeconds"]) == ("Ignore", 10)
    assert (validating["failurePolicy"], validating["timeoutSeconds"]) == ("Fail", 10)


def test_the_webhook_keeps_its_own_certificates_in_a_secret_by_default(helm: Helm) -> None:
    manifests = helm.render()
    container = manifests.container(WEBHOOK)
    assert container["args"] == [
        "webhook",
        "--cert-secret=raysvc-system/raysvc-webhook-tls",
        "--webhook-config=raysvc",
        "--service=raysvc-webhook",
        "--port=9443",
        "--health-port=8081",
        "--drain-seconds=10",
        "--log-level=info",
    ]
    assert container["env"] == [
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
    ]
    # Least privilege: its own Secret and its own two configurations, by name.
    assert manifests.get("Role", WEBHOOK)["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["raysvc-webhook-tls"],
            "verbs": ["get", "update"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    ]
    assert manifests.get("ClusterRole", WEBHOOK)["rules"] == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
            "resourceNames": ["raysvc"],
            "verbs": ["get", "patch"],
        }
    ]
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        assert manifests.get(kind, WEBHOOK)["subjects"] == [
            {"kind": "ServiceAccount", "name": WEBHOOK, "namespace": "raysvc-system"}
        ]
    assert not [obj for obj in manifests.objects if obj["apiVersion"].startswith("cert-manager.io")]


def test_cert_manager_issues_the_certificate_and_injects_the_ca(helm: Helm) -> None:
    manifests = helm.render(PROFILES["cert-manager"])
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        annotations = manifests.get(kind, "raysvc")["metadata"]["annotations"]
        assert annotations == {"cert-manager.io/inject-ca-from": "raysvc-system/raysvc-webhook"}
    certificate = manifests.get("Certificate", WEBHOOK)
    assert certificate["spec"]["secretName"] == "raysvc-webhook-tls"
    assert certificate["spec"]["dnsNames"] == [
        "raysvc-webhook.raysvc-system.svc",
        "raysvc-webhook.raysvc-system.svc.cluster.local",
    ]
    assert certificate["spec"]["issuerRef"] == {"kind": "Issuer", "name": "raysvc-ca"}
    # The issuer is a CA (signed by a self-signed root), so the Secret carries ca.crt.
    assert manifests.get("Issuer", "raysvc-ca")["spec"] == {"ca": {"secretName": "raysvc-ca"}}
    assert manifests.get("Certificate", "raysvc-ca")["spec"]["isCA"] is True
    assert manifests.get("Issuer", "raysvc-selfsigned")["spec"] == {"selfSigned": {}}

    container = manifests.container(WEBHOOK)
    assert container["args"][:2] == ["webhook", "--cert-dir=/etc/raysvc/tls"]
    assert not [
        arg for arg in container["args"] if arg.startswith(("--cert-secret", "--webhook-config"))
    ]
    assert {"name": "tls", "mountPath": "/etc/raysvc/tls", "readOnly": True} in container[
        "volumeMounts"
    ]
    pod = manifests.get("Deployment", WEBHOOK)["spec"]["template"]["spec"]
    assert {"name": "tls", "secret": {"secretName": "raysvc-webhook-tls"}} in pod["volumes"]
    # It never talks to the API server, so it gets neither a token nor RBAC.
    assert pod["automountServiceAccountToken"] is False
    assert not [obj for obj in manifests.objects if obj["kind"] in ("Role", "ClusterRole")]


def test_cert_manager_can_use_an_existing_issuer(helm: Helm) -> None:
    manifests = helm.render(PROFILES["cert-manager-with-issuer"])
    assert manifests.get("Certificate", WEBHOOK)["spec"]["issuerRef"] == {
        "kind": "ClusterIssuer",
        "name": "corp-ca",
    }
    assert [obj["metadata"]["name"] for obj in manifests.of_kind("Certificate")] == [WEBHOOK]
    assert manifests.of_kind("Issuer") == []


def test_the_standalone_profile_adds_a_leader_elected_reconciler(helm: Helm) -> None:
    manifests = helm.render(PROFILES["standalone"])
    deployment = manifests.get("Deployment", RECONCILER)
    assert deployment["spec"]["replicas"] == 2
    container = manifests.container(RECONCILER)
    assert container["args"] == [
        "reconcile",
        "--controllers=rayservice,raycluster",
        "--leader-elect",
        "--leader-election-id=raysvc-reconciler",
        "--metrics-port=8080",
        "--health-port=8081",
        "--log-level=info",
    ]
    assert container["env"] == [
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
    ]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "metrics": 8080,
        "health": 8081,
    }
    assert manifests.get("PodDisruptionBudget", RECONCILER)["spec"]["maxUnavailable"] == 1
    service = manifests.get("Service", "raysvc-reconciler-metrics")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    # The webhook runs in this profile too.
    assert manifests.get("Deployment", WEBHOOK)["spec"]["replicas"] == 2


def test_the_reconciler_may_touch_only_what_its_controllers_manage(helm: Helm) -> None:
    manifests = helm.render(PROFILES["standalone"])
    granted = {
        (group, resource): sorted(rule["verbs"])
        for rule in manifests.get("ClusterRole", RECONCILER)["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    crud = sorted(["get", "list", "watch", "create", "update", "patch", "delete"])
    assert granted == {
        ("ray.io", "rayservices"): sorted(["get", "list", "watch", "update", "patch"]),
        ("ray.io", "rayservices/status"): sorted(["get", "update", "patch"]),
        ("ray.io", "rayservices/finalizers"): ["update"],
        ("ray.io", "rayclusters"): crud,
        ("ray.io", "rayclusters/status"): sorted(["get", "update", "patch"]),
        ("", "pods"): crud,
        ("", "services"): crud,
        ("", "endpoints"): sorted(["get", "list", "watch"]),
        ("", "events"): sorted(["create", "patch"]),
        ("", "serviceaccounts"): sorted(["get", "list", "watch", "create", "delete"]),
        ("rbac.authorization.k8s.io", "roles"): sorted(
            ["get", "list", "watch", "create", "delete"]
        ),
        ("rbac.authorization.k8s.io", "rolebindings"): sorted(
            ["get", "list", "watch", "create", "delete"]
        ),
        ("discovery.k8s.io", "endpointslices"): sorted(["get", "list", "watch"]),
    }
    binding = manifests.get("ClusterRoleBinding", RECONCILER)
    assert binding["roleRef"]["name"] == RECONCILER
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": RECONCILER, "namespace": "raysvc-system"}
    ]
    lease = manifests.get("Role", "raysvc-reconciler-leader-election")
    assert lease["metadata"]["namespace"] == "raysvc-system"
    assert lease["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [RECONCILER],
            "verbs": ["get", "update"],
        },
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]


def test_watch_namespaces_narrow_the_webhook_the_reconciler_and_its_rbac(helm: Helm) -> None:
    manifests = helm.render(PROFILES["standalone-in-two-namespaces"])
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        (webhook,) = manifests.get(kind, "raysvc")["webhooks"]
        assert webhook["namespaceSelector"]["matchExpressions"][1] == {
            "key": "kubernetes.io/metadata.name",
            "operator": "In",
            "values": ["team-a", "team-b"],
        }
    args = manifests.container(RECONCILER)["args"]
    assert args[:3] == ["reconcile", "--namespace=team-a", "--namespace=team-b"]
    # Bound per namespace: no cluster-wide grant.
    assert [obj["metadata"]["name"] for obj in manifests.of_kind("ClusterRoleBinding")] == [WEBHOOK]
    bindings = {
        obj["metadata"]["namespace"]: obj["roleRef"]
        for obj in manifests.of_kind("RoleBinding")
        if obj["metadata"]["name"] == RECONCILER
    }
    assert bindings == {
        namespace: {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": RECONCILER,
        }
        for namespace in ("team-a", "team-b")
    }


def _pods(manifests: Manifests) -> list[Obj]:
    return [obj["spec"]["template"]["spec"] for obj in manifests.of_kind("Deployment")]


@pytest.mark.parametrize("profile", ["standalone", "cert-manager"])
def test_every_pod_meets_the_restricted_pod_security_standard(helm: Helm, profile: str) -> None:
    manifests = helm.render(PROFILES[profile])
    pods = _pods(manifests)
    assert len(pods) == (2 if profile == "standalone" else 1)
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["securityContext"]["runAsUser"] == 65532  # numeric: kubelet can verify it
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["runAsNonRoot"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("deployment", [WEBHOOK, RECONCILER])
def test_probes_hit_the_health_port_and_memory_is_limited_but_cpu_is_not(
    helm: Helm, deployment: str
) -> None:
    container = helm.render(PROFILES["standalone"]).container(deployment)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["health"] == 8081
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert "--health-port=8081" in container["args"]
    assert set(container["resources"]["limits"]) == {"memory"}
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}


def test_replicas_are_spread_and_protected_by_a_budget_only_when_there_are_several(
    helm: Helm,
) -> None:
    spread = helm.render().get("Deployment", WEBHOOK)["spec"]["template"]["spec"][
        "topologySpreadConstraints"
    ]
    assert [(c["topologyKey"], c["whenUnsatisfiable"]) for c in spread] == [
        ("kubernetes.io/hostname", "ScheduleAnyway"),
        ("topology.kubernetes.io/zone", "ScheduleAnyway"),
    ]
    assert spread[0]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "webhook"
    assert helm.render().of_kind("PodDisruptionBudget") != []
    assert helm.render(PROFILES["one-replica-each"]).of_kind("PodDisruptionBudget") == []


def test_the_service_monitor_scrapes_both_components(helm: Helm) -> None:
    assert helm.render().of_kind("ServiceMonitor") == []
    manifests = helm.render(PROFILES["service-monitor"])
    monitor = manifests.get("ServiceMonitor", "raysvc")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"] == [
        {
            "port": "metrics",
            "path": "/metrics",
            "scheme": "http",
            "interval": "30s",
            "scrapeTimeout": "10s",
        }
    ]
    selected = [
        obj["metadata"]["name"]
        for obj in manifests.of_kind("Service")
        if monitor["spec"]["selector"]["matchLabels"].items() <= obj["metadata"]["labels"].items()
        and any(port["name"] == "metrics" for port in obj["spec"]["ports"])
    ]
    assert sorted(selected) == ["raysvc-reconciler-metrics", WEBHOOK]
    # The webhook serves /metrics on its health port.
    webhook_ports = manifests.get("Service", WEBHOOK)["spec"]["ports"]
    assert {
        "name": "metrics",
        "port": 8081,
        "targetPort": "health",
        "protocol": "TCP",
    } in webhook_ports


def test_the_image_tag_defaults_to_the_app_version(helm: Helm) -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert helm.render().container(WEBHOOK)["image"] == f"raysvc:{app_version}"
    tagged = helm.render({"image": {"repository": "r.example/raysvc", "tag": "0.2.0-rc1"}})
    assert tagged.container(WEBHOOK)["image"] == "r.example/raysvc:0.2.0-rc1"
    pinned = helm.render(PROFILES["pinned-image"] | {"reconciler": {"enabled": True}})
    for deployment in (WEBHOOK, RECONCILER):
        assert pinned.container(deployment)["image"] == "registry.example/raysvc@sha256:" + "a" * 64


def test_names_follow_the_release_name(helm: Helm) -> None:
    manifests = helm.render(PROFILES["standalone"], release="prod", namespace="ray-admission")
    assert (
        manifests.get("Deployment", "prod-raysvc-webhook")["metadata"]["namespace"]
        == "ray-admission"
    )
    assert manifests.container("prod-raysvc-webhook")["args"][1:4] == [
        "--cert-secret=ray-admission/prod-raysvc-webhook-tls",
        "--webhook-config=prod-raysvc",
        "--service=prod-raysvc-webhook",
    ]
    (webhook,) = manifests.get("ValidatingWebhookConfiguration", "prod-raysvc")["webhooks"]
    assert webhook["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "ray-admission",
        "kube-system",
    ]
    assert (
        "--leader-election-id=prod-raysvc-reconciler"
        in manifests.container("prod-raysvc-reconciler")["args"]
    )


def test_the_standalone_crds_are_exactly_what_raysvc_crds_prints(helm: Helm) -> None:
    printed = subprocess.run([RAYSVC, "crds"], capture_output=True, text=True, check=True).stdout
    expected = [doc for doc in yaml.safe_load_all(printed) if doc]
    shipped = [
        doc
        for path in sorted((CHART / "crds").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    # Parsed, not bytes: the YAML layout may change, the objects may not.
    assert shipped == expected, "regenerate: raysvc crds > charts/raysvc/crds/raysvc-crds.yaml"
    rendered = helm.render(include_crds=True).of_kind("CustomResourceDefinition")
    assert sorted(crd["metadata"]["name"] for crd in rendered) == [
        "rayclusters.ray.io",
        "rayservices.ray.io",
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"webhook": {"failurePolicy": "Maybe"}},
            "at '/webhook/failurePolicy': value must be one of 'Fail', 'Ignore'",
        ),
        (
            {"webhook": {"timeoutSeconds": 31}},
            "at '/webhook/timeoutSeconds': maximum: got 31, want 30",
        ),
        ({"webhook": {"replica": 3}}, "at '/webhook': additional properties 'replica' not allowed"),
        ({"reconciler": {"enabled": "yes"}}, "at '/reconciler/enabled': got string, want boolean"),
        (
            {"reconciler": {"controllers": ["rayjob"]}},
            "at '/reconciler/controllers/0': value must be one of 'rayservice', 'raycluster'",
        ),
        (
            {"watchNamespaces": ["Team_A"]},
            "at '/watchNamespaces/0': 'Team_A' does not match pattern",
        ),
        ({"image": {"digest": "latest"}}, "at '/image/digest': 'latest' does not match pattern"),
    ],
)
def test_a_bad_value_is_refused_before_anything_is_rendered(
    helm: Helm, values: Obj, message: str
) -> None:
    result, manifests = helm.template(values, check=False)
    assert result.code == 1
    assert "values don't meet the specifications of the schema(s)" in result.err
    assert message in result.err
    assert manifests.objects == ()


def test_a_drain_longer_than_the_grace_period_allows_is_refused(helm: Helm) -> None:
    result, _ = helm.template({"webhook": {"drainSeconds": 25}}, check=False)
    assert result.code == 1
    assert (
        "webhook.drainSeconds must be at least 10 s below webhook.terminationGracePeriodSeconds"
        in result.err
    )
