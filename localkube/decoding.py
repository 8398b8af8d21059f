"""Bounded decoding of request bodies: JSON and YAML into plain JSON values.

Owns the limits every decoded body must respect whatever its syntax: the decoded object's JSON
size (the 3 MiB request limit applies to what a body expands to, so a YAML alias bomb cannot
store more than a plain body could), its nesting depth, and its shape (only what JSON can
express: YAML timestamps stay strings, ``!!binary``, ``!!set`` and other non-JSON tags are
refused, and a recursive alias is an error). Decoding errors are :class:`DecodeError`; the
HTTP layer turns them into 400 (413 when too large). Pure.
"""

from __future__ import annotations

import json
import math
from typing import Any

import yaml

__all__ = ["MAX_DEPTH", "DecodeError", "check_bounds", "load_json", "load_yaml"]

MAX_DEPTH = 200


class DecodeError(ValueError):
    """A body that cannot become a JSON value within the limits (``too_large`` -> 413)."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML-to-JSON semantics: no timestamps, no binary, no sets."""


# timestamps stay strings, as they do in Kubernetes' YAML-to-JSON conversion
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _refuse(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None, None, f"cannot convert the tag {node.tag} to JSON", node.start_mark
    )


for _tag in ("binary", "set", "omap", "pairs", "timestamp"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse)


def check_bounds(value: Any, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`DecodeError` when ``value`` nests deeper than ``max_depth``, refers to
    itself, holds a number JSON cannot write (NaN, infinities), or would serialize to more than
    ``max_bytes`` of JSON (estimated, never more work than ``max_bytes`` steps). Iterative, so
    any depth is safe to check; whatever syntax a body came in, this is its last check."""
    size = 0
    ancestors: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(value, 1, False)]
    while stack:
        node, depth, leaving = stack.pop()
        if leaving:
            ancestors.discard(id(node))
            continue
        if isinstance(node, (dict, list)):
            if depth > max_depth:
                raise DecodeError(f"exceeded max depth of {max_depth}")
            if id(node) in ancestors:
                raise DecodeError("the document refers to itself (a recursive alias)")
            ancestors.add(id(node))
            stack.append((node, depth, True))
            size += 2
            if isinstance(node, dict):
                for key, item in node.items():
                    size += len(str(key)) + 4
                    stack.append((item, depth + 1, False))
            else:
                for item in node:
                    size += 1
                    stack.append((item, depth + 1, False))
        elif isinstance(node, str):
            size += len(node) + 2
        elif isinstance(node, float) and not math.isfinite(node):
            raise DecodeError(f"json: unsupported value: {_go_float(node)}")
        else:
            size += 5
        if size > max_bytes:
            raise DecodeError(f"Request entity too large: limit is {max_bytes}", too_large=True)


def _go_float(value: float) -> str:
    """A non-finite float as Go's ``strconv.FormatFloat`` prints it."""
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


def _no_constant(text: str) -> Any:
    # NaN, Infinity and -Infinity are not JSON; Go's decoder stops at their first character
    raise ValueError(f"invalid character '{text[0]}' looking for beginning of value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"json: cannot unmarshal number {text} into Go value of type float64")
    return value


def load_json(raw: bytes, *, max_bytes: int) -> Any:
    """Decode JSON within the bounds (only finite numbers, as Go's decoder reads them)."""
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise DecodeError(f"exceeded max depth of {MAX_DEPTH}") from None
    except ValueError as e:
        raise DecodeError(str(e)) from e
    check_bounds(value, max_bytes=max_bytes)
    return value


def load_yaml(raw: bytes, *, max_bytes: int) -> Any:
    """Decode one YAML document as JSON would hold it, within the bounds."""
    try:
        value = yaml.load(raw.decode(), Loader=_Loader)
    except RecursionError:
        raise DecodeError(f"exceeded max depth of {MAX_DEPTH}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise DecodeError(f"error converting YAML to JSON: {e}") from e
    check_bounds(value, max_bytes=max_bytes)
    try:
        # what JSON can hold: keys become strings, shared (aliased) nodes become copies
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise DecodeError(f"error converting YAML to JSON: {e}") from e
