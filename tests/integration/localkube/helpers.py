"""Helpers of the localkube contract suite: polling to a deadline, object bodies, raw HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], *, within: float = 10.0) -> T:
    """Poll ``check`` until it returns a truthy value (or raise its last AssertionError)."""
    deadline = time.monotonic() + within
    while True:
        try:
            result = await check()
            if result:
                return result
            error: AssertionError | None = None
        except AssertionError as e:
            error = e
        if time.monotonic() > deadline:
            if error is not None:
                raise error
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.02)


def rayservice(name: str, **spec: Any) -> dict[str, Any]:
    """A minimal RayService body."""
    body: dict[str, Any] = {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": name},
        "spec": {"serveConfigV2": "applications: []\n", **spec},
    }
    return body


async def raw(
    url: str,
    method: str,
    path: str,
    *,
    body: Any = None,
    data: bytes | None = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, list[str]]:
    """One HTTP request without a Kubernetes client: (status, decoded JSON body, Warning headers)."""
    import io
    import json

    import aiohttp

    encoded = (
        data if data is not None else (json.dumps(body).encode() if body is not None else None)
    )
    # a file-like payload: aiohttp warns that large bytes would block the event loop
    payload = io.BytesIO(encoded) if encoded is not None else None
    send = {"Content-Type": content_type, **(headers or {})}
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, url + path, data=payload, headers=send, timeout=aiohttp.ClientTimeout(total=30)
        ) as response,
    ):
        text = await response.text()
        try:
            decoded: Any = json.loads(text)
        except ValueError:
            decoded = text
        return response.status, decoded, response.headers.getall("Warning", [])


MERGE = "application/merge-patch+json"


async def merge_patch(method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    """Call a kubernetes-asyncio ``patch_*`` method as a JSON merge patch (never as json-patch)."""
    return await method(*args, _content_type=MERGE, **kwargs)


def body_of(error: Exception) -> str:
    """The response body of an ApiException, as text."""
    body = getattr(error, "body", b"")
    return body.decode() if isinstance(body, bytes) else str(body or "")


def manifest(tmp_path: Path, *docs: dict[str, Any]) -> str:
    """Write ``docs`` as one multi-document YAML file in ``tmp_path``; returns its path."""
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return str(path)
