"""A small memo for pure functions of a text, bounded by the total length of its keys.

Admission sees the same content again and again: the mutating and the validating webhook get
the same object, and the next UPDATE's ``oldObject`` is this one. Results that depend only on a
text (a serveConfigV2, the JSON of a rayClusterConfig, the content a verdict reads) are kept
here, least recently used first out. Keys are ``str`` or ``bytes``. Values must be immutable.
Memoization is invisible to callers except in time.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["BytesMemo", "Memo", "TextMemo"]

K = TypeVar("K", str, bytes)
V = TypeVar("V")
_MISSING = object()


class Memo(Generic[K, V]):
    """LRU of ``text -> value``, at most ``max_entries`` and ``max_chars`` characters of keys.

    Texts longer than a quarter of ``max_chars`` are not kept: one huge key must not evict
    everything else.
    """

    def __init__(self, *, max_chars: int, max_entries: int) -> None:
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._chars = 0
        self._max_chars = max_chars
        self._max_entries = max_entries

    def get(self, text: K) -> V | None:
        """The value kept for ``text``, or ``None``."""
        found = self._entries.get(text, _MISSING)
        if found is _MISSING:
            return None
        self._entries.move_to_end(text)
        return found  # type: ignore[return-value]

    def put(self, text: K, value: V) -> None:
        """Keep ``value`` for ``text`` (unless ``text`` is too long to keep)."""
        if len(text) > self._max_chars // 4 or text in self._entries:
            return
        self._entries[text] = value
        self._chars += len(text)
        while self._chars > self._max_chars or len(self._entries) > self._max_entries:
            old, _ = self._entries.popitem(last=False)
            self._chars -= len(old)

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()
        self._chars = 0

    def __len__(self) -> int:
        return len(self._entries)


class TextMemo(Memo[str, V]):
    """A ``Memo`` keyed by ``str``."""


class BytesMemo(Memo[bytes, V]):
    """A ``Memo`` keyed by ``bytes``."""
