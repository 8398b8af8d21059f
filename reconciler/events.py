"""Events: the decisions a person reads in ``kubectl describe``.

:class:`EventRecorder` writes core/v1 Events about an object. A repeat of the same event (same
object, type, reason and message) within ``window`` seconds bumps the first one's ``count`` and
``lastTimestamp`` instead of adding an object, as client-go's event correlator does, so a retried
failure does not flood the namespace. The correlation map is bounded and only in memory: losing it
costs one extra Event object, nothing else.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, Final

from reconciler.actions import RecordEvent, Ref
from reconciler.kube import ApiError, KubeClient
from reconciler.times import rfc3339

__all__ = ["EventRecorder"]

log = logging.getLogger(__name__)

_MAX_MESSAGE: Final = 1024
_MAX_REMEMBERED: Final = 4096


class EventRecorder:
    """Create (or bump) Events as ``component``; ``clock`` returns an aware UTC datetime."""

    def __init__(
        self,
        kube: KubeClient,
        *,
        component: str = "raysvc-reconciler",
        instance: str = "",
        window: float = 600.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.kube = kube
        self.component = component
        self.instance = instance
        self.window = window
        self.clock = clock
        self._seen: collections.OrderedDict[tuple[str, ...], tuple[str, str, int, dt.datetime]] = (
            collections.OrderedDict()
        )

    async def record(self, event: RecordEvent) -> None:
        """Write ``event``; failures are logged, never raised (an Event is not worth a retry)."""
        ref = event.regarding
        message = event.message[:_MAX_MESSAGE]
        key = (ref.namespace, ref.kind, ref.name, ref.uid or "", event.type, event.reason, message)
        now = self.clock()
        seen = self._seen.get(key)
        try:
            if seen is not None and (now - seen[3]).total_seconds() < self.window:
                name, namespace, count, first = seen
                await self.kube.merge_patch(
                    Ref("v1", "Event", namespace, name),
                    {"count": count + 1, "lastTimestamp": rfc3339(now)},
                )
                self._remember(key, (name, namespace, count + 1, first))
                return
            created = await self.kube.create(self._manifest(event, message, now))
            meta = created["metadata"]
            self._remember(key, (str(meta["name"]), str(meta["namespace"]), 1, now))
        except ApiError as e:
            if seen is not None and e.not_found:
                self._seen.pop(key, None)
                await self.record(event)
                return
            log.warning(
                "event not recorded",
                extra={"object": str(ref), "reason": event.reason, "error": str(e)},
            )
        except (OSError, TimeoutError) as e:
            log.warning(
                "event not recorded",
                extra={"object": str(ref), "reason": event.reason, "error": repr(e)},
            )

    def _remember(self, key: tuple[str, ...], value: tuple[str, str, int, dt.datetime]) -> None:
        self._seen[key] = value
        self._seen.move_to_end(key)
        while len(self._seen) > _MAX_REMEMBERED:
            self._seen.popitem(last=False)

    def _manifest(self, event: RecordEvent, message: str, now: dt.datetime) -> dict[str, Any]:
        ref = event.regarding
        stamp = rfc3339(now)
        involved: dict[str, Any] = {
            "apiVersion": ref.api_version,
            "kind": ref.kind,
            "namespace": ref.namespace,
            "name": ref.name,
        }
        if ref.uid:
            involved["uid"] = ref.uid
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace or "default"},
            "involvedObject": involved,
            "type": event.type,
            "reason": event.reason,
            "message": message,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.instance,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
