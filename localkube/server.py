"""The HTTP face of localkube: an aiohttp application speaking the Kubernetes REST API.

Owns URL parsing (``/api/v1/...``, ``/apis/{group}/{version}/...``, namespaced and cluster
paths, subresources), query parameters (parsed like Go's ``strconv.ParseBool``), content
negotiation (JSON, Table), ``Warning`` headers, Status bodies for errors, list paging and
selectors, watch streams (one JSON event per line, bookmarks, ``timeoutSeconds``, 410 as an
ERROR event), Pod logs, discovery and OpenAPI routes, the body size limit and fault injection.
Writes are delegated to :class:`localkube.pipeline.Pipeline`; objects live in
:class:`localkube.storage.Store`. Build it with :func:`make_app`; :class:`localkube.kube.LocalKube`
runs it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import yaml
from aiohttp import web

from localkube import discovery, errors, tables
from localkube.controllers import Controllers
from localkube.errors import ApiError
from localkube.faults import Faults, RequestInfo
from localkube.logsource import LogRequest, LogSource, MemoryLogs
from localkube.persistence import SqlitePersistence
from localkube.pipeline import Options, Pipeline
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

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
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


def _parse_bool(value: str | None, name: str) -> bool:
    if value is None or value == "":
        return False
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise errors.bad_request(
        f'strconv.ParseBool: parsing "{value}": invalid syntax for parameter {name}'
    )


def _json(body: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    response = web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":")).encode(),
        content_type="application/json",
    )
    for warning in _dedupe(warnings or []):
        escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.add("Warning", f'299 - "{escaped}"')
    return response


def _dedupe(items: list[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


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
        force=_parse_bool(query.get("force"), "force"),
        user_agent=request.headers.get("User-Agent", ""),
    )


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
        try:
            response = await self._dispatch(request)
        except ApiError as e:
            response = _error(e)
        except web.HTTPRequestEntityTooLarge:
            response = _error(errors.too_large("the request body is too large"))
        log.debug(
            "request served",
            extra={"method": request.method, "path": request.path_qs, "code": response.status},
        )
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
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
        watch = request.method == "GET" and _parse_bool(request.query.get("watch"), "watch")
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
        if len(rest) > 3:
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
            allowed = {"log", "binding"} & rt.subresources if rt.kind == "Pod" else set()
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
        if content_type not in (
            "application/json",
            "application/yaml",
            "*/*",
            "application/octet-stream",
        ):
            raise errors.unsupported_media_type(
                content_type, ["application/json", "application/yaml"]
            )
        raw = await self._body(request)
        try:
            if content_type == "application/yaml":
                return yaml.safe_load(raw.decode())
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as e:
            kind = target.rt.kind
            raise errors.bad_request(f"Object '{kind}' cannot be decoded: {e}") from e

    async def _serve(self, request: web.Request, target: Target, watch: bool) -> web.StreamResponse:
        method = request.method
        pipeline = self.kube.pipeline
        rt, version = target.rt, target.version
        if target.subresource == "log":
            if method != "GET":
                raise errors.method_not_allowed(rt.plural, rt.group, method)
            return await self._logs(request, target)
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
                rt, version, target.namespace, target.name, options, _options(request)
            )
            return _json(result.body, result.code, result.warnings)
        raise errors.method_not_allowed(rt.plural, rt.group, method)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        raw = await self._body(request)
        options: dict[str, Any] = {}
        if raw.strip():
            try:
                decoded = json.loads(raw)
            except ValueError as e:
                raise errors.bad_request(f"DeleteOptions cannot be decoded: {e}") from e
            if not isinstance(decoded, dict):
                raise errors.bad_request("DeleteOptions must be an object")
            options = decoded
        query = request.query
        if "propagationPolicy" in query:
            options["propagationPolicy"] = query["propagationPolicy"]
        if "gracePeriodSeconds" in query:
            options["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
        if "orphanDependents" in query:
            options["orphanDependents"] = _parse_bool(query["orphanDependents"], "orphanDependents")
        for value in options.get("dryRun") or []:
            if value != "All":
                raise errors.bad_request(
                    f'dryRun: Unsupported value: "{value}": supported values: "All"'
                )
        return options

    async def _delete_collection(self, request: web.Request, target: Target) -> web.Response:
        options = await self._delete_options(request)
        opts = _options(request)
        if options.get("dryRun"):
            opts = Options(
                dry_run=True, field_manager=opts.field_manager, user_agent=opts.user_agent
            )
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
        new = dict(current)
        new["spec"] = {
            **(current.get("spec") or {}),
            "finalizers": list((body.get("spec") or {}).get("finalizers") or []),
        }
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
            try:
                decoded = json.loads(base64.b64decode(token))
                list_rv, after = int(decoded["rv"]), tuple(decoded["start"])
            except (ValueError, KeyError, TypeError) as e:
                raise errors.bad_request(f"continue key is not valid: {e}") from e
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
        limit = int(request.query.get("limit") or 0)
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
        bookmarks = _parse_bool(query.get("allowWatchBookmarks"), "allowWatchBookmarks")
        timeout = float(query.get("timeoutSeconds") or 0) or self.kube.settings.max_watch_seconds
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

        def matches(obj: Mapping[str, Any] | None) -> bool:
            return (
                obj is not None
                and labels.matches((obj.get("metadata") or {}).get("labels"))
                and fields.matches(obj)
            )

        async def send(kind: str, obj: Mapping[str, Any]) -> None:
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
        interval = self.kube.bookmark_interval
        next_bookmark = time.monotonic() + interval
        await response.prepare(request)
        try:
            for obj in initial:
                await send("ADDED", self.kube.pipeline.present(rt, version, obj))
            while True:
                now = time.monotonic()
                if now >= deadline:
                    break
                if bookmarks and now >= next_bookmark:
                    watcher.push(store.revision)
                    next_bookmark = now + self.kube.bookmark_interval
                wait = deadline - now
                if bookmarks:
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

    # logs --------------------------------------------------------------------------------------
    async def _logs(self, request: web.Request, target: Target) -> web.StreamResponse:
        pod = self.kube.pipeline.get(target.rt, target.version, target.namespace, target.name)
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        containers += [c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []]
        container = request.query.get("container", "")
        if not container:
            if len((pod.get("spec") or {}).get("containers") or []) != 1:
                raise errors.bad_request(
                    "a container name must be specified for pod "
                    f"{target.name}, choose one of: {containers}"
                )
            container = str(containers[0])
        if container not in containers:
            raise errors.bad_request(f"container {container} is not valid for pod {target.name}")
        query = request.query
        log_request = LogRequest(
            namespace=target.namespace,
            pod=target.name,
            container=container,
            follow=_parse_bool(query.get("follow"), "follow"),
            tail_lines=int(query["tailLines"]) if query.get("tailLines") else None,
            limit_bytes=int(query["limitBytes"]) if query.get("limitBytes") else None,
            previous=_parse_bool(query.get("previous"), "previous"),
        )
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            async for chunk in self.kube.logs.read(log_request):
                await response.write(chunk)
            await response.write_eof()
        return response


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
            kube.registry.replace_custom(crds)
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

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(end_watches)
    return app
