"""Bounded YAML → JSON-data loading, with the semantics of KubeRay's Go YAML parser.

Used for serveConfigV2 and for RayService manifests read by ``raysvc check``:

- libyaml's safe loader (YAML 1.1 like Go's yaml.v2: ``yes`` is a boolean, merge keys work);
- timestamps stay strings (yaml.v2 decodes them to strings for untyped targets);
- non-string keys become strings (``1`` → ``"1"``, ``true`` → ``"true"``), as sigs.k8s.io/yaml does;
- aliases may not expand a document beyond a node budget, so a "billion laughs" document is
  refused in milliseconds (aliases share their target, so memory stays bounded by the input);
- libyaml itself refuses nesting deeper than 1000 levels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Final

import orjson
import yaml

from rayservice.errors import Key, Path
from rayservice.hashing import canonical_json

__all__ = ["MAX_NODES", "NotJsonError", "YamlError", "load_json_data", "load_json_documents"]

MAX_NODES: Final = 200_000
"""Upper bound on the nodes of one document with every alias expanded."""


class YamlError(Exception):
    """The text is not YAML, or exceeds a bound; the message says where and why."""


class NotJsonError(Exception):
    """The YAML holds a value JSON cannot (NaN, binary); ``path`` is relative to the document."""

    def __init__(self, path: Path, value: object, detail: str) -> None:
        super().__init__(detail)
        self.path = path
        self.value = value
        self.detail = detail


class _Loader(yaml.CSafeLoader):
    """libyaml's safe loader with yaml.v2's untyped semantics for timestamps."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}


def _timestamp_as_string(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_string)


def load_json_data(text: str) -> tuple[object, str]:
    """Load one YAML document as JSON data (``None`` for an empty document) and its canonical JSON.

    Raises ``YamlError`` for bad or oversized YAML, ``NotJsonError`` for non-JSON values.
    """
    try:
        data: object = yaml.load(text, Loader=_Loader)  # a safe loader subclass
    except yaml.YAMLError as exc:
        raise YamlError(describe_yaml_error(exc)) from exc
    except RecursionError as exc:
        raise YamlError("YAML nesting too deep") from exc
    return _as_json(data, text)


def load_json_documents(text: str) -> Iterator[object]:
    """Load every document of a multi-document YAML stream, each as JSON data."""
    try:
        for data in yaml.load_all(text, Loader=_Loader):  # a safe loader subclass
            yield _as_json(data, text)[0]
    except yaml.YAMLError as exc:
        raise YamlError(describe_yaml_error(exc)) from exc
    except RecursionError as exc:
        raise YamlError("YAML nesting too deep") from exc


def _as_json(data: object, text: str) -> tuple[object, str]:
    """Bound alias expansion, then round-trip through canonical JSON.

    The round trip is what makes the data exactly JSON (string keys, lists, no shared subtrees);
    its cost is small next to YAML parsing. Only documents JSON refuses take the slow path that
    names the offending field.
    """
    if "*" in text:  # without an alias there is nothing to expand
        try:
            _expanded_size(data, MAX_NODES)
        except _TooLargeError as exc:
            raise YamlError(f"YAML aliases expand to more than {MAX_NODES} nodes") from exc
    try:
        canonical = canonical_json(data)
    except (TypeError, ValueError):
        canonical = canonical_json(_to_json_data(data, ()))
    return orjson.loads(canonical), canonical


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """One line: ``invalid YAML: line L, column C: <problem>``."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    what = f"{context}, {problem}" if context else problem
    return f"invalid YAML: {where}{what}"


class _TooLargeError(Exception):
    pass


def _expanded_size(value: object, limit: int) -> int:
    """Nodes of ``value`` with aliases expanded; raises ``_TooLargeError`` past ``limit``.

    Linear in the distinct objects: a shared (aliased) subtree is sized once.
    """
    sizes: dict[int, int] = {}

    def size(node: object) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, dict):
            for item in node.values():
                total += 1 + size(item)
        elif isinstance(node, list | tuple):
            for item in node:
                total += size(item)
        else:
            return 1
        if total > limit:
            raise _TooLargeError
        sizes[id(node)] = total
        return total

    return size(value)


def _to_json_data(value: object, path: Path) -> object:
    """``value`` as plain JSON data, or ``NotJsonError`` naming the first field JSON refuses."""
    if isinstance(value, dict):
        return {
            _json_key(key): _to_json_data(item, (*path, Key(_json_key(key))))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):  # tuples come from !!omap and !!pairs
        return [_to_json_data(item, (*path, index)) for index, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise NotJsonError(path, str(value), "must be a finite number")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise NotJsonError(path, type(value).__name__, "YAML type not representable in JSON")


def _json_key(key: object) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)
