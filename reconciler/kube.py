"""The reconciler's only door to the Kubernetes API: objects as dicts, via kubernetes-asyncio.

Owns the table of the kinds the controllers touch (:data:`KINDS`) and :class:`KubeClient`, which
calls kubernetes-asyncio's typed API functions with ``_preload_content=False`` and decodes the JSON
itself: controllers read and write whole manifests as dicts (unknown fields survive, nothing is
converted to generated models and back), and a non-2xx answer becomes :class:`ApiError` with the
API server's Status ``reason`` and ``message``.

Every call has a timeout. Watches are read line by line (one JSON event per line); the caller
(``reconciler.informer``) re-lists on 410.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson
from kubernetes_asyncio import client

from reconciler.actions import Ref

__all__ = ["KINDS", "ApiError", "KubeClient", "ResourceKind", "kind_of"]

log = logging.getLogger(__name__)

MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """One kind the reconciler reads or writes, and the kubernetes-asyncio functions that serve it.

    ``api`` names a kubernetes-asyncio API class; ``stem`` is the suffix of its typed functions
    (``namespaced_pod`` -> ``create_namespaced_pod``). Custom resources (``custom=True``) go through
    ``CustomObjectsApi`` with group, version and plural.
    """

    api_version: str
    kind: str
    plural: str
    api: str = "CoreV1Api"
    stem: str = ""
    custom: bool = False

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


KINDS: Final[dict[tuple[str, str], ResourceKind]] = {
    (k.api_version, k.kind): k
    for k in (
        ResourceKind("ray.io/v1", "RayService", "rayservices", custom=True),
        ResourceKind("ray.io/v1", "RayCluster", "rayclusters", custom=True),
        ResourceKind("v1", "Pod", "pods", stem="pod"),
        ResourceKind("v1", "Service", "services", stem="service"),
        ResourceKind("v1", "Endpoints", "endpoints", stem="endpoints"),
        ResourceKind("v1", "Event", "events", stem="event"),
        ResourceKind("v1", "ServiceAccount", "serviceaccounts", stem="service_account"),
        ResourceKind(
            "rbac.authorization.k8s.io/v1",
            "Role",
            "roles",
            api="RbacAuthorizationV1Api",
            stem="role",
        ),
        ResourceKind(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            "rolebindings",
            api="RbacAuthorizationV1Api",
            stem="role_binding",
        ),
        ResourceKind(
            "coordination.k8s.io/v1", "Lease", "leases", api="CoordinationV1Api", stem="lease"
        ),
    )
}


def kind_of(api_version: str, kind: str) -> ResourceKind:
    """The table entry for a kind; ``KeyError`` for a kind the reconciler does not handle."""
    return KINDS[(api_version, kind)]


class ApiError(Exception):
    """A non-2xx answer: HTTP ``status``, the Status ``reason`` and ``message``."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"


async def _decode(response: aiohttp.ClientResponse) -> Any:
    try:
        body = await response.read()
    finally:
        response.release()
    if 200 <= response.status < 300:
        return orjson.loads(body) if body else None
    reason, message = response.reason or "", body.decode(errors="replace")[:1000]
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        status = orjson.loads(body)
        reason, message = str(status.get("reason", reason)), str(status.get("message", message))
    raise ApiError(response.status, reason, message)


