"""Loading a serveConfigV2 text application by application, each piece of text once.

An UPDATE of a large RayService usually changes one application of many. When the text has the
plain block shape nearly every config has (a top-level ``applications:`` followed by its items
at one indentation, no anchors, tags, flow collections or quotes spanning lines), it is cut
into the text before the list, one piece per application, and the text after it. Each piece is
loaded alone and memoized by its text, and the canonical JSON of the whole is assembled from
the pieces'. In that shape a piece is exactly the YAML of its item: libyaml ends a plain or
quoted scalar, a block scalar and a nested collection before a line that starts at the list's
indentation with ``-``; pieces whose quotes or brackets do not close on their line are not cut.

Anything else is loaded whole. A piece that fails to load sends the whole text to the full
path too, so errors carry the line numbers of the whole text. A property test holds the pieces
to the whole.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any, Final

import orjson

from rayservice.memo import TextMemo
from rayservice.yamldoc import NotJsonError, YamlError, load_json_data

__all__ = ["SplitLoad", "load_by_application"]

_RISKY: Final = ("\t", "\r", "&", "*", "!", "%", "<<", "\n---", "\n...")
"""Anchors, aliases, tags, directives, merge keys, document markers, tabs: load whole."""
_PAIRED: Final = ('"', "'", "[", "]", "{", "}")
_APPLICATIONS: Final = re.compile(r"^applications:[ ]*(?:#.*)?$", re.M)


@dataclass(frozen=True, slots=True)
class SplitLoad:
    """A config loaded in pieces: its top-level data but the applications (keys sorted, as a
    whole load gives them), each application's canonical JSON, and the whole's."""

    top: dict[str, Any]
    applications: tuple[str, ...]
    canonical: str

    @property
    def data(self) -> dict[str, Any]:
        """The whole document, as a whole load gives it."""
        apps = [orjson.loads(app) for app in self.applications]
        return dict(sorted({**self.top, "applications": apps}.items()))


_PIECES: Final[TextMemo[str]] = TextMemo(max_chars=2 * 1024 * 1024, max_entries=2048)
"""Canonical JSON by piece of text (text only: no trees for the garbage collector)."""


def load_by_application(text: str) -> SplitLoad | None:
    """The config loaded piece by piece, or ``None`` when it must be loaded whole."""
    pieces = _cut(text)
    if pieces is None:
        return None
    before, items, after = pieces
    try:
        head = _load(before)
        tail = _load(after)
    except (YamlError, NotJsonError):
        return None
    if not _mapping(head[0]) or not _mapping(tail[0]):
        return None
    head_data: dict[str, Any] = head[0] or {}
    tail_data: dict[str, Any] = tail[0] or {}
    if "applications" in head_data or "applications" in tail_data or head_data.keys() & tail_data:
        return None  # the same key twice: the whole text decides which one counts
    canonicals: list[str] = []
    for text_of_item in items:
        canonical = _canonical_of(text_of_item)
        if canonical is None:
            return None
        canonicals.append(canonical)
    top = dict(sorted({**head_data, **tail_data}.items()))
    return SplitLoad(top, tuple(canonicals), _canonical(top, canonicals))


def _canonical_of(item: str) -> str | None:
    """The canonical JSON of the one application an item's text holds, or ``None``."""
    canonical = _PIECES.get(item)
    if canonical is None:
        try:
            data, canonical = load_json_data(item)
        except (YamlError, NotJsonError):
            return None  # the whole text says what is wrong, and where
        if not isinstance(data, list) or len(data) != 1:
            return None
        _PIECES.put(item, canonical)
    return canonical[1:-1]  # "[item]" -> "item"


def _mapping(value: object) -> bool:
    return value is None or isinstance(value, dict)


def _load(text: str) -> tuple[Any, str]:
    canonical = _PIECES.get(text)
    if canonical is None:
        data, canonical = load_json_data(text)
        _PIECES.put(text, canonical)
        return data, canonical
    return orjson.loads(canonical), canonical


def _canonical(top: dict[str, Any], applications: list[str]) -> str:
    """The canonical JSON (``rayservice.hashing``) of ``top`` with the applications added."""
    parts = {
        key: json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        for key, value in top.items()
    }
    parts["applications"] = "[" + ",".join(applications) + "]"
    members = (json.dumps(key, ensure_ascii=False) + ":" + parts[key] for key in sorted(parts))
    return "{" + ",".join(members) + "}"


def _cut(text: str) -> tuple[str, list[str], str] | None:
    """``(before, [item, ...], after)`` of a plainly shaped config, else ``None``."""
    if any(mark in text for mark in _RISKY) or text.startswith(("---", "...")):
        return None
    if any(mark in text for mark in _PAIRED) and not _balanced_lines(text):
        return None
    found = list(_APPLICATIONS.finditer(text))
    if len(found) != 1:
        return None
    body = found[0].end() + 1
    first = _ITEM.search(text, body)
    if first is None or not _GAP.fullmatch(text, body, first.start()):
        return None  # "applications:" without a block list right below it
    indent = len(first.group(1))
    stop = _TOP_LEVEL[indent == 0].search(text, first.start())
    end = stop.start() if stop is not None else len(text)
    if indent and _stray(indent).search(text, first.start(), end):
        return None  # a line neither in an item nor a top-level key: let the whole text say
    starts = [match.start() for match in _items(indent).finditer(text, first.start(), end)]
    items = [text[a:b] for a, b in zip(starts, [*starts[1:], end], strict=True)]
    return text[: found[0].start()], items, text[end:]


_PAIRED_MARK: Final = re.compile(r"[\"'\[\]{}]")
_ITEM: Final = re.compile(r"^( *)-(?: |$)", re.M)
_GAP: Final = re.compile(r"(?:[ ]*(?:#[^\n]*)?\n)*")
_TOP_LEVEL: Final = (
    re.compile(r"^[^ \n#]", re.M),  # the list is indented: any line at column 0 ends it
    re.compile(r"^(?!- |-$)[^ \n#]", re.M),  # the list is at column 0: its items do not end it
)


@functools.cache
def _items(indent: int) -> re.Pattern[str]:
    return re.compile(rf"^ {{{indent}}}-(?: |$)", re.M)


@functools.cache
def _stray(indent: int) -> re.Pattern[str]:
    """Lines indented less than the list (but not at column 0), or at its indentation but not
    items."""
    shallower = rf" {{1,{indent - 1}}}[^ \n#]|" if indent > 1 else ""
    return re.compile(rf"^(?:{shallower} {{{indent}}}(?!- |-$)[^ \n#])", re.M)


def _balanced_lines(text: str) -> bool:
    """Every line with a quote or a bracket closes what it opens."""
    done = -1
    for mark in _PAIRED_MARK.finditer(text):
        if mark.start() <= done:
            continue
        start = text.rfind("\n", 0, mark.start()) + 1
        end = text.find("\n", mark.start())
        done = end if end >= 0 else len(text)
        if not _balanced(text[start:done]):
            return False
    return True


def _balanced(line: str) -> bool:
    """Quotes and brackets close on the line (else a scalar or collection may span lines)."""
    return (
        line.count('"') % 2 == 0
        and line.count("'") % 2 == 0
        and line.count("[") == line.count("]")
        and line.count("{") == line.count("}")
    )
