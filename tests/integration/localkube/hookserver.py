"""A test admission webhook server over HTTPS whose behaviour is chosen by the URL.

``/allow/...`` allows, ``/deny?msg=&code=&reason=`` denies, ``/warn?msg=`` allows with warnings,
``/patch?ops=<json>`` answers a JSONPatch, ``/order?step=`` appends to an annotation (to observe
ordering), ``/slow?seconds=`` answers late, ``/bad-uid`` breaks the contract, ``/http500`` fails.
Every review received is recorded with its path.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import trustme
from aiohttp import web

SERVICE_NAMESPACE = "lk-webhooks"

# register(path, *, mutating=False, name="", rules=None, **webhook_fields) -> webhook name
Registrar = Callable[..., Coroutine[Any, Any, str]]


@dataclass
class HookServer:
    """A webhook server whose behaviour is chosen by the URL path and query."""

    ca: trustme.CA
    port: int = 0
    reviews: list[dict[str, Any]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    @property
    def ca_bundle(self) -> str:
        return base64.b64encode(self.ca.cert_pem.bytes()).decode()

    def seen(self, path: str) -> list[dict[str, Any]]:
        return [r["request"] for r in self.reviews if r["_path"] == path]

    async def handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        review["_path"] = request.path
        review["_query"] = dict(request.query)
        self.reviews.append(review)
        req = review["request"]
        query = request.query
        response: dict[str, Any] = {"uid": req["uid"], "allowed": True}
        action = request.path.strip("/")
        if action == "deny":
            response["allowed"] = False
            status: dict[str, Any] = {"message": query.get("msg", "no way")}
            if "code" in query:
                status["code"] = int(query["code"])
            if "reason" in query:
                status["reason"] = query["reason"]
            response["status"] = status
        elif action == "warn":
            response["warnings"] = [query.get("msg", "careful"), 'second "quoted" warning']
        elif action == "patch":
            ops = json.loads(query["ops"])
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
        elif action == "order":
            annotations = ((req.get("object") or {}).get("metadata") or {}).get("annotations") or {}
            trail = annotations.get("trail", "")
            op = "replace" if "annotations" in (req["object"]["metadata"]) else "add"
            value: Any = {**annotations, "trail": trail + query["step"]}
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(
                json.dumps([{"op": op, "path": "/metadata/annotations", "value": value}]).encode()
            ).decode()
        elif action == "slow":
            await asyncio.sleep(float(query.get("seconds", "3")))
        elif action == "bad-uid":
            response["uid"] = "something-else"
        elif action == "http500":
            return web.Response(status=500, text="boom")
        return web.json_response(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
        )
