"""Resource quantities: Kubernetes' grammar and limits, and their errors with field paths."""

from __future__ import annotations

from fractions import Fraction

import pytest

from rayservice import evaluate
from rayservice.quantity import MAX_QUANTITY, QuantityError, parse_quantity, quantity_value
from tests.builders import head_container, sample, worker

REQUESTS = "spec.rayClusterConfig.headGroupSpec.template.spec.containers[0].resources.requests"
FORMAT = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
RANGE = "must be no more than 9223372036854775807 in magnitude"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Fraction(1, 2)),
        ("2", Fraction(2)),
        ("2Gi", Fraction(2 * 2**30)),
        ("1.5Ki", Fraction(1536)),
        ("1e3", Fraction(1000)),
        ("1E-3", Fraction(1, 1000)),
        ("+.5", Fraction(1, 2)),
        ("1.", Fraction(1)),
        ("1E", Fraction(10**18)),
        ("7Ei", Fraction(7 * 2**60)),
        ("-2k", Fraction(-2000)),
        ("9223372036854775807", Fraction(MAX_QUANTITY)),
        ("0.0000000001", Fraction(1, 10**9)),  # rounded up to a nano, as Kubernetes does
        ("1e-999999999", Fraction(1, 10**9)),
        ("0." + "0" * 5000 + "1", Fraction(1, 10**9)),
        ("1.0000000000000000000000000000000001", Fraction(10**9 + 1, 10**9)),
        ("0" * 5000 + "3", Fraction(3)),
        (3, Fraction(3)),
        (0.25, Fraction(1, 4)),
    ],
)
def test_quantities_are_valued_like_kubernetes(text: object, value: Fraction) -> None:
    assert quantity_value(text) == value


@pytest.mark.parametrize(
    "text", ["", "abc", "+", ".", "1e1.5", "1 Gi", "1Gb", "1e", "Ki", "٣", "1e+", " 1", True, None]
)
def test_text_outside_the_grammar_is_refused(text: object) -> None:
    with pytest.raises(QuantityError, match="must match the regular expression"):
        quantity_value(text)
    assert parse_quantity(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "1e999999999",
        "-1e999999999",
        "1e400",
        "-1e400",
        "1e99999999999999999999",
        "9223372036854775808",
        "8Ei",
        "1" + "0" * 5000,
        1e300,
    ],
)
def test_magnitudes_beyond_kubernetes_limit_are_refused_without_computing_them(
    text: object,
) -> None:
    with pytest.raises(QuantityError, match="must be no more than"):
        quantity_value(text)


def test_a_huge_exponent_is_a_field_error_with_its_path() -> None:
    obj = sample()
    head_container(obj)["resources"]["requests"]["cpu"] = "1e999999999"
    head_container(obj)["resources"]["requests"]["memory"] = "-1e400"
    errors = [str(error) for error in evaluate(obj).errors]
    assert errors == [
        f'{REQUESTS}[cpu]: Invalid value: "1e999999999": {RANGE}',
        f'{REQUESTS}[memory]: Invalid value: "-1e400": {RANGE}',
    ]


def test_a_malformed_or_negative_quantity_is_a_field_error() -> None:
    obj = sample()
    resources = worker(obj)["template"]["spec"]["containers"][0]["resources"]
    resources["limits"]["cpu"] = "1e1.5"
    resources["requests"]["memory"] = "-1Gi"
    path = "spec.rayClusterConfig.workerGroupSpecs[0].template.spec.containers[0].resources"
    assert [str(error) for error in evaluate(obj).errors] == [
        f'{path}.limits[cpu]: Invalid value: "1e1.5": {FORMAT}',
        f'{path}.requests[memory]: Invalid value: "-1Gi": must be greater than or equal to 0',
    ]
