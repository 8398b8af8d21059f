"""Quantities print as the API server prints them, so the status reads as KubeRay's does.

Expected texts are what ``resource.MustParse(x).String()`` (and ``Add``) give in
k8s.io/apimachinery.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from reconciler.raycluster.quantity import ZERO, parse


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("2", "2"),
        (2, "2"),
        (0.5, "500m"),
        ("500m", "500m"),
        ("1.5", "1500m"),
        ("2000m", "2"),
        ("1000", "1k"),
        ("1500", "1500"),
        ("0.1", "100m"),
        ("5Gi", "5Gi"),
        ("1.5Gi", "1536Mi"),
        ("0.5Ki", "512"),
        ("1024", "1024"),
        ("1025Ki", "1025Ki"),
        ("1e3", "1e3"),
        ("1E6", "1e6"),
        ("12e2", "1200"),
        ("5G", "5G"),
        ("1.000000001", "1000000001n"),
        ("0.0000000001", "1n"),
        ("0", "0"),
        ("0Gi", "0"),
        ("-2", "-2"),
        ("+3k", "3k"),
    ],
)
def test_a_quantity_prints_in_its_canonical_form(text: object, printed: str) -> None:
    quantity = parse(text)
    assert quantity is not None
    assert str(quantity) == printed


@pytest.mark.parametrize(
    ("terms", "total"),
    [
        (["2", "500m"], "2500m"),  # the sample's CPUs: head 2, one worker 500m
        (["2Gi", "2Gi"], "4Gi"),  # the sample's memory
        (["500m", "500m"], "1"),
        (["2Gi", "2G"], "4050277Ki"),  # binary first: the sum stays binary while it is whole
        (["2G", "2Gi"], "4147483648"),  # decimal first: stays decimal
        (["0", "1Gi"], "1Gi"),  # a zero first term takes the other's format
        (["1Mi", "0.5"], "1048576500m"),  # not whole: printed as decimal
    ],
)
def test_a_sum_keeps_the_format_of_its_first_nonzero_term(terms: list[str], total: str) -> None:
    amount = ZERO
    for term in terms:
        parsed = parse(term)
        assert parsed is not None
        amount = amount + parsed
    assert str(amount) == total


@pytest.mark.parametrize(
    ("text", "whole"), [("500m", 1), ("2", 2), ("2.5", 3), ("5Gi", 5368709120), ("1n", 1)]
)
def test_a_quantity_rounds_up_to_whole_units_as_value_does(text: str, whole: int) -> None:
    quantity = parse(text)
    assert quantity is not None
    assert quantity.ceil() == whole


@pytest.mark.parametrize(
    "text", ["", "abc", "1.2.3", "5 Gi", "1Gb", "--1", "1e", True, None, [], float("nan")]
)
def test_text_that_is_not_a_quantity_parses_to_none(text: object) -> None:
    assert parse(text) is None


@given(
    st.integers(min_value=0, max_value=10**15), st.sampled_from(["", "m", "k", "Ki", "Mi", "Gi"])
)
def test_printing_then_parsing_gives_the_same_amount(number: int, suffix: str) -> None:
    assume(
        number * {"": 1, "m": 1, "k": 1000, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[suffix] < 2**63
    )
    quantity = parse(f"{number}{suffix}")
    assert quantity is not None
    again = parse(str(quantity))
    assert again is not None
    assert again.value == quantity.value


@pytest.mark.parametrize("text", ["1e999999999", "9223372036854775808", "8589934592Gi", "1e19"])
def test_a_quantity_beyond_what_kubernetes_keeps_is_invalid_and_costs_nothing(text: str) -> None:
    assert parse(text) is None
