"""The HTTP face of localkube: an aiohttp application speaking the Kubernetes REST API.

Owns URL parsing (``/api/v1/...``, ``/apis/{group}/{version}/...``, namespaced and cluster
paths, subresources), query parameters (parsed like Go's ``strconv.ParseBool``), content
negotiation (JSON, Table), ``Warning`` headers, Status bodies for errors, list paging and
selectors, watch streams (one JSON event per line, bookmarks, ``timeoutSeconds``, 410 as an
ERROR event), discovery and OpenAPI routes, the body size limit and fault injection. The Pod
subresources a node answers (``log``, ``exec``, ``attach``, ``portforward``) are handed to
:mod:`localkube.subresources`, ``pods/proxy`` and ``services/proxy`` to
:mod:`localkube.httpproxy`.
Writes are delegated to :class:`localkube.pipeline.Pipeline`; objects live in
:class:`localkube.storage.Store`. Build it with :func:`make_app`; :class:`localkube.kube.LocalKube`
runs it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

from aiohttp import WSCloseCode, web

from localkube import (
    decoding,
    discovery,
    errors,
    httpproxy,
    protobuf,
    shapes,
    subresources,
    tables,
)
from localkube.controllers import Controllers
from localkube.errors import ApiError
from localkube.faults import Faults, RequestInfo
from localkube.kubelet import Kubelets
from localkube.logsource import LogSource, MemoryLogs
from localkube.persistence import SqlitePersistence
from localkube.pipeline import Options, Pipeline
from localkube.queryparams import INT64_MAX, INT64_MIN, parse_bool, parse_int
from localkube.resources import CRD_KEY, NAMESPACE_KEY, Registry, ResourceType
from localkube.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from localkube.settings import Settings
from localkube.storage import Event, Expired, Store
from localkube.webhookclient import ServiceResolver, WebhookClient

__all__ = ["KUBE", "Kube", "make_app"]

log = logging.getLogger(__name__)

_PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})
"""What kube-apiserver's system:public-info-viewer role lets anyone read."""
_DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class Kube:
    """Everything one running server holds (reachable as ``app[KUBE]``)."""

    settings: Settings
    store: Store
    registry: Registry
    pipeline: Pipeline
    webhooks: WebhookClient
    faults: Faults
    logs: LogSource
    bookmark_interval: float
    address: str = ""
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    kubelets: Kubelets = field(default_factory=Kubelets)
    sessions: set[web.WebSocketResponse] = field(default_factory=set)  # exec, attach, forwards


KUBE = web.AppKey("kube", Kube)


@dataclass(frozen=True)
class Target:
    """What a resource URL names."""

    rt: ResourceType
    version: str
    namespace: str  # "" for cluster-scoped resources and all-namespace collections
    name: str
    subresource: str
    all_namespaces: bool


def _json(body: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    response = web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":"), allow_nan=False).encode(),
        content_type="application/json",
    )
    for warning in _dedupe(warnings or []):
        _add_warning(response, warning)
    return response


def _add_warning(response: web.StreamResponse, warning: str) -> None:
    """Add a ``Warning: 299 - "..."`` header (RFC 7234 form, as kube-apiserver writes it)."""
    escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
    header = f'299 - "{escaped}"'
    if header not in response.headers.getall("Warning", []):
        response.headers.add("Warning", header)


