"""Kubernetes resource quantities (``500m``, ``2Gi``, ``1e3``) as exact numbers, and their sums.

Only what raysvc needs: parsing to ``Fraction`` and formatting totals of CPU and memory for
messages such as "3 pods (3.5 CPU, 9Gi memory)".
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Final

__all__ = ["format_cpu", "format_memory", "parse_quantity"]

_SUFFIXES: Final = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}
_QUANTITY: Final = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$"
)


def parse_quantity(value: object) -> Fraction | None:
    """The quantity's value in base units, or ``None`` if it is not a valid quantity."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(value).limit_denominator(10**9)
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value.strip())
    if match is None:
        return None
    number, exponent, suffix = match.groups()
    amount = Fraction(number)
    if exponent:
        return amount * Fraction(10) ** int(exponent[1:])
    return amount * _SUFFIXES[suffix or ""]


def format_cpu(cores: Fraction) -> str:
    """``Fraction(7, 2)`` → ``3.5``; at most three decimals (millicores)."""
    text = f"{float(cores):.3f}".rstrip("0").rstrip(".")
    return text or "0"


def format_memory(size: Fraction) -> str:
    """Bytes in the largest binary unit that keeps one decimal: ``9663676416`` → ``9Gi``."""
    for unit, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size >= factor:
            text = f"{float(size / factor):.1f}".removesuffix(".0")
            return f"{text}{unit}"
    return f"{int(size)}"
