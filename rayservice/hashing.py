"""Canonical JSON and the hashes built on it.

A hash must not change when nothing that matters changed: not with key order, not with YAML
formatting or comments (those are gone once parsed), not across processes or Python versions.
So hashes are SHA-256 over a canonical JSON text (sorted keys, no whitespace, UTF-8, finite
numbers only), never Python's ``hash()``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical_json", "digest", "drop_empty"]


def canonical_json(value: object) -> str:
    """Serialize ``value`` canonically.

    Raises ``TypeError`` for values JSON cannot hold and ``ValueError`` for NaN or infinities.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def digest(canonical: str) -> str:
    """SHA-256 of a canonical JSON text, as 64 lowercase hex digits."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def drop_empty(value: Any) -> Any:
    """Return ``value`` without nulls and empty maps or lists, recursively.

    Kubernetes treats an absent field, ``null`` and an empty collection alike (``omitempty``), so
    ``env: []`` added to a container is not a change worth a new cluster. Empty strings and zeros
    are kept: they are values. Works on JSON data (exact ``dict`` and ``list`` types: checking
    against the ``Mapping`` ABC costs three times as much on large objects).
    """
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            item_kind = type(item)
            if item_kind is dict or item_kind is list:
                item = drop_empty(item)
                if not item:
                    continue
            elif item is None:
                continue
            out[key] = item
        return out
    if kind is list:
        return [
            drop_empty(item) if type(item) is dict or type(item) is list else item for item in value
        ]
    return value
