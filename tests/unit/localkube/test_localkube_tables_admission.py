"""Printer-column JSONPath, HumanDuration, and admission rule matching and wording."""

from __future__ import annotations

from typing import Any

import pytest

from localkube.admission import (
    Attributes,
    Webhook,
    denial_status,
    interpret_response,
    match_webhook,
)
from localkube.tables import human_duration, jsonpath_values


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (30 * 3600, "30h"),
        (3 * 86400, "3d"),
    ],
)
def test_ages_read_like_kubectl(seconds: int, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_printer_column_paths_support_fields_indexes_wildcards_and_filters() -> None:
    obj = {
        "status": {
            "conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]
        }
    }
    assert jsonpath_values(obj, '.status.conditions[?(@.type=="Ready")].status') == ["True"]
    assert jsonpath_values(obj, ".status.conditions[0].type") == ["A"]
    assert jsonpath_values(obj, ".status.conditions[*].type") == ["A", "Ready"]
    assert jsonpath_values(obj, ".spec.missing") == []


def attrs(**changes: Any) -> Attributes:
    base: dict[str, Any] = {
        "operation": "CREATE",
        "group": "ray.io",
        "version": "v1alpha1",
        "resource": "rayservices",
        "subresource": "",
        "kind": "RayService",
        "namespace": "ns",
        "name": "x",
        "namespaced": True,
        "obj": {"metadata": {"labels": {"a": "b"}}},
        "old": None,
        "dry_run": False,
        "options": {},
        "user_info": {},
        "namespace_labels": {"kubernetes.io/metadata.name": "ns"},
        "versions": ("v1", "v1alpha1"),
    }
    return Attributes(**{**base, **changes})


def hook(**changes: Any) -> Webhook:
    rule = {
        "apiGroups": ["ray.io"],
        "apiVersions": ["v1"],
        "operations": ["CREATE"],
        "resources": ["rayservices"],
    }
    base: dict[str, Any] = {
        "configuration": "c",
        "name": "h.example.com",
        "mutating": False,
        "client_config": {},
        "rules": [rule],
    }
    return Webhook(**{**base, **changes})


def test_equivalent_match_policy_matches_another_served_version_and_exact_does_not() -> None:
    match = match_webhook(hook(), attrs())
    assert match is not None
    assert match.version == "v1"
    assert match_webhook(hook(match_policy="Exact"), attrs()) is None


def test_rules_match_operations_scope_and_subresources() -> None:
    assert match_webhook(hook(), attrs(operation="DELETE")) is None
    assert match_webhook(hook(), attrs(subresource="status", operation="CREATE")) is None
    status_rule = {
        "apiGroups": ["*"],
        "apiVersions": ["*"],
        "operations": ["*"],
        "resources": ["*/status"],
    }
    assert match_webhook(hook(rules=[status_rule]), attrs(subresource="status")) is not None
    cluster_rule = {
        "apiGroups": ["*"],
        "apiVersions": ["*"],
        "operations": ["*"],
        "resources": ["*"],
        "scope": "Cluster",
    }
    assert match_webhook(hook(rules=[cluster_rule]), attrs()) is None


def test_selectors_use_namespace_labels_and_old_or_new_object_labels() -> None:
    assert (
        match_webhook(
            hook(namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": "other"}}),
            attrs(),
        )
        is None
    )
    assert match_webhook(hook(object_selector={"matchLabels": {"a": "b"}}), attrs()) is not None
    assert match_webhook(hook(object_selector={"matchLabels": {"a": "c"}}), attrs()) is None
    deleting = attrs(operation="CREATE", obj=None, old={"metadata": {"labels": {"a": "b"}}})
    assert match_webhook(hook(object_selector={"matchLabels": {"a": "b"}}), deleting) is not None


def test_denials_are_worded_as_kube_apiserver_words_them() -> None:
    assert (
        denial_status("h", {"message": "m"})["message"]
        == 'admission webhook "h" denied the request: m'
    )
    assert denial_status("h", {"code": 200})["code"] == 403
    assert (
        denial_status("h", {})["message"]
        == 'admission webhook "h" denied the request without explanation'
    )
    assert (
        denial_status("h", {"reason": "Bad", "code": 422})["message"]
        == 'admission webhook "h" denied the request: Bad'
    )


def test_responses_must_echo_the_uid_and_name_their_patch_type() -> None:
    from localkube.admission import InvalidResponse

    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "u", "allowed": True},
    }
    assert interpret_response(review, uid="u", mutating=False).allowed
    with pytest.raises(InvalidResponse, match=r'expected response\.uid="v", got "u"'):
        interpret_response(review, uid="v", mutating=False)
    patched = {**review, "response": {"uid": "u", "allowed": True, "patch": "W10="}}
    with pytest.raises(InvalidResponse, match=r"but not response\.patchType"):
        interpret_response(patched, uid="u", mutating=True)
