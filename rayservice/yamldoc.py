"""Bounded YAML → JSON-data loading, with the semantics of KubeRay's Go YAML parser.

Used for serveConfigV2 and for RayService manifests read by ``raysvc check``:

- libyaml's safe loader (YAML 1.1 like Go's yaml.v2: ``yes`` is a boolean, merge keys work);
- timestamps stay strings (yaml.v2 decodes them to strings for untyped targets);
- non-string keys become strings (``1`` → ``"1"``, ``true`` → ``"true"``), as sigs.k8s.io/yaml does;
- aliases may not expand a document beyond a node budget, so a "billion laughs" document is
  refused in milliseconds (aliases share their target, so memory stays bounded by the input),
  and may not refer to a node that contains them;
- integers must fit in 64 bits, as in Go (``rayservice.bounds``); none is ever converted from
  more than a few dozen digits, so no integer costs more than its text;
- lists and maps may nest at most ``MAX_DEPTH`` deep; libyaml itself refuses 1000 levels.

Every refusal is an exception: ``YamlError`` for the text, ``NotJsonError`` (with the path of the
offending node) for a value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Final

import orjson
import yaml

from rayservice.bounds import (
    INT_MAX,
    INT_MIN,
    MAX_DEPTH,
    NESTING_DETAIL,
    RANGE_DETAIL,
    SHOWN_DEPTH,
    path_element,
    too_deep,
)
from rayservice.errors import NO_VALUE, Path, Reason
from rayservice.hashing import canonical_json
from rayservice.yamlevents import PlainLoader, Unusual

__all__ = [
    "MAX_NODES",
    "NotJsonError",
    "YamlError",
    "load_json_data",
    "load_json_documents",
]

MAX_NODES: Final = 200_000
"""Upper bound on the nodes of one document with every alias expanded."""


class YamlError(Exception):
    """The text is not YAML, or exceeds a bound; the message says where and why."""


class NotJsonError(Exception):
    """The YAML holds a value JSON cannot (NaN, binary); ``path`` is relative to the document."""

    def __init__(
        self, path: Path, value: object, detail: str, reason: Reason = Reason.INVALID
    ) -> None:
        super().__init__(detail)
        self.path = path
        self.value = value
        self.detail = detail
        self.reason = reason


class _Loader(yaml.CSafeLoader):
    """libyaml's safe loader with yaml.v2's untyped semantics for timestamps, and bounded
    numbers."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}

_MAX_INT_CHARS: Final = 70
"""Longer than any 64-bit integer in any YAML 1.1 notation (``0b`` and 64 binary digits)."""