def _dedupe(items: list[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _wants_protobuf(request: web.Request) -> bool:
    """True when the client's first choice is plain protobuf (not a Table, not a stream)."""
    first = request.headers.get("Accept", "").split(",")[0].strip()
    media, *params = [p.strip() for p in first.split(";")]
    return media == protobuf.MEDIA_TYPE and not any(p.startswith("as=") for p in params)


def _as_protobuf(response: web.Response) -> web.Response:
    """The same answer encoded as protobuf, when its kind has a message (else unchanged)."""
    if response.content_type != "application/json" or not isinstance(response.body, bytes):
        return response
    try:
        body = json.loads(response.body)
    except ValueError:
        return response
    encoded = protobuf.encode(body) if isinstance(body, dict) else None
    if encoded is None:
        return response
    converted = web.Response(status=response.status, body=encoded, content_type=protobuf.MEDIA_TYPE)
    for warning in response.headers.getall("Warning", []):
        converted.headers.add("Warning", warning)
    return converted


def _error(error: ApiError) -> web.Response:
    return _json(error.status(), error.code)


def _options(request: web.Request) -> Options:
    query = request.query
    dry_run_values = query.getall("dryRun", [])
    for value in dry_run_values:
        if value != "All":
            raise errors.bad_request(
                f'dryRun: Unsupported value: "{value}": supported values: "All"'
            )
    validation = query.get("fieldValidation", "Warn") or "Warn"
    if validation not in ("Ignore", "Warn", "Strict"):
        raise errors.bad_request(
            f'fieldValidation: Unsupported value: "{validation}": '
            'supported values: "Ignore", "Strict", "Warn"'
        )
    return Options(
        dry_run=bool(dry_run_values),
        field_manager=query.get("fieldManager", ""),
        field_validation=validation,
        force=parse_bool(query.get("force"), "force"),
        user_agent=request.headers.get("User-Agent", ""),
    )


def _continue_token(token: str) -> tuple[int, tuple[str, str]]:
    """The (list revision, last namespace and name) a ``continue`` token carries (else 400)."""
    try:
        decoded = json.loads(base64.b64decode(token, validate=True))
        rv, start = decoded["rv"], decoded["start"]
        if not isinstance(rv, int) or isinstance(rv, bool):
            raise ValueError("rv is not an integer")
        if not (isinstance(start, list) and len(start) == 2):
            raise ValueError("start is not a namespace and a name")
        if not all(isinstance(part, str) for part in start):
            raise ValueError("start is not a namespace and a name")
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise errors.bad_request(f"continue key is not valid: {e}") from None
    return rv, (start[0], start[1])


def _write_options(request: web.Request, delete_options: Mapping[str, Any]) -> Options:
    """The write options of a DELETE: a ``dryRun`` in the body counts as in the query."""
    opts = _options(request)
    return replace(opts, dry_run=True) if delete_options.get("dryRun") else opts


_DELETE_OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "gracePeriodSeconds": (int,),
    "propagationPolicy": (str,),
    "orphanDependents": (bool,),
    "preconditions": (dict,),
    "dryRun": (list,),
    "apiVersion": (str,),
    "kind": (str,),
}
_GO_TYPES = {
    "gracePeriodSeconds": "int64",
    "propagationPolicy": "v1.DeletionPropagation",
    "orphanDependents": "bool",
    "preconditions": "v1.Preconditions",
    "dryRun": "[]string",
    "apiVersion": "string",
    "kind": "string",
}


def _check_delete_options(options: Mapping[str, Any]) -> None:
    """Refuse DeleteOptions fields of the wrong JSON type, worded as Go's decoder words it."""
    for key, allowed in _DELETE_OPTION_TYPES.items():
        value = options.get(key)
        if value is None:
            continue
        wrong = not isinstance(value, allowed) or (int in allowed and isinstance(value, bool))
        if key == "gracePeriodSeconds" and not wrong and not INT64_MIN <= value <= INT64_MAX:
            raise errors.bad_request(
                f"json: cannot unmarshal number {value} into Go struct field "
                "DeleteOptions.gracePeriodSeconds of type int64"
            )
        if key == "dryRun" and not wrong:
            wrong = not all(isinstance(v, str) for v in value)
        if key == "preconditions" and not wrong:
            wrong = any(
                v is not None and not isinstance(v, str)
                for k, v in value.items()
                if k in ("uid", "resourceVersion")
            )
        if wrong:
            raise errors.bad_request(
                f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                f"DeleteOptions.{key} of type {_GO_TYPES[key]}"
            )


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _verb(method: str, target: Target, watch: bool) -> str:
    collection = not target.name
    return {
        "GET": "watch" if watch else ("list" if collection else "get"),
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "deletecollection" if collection else "delete",
    }.get(method, method.lower())


class Handler:
    """Request handling around one :class:`Kube` (methods are the routes)."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    # entry -----------------------------------------------------------------------------------
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        protobuf_wanted = _wants_protobuf(request)
        try:
            response = await self._dispatch(request)
            if isinstance(response, web.Response) and protobuf_wanted:
                response = _as_protobuf(response)  # encoding is guarded as serving is
        except ApiError as e:
            response = _error(e)
        except web.HTTPRequestEntityTooLarge:
            response = _error(errors.too_large("the request body is too large"))
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:  # a bug must still answer a Status, never a traceback
            log.exception("request failed", extra={"method": request.method, "path": request.path})
            response = _error(errors.internal_error("the server could not serve the request"))
        if isinstance(response, web.Response) and protobuf_wanted:
            response = _as_protobuf(response)  # a Status: protobuf already, or its table fits
        log.debug(
            "request served",
            extra={"method": request.method, "path": request.path_qs, "code": response.status},
        )
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path not in _PUBLIC_PATHS and not self._authenticated(request):
            raise errors.unauthorized()
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path == "/version":
            return _json(discovery.version_info(self.kube.settings.git_version))
        if path == "/api":
            return _json(discovery.api_versions(self.kube.address))
        if path == "/apis":
            return _json(discovery.api_group_list(self.kube.registry))
        if path.startswith("/openapi/"):
            return self._openapi(path)
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if segments[0] == "api" and len(segments) >= 2:
            group, version, rest = "", segments[1], segments[2:]
        elif segments[0] == "apis" and len(segments) >= 2:
            group = segments[1]
            if len(segments) == 2:
                doc = discovery.api_group(self.kube.registry, group)
                return _json(doc) if doc else _error(_not_found_path())
            version, rest = segments[2], segments[3:]
        else:
            raise _not_found_path()
        if not rest:
            if request.method != "GET":
                raise errors.method_not_allowed("", group, request.method)
            doc = discovery.resource_list(self.kube.registry, group, version)
            if doc is None:
                raise _not_found_path()
            return _json(doc)
        target = self._target(group, version, rest)
        deprecation = target.rt.deprecation(version)
        try:
            response = await self._resource(request, target)
        except ApiError as e:
            response = _error(e)
        if deprecation and not response.prepared:
            _add_warning(response, deprecation)  # every answer, errors included
        return response

    async def _resource(self, request: web.Request, target: Target) -> web.StreamResponse:
        watch = request.method == "GET" and parse_bool(request.query.get("watch"), "watch")
        info = RequestInfo(
            _verb(request.method, target, watch),
            target.rt.plural,
            target.namespace,
            target.name,
            target.subresource,
        )
        for fault in self.kube.faults.take(info):
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.code:
                return _json(fault.status(info), fault.code)
        return await self._serve(request, target, watch)

    def _authenticated(self, request: web.Request) -> bool:
        token = self.kube.settings.token
        if token is None:
            return True
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )

    def _openapi(self, path: str) -> web.Response:
        if path == "/openapi/v3":
            return _json(discovery.openapi_root(self.kube.registry))
        parts = path.removeprefix("/openapi/v3/").split("/")
        doc = None
        if path.startswith("/openapi/v3/api/") and len(parts) == 2:
            doc = discovery.openapi_group_version(self.kube.registry, "", parts[1])
        elif path.startswith("/openapi/v3/apis/") and len(parts) == 3:
            doc = discovery.openapi_group_version(self.kube.registry, parts[1], parts[2])
        if doc is None:
            raise _not_found_path()
        return _json(doc)

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        plural, name, sub = (
            rest[0],
            rest[1] if len(rest) > 1 else "",
            rest[2] if len(rest) > 2 else "",
        )
        if len(rest) > 3 and sub != "proxy":
            raise _not_found_path()
        rt = self.kube.registry.lookup(group, version, plural)
        if rt is None:
            raise _not_found_path()
        if namespace and not rt.namespaced:
            raise _not_found_path()
        all_namespaces = rt.namespaced and not namespace
        if all_namespaces and name:
            raise _not_found_path()
        if sub:
            allowed = set()
            if rt.kind == "Pod":
                allowed = {"binding", "proxy", *subresources.STREAMING} & rt.subresources
            if rt.kind == "Service":
                allowed = {"proxy"} & rt.subresources
            if rt.has_status(version):
                allowed.add("status")
            if "finalize" in rt.subresources:
                allowed.add("finalize")
            if sub not in allowed:
                raise _not_found_path()
        return Target(rt, version, namespace, name, sub, all_namespaces)

    # verbs -----------------------------------------------------------------------------------
    async def _body(self, request: web.Request) -> bytes:
        limit = self.kube.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise errors.too_large("the request body is too large")
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge as e:
            raise errors.too_large("the request body is too large") from e

    async def _json_body(self, request: web.Request, target: Target) -> Any:
        content_type = request.content_type or "application/json"
        accepted = ["application/json", "application/yaml"]
        if not target.rt.custom:
            accepted.append(protobuf.MEDIA_TYPE)
        if content_type not in (*accepted, "*/*", "application/octet-stream"):
            raise errors.unsupported_media_type(content_type, accepted)
        raw = await self._body(request)
        kind = target.rt.kind
        if content_type == protobuf.MEDIA_TYPE:
            try:
                value: Any = protobuf.decode(raw)
            except protobuf.ProtobufError as e:
                raise errors.bad_request(
                    f"Object '{kind}' cannot be decoded from protobuf: {e}"
                ) from e
        else:
            value = self._decode_text(raw, content_type == "application/yaml", kind)
        self._bounded(value, f"Object '{kind}' cannot be decoded")
        return value

    def _decode_text(self, raw: bytes, yaml: bool, kind: str) -> Any:
        """A JSON or YAML body as a JSON value (400, or 413 when it expands too far)."""
        limit = self.kube.settings.max_body_bytes
        try:
            if yaml:
                return decoding.load_yaml(raw, max_bytes=limit)
            return decoding.load_json(raw, max_bytes=limit)
        except decoding.DecodeError as e:
            if e.too_large:
                raise errors.too_large(str(e)) from e
            raise errors.bad_request(f"Object '{kind}' cannot be decoded: {e}") from e

    def _bounded(self, value: Any, what: str) -> None:
        """The size, depth and number bounds every decoded body meets, whatever its format."""
        try:
            decoding.check_bounds(value, max_bytes=self.kube.settings.max_body_bytes)
        except decoding.DecodeError as e:
            if e.too_large:
                raise errors.too_large(str(e)) from e
            raise errors.bad_request(f"{what}: {e}") from e

    async def _serve(self, request: web.Request, target: Target, watch: bool) -> web.StreamResponse:
        method = request.method
        pipeline = self.kube.pipeline
        rt, version = target.rt, target.version
        if target.subresource == "proxy":
            return await httpproxy.serve(self.kube, request, rt.kind, target.namespace, target.name)
        if target.subresource in subresources.STREAMING:
            pod = pipeline.get(rt, version, target.namespace, target.name)
            return await subresources.serve(self.kube, request, pod, target.subresource)
        if target.subresource == "binding":
            if method != "POST":
                raise errors.method_not_allowed(rt.plural, rt.group, method)
            body = await self._json_body(request, target)
            result = await pipeline.bind(target.namespace, target.name, body, _options(request))
            return _json(result.body, result.code, result.warnings)
        if target.subresource == "finalize":
            if method != "PUT":
                raise errors.method_not_allowed(rt.plural, rt.group, method)
            body = await self._json_body(request, target)
            return await self._finalize(target, body)
        if not target.name:
            if method == "GET":
                if watch:
                    return await self._watch(request, target)
                return self._list(request, target)
            if method == "POST" and not target.all_namespaces:
                body = await self._json_body(request, target)
                result = await pipeline.create(
                    rt, version, target.namespace, body, _options(request)
                )
                return _json(result.body, result.code, result.warnings)
            if method == "DELETE":
                return await self._delete_collection(request, target)
            raise errors.method_not_allowed(rt.plural, rt.group, method)
        if method == "GET":
            obj = pipeline.get(rt, version, target.namespace, target.name)
            if target.subresource == "" and tables.wants_table(request.headers.get("Accept", "")):
                table = tables.to_table(
                    rt,
                    version,
                    [obj],
                    resource_version=str(obj["metadata"].get("resourceVersion", "")),
                    include_object=request.query.get("includeObject", "Metadata"),
                )
                return _json(table)
            return _json(obj)
        if method == "PUT":
            body = await self._json_body(request, target)
            result = await pipeline.update(
                rt,
                version,
                target.namespace,
                target.name,
                body,
                _options(request),
                subresource=target.subresource,
            )
            return _json(result.body, result.code, result.warnings)
        if method == "PATCH":
            raw = await self._body(request)
            result = await pipeline.patch(
                rt,
                version,
                target.namespace,
                target.name,
                raw,
                request.content_type,
                _options(request),
                subresource=target.subresource,
            )
            return _json(result.body, result.code, result.warnings)
        if method == "DELETE" and not target.subresource:
            options = await self._delete_options(request)
            result = await pipeline.delete(
                rt,
                version,
                target.namespace,
                target.name,
                options,
                _write_options(request, options),
            )
            return _json(result.body, result.code, result.warnings)
        raise errors.method_not_allowed(rt.plural, rt.group, method)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        raw = await self._body(request)
        options: dict[str, Any] = {}
        if raw.strip():
            try:
                if raw.startswith(protobuf.MAGIC):
                    decoded: Any = protobuf.decode(raw)
                else:
                    decoded = decoding.load_json(raw, max_bytes=self.kube.settings.max_body_bytes)
            except decoding.DecodeError as e:
                if e.too_large:
                    raise errors.too_large(str(e)) from e
                raise errors.bad_request(f"DeleteOptions cannot be decoded: {e}") from e
            except protobuf.ProtobufError as e:
                raise errors.bad_request(f"DeleteOptions cannot be decoded: {e}") from e
            self._bounded(decoded, "DeleteOptions cannot be decoded")
            if not isinstance(decoded, dict):
                raise errors.bad_request("DeleteOptions must be an object")
            options = decoded
        _check_delete_options(options)
        query = request.query
        if "propagationPolicy" in query:
            options["propagationPolicy"] = query["propagationPolicy"]
        if "gracePeriodSeconds" in query:
            options["gracePeriodSeconds"] = parse_int(
                query["gracePeriodSeconds"], "gracePeriodSeconds"
            )
        if "orphanDependents" in query:
            options["orphanDependents"] = parse_bool(query["orphanDependents"], "orphanDependents")
        if "dryRun" in query:
            options["dryRun"] = query.getall("dryRun")
        for value in options.get("dryRun") or []:
            if value != "All":
                raise errors.bad_request(
                    f'dryRun: Unsupported value: "{value}": supported values: "All"'
                )
        return options

    async def _delete_collection(self, request: web.Request, target: Target) -> web.Response:
        options = await self._delete_options(request)
        opts = _write_options(request, options)
        labels, fields = self._selectors(request, target)
        objects, _ = self.kube.store.list(
            target.rt.key, target.namespace if target.rt.namespaced else None
        )
        deleted = []
        warnings: list[str] = []
        for obj in objects:
            if not labels.matches(obj["metadata"].get("labels")) or not fields.matches(obj):
                continue
            with contextlib.suppress(errors.ApiError):
                result = await self.kube.pipeline.delete(
                    target.rt,
                    target.version,
                    str(obj["metadata"].get("namespace", "")),
                    str(obj["metadata"]["name"]),
                    options,
                    opts,
                )
                warnings += result.warnings
                deleted.append(self.kube.pipeline.present(target.rt, target.version, obj))
        body = {
            "kind": target.rt.list_kind_name,
            "apiVersion": target.rt.api_version(target.version),
            "metadata": {"resourceVersion": str(self.kube.store.revision)},
            "items": deleted,
        }
        return _json(body, 200, warnings)

    async def _finalize(self, target: Target, body: Any) -> web.Response:
        """``PUT namespaces/{name}/finalize``: replace ``spec.finalizers`` only."""
        current = self.kube.store.get(NAMESPACE_KEY, "", target.name)
        if current is None:
            raise errors.not_found("namespaces", "", target.name)
        if not isinstance(body, dict):
            raise errors.bad_request("the body must be a Namespace")
        try:
            shapes.check_object("v1", "Namespace", body)
        except shapes.ShapeError as e:
            raise errors.bad_request(
                f'Namespace in version "v1" cannot be handled as a Namespace: {e}'
            ) from e
        finalizers = [f for f in (body.get("spec") or {}).get("finalizers") or [] if f is not None]
        causes = shapes.validate_finalizers(finalizers, "spec.finalizers")
        if causes:
            raise errors.invalid("Namespace", "", target.name, causes)
        new = dict(current)
        new["spec"] = {**(current.get("spec") or {}), "finalizers": finalizers}
        stored = await self.kube.store.update(
            NAMESPACE_KEY, new, expected_rv=str(current["metadata"]["resourceVersion"])
        )
        return _json(self.kube.pipeline.present(target.rt, target.version, stored))

    # list --------------------------------------------------------------------------------------
    def _selectors(
        self, request: web.Request, target: Target
    ) -> tuple[LabelSelector, FieldSelector]:
        try:
            labels = parse_label_selector(request.query.get("labelSelector"))
            fields = parse_field_selector(
                request.query.get("fieldSelector"), target.rt.selectable(target.version)
            )
        except SelectorError as e:
            raise errors.bad_request(str(e)) from e
        return labels, fields

    def _list(self, request: web.Request, target: Target) -> web.Response:
        labels, fields = self._selectors(request, target)
        rt, version = target.rt, target.version
        namespace = None if target.all_namespaces or not rt.namespaced else target.namespace
        objects, revision = self.kube.store.list(rt.key, namespace)
        items = [
            self.kube.pipeline.present(rt, version, o)
            for o in objects
            if labels.matches(o["metadata"].get("labels")) and fields.matches(o)
        ]
        start = 0
        token = request.query.get("continue")
        if token:
            list_rv, after = _continue_token(token)
            if list_rv < self.kube.store.compacted_revision:
                raise errors.expired(
                    "The provided continue parameter is too "
                    "old to display a consistent list result. "
                    "You can start a new list without the continue "
                    "parameter, or use the continue token "
                    "in this response to retrieve the remainder of the results."
                )
            start = next(
                (
                    i
                    for i, o in enumerate(items)
                    if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > after
                ),
                len(items),
            )
        limit = parse_int(request.query.get("limit") or "0", "limit")
        page = items[start : start + limit] if limit > 0 else items[start:]
        next_token = ""
        if limit > 0 and start + limit < len(items):
            last = page[-1]["metadata"]
            payload = {"rv": revision, "start": [last.get("namespace", ""), last["name"]]}
            next_token = base64.b64encode(json.dumps(payload).encode()).decode()
        if tables.wants_table(request.headers.get("Accept", "")):
            table = tables.to_table(
                rt,
                version,
                page,
                resource_version=str(revision),
                include_object=request.query.get("includeObject", "Metadata"),
                continue_token=next_token,
            )
            return _json(table)
        metadata: dict[str, Any] = {"resourceVersion": str(revision)}
        if next_token:
            metadata["continue"] = next_token
            metadata["remainingItemCount"] = len(items) - start - len(page)
        return _json(
            {
                "kind": rt.list_kind_name,
                "apiVersion": rt.api_version(version),
                "metadata": metadata,
                "items": page,
            }
        )

    # watch -------------------------------------------------------------------------------------
    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        labels, fields = self._selectors(request, target)
        rt, version = target.rt, target.version
        query = request.query
        bookmarks = parse_bool(query.get("allowWatchBookmarks"), "allowWatchBookmarks")
        # an integer, as Go parses it (nan, inf or 1e309 are 400), capped at the longest watch
        requested = parse_int(query.get("timeoutSeconds") or "0", "timeoutSeconds")
        longest = self.kube.settings.max_watch_seconds
        timeout = min(float(requested), longest) if requested else longest
        rv = query.get("resourceVersion", "")
        namespace = None if target.all_namespaces or not rt.namespaced else target.namespace
        store = self.kube.store
        since: int | None = None
        if rv not in ("", "0"):
            try:
                since = int(rv)
            except ValueError as e:
                raise errors.bad_request(f'invalid resource version "{rv}"') from e
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache"}
        )
        response.enable_chunked_encoding()
        if warning := rt.deprecation(version):
            _add_warning(response, warning)

        def matches(obj: Mapping[str, Any] | None) -> bool:
            return (
                obj is not None
                and labels.matches((obj.get("metadata") or {}).get("labels"))
                and fields.matches(obj)
            )

        as_table = tables.wants_table(request.headers.get("Accept", ""))
        headers_sent = False

        async def send(kind: str, obj: Mapping[str, Any]) -> None:
            nonlocal headers_sent
            if as_table and kind in ("ADDED", "MODIFIED", "DELETED"):
                # each event's object is a one-row Table; only the first carries the columns
                obj = tables.to_table(
                    rt,
                    version,
                    [obj],
                    resource_version=str((obj.get("metadata") or {}).get("resourceVersion", "")),
                    include_object=query.get("includeObject", "Metadata"),
                )
                if headers_sent:
                    obj["columnDefinitions"] = None
                headers_sent = True
            line = json.dumps({"type": kind, "object": obj}, separators=(",", ":")) + "\n"
            await response.write(line.encode())

        try:
            watcher = store.watch(rt.key, namespace, since)
        except Expired as e:
            await response.prepare(request)
            status = errors.expired(str(e)).status()
            status["reason"] = "Expired"
            await send("ERROR", status)
            await response.write_eof()
            return response
        initial: list[dict[str, Any]] = []
        if since is None:
            objects, _ = store.list(rt.key, namespace)
            initial = [o for o in objects if matches(o)]
        deadline = time.monotonic() + timeout
        next_bookmark = _next_bookmark(time.monotonic(), self.kube.bookmark_interval, deadline)
        await response.prepare(request)
        try:
            for obj in initial:
                await send("ADDED", self.kube.pipeline.present(rt, version, obj))
            while True:
                now = time.monotonic()
                if now >= deadline:
                    break
                if bookmarks and next_bookmark is not None and now >= next_bookmark:
                    watcher.push(store.revision)
                    next_bookmark = _next_bookmark(now, self.kube.bookmark_interval, deadline)
                wait = deadline - now
                if bookmarks and next_bookmark is not None:
                    wait = min(wait, max(0.0, next_bookmark - now))
                try:
                    async with asyncio.timeout(wait):
                        item = await watcher.next()
                except TimeoutError:
                    continue
                if item is None:
                    break
                if isinstance(item, int):
                    if bookmarks:
                        marker = {
                            "kind": rt.kind,
                            "apiVersion": rt.api_version(version),
                            "metadata": {"resourceVersion": str(item)},
                        }
                        await send("BOOKMARK", marker)
                    continue
                kind = _transition(item, matches)
                if kind:
                    await send(kind, self.kube.pipeline.present(rt, version, item.obj))
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            store.stop_watch(watcher)
            raise
        finally:
            store.stop_watch(watcher)
        return response


def _next_bookmark(now: float, interval: float, deadline: float) -> float | None:
    """When the next BOOKMARK is due: every ``interval``, but also about 2 s before the watch's
    deadline so the client learns a fresh resourceVersion before the stream ends (the
    cacher's ``nextBookmarkTime``); ``None`` when that moment has already passed."""
    due = min(now + interval, deadline - 2.0)
    return due if due > now else None


def _transition(event: Event, matches: Callable[[Mapping[str, Any] | None], bool]) -> str:
    """The event a selector-filtered watch sees for a change (ADDED/DELETED on match changes)."""
    if event.type == "ADDED":
        return "ADDED" if matches(event.obj) else ""
    if event.type == "DELETED":
        return "DELETED" if matches(event.old) or matches(event.obj) else ""
    before, after = matches(event.old), matches(event.obj)
    if before and after:
        return "MODIFIED"
    if after:
        return "ADDED"
    if before:
        return "DELETED"
    return ""


def _not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


async def _bootstrap(kube: Kube) -> None:
    """Create the namespaces every cluster has (first start only)."""
    rt = kube.registry.get(NAMESPACE_KEY)
    assert rt is not None
    for name in _DEFAULT_NAMESPACES:
        if kube.store.get(NAMESPACE_KEY, "", name) is None:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            await kube.pipeline.create(rt, "v1", "", body, Options(field_manager="localkube"))


def _sync_registry(kube: Kube) -> Callable[[Event], None]:
    def listener(event: Event) -> None:
        if event.key == CRD_KEY:
            crds, _ = kube.store.list(CRD_KEY)
            served = set(kube.registry.types)
            kube.registry.replace_custom(crds)
            for key in set(kube.registry.types) - served:
                # a newly served resource's watch history starts now (its cache initialises)
                kube.store.start_watch_history(key)
        if event.key == ("", "services") and event.type == "DELETED":
            kube.pipeline.cluster_ips.release(
                str((event.obj.get("spec") or {}).get("clusterIP", ""))
            )

    return listener


def make_app(
    settings: Settings,
    *,
    logs: LogSource | None = None,
    resolver: ServiceResolver | None = None,
    kubelets: Kubelets | None = None,
) -> web.Application:
    """Build the API server application (state in ``app[KUBE]``; start-up loads the store,
    creates the default namespaces and starts the controllers; clean-up stops them)."""
    persistence = (
        SqlitePersistence(settings.state_file) if settings.state_file is not None else None
    )
    store = Store(
        history_size=settings.history_size,
        queue_size=settings.watch_queue_size,
        persistence=persistence,
    )
    registry = Registry.with_builtins()
    webhooks = WebhookClient(resolver)
    pipeline = Pipeline(settings=settings, registry=registry, store=store, webhooks=webhooks)
    kube = Kube(
        settings=settings,
        store=store,
        registry=registry,
        pipeline=pipeline,
        webhooks=webhooks,
        faults=Faults(drop_watches_hook=store.drop_watches),
        logs=logs if logs is not None else MemoryLogs(),
        bookmark_interval=settings.bookmark_interval,
        kubelets=kubelets if kubelets is not None else Kubelets(),
    )
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[KUBE] = kube
    handler = Handler(kube)
    app.router.add_route("*", "/{tail:.*}", handler.dispatch)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await store.load()
        crds, _ = store.list(CRD_KEY)
        registry.replace_custom(crds)
        services, _ = store.list(("", "services"))
        pipeline.cluster_ips.reserve(
            str((s.get("spec") or {}).get("clusterIP", "")) for s in services
        )
        store.listeners.append(_sync_registry(kube))
        await _bootstrap(kube)
        store.start_watch_history()
        task: asyncio.Task[None] | None = None
        if settings.garbage_collection:
            task = asyncio.create_task(Controllers(pipeline).run(), name="localkube-controllers")
            kube.tasks.add(task)
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                kube.tasks.discard(task)
            await webhooks.close()
            await store.close()

    async def end_watches(app: web.Application) -> None:
        store.drop_watches()
        sessions = list(kube.sessions)
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY) for ws in sessions), return_exceptions=True
        )

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(end_watches)
    return app
