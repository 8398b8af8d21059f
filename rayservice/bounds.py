"""The bounds on what an input may make raysvc do, besides sizes: nesting and integer range.

Every recursive step of a decision (canonical JSON, dropping empties, comparing, the models) is
safe for data nested at most ``MAX_DEPTH`` lists and maps deep; deeper data is refused with a
field error before any of them runs. ``MAX_DEPTH`` is the depth orjson serializes, so the check
costs one ``orjson.dumps`` (about 2 µs for the sample) and a walk only when that fails.

Integers are those of Go's YAML and JSON decoders (KubeRay's): 64 bits, signed or unsigned.
Larger ones would silently become floats there, so they are refused here.
"""

from __future__ import annotations

import re
from typing import Final

import orjson

from rayservice.errors import FieldError, Key, Path, Reason

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "MAX_DEPTH",
    "NESTING_DETAIL",
    "RANGE_DETAIL",
    "SHOWN_DEPTH",
    "nesting_error",
    "path_element",
    "too_deep",
]

MAX_DEPTH: Final = 254
"""Lists and maps nested deeper than this are refused (orjson's own limit)."""

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1

NESTING_DETAIL: Final = f"lists and maps may not nest more than {MAX_DEPTH} levels deep"
RANGE_DETAIL: Final = f"must be an integer between {INT_MIN} and {INT_MAX}"

_FIELD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

SHOWN_DEPTH: Final = 12
"""A too-deep path is named by its first elements only: the field that holds the nesting."""


def too_deep(value: object) -> Path | None:
    """``None`` when ``value`` (JSON-like data) nests at most ``MAX_DEPTH`` deep; otherwise the
    path, cut to ``SHOWN_DEPTH`` elements, of where it goes deeper. Never recurses."""
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        pass  # too deep, or another reason (a big integer, a non-string key): walk it
    else:
        return None
    stack: list[tuple[object, Path]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict | list | tuple) and len(path) >= MAX_DEPTH:
            return path[:SHOWN_DEPTH]
        if isinstance(node, dict):
            stack.extend((item, (*path, path_element(key))) for key, item in node.items())
        elif isinstance(node, list | tuple):
            stack.extend((item, (*path, index)) for index, item in enumerate(node))
    return None


def nesting_error(value: object, base: Path = ()) -> FieldError | None:
    """The field error for data nested deeper than ``MAX_DEPTH`` below ``base``, if it is."""
    path = too_deep(value)
    if path is None:
        return None
    return FieldError(base + path, Reason.FORBIDDEN, detail=NESTING_DETAIL)


def path_element(key: object) -> str | Key:
    """A key that reads as a field name renders ``.key``; any other as ``[key]``."""
    text = str(key)
    return text if _FIELD.fullmatch(text) else Key(text)
