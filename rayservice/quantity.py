"""Kubernetes resource quantities (``500m``, ``2Gi``, ``1e3``) as numbers, and their sums.

Only what raysvc needs: parsing (exactly, then rounded to a float: totals are for messages such
as "3 pods (3.5 CPU, 9Gi memory)") and formatting.
"""

from __future__ import annotations

import functools
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


def parse_quantity(value: object) -> float | None:
    """The quantity's value in base units, or ``None`` if it is not a valid quantity."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    exact = _parse_text(value)
    return None if exact is None else float(exact)


@functools.lru_cache(maxsize=512)
def _parse_text(text: str) -> Fraction | None:
    match = _QUANTITY.match(text.strip())
    if match is None:
        return None
    number, exponent, suffix = match.groups()
    amount = Fraction(number)
    if exponent:
        return amount * Fraction(10) ** int(exponent[1:])
    return amount * _SUFFIXES[suffix or ""]


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
