"""Label and field selector syntax and matching, as k8s.io/apimachinery defines them."""

from __future__ import annotations

import pytest

from localkube.selectors import (
    SelectorError,
    field_value,
    match_label_selector_object,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app": "web", "tier": "front", "n": "5"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("app in (web, db)", True),
        ("app notin (web)", False),
        ("missing notin (web)", True),
        ("tier", True),
        ("!tier", False),
        ("!missing", True),
        ("app=web,tier=front", True),
        ("app=web,tier=back", False),
        ("n>4", True),
        ("n<5", False),
        ("example.com/key=v", False),
    ],
)
def test_label_selectors_match_as_apimachinery_does(selector: str, matches: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is matches


@pytest.mark.parametrize("selector", ["app in x,(", "=x", "app=bad value!", "n>x", "a b"])
def test_malformed_label_selectors_are_rejected(selector: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


def test_label_selector_objects_combine_match_labels_and_expressions() -> None:
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front"]},
            {"key": "gone", "operator": "DoesNotExist"},
        ],
    }
    assert match_label_selector_object(selector, LABELS)
    assert not match_label_selector_object(
        {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, LABELS
    )
    assert not match_label_selector_object(
        {"matchExpressions": [{"key": "x", "operator": "Exists"}]}, LABELS
    )
    assert match_label_selector_object({}, None)
    assert match_label_selector_object(None, LABELS)


def test_field_selectors_compare_string_forms_and_refuse_unsupported_fields() -> None:
    obj = {"metadata": {"name": "a", "namespace": "ns"}, "spec": {"hostNetwork": True}}
    allowed = frozenset({"metadata.name", "metadata.namespace", "spec.hostNetwork"})
    assert parse_field_selector("metadata.name=a,metadata.namespace!=x", allowed).matches(obj)
    assert not parse_field_selector("metadata.name==b", allowed).matches(obj)
    assert parse_field_selector("spec.hostNetwork=true", allowed).matches(obj)
    assert field_value(obj, "status.phase") == ""
    with pytest.raises(SelectorError, match=r"field label not supported: spec\.other"):
        parse_field_selector("spec.other=1", allowed)
