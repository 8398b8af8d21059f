"""Hostile RayServices: each is an ordinary field error with its path, never an exception."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from rayservice import ChangeClass, evaluate
from rayservice.bounds import MAX_DEPTH, too_deep
from tests.builders import Obj, sample
from tests.hostile_cases import HOSTILE, nested


@pytest.mark.parametrize(
    ("edit", "expected"), [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE]
)
def test_hostile_input_is_one_field_error_with_its_path(
    edit: Callable[[Obj], object], expected: str
) -> None:
    obj = sample()
    edit(obj)
    result = evaluate(obj, sample())
    assert [str(error) for error in result.errors] == [expected]
    mutated = evaluate(obj, sample(), check=False)
    assert mutated.mutated["metadata"]["annotations"]["raysvc.io/change"] in set(ChangeClass)


def test_a_duration_that_backtracks_is_refused_by_its_length() -> None:
    obj = sample()
    obj["metadata"]["annotations"] = {"ray.io/initializing-timeout": "1" * 60000 + "x"}
    (error,) = evaluate(obj).errors
    assert error.field == "metadata.annotations[ray.io/initializing-timeout]"


def test_a_ray_version_of_5000_digits_is_no_version() -> None:
    obj = sample()
    obj["spec"]["rayClusterConfig"]["rayVersion"] = "1" * 5000 + ".2"
    assert evaluate(obj).allowed


def test_a_too_deep_object_keeps_its_defaults_and_drops_stale_hashes() -> None:
    obj = sample()
    obj["metadata"]["annotations"] = {"raysvc.io/cluster-hash": "stale", "raysvc.io/change": "x"}
    obj["spec"]["extra"] = nested(300)
    result = evaluate(obj, sample(), check=False)
    assert result.change.kind is ChangeClass.CLUSTER_UPGRADE
    assert result.mutated["metadata"]["annotations"] == {"raysvc.io/change": "cluster-upgrade"}
    assert result.mutated["spec"]["rayClusterDeletionDelaySeconds"] == 60


def test_a_too_deep_stored_object_counts_as_a_cluster_upgrade() -> None:
    old = sample()
    old["spec"]["extra"] = nested(300)
    result = evaluate(sample(), old)
    assert result.allowed
    assert result.change.kind is ChangeClass.CLUSTER_UPGRADE


def test_nesting_up_to_the_bound_is_accepted() -> None:
    obj = sample()
    obj["spec"]["extra"] = nested(MAX_DEPTH - 2)  # the object and spec are two levels
    assert too_deep(obj) is None
    assert evaluate(obj).allowed


def test_the_depth_bound_is_the_one_orjson_serializes() -> None:
    orjson.dumps(nested(MAX_DEPTH))
    with pytest.raises(orjson.JSONEncodeError, match="Recursion limit"):
        orjson.dumps(nested(MAX_DEPTH + 1))
    assert too_deep(nested(MAX_DEPTH + 1)) == (0,) * 12
    assert too_deep([nested(MAX_DEPTH + 1), 10**30]) == (0,) * 12
    assert too_deep([nested(MAX_DEPTH - 1), 10**30]) is None
