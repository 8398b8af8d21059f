"""Times as the Kubernetes API writes them (pure): RFC 3339 in UTC, seconds or microseconds."""

from __future__ import annotations

import datetime as dt

__all__ = ["micro_time", "parse_time", "rfc3339"]


def rfc3339(when: dt.datetime) -> str:
    """A ``metav1.Time``: seconds, UTC, ``Z``."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(when: dt.datetime) -> str:
    """A ``metav1.MicroTime`` (Leases)."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object) -> dt.datetime | None:
    """A time the API wrote (either form), aware; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
