"""What a controller's ``plan`` may ask for: Kubernetes writes, as frozen values.

A plan is pure: it returns a :class:`Plan` (actions in order, and when to look again); the
executor (``reconciler.execute``) performs each action with one idempotent API call. Actions name
objects by :class:`Ref`; a ``uid`` on a ref is a precondition (the call fails with 409 instead of
touching a newer object of the same name), and so is a ``resource_version``.

Outcomes an executor treats as done rather than failed: ``Create`` of an object that already
exists (409 AlreadyExists), ``Delete`` of an object that is gone (404). Everything else that fails
ends the reconcile with an error; the queue retries it with backoff, and the next ``observe``
starts from what the API says then.

Controller-specific actions (the Serve submission of the RayService controller) live beside the
controller's plan; this module has only what every controller shares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Action",
    "Create",
    "Delete",
    "JsonPatch",
    "MergePatch",
    "Plan",
    "RecordEvent",
    "Ref",
    "WriteStatus",
    "ref_of",
]


@dataclass(frozen=True, slots=True)
class Ref:
    """One object: its type (apiVersion, kind), namespace ("" when cluster-scoped) and name."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str | None = None
    """When set, a precondition: act only on the object with this uid."""
    resource_version: str | None = None
    """When set, a precondition: act only on this version (409 otherwise)."""

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"


def ref_of(obj: Mapping[str, Any], *, precondition: bool = False) -> Ref:
    """The ref of an object as the API returned it; with ``precondition``, pinned to its uid."""
    meta = obj.get("metadata") or {}
    return Ref(
        api_version=str(obj.get("apiVersion", "")),
        kind=str(obj.get("kind", "")),
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name", "")),
        uid=str(meta["uid"]) if precondition and meta.get("uid") else None,
    )


@dataclass(frozen=True, slots=True)
class Create:
    """POST ``obj`` (a whole manifest with apiVersion, kind, metadata.namespace and name)."""

    obj: Mapping[str, Any]
    why: str = ""
    """For the log line: what the plan wants it for."""

    @property
    def ref(self) -> Ref:
        return ref_of(self.obj)


@dataclass(frozen=True, slots=True)
class MergePatch:
    """PATCH with an RFC 7386 merge patch (``null`` removes a key; lists are replaced)."""

    ref: Ref
    patch: Mapping[str, Any]
    why: str = ""


@dataclass(frozen=True, slots=True)
class JsonPatch:
    """PATCH with RFC 6902 operations; a ``test`` op makes it conditional (422 when stale)."""

    ref: Ref
    ops: Sequence[Mapping[str, Any]]
    why: str = ""


@dataclass(frozen=True, slots=True)
class Delete:
    """DELETE (404 counts as done); ``propagation`` is the DeleteOptions propagationPolicy."""

    ref: Ref
    propagation: Literal["Background", "Foreground", "Orphan"] = "Background"
    why: str = ""


@dataclass(frozen=True, slots=True)
class WriteStatus:
    """Replace ``.status`` through the status subresource."""

    ref: Ref
    status: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RecordEvent:
    """A core/v1 Event about ``regarding``: a decision a person may want to read."""

    regarding: Ref
    type: Literal["Normal", "Warning"]
    reason: str
    """CamelCase, e.g. ``ServeConfigSubmitted``."""
    message: str


Action = Create | MergePatch | JsonPatch | Delete | WriteStatus | RecordEvent


@dataclass(frozen=True, slots=True)
class Plan:
    """The actions of one reconcile, in order, and when to look again without an event."""

    actions: tuple[Any, ...] = field(default=())
    """``Action`` values, plus a controller's own action types."""
    requeue_after: float | None = None
    """Seconds until a timer (a deadline, a health poll) needs a fresh look; None: only events."""
