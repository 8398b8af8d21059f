"""API errors as kube-apiserver reports them.

Owns the mapping from a failure to a ``Status`` object (kind, reason, code, details, causes) and
the exact message wording of kube-apiserver's ``k8s.io/apimachinery/pkg/api/errors`` helpers.
It does no I/O.

Tree::

    ApiError                     any non-2xx answer; ``status()`` is the wire body
      (built by the helpers below: bad_request, not_found, already_exists, conflict, invalid,
       gone, unsupported_media_type, method_not_allowed, forbidden, internal_error, timeout)
    PatchError                   a patch that cannot be decoded or applied (becomes 400 or 422)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_CAUSES",
    "ApiError",
    "Cause",
    "PatchError",
    "already_exists",
    "bad_request",
    "conflict",
    "expired",
    "forbidden",
    "internal_error",
    "invalid",
    "method_not_allowed",
    "not_found",
    "service_unavailable",
    "timeout",
    "too_large",
    "unsupported_media_type",
]


@dataclass(frozen=True)
class Cause:
    """One entry of ``details.causes``: a field path with what is wrong with it."""

    reason: str
    message: str
    field: str


@dataclass
class ApiError(Exception):
    """A failed request, carrying everything the ``Status`` body needs."""

    code: int
    reason: str
    message: str
    name: str = ""
    group: str = ""
    kind: str = ""
    uid: str = ""
    causes: list[Cause] = field(default_factory=list)
    retry_after_seconds: int = 0
    body: dict[str, Any] | None = None

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict[str, Any]:
        """The ``Status`` object kube-apiserver writes as the response body."""
        if self.body is not None:
            return dict(self.body)
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.uid:
            details["uid"] = self.uid
        if self.causes:
            details["causes"] = [
                {
                    k: v
                    for k, v in (("reason", c.reason), ("message", c.message), ("field", c.field))
                    if v
                }
                for c in self.causes
            ]
        if self.retry_after_seconds:
            details["retryAfterSeconds"] = self.retry_after_seconds
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            body["details"] = details
        return body


class PatchError(Exception):
    """A patch body that is malformed (``bad_body``) or cannot be applied to the object."""

    def __init__(self, message: str, *, bad_body: bool, too_large: bool = False) -> None:
        super().__init__(message)
        self.bad_body = bad_body
        self.too_large = too_large


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized() -> ApiError:
    """What kube-apiserver answers a request without valid credentials."""
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(resource: str, group: str, name: str, message: str) -> ApiError:
    what = _qualified(resource, group)
    text = f'{what} "{name}" is forbidden: {message}' if name else f"{what} is forbidden: {message}"
    return ApiError(403, "Forbidden", text, name=name, group=group, kind=resource)


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{_qualified(resource, group)} "{name}" not found',
        name=name,
        group=group,
        kind=resource,
    )


def method_not_allowed(resource: str, group: str, verb: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        f"{verb} is not supported on resources of kind {_qualified(resource, group)!r}",
        group=group,
        kind=resource,
    )


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{_qualified(resource, group)} "{name}" already exists',
        name=name,
        group=group,
        kind=resource,
    )


def conflict(resource: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
        name=name,
        group=group,
        kind=resource,
    )


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def too_large(message: str) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", message)


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)}",
    )


MAX_CAUSES = 100
"""The most causes one ``Invalid`` answer lists (message and ``details.causes`` alike)."""


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> ApiError:
    """422 ``Invalid``, worded as ``apierrors.NewInvalid`` words it.

    At most :data:`MAX_CAUSES` causes are reported; beyond them the message ends with a note
    that more were found, so a small body cannot earn an answer many times its size.
    """
    shown = causes[:MAX_CAUSES]
    rendered = [c.message if not c.field else f"{c.field}: {c.message}" for c in shown]
    if len(causes) > MAX_CAUSES:
        rendered.append(f"too many errors, only the first {MAX_CAUSES} are reported")
    joined = rendered[0] if len(rendered) == 1 else f"[{', '.join(rendered)}]"
    return ApiError(
        422,
        "Invalid",
        f'{_qualified(kind, group)} "{name}" is invalid: {joined}',
        name=name,
        group=group,
        kind=kind,
        causes=shown,
    )


def internal_error(message: str) -> ApiError:
    return ApiError(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        causes=[Cause(reason="", message=message, field="")],
    )


def timeout(message: str) -> ApiError:
    return ApiError(504, "Timeout", message)


def service_unavailable(message: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", message)
