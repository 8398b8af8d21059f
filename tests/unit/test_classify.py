"""Change classification: the seed walkthrough's cases, and the hashes behind them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rayservice import ChangeClass, apply_defaults, classify_change, compute_hashes
from rayservice.classify import Aspect
from tests.builders import Obj, put, sample, worker
from tests.seed_cases import (
    SEED_CASES,
    both,
    mango_price,
    reformat_serve_config,
    reorder_serve_keys,
)


def classify(edit: Callable[[Obj], object]) -> tuple[ChangeClass, frozenset[Aspect]]:
    old = apply_defaults(sample())[0]
    new = sample()
    edit(new)
    change = classify_change(old, apply_defaults(new)[0])
    return change.kind, change.aspects


@pytest.mark.parametrize(
    ("edit", "expected"), [c[1:] for c in SEED_CASES], ids=[c[0] for c in SEED_CASES]
)
def test_each_change_gets_its_class(edit: Callable[[Obj], object], expected: ChangeClass) -> None:
    kind, _ = classify(edit)
    assert kind is expected


def test_a_new_object_is_a_create() -> None:
    assert classify_change(None, apply_defaults(sample())[0]).kind is ChangeClass.CREATE


def test_combined_changes_keep_every_aspect() -> None:
    _, aspects = classify(
        both(
            mango_price(4),
            lambda o: put(o, "spec.rayClusterConfig.workerGroupSpecs[0].maxReplicas", 9),
            lambda o: put(o, "spec.rayClusterConfig.workerGroupSpecs[0].replicas", 3),
        )
    )
    assert aspects == {Aspect.SERVE, Aspect.SCALE_BOUNDS, Aspect.AUTOSCALER}


def test_autoscaler_and_bound_fields_do_not_move_the_cluster_hash() -> None:
    base = compute_hashes(apply_defaults(sample())[0])
    obj = sample()
    group = worker(obj)
    group.update(replicas=4, minReplicas=0, maxReplicas=9, scaleStrategy={"workersToDelete": ["a"]})
    assert compute_hashes(apply_defaults(obj)[0]) == base


def test_the_serve_hash_ignores_comments_whitespace_and_key_order() -> None:
    base = compute_hashes(apply_defaults(sample())[0]).serve
    reformatted = sample()
    reformat_serve_config(reformatted)
    reorder_serve_keys(reformatted)
    assert compute_hashes(reformatted).serve == base


def test_the_serve_hash_changes_with_a_value() -> None:
    obj = sample()
    mango_price(4)(obj)
    assert compute_hashes(obj).serve != compute_hashes(sample()).serve


def test_hashes_are_stable_across_releases() -> None:
    # Pinned: a change here would make every running RayService upgrade after a raysvc update.
    hashes = compute_hashes(apply_defaults(sample())[0])
    assert hashes.serve == "69da3c593d0773174cf2d3d67973938724c458470a4e536b501b032b4f2a8192"
    assert hashes.cluster == "3df18b029ee66700ed6cdedc8c318e09c011a050b59712c232dc2bcb93a3c87c"


def test_an_unparseable_serve_config_has_no_serve_hash_but_still_classifies() -> None:
    broken = put(sample(), "spec.serveConfigV2", "applications: [")
    assert compute_hashes(broken).serve is None
    kind = classify_change(apply_defaults(sample())[0], apply_defaults(broken)[0]).kind
    assert kind is ChangeClass.SERVE_ONLY