class OutOfRangeInt:
    """An integer literal outside 64 bits, kept as its text (``NotJsonError`` names its path)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _timestamp_as_string(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


def _bounded_int(loader: yaml.SafeLoader, node: yaml.Node) -> int | OutOfRangeInt:
    assert isinstance(node, yaml.ScalarNode)  # the int tag resolves on scalars only
    text = str(loader.construct_scalar(node))
    if len(text.replace("_", "")) > _MAX_INT_CHARS:
        return OutOfRangeInt(text)
    value = int(yaml.SafeLoader.construct_yaml_int(loader, node))
    return value if INT_MIN <= value <= INT_MAX else OutOfRangeInt(text)


def _bounded_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    """PyYAML's float, with sexagesimal (``1:30.5``) bases kept as floats: an integer base
    would grow with every ``:`` and overflow."""
    assert isinstance(node, yaml.ScalarNode)  # the float tag resolves on scalars only
    text = str(loader.construct_scalar(node)).replace("_", "").lower()
    if ":" not in text:
        return float(yaml.SafeLoader.construct_yaml_float(loader, node))
    sign = -1.0 if text.startswith("-") else 1.0
    value, base = 0.0, 1.0
    for part in reversed(text.lstrip("+-").split(":")):
        value += float(part) * base
        base *= 60.0
    return sign * value


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_string)
_Loader.add_constructor("tag:yaml.org,2002:int", _bounded_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _bounded_float)


def load_json_data(text: str) -> tuple[object, str]:
    """Load one YAML document as JSON data (``None`` for an empty document) and its canonical JSON.

    Plain configs are built straight from libyaml's events (``rayservice.yamlevents``); any
    other YAML goes through the full loader. Both give the same data.

    Raises ``YamlError`` for bad or oversized YAML, ``NotJsonError`` for non-JSON values.
    """
    try:
        data = _PLAIN.load(text)
    except Unusual:
        pass
    except yaml.YAMLError as exc:
        raise YamlError(describe_yaml_error(exc)) from exc
    else:
        canonical = canonical_json(data)  # plain data is JSON already
        return orjson.loads(canonical), canonical  # keys sorted, as the full path gives them
    try:
        data = yaml.load(text, Loader=_Loader)  # a safe loader subclass
    except yaml.YAMLError as exc:
        raise YamlError(describe_yaml_error(exc)) from exc
    except RecursionError as exc:
        raise YamlError("YAML nesting too deep") from exc
    return _as_json(data, text)


_CONSTRUCTOR: Final = yaml.SafeLoader("")
"""For the scalar constructors of plain configs: they only read the node."""

_SCALARS: Final[dict[str, Callable[[str], object]]] = {
    "tag:yaml.org,2002:int": lambda text: _bounded_int(
        _CONSTRUCTOR, yaml.ScalarNode("tag:yaml.org,2002:int", text)
    ),
    "tag:yaml.org,2002:float": lambda text: _bounded_float(
        _CONSTRUCTOR, yaml.ScalarNode("tag:yaml.org,2002:float", text)
    ),
}
_PLAIN: Final = PlainLoader(_Loader.yaml_implicit_resolvers, _SCALARS)


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
    """Bound alias expansion and nesting, then round-trip through canonical JSON.

    The round trip is what makes the data exactly JSON (string keys, lists, no shared subtrees);
    its cost is small next to YAML parsing. Only documents JSON refuses take the slow path that
    names the offending field.
    """
    if "*" in text:  # without an alias there is nothing to expand, and no cycle
        _check_aliases(data)
    deep = too_deep(data)
    if deep is not None:
        raise NotJsonError(deep, NO_VALUE, NESTING_DETAIL, Reason.FORBIDDEN)
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


def _check_aliases(root: object) -> None:
    """Refuse a document whose aliases expand it past ``MAX_NODES`` nodes, or refer to a node
    that contains them (``&x [*x]``). Linear in the distinct lists and maps: a shared (aliased)
    subtree is sized once. Iterative, and bounded in depth, so nothing here recurses.
    """
    if not isinstance(root, dict | list | tuple):
        return
    sizes: dict[int, int] = {}
    frames: list[tuple[object, Iterator[tuple[object, object]], list[int]]] = [
        (root, _children(root), [1])
    ]
    keys: list[object] = []
    open_ids = {id(root)}
    while frames:
        node, children, total = frames[-1]
        for key, child in children:
            weight = 1 if isinstance(node, dict) else 0  # a map entry's key is a node too
            if not isinstance(child, dict | list | tuple):
                total[0] += weight + 1
                continue
            known = sizes.get(id(child))
            if known is not None:
                total[0] += weight + known
                continue
            if id(child) in open_ids:
                raise NotJsonError(
                    _path([*keys, key]),
                    NO_VALUE,
                    "a YAML alias may not refer to a node that contains it",
                    Reason.FORBIDDEN,
                )
            if len(frames) >= MAX_DEPTH:
                raise NotJsonError(_path([*keys, key]), NO_VALUE, NESTING_DETAIL, Reason.FORBIDDEN)
            total[0] += weight
            frames.append((child, _children(child), [1]))
            keys.append(key)
            open_ids.add(id(child))
            break
        else:
            frames.pop()
            open_ids.discard(id(node))
            if total[0] > MAX_NODES:
                raise YamlError(f"YAML aliases expand to more than {MAX_NODES} nodes")
            sizes[id(node)] = total[0]
            if frames:
                frames[-1][2][0] += total[0]
                keys.pop()


def _children(node: object) -> Iterator[tuple[object, object]]:
    if isinstance(node, dict):
        return iter(node.items())
    return enumerate(node)  # type: ignore[arg-type]  # a list or tuple


def _path(keys: list[object]) -> Path:
    return tuple(
        key if isinstance(key, int) else path_element(_json_key(key)) for key in keys[:SHOWN_DEPTH]
    )


def _to_json_data(value: object, path: Path) -> object:
    """``value`` as plain JSON data, or ``NotJsonError`` naming the first field JSON refuses.

    Called only on data nested at most ``MAX_DEPTH`` deep, so its recursion is bounded.
    """
    if isinstance(value, dict):
        return {
            _json_key(key): _to_json_data(item, (*path, path_element(_json_key(key))))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):  # tuples come from !!omap and !!pairs
        return [_to_json_data(item, (*path, index)) for index, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise NotJsonError(path, str(value), "must be a finite number")
    if isinstance(value, OutOfRangeInt):
        raise NotJsonError(path, value.text, RANGE_DETAIL)
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
