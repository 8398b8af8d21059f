"""Fault injection for tests: chosen requests answered with errors, delays or hangs, and
open watch streams dropped.

Owns the rule table the HTTP layer consults before serving a request. A rule matches on verb
(``get``, ``list``, ``watch``, ``create``, ``update``, ``patch``, ``delete``,
``deletecollection``), resource (plural), namespace, name and subresource (``None`` matches
anything) and fires a limited number of ``times`` (``None``: until cleared). Pure bookkeeping; the
server performs the effect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Fault", "Faults", "RequestInfo"]

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass(frozen=True)
class RequestInfo:
    verb: str
    resource: str
    namespace: str
    name: str
    subresource: str


@dataclass
class Fault:
    """One rule: what it matches, what it does and how many more times."""

    verb: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    code: int = 0  # answer with this status (0: no error)
    message: str = ""
    delay: float = 0.0  # seconds to wait before answering (or before the error)
    times: int | None = 1
    hits: int = 0

    @property
    def reason(self) -> str:
        return _REASONS.get(self.code, "")

    def matches(self, info: RequestInfo) -> bool:
        return all(
            want is None or want == got
            for want, got in (
                (self.verb, info.verb),
                (self.resource, info.resource),
                (self.namespace, info.namespace),
                (self.name, info.name),
                (self.subresource, info.subresource),
            )
        )

    def status(self, info: RequestInfo) -> dict[str, object]:
        message = self.message or {
            409: (
                f'Operation cannot be fulfilled on {info.resource} "{info.name}": the object has '
                "been modified; please apply your changes to the latest version and try again"
            ),
            500: "Internal error occurred: injected fault",
            504: (
                "the server was unable to return a response in the time "
                "allotted, but may still be processing the request"
            ),
            429: "too many requests, please try again later",
        }.get(self.code, f"injected fault with status {self.code}")
        body: dict[str, object] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": self.reason,
            "code": self.code,
        }
        if info.name:
            body["details"] = {"name": info.name, "kind": info.resource}
        return body


@dataclass
class Faults:
    """The rule table plus the watch-dropping hook (set by the server)."""

    rules: list[Fault] = field(default_factory=list)
    drop_watches_hook: Callable[[], int] | None = None

    def add(self, fault: Fault) -> Fault:
        self.rules.append(fault)
        return fault

    def fail(
        self,
        code: int,
        *,
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
        times: int | None = 1,
        message: str = "",
    ) -> Fault:
        """Answer matching requests with ``code`` (409, 500, 504, ...) and a Status body."""
        return self.add(
            Fault(
                verb,
                resource,
                namespace,
                name,
                subresource,
                code=code,
                message=message,
                times=times,
            )
        )

    def delay(
        self,
        seconds: float,
        *,
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """Delay matching requests by ``seconds`` before serving them normally."""
        return self.add(Fault(verb, resource, namespace, name, delay=seconds, times=times))

    def timeout(
        self,
        seconds: float,
        *,
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        """Hold matching requests ``seconds`` then answer 504 Timeout (a client timeout fires first
        when it is shorter)."""
        return self.add(
            Fault(verb, resource, namespace, name, code=504, delay=seconds, times=times)
        )

    def drop_watches(self) -> int:
        """End every open watch stream now (clients see EOF); returns how many."""
        return self.drop_watches_hook() if self.drop_watches_hook is not None else 0

    def clear(self) -> None:
        self.rules.clear()

    def take(self, info: RequestInfo) -> list[Fault]:
        """The rules firing for this request (each use counted)."""
        fired = []
        for rule in list(self.rules):
            if rule.matches(info) and (rule.times is None or rule.hits < rule.times):
                rule.hits += 1
                fired.append(rule)
        self.rules = [r for r in self.rules if r.times is None or r.hits < r.times]
        return fired
