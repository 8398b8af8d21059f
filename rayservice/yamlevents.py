"""A direct constructor over libyaml's events, for the YAML almost every config is written in.

PyYAML's loader composes a node for every value, asks a chain of regular expressions what each
plain scalar is, and then constructs the data with generators, one Python call per node and
per step. Here the data is built straight from libyaml's event stream, and a plain scalar is
resolved through the *same* table of expressions (``rayservice.yamldoc``'s loader's, keyed by
first character, so most strings need one dictionary lookup) and constructed by the *same*
functions. The result is exactly the loader's data, and JSON data already: string keys, lists,
no shared subtrees.

Anything less common is not handled here but handed back (``Unusual``): explicit tags, anchors
and aliases, merge keys, keys that are not scalars, nesting deeper than ``MAX_DEPTH``, a second
document, keys that are not strings (the full loader orders and merges them as Python values),
values JSON cannot hold (NaN, integers beyond 64 bits). The caller then loads the
text with the full loader, which decides exactly as it always has, so both paths agree by
construction; a property test holds them to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import yaml
from yaml import events
from yaml._yaml import CParser

from rayservice.bounds import MAX_DEPTH

__all__ = ["PlainLoader", "Unusual"]


class Unusual(Exception):
    """The text uses YAML this constructor leaves to the full loader."""


_STR: Final = "tag:yaml.org,2002:str"
_NULL: Final = "tag:yaml.org,2002:null"
_BOOL: Final = "tag:yaml.org,2002:bool"
_INT: Final = "tag:yaml.org,2002:int"
_FLOAT: Final = "tag:yaml.org,2002:float"


class PlainLoader:
    """Loads plain YAML with a loader's implicit resolvers and scalar constructors.

    ``resolvers`` is the loader's implicit-resolver table; ``construct`` maps the int and float
    tags to functions of the scalar text (they may return anything that is not JSON, e.g. a
    marker for an integer out of range: the text is then ``Unusual``). What a plain scalar's
    text resolves to is remembered (a few thousand texts): configs repeat their numbers,
    booleans and the words that start like them (``name``, ``num_replicas``).
    """

    def __init__(
        self,
        resolvers: Mapping[str | None, Sequence[tuple[str, re.Pattern[str]]]],
        construct: Mapping[str, Callable[[str], object]],
    ) -> None:
        if resolvers.get(None):
            raise ValueError("wildcard resolvers are not supported")
        self._tables = {first: tuple(table) for first, table in resolvers.items() if first}
        self._null_table = tuple(resolvers.get("", ()))
        self._int_of = construct[_INT]
        self._float_of = construct[_FLOAT]
        self._resolved: dict[str, object] = {}

    def _resolve(self, text: str) -> object:
        """What the loader makes of a plain scalar; ``_UNUSUAL`` for what it leaves to the
        full loader. Remembered."""
        value = self._resolved.get(text, _MISSING)
        if value is not _MISSING:
            return value
        value = text
        table = self._tables.get(text[0]) if text else self._null_table
        for tag, pattern in table or ():
            if not pattern.match(text):
                continue
            if tag == _NULL:
                value = None
            elif tag == _BOOL:
                value = yaml.constructor.SafeConstructor.bool_values[text.lower()]
            elif tag == _INT:
                if text.isdigit() and _DECIMAL(text):
                    value = int(text)  # what the constructor makes of plain decimals
                else:
                    value = self._int_of(text)
                    if type(value) is not int:
                        value = _UNUSUAL  # beyond 64 bits: the loader names the field
            elif tag == _FLOAT:
                value = float(text) if _SIMPLE_FLOAT(text) else self._float_of(text)
                if value != value or value in (_INF, _NEG_INF):
                    value = _UNUSUAL  # NaN and infinities: the loader names the field
            else:
                value = _UNUSUAL  # merge keys, "=", YAML indicators
            break
        if len(self._resolved) >= _REMEMBERED:
            self._resolved.clear()
        self._resolved[text] = value
        return value

    def load(self, text: str) -> object:
        """The single document of ``text`` as JSON data, or ``Unusual``. Syntax errors are
        libyaml's, raised as the full loader raises them."""
        tables, resolve = self._tables, self._resolve
        parser = CParser(text)
        get: Callable[[], Any] = parser.get_event  # events are read by attribute
        scalar_event, start_map, start_seq = (
            events.ScalarEvent,
            events.MappingStartEvent,
            events.SequenceStartEvent,
        )
        end_map, end_seq = events.MappingEndEvent, events.SequenceEndEvent
        get()  # StreamStart
        event = get()
        if type(event) is events.StreamEndEvent:
            return None
        if type(event) is not events.DocumentStartEvent:
            raise Unusual
        # The containers being filled, innermost last; a mapping's pending key beside it.
        containers: list[Any] = []
        keys: list[Any] = []
        root: object = _EMPTY

        while True:
            event = get()
            kind = type(event)
            if kind is scalar_event:
                if event.tag is not None or event.anchor is not None:
                    raise Unusual
                value: object = event.value
                if event.implicit[0] and (not value or value[0] in tables):  # type: ignore[index]
                    value = resolve(event.value)
                    if value is _UNUSUAL:
                        raise Unusual
            elif kind is start_map or kind is start_seq:
                if event.tag is not None or event.anchor is not None:
                    raise Unusual
                if containers and type(containers[-1]) is dict and keys[-1] is _EMPTY:
                    raise Unusual  # a list or map as a key
                if len(containers) >= MAX_DEPTH:
                    raise Unusual
                containers.append({} if kind is start_map else [])
                keys.append(_EMPTY)
                continue
            elif kind is end_map or kind is end_seq:
                value = containers.pop()
                keys.pop()
            elif kind is events.DocumentEndEvent:
                break
            else:
                raise Unusual  # aliases
            if not containers:
                root = value
                continue
            parent = containers[-1]
            if type(parent) is list:
                parent.append(value)
            elif keys[-1] is _EMPTY:
                if type(value) is not str:
                    raise Unusual  # keys that are numbers, booleans or null: ordered and merged
                keys[-1] = value
            else:
                parent[keys[-1]] = value
                keys[-1] = _EMPTY
        if type(get()) is not events.StreamEndEvent:
            raise Unusual  # another document: the loader refuses it with its own words
        return None if root is _EMPTY else root


_MISSING: Final = object()
_UNUSUAL: Final = object()
_REMEMBERED: Final = 4096
_EMPTY: Final = object()
_DECIMAL: Final = re.compile(r"(?:0|[1-9][0-9]{0,17})").fullmatch
"""Digits the int constructor reads as a plain decimal (no octal ``0``), well within 64 bits."""
_SIMPLE_FLOAT: Final = re.compile(r"[-+]?[0-9]+\.[0-9]*(?:[eE][-+][0-9]+)?").fullmatch
"""Floats the float constructor reads as Python's ``float`` does (no ``_``, ``:``, ``inf``)."""
_INF: Final = float("inf")
_NEG_INF: Final = float("-inf")
