"""The node's client side of the Kubernetes API: JSON requests and list+watch caches.

Owns :class:`Api` (raw JSON over a kubernetes-asyncio ``ApiClient``: the node works on the wire
form of objects, not generated models) and :class:`Informer` (list, then watch from the list's
resourceVersion, re-list on 410 or a broken stream, a local cache keyed by namespace and name,
and a callback per change). Every request has a timeout; watches end after ``timeoutSeconds`` and
are resumed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp
from kubernetes_asyncio import client

__all__ = ["Api", "ApiFailure", "Informer", "Key", "Obj"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]


class ApiFailure(RuntimeError):
    """An API request answered with an error ``Status``, or not answered at all: ``code`` 0
    for a transport error or a timeout (the connection failed, broke or took too long)."""

    def __init__(self, code: int, body: Any) -> None:
        message = body.get("message", "") if isinstance(body, dict) else str(body)[:200]
        super().__init__(f"{code}: {message}")
        self.code = code
        self.body = body


class Api:
    """JSON requests to the API server through one ``ApiClient``."""

    def __init__(self, api: client.ApiClient, *, timeout: float = 30.0) -> None:
        self.client = api
        self.timeout = timeout

    async def _call(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = "application/json",
        seconds: float | None = None,
    ) -> aiohttp.ClientResponse:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        response: aiohttp.ClientResponse = await self.client.call_api(
            path,
            method,
            query_params=list(query),
            header_params=headers,
            body=body,
            _preload_content=False,
            _return_http_data_only=True,
            _request_timeout=seconds if seconds is not None else self.timeout,
            auth_settings=["BearerToken"],
        )
        return response

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """The decoded answer, or :class:`ApiFailure` for any status >= 400 and (code 0) for
        a transport error or a timeout."""
        try:
            response = await self._call(method, path, query, body, content_type)
            async with response:
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as e:
            raise ApiFailure(0, f"{method} {path}: {type(e).__name__}: {e}") from e
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode(errors="replace")
        if response.status >= 400:
            raise ApiFailure(response.status, decoded)
        return decoded

    async def stream(
        self, path: str, query: Sequence[tuple[str, str]], seconds: float
    ) -> aiohttp.ClientResponse:
        """A streaming GET (watch) ending after ``seconds``; the caller reads and closes it."""
        return await self._call("GET", path, query, seconds=seconds)


OnChange = Callable[[str, Obj | None, Obj | None], Awaitable[None] | None]


class Informer:
    """A list+watch cache of one collection (``/api/v1/pods``, ``/apis/g/v/x``...).

    ``on_change(type, old, new)`` runs for every ADDED/MODIFIED/DELETED (after a re-list, for the
    differences); ``synced`` is set after the first list.
    """

    def __init__(
        self,
        api: Api,
        path: str,
        on_change: OnChange | None = None,
        *,
        watch_seconds: int = 240,
        name: str = "",
    ) -> None:
        self.api = api
        self.path = path
        self.on_change = on_change
        self.watch_seconds = watch_seconds
        self.name = name or path
        self.cache: dict[Key, Obj] = {}
        self.synced = asyncio.Event()
        self.revision = ""

    @staticmethod
    def key(obj: Mapping[str, Any]) -> Key:
        meta = obj.get("metadata") or {}
        return (str(meta.get("namespace", "")), str(meta.get("name", "")))

    async def _emit(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if self.on_change is not None:
            result = self.on_change(kind, old, new)
            if result is not None:
                await result

    async def _list(self) -> None:
        body = await self.api.request("GET", self.path)
        fresh = {self.key(o): o for o in body.get("items") or []}
        old = self.cache
        self.cache = fresh
        self.revision = str((body.get("metadata") or {}).get("resourceVersion", ""))
        for key, obj in fresh.items():
            if key not in old:
                await self._emit("ADDED", None, obj)
            elif old[key] != obj:
                await self._emit("MODIFIED", old[key], obj)
        for key, obj in old.items():
            if key not in fresh:
                await self._emit("DELETED", obj, None)
        self.synced.set()

    async def _watch(self) -> bool:
        """Follow changes until the stream ends; False when a re-list is needed."""
        query = [
            ("watch", "true"),
            ("resourceVersion", self.revision),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(self.watch_seconds)),
        ]
        response = await self.api.stream(self.path, query, seconds=self.watch_seconds + 30)
        async with response:
            if response.status != 200:
                return False
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    return False
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if rv:
                    self.revision = str(rv)
                if kind == "BOOKMARK":
                    continue
                key = self.key(obj)
                old = self.cache.get(key)
                if kind == "DELETED":
                    self.cache.pop(key, None)
                    await self._emit("DELETED", old, None)
                else:
                    self.cache[key] = obj
                    await self._emit("ADDED" if old is None else "MODIFIED", old, obj)
        return True

    async def run(self) -> None:
        """List and watch until cancelled, re-listing after 410 and retrying after errors."""
        backoff = 0.2
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                need_list = not await self._watch()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, TimeoutError, ApiFailure, ValueError) as e:
                log.warning("watch failed", extra={"informer": self.name, "error": str(e)})
                need_list = True
                await asyncio.sleep(backoff * (1 + random.random()))
                backoff = min(backoff * 2, 5.0)
