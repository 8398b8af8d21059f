"""Properties of the core over generated RayServices and Serve configs (hypothesis)."""

from __future__ import annotations

import copy
import random
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rayservice import (
    ChangeClass,
    apply_defaults,
    classify_change,
    compute_hashes,
    default_ops,
    evaluate,
    parse_serve_config,
)
from tests.builders import Obj, sample, serve_config

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def rayservices(draw: st.DrawFn) -> Obj:
    """The sample with generated worker groups, thresholds, labels and extra fields."""
    obj = sample()
    base_group = obj["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    groups = []
    for index in range(draw(st.integers(0, 4))):
        group = copy.deepcopy(base_group)
        group["groupName"] = f"group-{index}"
        for key in ("replicas", "minReplicas", "maxReplicas", "rayStartParams"):
            if draw(st.booleans()):
                del group[key]
            elif key != "rayStartParams":
                group[key] = draw(st.integers(0, 10))
        if draw(st.booleans()):
            group["scaleStrategy"] = {
                "workersToDelete": draw(st.lists(st.text(max_size=5), max_size=3))
            }
        groups.append(group)
    obj["spec"]["rayClusterConfig"]["workerGroupSpecs"] = groups
    for key in ("serviceUnhealthySecondThreshold", "deploymentUnhealthySecondThreshold"):
        if draw(st.booleans()):
            del obj["spec"][key]
    if draw(st.booleans()):
        obj["spec"]["extraField"] = draw(json_values)
    if draw(st.booleans()):
        obj["metadata"]["labels"] = draw(
            st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5))
        )
    if draw(st.booleans()):
        obj["apiVersion"] = "ray.io/v1alpha1"
    return obj


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every mapping's key order shuffled."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {key: shuffled(value[key], rng) for key in keys}
    if isinstance(value, list):
        return [shuffled(item, rng) for item in value]
    return value


@SETTINGS
@given(rayservices())
def test_defaulting_is_idempotent(obj: Obj) -> None:
    once, _ = apply_defaults(obj)
    assert default_ops(once) == []
    assert apply_defaults(once)[0] == once


@SETTINGS
@given(rayservices())
def test_an_unchanged_spec_is_none(obj: Obj) -> None:
    defaulted = apply_defaults(obj)[0]
    assert classify_change(defaulted, copy.deepcopy(defaulted)).kind is ChangeClass.NONE


@SETTINGS
@given(rayservices(), st.integers(0, 2**32))
def test_hashes_ignore_key_order(obj: Obj, seed: int) -> None:
    rng = random.Random(seed)
    reordered = shuffled(obj, rng)
    reordered["spec"]["serveConfigV2"] = yaml.safe_dump(
        shuffled(serve_config(obj), rng), sort_keys=False
    )
    assert compute_hashes(apply_defaults(reordered)[0]) == compute_hashes(apply_defaults(obj)[0])


@SETTINGS
@given(
    st.booleans(),
    st.integers(2, 8),
    st.integers(20, 200),
    st.sampled_from(["", "# header\n", "---\n", "%YAML 1.1\n---\n"]),
    st.booleans(),
)
def test_the_serve_hash_ignores_yaml_formatting(
    flow: bool, indent: int, width: int, prefix: str, sort_keys: bool
) -> None:
    config = serve_config(sample())
    text = prefix + yaml.safe_dump(
        config, default_flow_style=flow, indent=indent, width=width, sort_keys=sort_keys
    )
    text = text.replace("\n", "  # note\n") if not flow else text
    assert parse_serve_config(text).hash == compute_hashes(sample()).serve


@SETTINGS
@given(rayservices(), st.data())
def test_changing_only_autoscaler_owned_fields_is_autoscaler_owned(
    obj: Obj, data: st.DataObject
) -> None:
    old = apply_defaults(obj)[0]
    new = copy.deepcopy(old)
    changed = False
    for group in new["spec"]["rayClusterConfig"]["workerGroupSpecs"]:
        replicas = data.draw(st.integers(0, 20))
        doomed = data.draw(st.lists(st.text(min_size=1, max_size=5), max_size=3))
        changed |= replicas != group["replicas"]
        changed |= doomed != (group.get("scaleStrategy") or {}).get("workersToDelete", [])
        group["replicas"] = replicas
        group["scaleStrategy"] = {"workersToDelete": doomed}
    expected = ChangeClass.AUTOSCALER_OWNED if changed else ChangeClass.NONE
    assert classify_change(old, new).kind is expected


@SETTINGS
@given(st.text(max_size=300))
def test_any_string_as_serve_config_gives_errors_not_exceptions(text: str) -> None:
    result = parse_serve_config(text)
    assert (result.hash is None) == (result.canonical is None)
    obj = sample()
    obj["spec"]["serveConfigV2"] = text
    evaluate(obj)


yaml_fragments = st.sampled_from(
    [
        "applications:",
        "- name: a",
        "  import_path: m.a",
        "&x",
        "*x",
        "<<: *x",
        "[",
        "{",
        "]",
        "}",
        ":",
        "!!binary",
        "!!python/object",
        "? ",
        "|",
        ">",
        "'",
        '"',
        "\t",
        "~",
        ".inf",
        "0x1F",
        "\n",
    ]
)


@SETTINGS
@given(st.lists(yaml_fragments | st.text(max_size=5), max_size=30).map(" ".join))
def test_yaml_like_garbage_as_serve_config_gives_errors_not_exceptions(text: str) -> None:
    obj = sample()
    obj["spec"]["serveConfigV2"] = text
    result = evaluate(obj)
    assert result.allowed == (not result.errors)
