"""Query parameters as kube-apiserver's parameter codec reads them: booleans as Go's
``strconv.ParseBool``, integers as ``strconv.ParseInt(value, 10, 64)`` (decimal digits with an
optional sign, within int64). A value that does not parse is a 400 naming the parameter. Pure.
"""

from __future__ import annotations

from localkube import errors

__all__ = ["INT64_MAX", "INT64_MIN", "parse_bool", "parse_int"]

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_MAX_DIGITS = 20  # an int64 has at most 19 digits; a longer value is never parsed


def parse_bool(value: str | None, name: str) -> bool:
    """A boolean parameter (absent or empty: false)."""
    if value is None or value == "":
        return False
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise errors.bad_request(
        f'strconv.ParseBool: parsing "{value}": invalid syntax for parameter {name}'
    )


def parse_int(value: str, name: str) -> int:
    """An integer parameter (400 for anything ``strconv.ParseInt`` refuses)."""
    digits = value[1:] if value[:1] in ("+", "-") else value
    if not digits or not digits.isascii() or not digits.isdigit():
        raise errors.bad_request(
            f'strconv.ParseInt: parsing "{value}": invalid syntax for parameter {name}'
        )
    number = int(value, 10) if len(digits) <= _MAX_DIGITS else None
    if number is None or not INT64_MIN <= number <= INT64_MAX:
        raise errors.bad_request(
            f'strconv.ParseInt: parsing "{value}": value out of range for parameter {name}'
        )
    return number
