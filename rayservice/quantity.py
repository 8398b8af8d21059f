"""Kubernetes resource quantities (``500m``, ``2Gi``, ``1e3``): checked, valued, formatted.

The grammar is Kubernetes' ``resource.Quantity``::

    <quantity>     ::= <sign>? <number> <suffix>
    <number>       ::= <digits> | <digits> "." <digits>? | "." <digits>
    <suffix>       ::= "" | n | u | m | k | M | G | T | P | E        (decimal SI)
                     | Ki | Mi | Gi | Ti | Pi | Ei                   (binary SI)
                     | ("e" | "E") <sign>? <digits>                  (decimal exponent)

and so are the limits: a value is rounded up to a whole nano (``1e-12`` is ``1n``) and may not
exceed 2^63-1 base units in magnitude. Kubernetes silently caps larger values; here they are
an error, because a request of more than 9.2 quintillion cores or bytes is a typo.

The value is never computed from the text as written: the exponent of ``1e999999999`` is
compared before anything is multiplied, so every input costs time linear in its length.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction
from typing import Final

__all__ = [
    "BINARY_SUFFIXES",
    "DECIMAL_SUFFIXES",
    "MAX_QUANTITY",
    "QuantityError",
    "format_cpu",
    "format_memory",
    "parse_quantity",
    "quantity_format",
    "quantity_value",
]

MAX_QUANTITY: Final = 2**63 - 1
"""The largest magnitude Kubernetes keeps, in base units (cores, bytes)."""

FORMAT_DETAIL: Final = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
RANGE_DETAIL: Final = f"must be no more than {MAX_QUANTITY} in magnitude"

DECIMAL_SUFFIXES: Final = {
    "": 0, "n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18
}  # fmt: skip
"""Decimal SI suffixes and their powers of ten."""
BINARY_SUFFIXES: Final = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
"""Binary SI suffixes and their powers of two."""
_QUANTITY: Final = re.compile(
    r"([+-]?)([0-9]*)(?:\.([0-9]*))?"
    r"(?:[eE]([+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?"
)
_NANO: Final = 10**9
_FRACTION_DIGITS: Final = 30
"""Digits kept below the decimal point before rounding: a binary suffix (at most 2^60, about
10^18) times a digit at 10^-28 still lands below a nano."""


class QuantityError(ValueError):
    """Not a quantity Kubernetes accepts; the message is the detail of a field error."""


def quantity_value(value: object) -> Fraction:
    """The exact value of a quantity (a string, or a JSON number), rounded up to a whole nano.

    Raises ``QuantityError`` for text outside the grammar and for magnitudes above
    ``MAX_QUANTITY``.
    """
    if isinstance(value, bool):
        raise QuantityError(FORMAT_DETAIL)
    if isinstance(value, int):
        if abs(value) > MAX_QUANTITY:
            raise QuantityError(RANGE_DETAIL)
        return Fraction(value)
    if isinstance(value, float):
        value = repr(value)  # what the number looked like in JSON
    if not isinstance(value, str):
        raise QuantityError(FORMAT_DETAIL)
    if len(value) <= _CACHED_LENGTH:
        return _cached_text_value(value)
    return _text_value(value)


def quantity_format(value: object) -> str:
    """The format the API server prints a valid quantity in: ``BinarySI`` (``Ki`` ... ``Ei``),
    ``DecimalExponent`` (``1e3``) or ``DecimalSI`` (every other suffix, plain numbers, JSON
    numbers). Raises ``QuantityError`` as :func:`quantity_value` does."""
    quantity_value(value)
    if not isinstance(value, str):
        return "DecimalSI"
    match = _QUANTITY.fullmatch(value)
    assert match is not None  # quantity_value accepted it
    exponent, suffix = match.group(4), match.group(5)
    if exponent is not None:
        return "DecimalExponent"
    return "BinarySI" if suffix in BINARY_SUFFIXES else "DecimalSI"


_CACHED_LENGTH: Final = 40
"""Quantities repeat across containers and admissions; short texts are worth a cache entry."""


@functools.lru_cache(maxsize=1024)
def _cached_text_value(value: str) -> Fraction:
    return _text_value(value)


def _text_value(value: str) -> Fraction:
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise QuantityError(FORMAT_DETAIL)
    sign, whole, fraction, exponent, suffix = match.groups()
    fraction = fraction or ""
    if not whole and not fraction:
        raise QuantityError(FORMAT_DETAIL)
    if exponent is not None:
        if len(exponent.lstrip("+-").lstrip("0")) > 12:
            power10: int | None = None  # far beyond any bound: do not even convert it
        else:
            power10 = int(exponent)
        power2 = 0
    elif suffix in BINARY_SUFFIXES:
        power10, power2 = 0, BINARY_SUFFIXES[suffix]
    else:
        power10, power2 = DECIMAL_SUFFIXES[suffix or ""], 0
    magnitude = _magnitude(whole, fraction, exponent, power10, power2)
    return -magnitude if sign == "-" else magnitude


def _magnitude(
    whole: str, fraction: str, exponent: str | None, power10: int | None, power2: int
) -> Fraction:
    """|value| of ``whole.fraction * 10^power10 * 2^power2``, rounded up to a nano, bounded."""
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return Fraction(0)
    if power10 is None:  # an exponent of more than 12 digits
        if exponent is not None and exponent.startswith("-"):
            return Fraction(1, _NANO)  # a tiny positive amount rounds up to one nano
        raise QuantityError(RANGE_DETAIL)
    scale = power10 - len(fraction)  # the value is int(digits) * 10^scale * 2^power2
    lead = scale + len(digits) - 1  # the leading digit's power of ten
    if lead > 19:  # 10^19 > 2^63 already, and the binary factor only grows it
        raise QuantityError(RANGE_DETAIL)
    if lead < -29:  # below 10^-28 * 2^60: less than a nano, which rounds up to one
        return Fraction(1, _NANO)
    # Digits below 10^-_FRACTION_DIGITS cannot move the value by a nano; they only round up.
    dropped = ""
    if scale < -_FRACTION_DIGITS:
        cut = len(digits) - (-_FRACTION_DIGITS - scale)
        digits, dropped = digits[: max(cut, 0)], digits[max(cut, 0) :]
        scale = -_FRACTION_DIGITS
    amount = Fraction(int(digits or "0")) * Fraction(10) ** scale * 2**power2
    nanos = -((-amount * _NANO) // 1)  # rounded up
    if dropped.strip("0") and nanos == amount * _NANO:
        nanos += 1
    if nanos > MAX_QUANTITY * _NANO:
        raise QuantityError(RANGE_DETAIL)
    return Fraction(nanos, _NANO)


def parse_quantity(value: object) -> float | None:
    """The quantity's value in base units, or ``None`` if it is not a valid quantity."""
    if type(value) is int:  # the common case, without a Fraction
        return float(value) if abs(value) <= MAX_QUANTITY else None
    try:
        return float(quantity_value(value))
    except QuantityError:
        return None


def format_cpu(cores: float) -> str:
    """``3.5`` → ``3.5``, ``2.0`` → ``2``; at most three decimals (millicores)."""
    text = f"{cores:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def format_memory(size: float) -> str:
    """Bytes in the largest binary unit that keeps one decimal: ``9663676416`` → ``9Gi``."""
    for unit, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size >= factor:
            text = f"{size / factor:.1f}".removesuffix(".0")
            return f"{text}{unit}"
    return f"{int(size)}"