class KubeClient:
    """Whole-object calls on the kinds of :data:`KINDS`, over one shared ``ApiClient``.

    ``timeout`` bounds every call except watches, which get their own (server ``timeoutSeconds``
    plus a client read timeout).
    """

    def __init__(self, api_client: client.ApiClient, *, timeout: float = 10.0) -> None:
        self.api_client = api_client
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._apis: dict[str, Any] = {}

    def _api(self, name: str) -> Any:
        api = self._apis.get(name)
        if api is None:
            api = self._apis[name] = getattr(client, name)(self.api_client)
        return api

    def _fn(self, rk: ResourceKind, verb: str, *, namespaced: bool = True) -> Callable[..., Any]:
        """The typed function for ``verb`` (create, read, patch, replace, delete, list)."""
        if rk.custom:
            scope = "namespaced" if namespaced else "cluster"
            name = {"read": "get"}.get(verb, verb)
            fn = getattr(self._api("CustomObjectsApi"), f"{name}_{scope}_custom_object")

            def call(*args: Any, **kwargs: Any) -> Any:
                return fn(rk.group, rk.version, *args, **kwargs)

            return call
        if verb == "list" and not namespaced:
            name = f"list_{rk.stem}_for_all_namespaces"
        else:
            name = f"{verb}_namespaced_{rk.stem}"
        typed: Callable[..., Any] = getattr(self._api(rk.api), name)
        return typed

    def _args(self, rk: ResourceKind, namespace: str, *rest: Any) -> tuple[Any, ...]:
        if rk.custom:
            # CustomObjectsApi: (group, version,) namespace, plural[, name]
            return (namespace, rk.plural, *rest)
        # typed: (name,) namespace
        return (*rest, namespace)

    async def _call(self, pending: Awaitable[Any]) -> Any:
        return await _decode(await pending)

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """POST a whole manifest; returns the stored object."""
        rk = kind_of(str(obj["apiVersion"]), str(obj["kind"]))
        namespace = str(obj["metadata"]["namespace"])
        fn = self._fn(rk, "create")
        args = (namespace, rk.plural) if rk.custom else (namespace,)
        result = await self._call(
            fn(*args, body=obj, _preload_content=False, _request_timeout=self.timeout)
        )
        return dict(result)

    async def get(self, ref: Ref) -> dict[str, Any] | None:
        """The object, or None if it does not exist."""
        rk = kind_of(ref.api_version, ref.kind)
        try:
            result = await self._call(
                self._fn(rk, "read")(
                    *self._args(rk, ref.namespace, ref.name),
                    _preload_content=False,
                    _request_timeout=self.timeout,
                )
            )
        except ApiError as e:
            if e.not_found:
                return None
            raise
        return dict(result)

    async def patch(
        self, ref: Ref, body: Any, *, content_type: str, subresource: str = ""
    ) -> dict[str, Any]:
        """PATCH (merge or JSON patch); ``subresource`` may be ``status``."""
        rk = kind_of(ref.api_version, ref.kind)
        suffix = f"_{subresource}" if subresource else ""
        options = {
            "_content_type": content_type,
            "_preload_content": False,
            "_request_timeout": self.timeout,
        }
        if rk.custom:
            fn = getattr(self._api("CustomObjectsApi"), f"patch_namespaced_custom_object{suffix}")
            pending = fn(rk.group, rk.version, ref.namespace, rk.plural, ref.name, body, **options)
        else:
            fn = getattr(self._api(rk.api), f"patch_namespaced_{rk.stem}{suffix}")
            pending = fn(ref.name, ref.namespace, body, **options)
        return dict(await self._call(pending))

    async def merge_patch(
        self, ref: Ref, patch: Mapping[str, Any], *, subresource: str = ""
    ) -> dict[str, Any]:
        body = dict(patch)
        preconditions = {}
        if ref.uid:
            preconditions["uid"] = ref.uid
        if ref.resource_version:
            preconditions["resourceVersion"] = ref.resource_version
        if preconditions:
            meta = dict(body.get("metadata") or {})
            meta.update(preconditions)
            body["metadata"] = meta
        return await self.patch(ref, body, content_type=MERGE_PATCH, subresource=subresource)

    async def json_patch(
        self, ref: Ref, ops: Sequence[Mapping[str, Any]], *, subresource: str = ""
    ) -> dict[str, Any]:
        body: list[Mapping[str, Any]] = []
        if ref.uid:
            body.append({"op": "test", "path": "/metadata/uid", "value": ref.uid})
        if ref.resource_version:
            body.append(
                {"op": "test", "path": "/metadata/resourceVersion", "value": ref.resource_version}
            )
        body.extend(ops)
        return await self.patch(ref, body, content_type=JSON_PATCH, subresource=subresource)

    async def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """PUT a whole object (its ``metadata.resourceVersion`` is the precondition)."""
        rk = kind_of(str(obj["apiVersion"]), str(obj["kind"]))
        meta = obj["metadata"]
        return dict(
            await self._call(
                self._fn(rk, "replace")(
                    *self._args(rk, str(meta["namespace"]), str(meta["name"])),
                    body=obj,
                    _preload_content=False,
                    _request_timeout=self.timeout,
                )
            )
        )

    async def delete(self, ref: Ref, *, propagation: str = "Background") -> dict[str, Any] | None:
        """DELETE; what the server answered (the object, with a ``deletionTimestamp`` while it
        goes gracefully, or a Status), or None if it was already gone."""
        rk = kind_of(ref.api_version, ref.kind)
        options: dict[str, Any] = {"propagationPolicy": propagation}
        if ref.uid or ref.resource_version:
            options["preconditions"] = {
                k: v for k, v in (("uid", ref.uid), ("resourceVersion", ref.resource_version)) if v
            }
        try:
            answer = await self._call(
                self._fn(rk, "delete")(
                    *self._args(rk, ref.namespace, ref.name),
                    body=options,
                    _preload_content=False,
                    _request_timeout=self.timeout,
                )
            )
        except ApiError as e:
            if e.not_found:
                return None
            raise
        return dict(answer) if isinstance(answer, Mapping) else {}

    def _collection(
        self, rk: ResourceKind, namespace: str
    ) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """The list function of one namespace ("" for all) and its leading arguments."""
        fn = self._fn(rk, "list", namespaced=bool(namespace))
        if rk.custom:
            return fn, ((namespace, rk.plural) if namespace else (rk.plural,))
        return fn, ((namespace,) if namespace else ())

    async def list(
        self, rk: ResourceKind, *, namespace: str = "", label_selector: str = ""
    ) -> tuple[list[dict[str, Any]], str]:
        """Every object (one namespace, or all with ``""``) and the list's resourceVersion."""
        kwargs: dict[str, Any] = {"_preload_content": False, "_request_timeout": self.timeout}
        if label_selector:
            kwargs["label_selector"] = label_selector
        fn, args = self._collection(rk, namespace)
        result = await self._call(fn(*args, **kwargs))
        items = result.get("items") or []
        for item in items:  # lists omit these on items
            item.setdefault("apiVersion", rk.api_version)
            item.setdefault("kind", rk.kind)
        return items, str((result.get("metadata") or {}).get("resourceVersion", ""))

    async def watch(
        self,
        rk: ResourceKind,
        *,
        resource_version: str,
        namespace: str = "",
        label_selector: str = "",
        timeout_seconds: int = 300,
    ) -> AsyncIterator[dict[str, Any]]:
        """Events after ``resource_version`` until the server ends the stream.

        Each event is ``{"type", "object"}``; an ERROR event raises :class:`ApiError` (410 when
        the version is too old). The client read timeout is longer than the server's
        ``timeoutSeconds`` and than the bookmark interval, so a silently dead connection ends too.
        """
        kwargs: dict[str, Any] = {
            "watch": True,
            "allow_watch_bookmarks": True,
            "resource_version": resource_version,
            "timeout_seconds": timeout_seconds,
            "_preload_content": False,
            "_request_timeout": aiohttp.ClientTimeout(
                total=timeout_seconds + 30, sock_connect=10, sock_read=timeout_seconds + 30
            ),
        }
        if label_selector:
            kwargs["label_selector"] = label_selector
        fn, args = self._collection(rk, namespace)
        response: aiohttp.ClientResponse = await fn(*args, **kwargs)
        try:
            if response.status != 200:
                await _decode(response)
            while True:
                line = await response.content.readline()
                if not line:
                    return
                event = orjson.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise ApiError(
                        int(status.get("code") or 500),
                        str(status.get("reason", "")),
                        str(status.get("message", "")),
                    )
                yield event
        finally:
            response.release()
