"""Kubernetes resource quantities, exactly, and printed the way the API server prints them.

KubeRay's status reports sums of quantities (``desiredCPU: 2500m``, ``desiredMemory: 4Gi``) and
its Pods carry quantities copied from the templates (the ``/dev/shm`` size limit). Both appear in
the canonical form of Kubernetes' ``resource.Quantity``, which this module reproduces:

- the value is kept as an exact fraction, rounded up to nano units as the API server does
  (parsed by ``rayservice.quantity``, which bounds the grammar and the magnitude first);
- the format comes from the suffix: binary (``Ki`` … ``Ei``), decimal exponent (``1e3``) or
  decimal SI (everything else, including plain numbers);
- a sum keeps the format of its first non-zero term (``Quantity.Add``);
- printing picks the largest exponent that keeps the number whole: ``2500m``, ``2k``, ``1536Mi``;
  a binary value that is below 1024 or not whole prints as decimal SI.

Pure: no I/O. Invalid text parses to ``None``; callers decide what that means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, Literal, cast

from rayservice.quantity import (
    BINARY_SUFFIXES,
    DECIMAL_SUFFIXES,
    QuantityError,
    quantity_format,
    quantity_value,
)

__all__ = ["ZERO", "Quantity", "parse"]

Format = Literal["DecimalSI", "BinarySI", "DecimalExponent"]

_DECIMAL_SUFFIX: Final = {exponent: suffix for suffix, exponent in DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIX: Final = {0: "", **{power: suffix for suffix, power in BINARY_SUFFIXES.items()}}


@dataclass(frozen=True, slots=True)
class Quantity:
    """An exact amount in base units (cores, bytes, devices) and the format it prints in."""

    value: Fraction
    format: Format = "DecimalSI"

    def __add__(self, other: Quantity) -> Quantity:
        # Quantity.Add: the receiver's format, unless the receiver is zero.
        fmt = other.format if self.value == 0 else self.format
        return Quantity(self.value + other.value, fmt)

    def times(self, count: int) -> Quantity:
        """The amount ``count`` times over (``Quantity.Mul``), in the same format."""
        return Quantity(self.value * count, self.format)

    def ceil(self) -> int:
        """The smallest whole number of units at least this amount (``Quantity.Value``)."""
        return math.ceil(self.value)

    def __str__(self) -> str:
        return canonical(self)


ZERO: Final = Quantity(Fraction(0))


def parse(text: object) -> Quantity | None:
    """The quantity written as ``text`` (a string or a JSON number), or ``None`` if invalid.

    The value comes from ``rayservice.quantity``, which checks the grammar and the magnitude
    before computing anything (``"1e999999999"`` costs no more than ``"1"``); this module only
    adds the format the API server prints it in.
    """
    try:
        return Quantity(quantity_value(text), cast(Format, quantity_format(text)))
    except QuantityError:
        return None


def canonical(quantity: Quantity) -> str:
    """The text the API server prints for ``quantity``."""
    value = quantity.value
    if value == 0:
        return "0"
    fmt = quantity.format
    if fmt == "BinarySI" and (abs(value) < 1024 or value.denominator != 1):
        fmt = "DecimalSI"  # the API server will not round a binary value, nor print 512 as 0.5Ki
    if fmt == "BinarySI":
        number, power = value.numerator, 0
        while number % 1024 == 0 and power < 60:
            number //= 1024
            power += 10
        return f"{number}{_BINARY_SUFFIX[power]}"
    mantissa, exponent = _decimal_digits(value)
    if fmt == "DecimalExponent":
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    return f"{mantissa}{_DECIMAL_SUFFIX[exponent]}"


def _decimal_digits(value: Fraction) -> tuple[int, int]:
    """``value`` as ``mantissa * 10**exponent``: exponent a multiple of 3 in [-9, 18], as large
    as keeps the mantissa whole."""
    exponent = -9
    mantissa = value * 10**9  # whole: every value is rounded to nano units
    while exponent < 18 and mantissa % 1000 == 0:
        mantissa /= 1000
        exponent += 3
    return int(mantissa), exponent
