"""The admission webhook chain's decisions: which webhooks a request reaches, the
AdmissionReview each one gets, and what its answer means.

Owns reading Mutating/ValidatingWebhookConfigurations into :class:`Webhook` values (mutating ones
ordered by configuration name, then webhook order), rule matching (operations, apiGroups,
apiVersions, resources with ``*``, ``*/*`` and ``x/status``, scope), ``matchPolicy: Equivalent``
across the served versions of a resource, ``namespaceSelector``/``objectSelector``, the
``admission.k8s.io/v1`` request as kube-apiserver builds it, and the verification of a response
with kube-apiserver's error wording. Pure: the HTTPS calls are in
:mod:`localkube.webhookclient` and the orchestration in :mod:`localkube.apiserver`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from localkube.selectors import match_label_selector_object

__all__ = [
    "Attributes",
    "InvalidResponse",
    "Match",
    "Outcome",
    "Webhook",
    "build_review",
    "denial_status",
    "interpret_response",
    "match_webhook",
    "webhooks_from",
]


@dataclass(frozen=True)
class Webhook:
    """One webhook entry of a stored configuration, with v1 defaults filled in."""

    configuration: str
    name: str
    mutating: bool
    client_config: Mapping[str, Any]
    rules: Sequence[Mapping[str, Any]]
    failure_policy: str = "Fail"
    side_effects: str = ""
    timeout_seconds: int = 10
    namespace_selector: Mapping[str, Any] | None = None
    object_selector: Mapping[str, Any] | None = None
    match_policy: str = "Equivalent"
    reinvocation_policy: str = "Never"


def webhooks_from(configurations: Sequence[Mapping[str, Any]], *, mutating: bool) -> list[Webhook]:
    """The webhooks of the given configurations, in the order kube-apiserver calls them."""
    ordered = sorted(configurations, key=lambda c: str((c.get("metadata") or {}).get("name", "")))
    out = []
    for config in ordered:
        config_name = str((config.get("metadata") or {}).get("name", ""))
        for hook in config.get("webhooks") or []:
            out.append(
                Webhook(
                    configuration=config_name,
                    name=str(hook.get("name", "")),
                    mutating=mutating,
                    client_config=hook.get("clientConfig") or {},
                    rules=hook.get("rules") or [],
                    failure_policy=str(hook.get("failurePolicy") or "Fail"),
                    side_effects=str(hook.get("sideEffects") or ""),
                    timeout_seconds=int(hook.get("timeoutSeconds") or 10),
                    namespace_selector=hook.get("namespaceSelector"),
                    object_selector=hook.get("objectSelector"),
                    match_policy=str(hook.get("matchPolicy") or "Equivalent"),
                    reinvocation_policy=str(hook.get("reinvocationPolicy") or "Never"),
                )
            )
    return out


@dataclass(frozen=True)
class Attributes:
    """What admission knows about one request (the object in the request's version)."""

    operation: str
    group: str
    version: str
    resource: str
    subresource: str
    kind: str
    namespace: str
    name: str
    namespaced: bool
    obj: Mapping[str, Any] | None
    old: Mapping[str, Any] | None
    dry_run: bool
    options: Mapping[str, Any]
    user_info: Mapping[str, Any]
    namespace_labels: Mapping[str, str] | None
    # served versions of the resource, in priority order (for matchPolicy Equivalent)
    versions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Match:
    """A webhook that applies, and the version it is to be called with."""

    webhook: Webhook
    version: str


def _rule_matches(rule: Mapping[str, Any], attrs: Attributes, version: str) -> bool:
    operations = rule.get("operations") or []
    if "*" not in operations and attrs.operation not in operations:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.group not in groups:
        return False
    versions = rule.get("apiVersions") or []
    if "*" not in versions and version not in versions:
        return False
    scope = rule.get("scope") or "*"
    if scope == "Cluster" and attrs.namespaced:
        return False
    if scope == "Namespaced" and not attrs.namespaced:
        return False
    for entry in rule.get("resources") or []:
        if entry == "*/*":
            return True
        res, _, sub = str(entry).partition("/")
        if res not in ("*", attrs.resource):
            continue
        if (not sub and not attrs.subresource) or (sub and sub in ("*", attrs.subresource)):
            return True
    return False


def _labels(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def match_webhook(webhook: Webhook, attrs: Attributes) -> Match | None:
    """Whether ``webhook`` applies to the request, and in which version it sees the object."""
    candidates = [attrs.version]
    if webhook.match_policy == "Equivalent":
        candidates += [v for v in attrs.versions if v != attrs.version]
    version = next(
        (v for v in candidates if any(_rule_matches(r, attrs, v) for r in webhook.rules)), None
    )
    if version is None:
        return None
    if attrs.resource == "namespaces" and attrs.group == "" and not attrs.subresource:
        ns_labels: Mapping[str, str] | None = _labels(attrs.obj or attrs.old)
    else:
        ns_labels = attrs.namespace_labels if attrs.namespaced else None
    if (attrs.namespaced or attrs.resource == "namespaces") and not match_label_selector_object(
        webhook.namespace_selector, ns_labels or {}
    ):
        return None
    if webhook.object_selector and not any(
        obj is not None and match_label_selector_object(webhook.object_selector, _labels(obj))
        for obj in (attrs.obj, attrs.old)
    ):
        return None
    return Match(webhook, version)


def _in_version(obj: Mapping[str, Any] | None, group: str, version: str) -> dict[str, Any] | None:
    if obj is None:
        return None
    out = dict(obj)
    out["apiVersion"] = f"{group}/{version}" if group else version
    return out


def build_review(match: Match, attrs: Attributes, uid: str) -> dict[str, Any]:
    """The AdmissionReview request body, as kube-apiserver's ``CreateV1AdmissionReview``."""
    request: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": attrs.group, "version": match.version, "kind": attrs.kind},
        "resource": {"group": attrs.group, "version": match.version, "resource": attrs.resource},
        "requestKind": {"group": attrs.group, "version": attrs.version, "kind": attrs.kind},
        "requestResource": {
            "group": attrs.group,
            "version": attrs.version,
            "resource": attrs.resource,
        },
        "operation": attrs.operation,
        "userInfo": dict(attrs.user_info),
        "object": _in_version(attrs.obj, attrs.group, match.version),
        "oldObject": _in_version(attrs.old, attrs.group, match.version),
        "dryRun": attrs.dry_run,
        "options": dict(attrs.options),
    }
    if attrs.subresource:
        request["subResource"] = attrs.subresource
        request["requestSubResource"] = attrs.subresource
    if attrs.name:
        request["name"] = attrs.name
    if attrs.namespace:
        request["namespace"] = attrs.namespace
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


class InvalidResponse(Exception):
    """A webhook answer that breaks the AdmissionReview v1 contract."""


@dataclass(frozen=True)
class Outcome:
    allowed: bool
    status: Mapping[str, Any] = field(default_factory=dict)
    patch: list[dict[str, Any]] | None = None
    warnings: tuple[str, ...] = ()


def interpret_response(body: Any, *, uid: str, mutating: bool) -> Outcome:
    """Check a webhook's AdmissionReview answer; raises :class:`InvalidResponse`."""
    if not isinstance(body, dict):
        raise InvalidResponse("received invalid webhook response: the response is not an object")
    if body.get("apiVersion") != "admission.k8s.io/v1" or body.get("kind") != "AdmissionReview":
        raise InvalidResponse(
            "received invalid webhook response: expected webhook response of "
            f"admission.k8s.io/v1, Kind=AdmissionReview, got {body.get('apiVersion')}, "
            f"Kind={body.get('kind')}"
        )
    response = body.get("response")
    if not isinstance(response, dict):
        raise InvalidResponse("received invalid webhook response: webhook response was absent")
    if response.get("uid") != uid:
        raise InvalidResponse(
            f'received invalid webhook response: expected response.uid="{uid}", '
            f'got "{response.get("uid", "")}"'
        )
    warnings = tuple(str(w) for w in response.get("warnings") or [] if str(w).strip())
    patch = None
    raw_patch = response.get("patch")
    patch_type = response.get("patchType")
    if raw_patch:
        if not mutating:
            raise InvalidResponse(
                "received invalid webhook response: validating webhooks may not return patches"
            )
        if patch_type is None:
            raise InvalidResponse(
                "received invalid webhook response: webhook "
                "returned response.patch but not response.patchType"
            )
        if patch_type != "JSONPatch":
            raise InvalidResponse(
                "received invalid webhook response: webhook returned "
                f'invalid response.patchType of "{patch_type}"'
            )
        try:
            decoded = json.loads(base64.b64decode(raw_patch, validate=True))
        except (binascii.Error, ValueError) as e:
            raise InvalidResponse(f"received invalid webhook response: {e}") from e
        if not isinstance(decoded, list):
            raise InvalidResponse(
                "received invalid webhook response: the patch is not a JSON patch"
            )
        patch = decoded
    elif patch_type is not None and not mutating:
        raise InvalidResponse(
            "received invalid webhook response: validating webhooks may not return patches"
        )
    return Outcome(
        allowed=bool(response.get("allowed")),
        status=response.get("status") or {},
        patch=patch,
        warnings=warnings,
    )


def denial_status(webhook_name: str, status: Mapping[str, Any]) -> dict[str, Any]:
    """The Status a denial becomes, worded as kube-apiserver's ``ToStatusErr``."""
    result = dict(status)
    code = int(result.get("code") or 0)
    if code < 400:
        code = 403
    denied = f'admission webhook "{webhook_name}" denied the request'
    if result.get("message"):
        message = f"{denied}: {result['message']}"
    elif result.get("reason"):
        message = f"{denied}: {result['reason']}"
    else:
        message = f"{denied} without explanation"
    out: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "code": code,
    }
    if result.get("reason"):
        out["reason"] = result["reason"]
    if result.get("details"):
        out["details"] = result["details"]
    return out
