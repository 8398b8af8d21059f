"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does it.

Replicas race for one Lease. The holder renews ``spec.renewTime`` every ``retry_period``; the
others take it over once ``renewTime + leaseDurationSeconds`` has passed without a renewal. A
holder that cannot renew within ``renew_deadline`` stops leading (the caller then exits, and its
Pod restarts as a follower); a holder that stops cleanly releases the Lease (an expired
``renewTime``), so a follower takes over at once instead of a lease duration later.

``decide`` (pure) says what to write; :class:`LeaderElector` does the I/O. Every write carries the
Lease's resourceVersion, so two candidates can never both win the same round (409 for the slower).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from reconciler.actions import Ref
from reconciler.kube import ApiError, KubeClient
from reconciler.times import micro_time, parse_time

__all__ = ["LeaderElector", "LeaseDecision", "decide"]

log = logging.getLogger(__name__)

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class LeaseDecision:
    """``create`` a Lease, ``update`` it with ``spec`` (acquire or renew), or ``wait``."""

    verb: str
    spec: Mapping[str, Any] | None = None
    leading: bool = False


def decide(
    lease: Mapping[str, Any] | None, *, identity: str, now: dt.datetime, duration: int
) -> LeaseDecision:
    """What ``identity`` should do about ``lease`` (None: there is none) at ``now``."""
    stamp = micro_time(now)
    if lease is None:
        spec = {
            "holderIdentity": identity,
            "leaseDurationSeconds": duration,
            "acquireTime": stamp,
            "renewTime": stamp,
            "leaseTransitions": 0,
        }
        return LeaseDecision("create", spec, leading=True)
    spec = dict(lease.get("spec") or {})
    holder = spec.get("holderIdentity") or ""
    renewed = parse_time(spec.get("renewTime")) or _EPOCH
    held_for = spec.get("leaseDurationSeconds")
    held_for = held_for if isinstance(held_for, int) else duration
    if holder == identity:
        spec.update(renewTime=stamp, leaseDurationSeconds=duration)
        return LeaseDecision("update", spec, leading=True)
    if holder and now < renewed + dt.timedelta(seconds=held_for):
        return LeaseDecision("wait")
    transitions = spec.get("leaseTransitions")
    spec.update(
        holderIdentity=identity,
        leaseDurationSeconds=duration,
        acquireTime=stamp,
        renewTime=stamp,
        leaseTransitions=(transitions if isinstance(transitions, int) else 0) + 1,
    )
    return LeaseDecision("update", spec, leading=True)


class LeaderElector:
    """Holds the Lease ``namespace/name`` for ``identity`` while :meth:`lead` runs its work."""

    def __init__(
        self,
        kube: KubeClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: int = 15,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.kube = kube
        self.ref = Ref("coordination.k8s.io/v1", "Lease", namespace, name)
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.clock = clock
        self.leading = asyncio.Event()

    async def _try(self) -> bool:
        """One acquire-or-renew round; True while this replica holds the Lease."""
        try:
            lease = await self.kube.get(self.ref)
            decision = decide(
                lease, identity=self.identity, now=self.clock(), duration=self.lease_duration
            )
            if decision.verb == "wait":
                return False
            metadata: dict[str, Any] = {"name": self.ref.name, "namespace": self.ref.namespace}
            body = {
                "apiVersion": self.ref.api_version,
                "kind": "Lease",
                "metadata": metadata,
                "spec": dict(decision.spec or {}),
            }
            if decision.verb == "create":
                await self.kube.create(body)
            else:
                assert lease is not None
                metadata["resourceVersion"] = lease["metadata"]["resourceVersion"]
                await self.kube.replace(body)
            return decision.leading
        except ApiError as e:
            if not e.conflict:
                log.warning("lease update failed", extra={"lease": str(self.ref), "error": str(e)})
            return False
        except (OSError, TimeoutError) as e:
            log.warning("lease update failed", extra={"lease": str(self.ref), "error": repr(e)})
            return False

    async def acquire(self) -> None:
        """Return once this replica holds the Lease."""
        while True:
            if await self._try():
                break
            await asyncio.sleep(self.retry_period)
        self.leading.set()
        log.info("leading", extra={"lease": str(self.ref), "identity": self.identity})

    async def keep(self) -> None:
        """Renew until a renewal fails for ``renew_deadline``; then return (leadership lost)."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.retry_period)
            if await self._try():
                last = loop.time()
            elif loop.time() - last > self.renew_deadline:
                self.leading.clear()
                log.error("leadership lost", extra={"lease": str(self.ref)})
                return

    async def release(self) -> None:
        """Give the Lease up (so a follower need not wait for it to expire)."""
        if not self.leading.is_set():
            return
        self.leading.clear()
        try:
            lease = await self.kube.get(self.ref)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            spec = dict(lease["spec"])
            spec.update(renewTime=micro_time(_EPOCH), leaseDurationSeconds=1)
            body = {**lease, "spec": spec}
            await self.kube.replace(body)
            log.info("lease released", extra={"lease": str(self.ref)})
        except (ApiError, OSError, TimeoutError) as e:
            log.warning("lease not released", extra={"lease": str(self.ref), "error": str(e)})
