"""AdmissionReview in, AdmissionReview out: the webhook's decisions as pure functions.

Two kinds of failure are kept apart (as kopf does):

- a **bad object** (a RayService that breaks a rule) is an answer: ``allowed: false`` with
  ``status.code`` 422, ``reason: Invalid`` and every error with its field path, in the API
  server's wording, so ``kubectl apply`` prints it;
- a **bad review** (not JSON, not an AdmissionReview v1, no request, no uid, not a RayService)
  raises ``BadReviewError``: the server answers HTTP 400 and the API server applies its
  failurePolicy.

``mutate`` defaults the object and writes the ``raysvc.io/`` annotations as a JSONPatch; it never
denies (validation is ``validate``'s job) and returns no warnings, so ``kubectl`` prints each
warning once. ``validate`` denies invalid objects and objects whose ``raysvc.io/`` annotations do
not match their spec, and warns what the change will do. Both are free of side effects, so a
``--dry-run=server`` apply gets the same answer as a real one.

**Verdicts are memoized by the content they read**: the webhook, the operation, and both
objects without the metadata the API server keeps (``resourceVersion``, ``managedFields``,
...). A re-apply, a retry, an apply after its dry run are answered from the memo with their own
uid. ``mutate`` validates too, and when the object is valid it files the verdict on its own
output, which is exactly what the validating admission of the same request reads. The memo is
bounded (8 MiB of keys) and holds answers only, never objects.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Final, Literal, NotRequired, TypedDict

import orjson

from rayservice import Evaluation, NotARayServiceError, evaluate
from rayservice.errors import short_repr
from rayservice.explain import MAX_SENTENCE
from rayservice.memo import BytesMemo

__all__ = [
    "ADMISSION_API_VERSION",
    "AdmissionRequest",
    "AdmissionResponse",
    "AdmissionReview",
    "BadReviewError",
    "Decision",
    "bad_review_response",
    "decode_review",
    "denial_message",
    "forget",
    "mutate",
    "review_response",
    "validate",
]

ADMISSION_API_VERSION: Final = "admission.k8s.io/v1"
MAX_WARNINGS: Final = 20
"""kube-apiserver drops warnings beyond 4 KiB in total; keep the list short and useful."""

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


class AdmissionRequest(TypedDict):
    uid: str
    kind: GroupVersionKind
    resource: GroupVersionResource
    subResource: NotRequired[str]
    name: NotRequired[str]
    namespace: NotRequired[str]
    operation: Operation
    userInfo: NotRequired[dict[str, Any]]
    object: NotRequired[dict[str, Any] | None]
    oldObject: NotRequired[dict[str, Any] | None]
    dryRun: NotRequired[bool]
    options: NotRequired[dict[str, Any] | None]


class Status(TypedDict):
    code: int
    reason: NotRequired[str]
    message: str
    details: NotRequired[dict[str, Any]]


class AdmissionResponse(TypedDict):
    uid: str
    allowed: bool
    status: NotRequired[Status]
    patch: NotRequired[str]
    patchType: NotRequired[Literal["JSONPatch"]]
    warnings: NotRequired[list[str]]


class AdmissionReview(TypedDict):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    request: NotRequired[AdmissionRequest]
    response: NotRequired[AdmissionResponse]


class BadReviewError(Exception):
    """The body is not an AdmissionReview v1 for a RayService; the server answers 400.

    ``uid`` is the request's uid when it could be read, so the answer can still echo it.
    """

    def __init__(self, message: str, uid: str = "") -> None:
        super().__init__(message)
        self.uid = uid


class Decision(TypedDict):
    """What the server needs besides the review: for logs and metrics."""

    operation: str
    verdict: Literal["allowed", "denied"]
    change: str
    name: str
    namespace: str


def decode_review(body: bytes) -> AdmissionRequest:
    """Parse and check an AdmissionReview v1 request body; raises ``BadReviewError``."""
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadReviewError(f"request body is not JSON: {exc}") from exc
    if not isinstance(review, dict):
        raise BadReviewError("request body is not a JSON object")
    request = review.get("request")
    uid = request.get("uid") if isinstance(request, dict) else None
    uid = uid if isinstance(uid, str) else ""
    if review.get("kind") != "AdmissionReview" or review.get("apiVersion") != ADMISSION_API_VERSION:
        raise BadReviewError(
            f"expected kind AdmissionReview in {ADMISSION_API_VERSION}, got kind "
            f"{short_repr(review.get('kind'))} in {short_repr(review.get('apiVersion'))}",
            uid,
        )
    if not isinstance(request, dict):
        raise BadReviewError("the AdmissionReview has no request", uid)
    if not uid:
        raise BadReviewError("the AdmissionReview request has no uid")
    operation = request.get("operation")
    if operation not in ("CREATE", "UPDATE", "DELETE", "CONNECT"):
        raise BadReviewError(f"unsupported operation {short_repr(operation)}", uid)
    kind = request.get("kind")
    if (
        not isinstance(kind, dict)
        or kind.get("group") != "ray.io"
        or kind.get("kind") != "RayService"
    ):
        raise BadReviewError(
            f"this webhook admits ray.io RayService objects, not {short_repr(kind)}", uid
        )
    if operation in ("CREATE", "UPDATE") and not isinstance(request.get("object"), dict):
        raise BadReviewError(f"a {operation} request needs an object", uid)
    if operation == "UPDATE" and not isinstance(request.get("oldObject"), dict):
        raise BadReviewError("an UPDATE request needs an oldObject", uid)
    return request  # type: ignore[return-value]  # checked field by field above


def _evaluate(request: AdmissionRequest, *, verify: bool) -> Evaluation:
    obj = request.get("object") or {}
    old = request.get("oldObject") if request["operation"] == "UPDATE" else None
    try:
        return evaluate(obj, old, verify_annotations=verify)
    except NotARayServiceError as exc:
        raise BadReviewError(str(exc), request["uid"]) from exc


def _text(value: object) -> str:
    """A request field for logs: a string as it is, anything else as nothing."""
    return value if isinstance(value, str) else ""


def _decision(request: AdmissionRequest, verdict: _Verdict | None) -> Decision:
    return Decision(
        operation=request["operation"],
        verdict="allowed" if verdict is None or verdict.allowed else "denied",
        change=verdict.change if verdict is not None else "",
        name=verdict.name if verdict is not None else _text(request.get("name")),
        namespace=_text(request.get("namespace")),
    )


def _passes_through(request: AdmissionRequest) -> bool:
    """DELETE/CONNECT and subresources (status) are not ours to check: a misconfigured rule
    must not block them."""
    return request["operation"] not in ("CREATE", "UPDATE") or bool(request.get("subResource"))


@dataclass(frozen=True, slots=True)
class _Verdict:
    """An answer without its uid: what the same content gets again. Treat it as read-only."""

    allowed: bool
    change: str
    name: str
    status: Status | None = None
    patch: str | None = None
    warnings: tuple[str, ...] = ()

    def response(self, uid: str) -> AdmissionResponse:
        response = AdmissionResponse(uid=uid, allowed=self.allowed)
        if self.status is not None:
            response["status"] = self.status
        if self.patch is not None:
            response["patchType"] = "JSONPatch"
            response["patch"] = self.patch
        if self.warnings:
            response["warnings"] = list(self.warnings)
        return response


_VERDICTS: Final[BytesMemo[_Verdict]] = BytesMemo(max_chars=8 * 1024 * 1024, max_entries=2048)
"""Verdicts by the content they read (``_content_key``), for both webhooks."""

_READ_METADATA: Final = ("name", "generateName", "namespace", "labels", "annotations")


def _read_content(obj: object) -> object:
    """What a decision reads of an object: everything but the metadata the API server keeps
    (resourceVersion, generation, managedFields, ...), which it may change between the mutating
    and the validating admission of one request."""
    if not isinstance(obj, dict):
        return obj
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return obj
    view = dict(obj)
    view["metadata"] = {key: metadata[key] for key in _READ_METADATA if key in metadata}
    return view


def _content_key(webhook: str, operation: str, obj: object, old: object) -> bytes | None:
    """The memo key of a decision: the webhook, the operation and what it reads of both objects
    (keys sorted, as the API server sends them). ``None`` for content orjson cannot serialize
    (nested too deep): that is decided without the memo."""
    try:
        return orjson.dumps(
            [webhook, operation, _read_content(obj), _read_content(old)],
            option=orjson.OPT_SORT_KEYS,
        )
    except orjson.JSONEncodeError:
        return None


def _key(webhook: str, request: AdmissionRequest) -> bytes | None:
    operation = request["operation"]
    old = request.get("oldObject") if operation == "UPDATE" else None
    return _content_key(webhook, operation, request.get("object"), old)


def _mutate_verdict(result: Evaluation) -> _Verdict:
    patch = None
    if result.patch:
        patch = base64.b64encode(orjson.dumps(result.patch_json())).decode("ascii")
    return _Verdict(True, result.change.kind.value, result.name, patch=patch)


def _validate_verdict(result: Evaluation) -> _Verdict:
    status = None
    if not result.allowed:
        status = Status(
            code=422,
            reason="Invalid",
            message=denial_message(result),
            details={
                "name": result.name,
                "group": "ray.io",
                "kind": "RayService",
                "causes": [
                    {"reason": e.reason.cause, "message": e.message, "field": e.field}
                    for e in result.errors
                ],
            },
        )
    warnings = [_fit(str(w)) for w in result.warnings]
    if result.allowed:
        warnings.extend(_fit(sentence) for sentence in result.consequences)
    return _Verdict(
        result.allowed,
        result.change.kind.value,
        result.name,
        status=status,
        warnings=tuple(warnings[:MAX_WARNINGS]),
    )


def forget() -> None:
    """Empty the verdict memo (to measure or test decisions made afresh)."""
    _VERDICTS.clear()


def mutate(request: AdmissionRequest) -> tuple[AdmissionResponse, Decision]:
    """Default the RayService and write the contract's annotations; always allowed.

    The object is validated here as well: when it is valid, the verdict on what this patch
    makes of it is known already, and is kept for the validating admission that follows.
    """
    if _passes_through(request):
        return AdmissionResponse(uid=request["uid"], allowed=True), _decision(request, None)
    key = _key("mutate", request)
    verdict = _VERDICTS.get(key) if key is not None else None
    if verdict is None:
        result = _evaluate(request, verify=False)
        verdict = _mutate_verdict(result)
        if key is not None:
            _VERDICTS.put(key, verdict)
            if result.allowed:
                old = request.get("oldObject") if request["operation"] == "UPDATE" else None
                seed = _content_key("validate", request["operation"], result.mutated, old)
                if seed is not None and _VERDICTS.get(seed) is None:
                    _VERDICTS.put(seed, _validate_verdict(result))
    return verdict.response(request["uid"]), _decision(request, verdict)


def validate(request: AdmissionRequest) -> tuple[AdmissionResponse, Decision]:
    """Allow or deny the RayService; warn what the change will do."""
    if _passes_through(request):
        return AdmissionResponse(uid=request["uid"], allowed=True), _decision(request, None)
    key = _key("validate", request)
    verdict = _VERDICTS.get(key) if key is not None else None
    if verdict is None:
        verdict = _validate_verdict(_evaluate(request, verify=True))
        if key is not None:
            _VERDICTS.put(key, verdict)
    return verdict.response(request["uid"]), _decision(request, verdict)


def denial_message(result: Evaluation) -> str:
    """The API server's wording: ``RayService.ray.io "x" is invalid: [a: ..., b: ...]``."""
    errors = [str(error) for error in result.errors]
    listed = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    return f'RayService.ray.io "{result.name}" is invalid: {listed}'


def _fit(text: str) -> str:
    """A warning kubectl shows on one line: at most 120 characters, no newlines."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_SENTENCE else text[: MAX_SENTENCE - 3] + "..."


def review_response(response: AdmissionResponse) -> AdmissionReview:
    """Wrap a response in the AdmissionReview envelope the API server expects."""
    return AdmissionReview(
        apiVersion=ADMISSION_API_VERSION, kind="AdmissionReview", response=response
    )


def bad_review_response(error: BadReviewError) -> dict[str, Any]:
    """The 400 body: an AdmissionReview echoing the uid when known, with a Status."""
    return {
        "apiVersion": ADMISSION_API_VERSION,
        "kind": "AdmissionReview",
        "response": {
            "uid": error.uid,
            "allowed": False,
            "status": {"code": 400, "reason": "BadRequest", "message": str(error)},
        },
    }
