"""``pods/proxy`` and ``services/proxy``: plain HTTP to a Pod's port through its node.

``/api/v1/namespaces/{ns}/pods/{name}[:{port}]/proxy/{path}`` and
``.../services/{name}[:{port}]/proxy/{path}`` (what ``kubectl proxy`` and ``kubectl get --raw``
reach): a Service's port is found by name or number and one of its ready endpoints is picked,
as kube-apiserver does; a Pod's port by number or container port name (its first declared port
when none is given). The request goes to that port through the node
(:meth:`localkube.kubelet.Kubelet.port_forward`, i.e. ``localhost`` inside the Pod) as HTTP/1.0
with ``Connection: close``, so the answer's body is whatever comes until the end of the
connection and is streamed back as it arrives. Hop-by-hop headers and the client's
``Authorization`` are not passed on. Not served: ``https:`` targets, WebSocket upgrades, the
rewriting of links in HTML answers kube-apiserver does.

Bounds: the request body is the server's body limit; the answer's head must fit in
:data:`MAX_HEAD` and arrive within :data:`HEAD_SECONDS`; connecting takes at most
:data:`CONNECT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from localkube import errors
from localkube.errors import ApiError
from localkube.kubelet import KubeletError, PodRef

if TYPE_CHECKING:
    from localkube.server import Kube

__all__ = ["serve"]

MAX_HEAD = 64 * 1024
HEAD_SECONDS = 60.0
CONNECT_SECONDS = 10.0
CHUNK = 64 * 1024
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "authorization",
    "content-length",
}
_PATH = re.compile(r"/(?:pods|services)/[^/]+/proxy(?P<rest>/.*)?$")


def _split(name: str) -> tuple[str, str, str]:
    """``[scheme:]name[:port]`` as (scheme, name, port)."""
    parts = name.split(":")
    if len(parts) == 1:
        return "", parts[0], ""
    if len(parts) == 2:
        return "", parts[0], parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    raise errors.bad_request(f'invalid service request "{name}"')


def _pod_port(pod: Mapping[str, Any], port: str) -> int:
    containers = (pod.get("spec") or {}).get("containers") or []
    declared = [p for c in containers for p in c.get("ports") or []]
    if not port:
        return int(declared[0].get("containerPort", 80)) if declared else 80
    if port.isdigit():
        return int(port)
    for entry in declared:
        if entry.get("name") == port:
            return int(entry.get("containerPort", 0))
    raise errors.service_unavailable(f'no port named "{port}" in pod {pod_name(pod)}')


def pod_name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name", ""))


async def serve(
    kube: Kube, request: web.Request, kind: str, namespace: str, name: str
) -> web.StreamResponse:
    """Answer a ``pods/proxy`` or ``services/proxy`` request (``kind``: "Pod" or "Service")."""
    scheme, name, port = _split(name)
    if scheme not in ("", "http"):
        raise errors.bad_request(f"{scheme} proxying is not served here: only http")
    if kind == "Pod":
        pod = _get(kube, ("", "pods"), namespace, name, "pods")
        target = _pod_port(pod, port)
    else:
        pod, target = _endpoint(kube, namespace, name, port)
    node = str((pod.get("spec") or {}).get("nodeName") or "")
    kubelet = kube.kubelets.get(node) if node else None
    if kubelet is None:
        raise errors.service_unavailable(
            f'error trying to reach service: no node agent serves node "{node}"'
        )
    meta = pod.get("metadata") or {}
    ref = PodRef(namespace, pod_name(pod), str(meta.get("uid", "")))
    body = await request.read() if request.can_read_body else b""
    try:
        async with asyncio.timeout(CONNECT_SECONDS):
            reader, writer = await kubelet.port_forward(ref, target)
    except (KubeletError, OSError, TimeoutError) as e:
        raise errors.service_unavailable(f"error trying to reach service: {e}") from e
    try:
        return await _exchange(request, reader, writer, target, body)
    finally:
        writer.close()


def _get(
    kube: Kube, key: tuple[str, str], namespace: str, name: str, plural: str
) -> Mapping[str, Any]:
    obj = kube.store.get(key, namespace, name)
    if obj is None:
        raise errors.not_found(plural, "", name)
    return obj


def _endpoint(kube: Kube, namespace: str, name: str, port: str) -> tuple[Mapping[str, Any], int]:
    """A ready Pod behind a Service port, and the port number on that Pod."""
    service = _get(kube, ("", "services"), namespace, name, "services")
    ports = (service.get("spec") or {}).get("ports") or []
    chosen = None
    if not port and len(ports) == 1:
        chosen = ports[0]
    for entry in ports:
        if port and (port == str(entry.get("name", "")) or port == str(entry.get("port", ""))):
            chosen = entry
    unavailable = errors.service_unavailable(f'no endpoints available for service "{name}"')
    if chosen is None:
        raise unavailable
    endpoints = kube.store.get(("", "endpoints"), namespace, name) or {}
    candidates: list[tuple[str, int]] = []
    for subset in endpoints.get("subsets") or []:
        number = next(
            (
                int(p.get("port", 0))
                for p in subset.get("ports") or []
                if str(p.get("name", "")) == str(chosen.get("name", ""))
            ),
            None,
        )
        for address in subset.get("addresses") or []:
            ref = address.get("targetRef") or {}
            if number and ref.get("kind") == "Pod" and ref.get("name"):
                candidates.append((str(ref["name"]), number))
    if not candidates:
        raise unavailable
    pod_name_, number = random.choice(candidates)
    pod = kube.store.get(("", "pods"), namespace, pod_name_)
    if pod is None:
        raise unavailable
    return pod, number


async def _exchange(
    request: web.Request,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    port: int,
    body: bytes,
) -> web.StreamResponse:
    match = _PATH.search(request.raw_path.split("?", 1)[0])
    path = (match.group("rest") if match else None) or "/"
    if request.query_string:
        path += "?" + request.query_string
    # the bytes the client sent (aiohttp decoded them as UTF-8 with surrogateescape)
    request_line = f"{request.method} {path} HTTP/1.0".encode("utf-8", "surrogateescape")
    head = [request_line, f"Host: 127.0.0.1:{port}".encode(), b"Connection: close"]
    head += [
        k + b": " + v
        for k, v in request.raw_headers
        if k.decode("latin-1").lower() not in _HOP_BY_HOP
    ]
    if body or request.method in ("POST", "PUT", "PATCH"):
        head.append(f"Content-Length: {len(body)}".encode())
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
    try:
        async with asyncio.timeout(HEAD_SECONDS):
            await writer.drain()
            raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as e:
        raise ApiError(502, "BadGateway", "error reading from the backend's answer") from e
    except TimeoutError as e:
        raise errors.timeout("the backend did not answer in time") from e
    if len(raw) > MAX_HEAD:
        raise ApiError(502, "BadGateway", "the backend's answer head is too large")
    lines = raw.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise ApiError(502, "BadGateway", "the backend did not answer HTTP")
    response = web.StreamResponse(
        status=int(status_line[1]), reason=status_line[2] if len(status_line) > 2 else None
    )
    length = None
    for line in lines[1:]:
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        if key.strip().lower() == "content-length":
            length = value.strip()
        elif key.strip().lower() not in _HOP_BY_HOP:
            response.headers.add(key.strip(), value.strip())
    if length is not None and length.isdigit():
        response.content_length = int(length)
    else:
        response.enable_chunked_encoding()
    await response.prepare(request)
    if request.method != "HEAD":
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(CHUNK):
                await response.write(chunk)
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response
