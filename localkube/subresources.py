"""The Pod subresources a node answers: ``log``, ``exec``, ``attach``, ``portforward``.

Owns what kube-apiserver checks before it hands such a request to the kubelet (the Pod exists,
is bound to a node, the container is one of its containers, the options are valid, worded as
kube-apiserver words them) and the choice of protocol: ``log`` is a plain (chunked) answer from
the :class:`~localkube.logsource.LogSource`; ``exec`` and ``attach`` are WebSocket sessions in
the ``v5.channel.k8s.io``/``v4.channel.k8s.io`` protocols (:mod:`localkube.channels`);
``portforward`` is SPDY/3.1 tunnelled through a WebSocket (:mod:`localkube.portforward`). The
node is reached through :class:`~localkube.kubelet.Kubelets`. SPDY upgrades
(``Upgrade: SPDY/3.1``, kubectl's fallback) are refused with a Status that says so.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import MultiMapping

from localkube import channels, errors, portforward
from localkube.errors import ApiError, Cause
from localkube.kubelet import Kubelet, PodRef, StreamOptions
from localkube.logsource import LogRequest, LogUnavailable
from localkube.queryparams import parse_bool, parse_int

if TYPE_CHECKING:
    from localkube.server import Kube

__all__ = ["STREAMING", "serve"]

# the Pod subresources served here, with the methods kube-apiserver accepts for each
STREAMING: Mapping[str, tuple[str, ...]] = {
    "log": ("GET",),
    "exec": ("GET", "POST"),
    "attach": ("GET", "POST"),
    "portforward": ("GET", "POST"),
}


def _bool(query: MultiMapping[str], name: str) -> bool:
    return parse_bool(query.get(name), name)


def _int(query: MultiMapping[str], name: str) -> int | None:
    """An integer query parameter (absent or empty: ``None``)."""
    value = query.get(name)
    return None if value is None or value == "" else parse_int(value, name)


def _container(pod: Mapping[str, Any], requested: str, name: str) -> str:
    """The container a request names, or the only one (400 otherwise, kube-apiserver's words)."""
    spec = pod.get("spec") or {}
    main = [str(c.get("name")) for c in spec.get("containers") or []]
    every = [*main, *(str(c.get("name")) for c in spec.get("initContainers") or [])]
    if not requested:
        if len(main) != 1:
            raise errors.bad_request(
                f"a container name must be specified for pod {name}, "
                f"choose one of: [{' '.join(every)}]"
            )
        return main[0]
    if requested not in every:
        raise errors.bad_request(f"container {requested} is not valid for pod {name}")
    return requested


async def serve(
    kube: Kube, request: web.Request, pod: Mapping[str, Any], subresource: str
) -> web.StreamResponse:
    """Answer ``GET|POST .../pods/{name}/{subresource}`` for the stored Pod ``pod``."""
    meta = pod.get("metadata") or {}
    name = str(meta.get("name", ""))
    if request.method not in STREAMING[subresource]:
        raise errors.method_not_allowed(f"pods/{subresource}", "", request.method)
    if subresource == "log":
        return await _logs(kube, request, pod, name)
    if request.headers.get("Upgrade", "").lower().startswith("spdy/"):
        raise errors.bad_request(
            "unable to upgrade connection: SPDY is not served here; "
            "use a client that speaks WebSocket (kubectl 1.30 or later)"
        )
    ref = PodRef(str(meta.get("namespace", "")), name, str(meta.get("uid", "")))
    if subresource == "portforward":
        kubelet = _kubelet(kube, pod, name)
        return await portforward.serve(request, kubelet, ref, kube.sessions)
    options = _stream_options(request.query, pod, name, attach=subresource == "attach")
    kubelet = _kubelet(kube, pod, name)
    return await channels.serve(
        request, kubelet, ref, options, attach=subresource == "attach", sessions=kube.sessions
    )


def _kubelet(kube: Kube, pod: Mapping[str, Any], name: str) -> Kubelet:
    node = str((pod.get("spec") or {}).get("nodeName") or "")
    if not node:
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    kubelet = kube.kubelets.get(node)
    if kubelet is None:
        raise errors.service_unavailable(
            f'error dialing backend: no node agent serves node "{node}" in this process'
        )
    return kubelet


def _stream_options(
    query: MultiMapping[str], pod: Mapping[str, Any], name: str, *, attach: bool
) -> StreamOptions:
    command = tuple(query.getall("command", []))
    options = StreamOptions(
        container=_container(pod, query.get("container", ""), name),
        command=() if attach else command,
        stdin=_bool(query, "stdin"),
        stdout=_bool(query, "stdout"),
        stderr=_bool(query, "stderr"),
        tty=_bool(query, "tty"),
    )
    if not (options.stdin or options.stdout or options.stderr):
        raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
    if not attach and not command:
        raise errors.bad_request("you must specify at least 1 command")
    return options


# logs ---------------------------------------------------------------------------------------------
def _log_request(query: MultiMapping[str], pod: Mapping[str, Any], name: str) -> LogRequest:
    """The log options of a request, checked as ``ValidatePodLogOptions`` checks them."""
    meta = pod.get("metadata") or {}
    tail = _int(query, "tailLines")
    limit = _int(query, "limitBytes")
    since_seconds = _int(query, "sinceSeconds")
    since_time = query.get("sinceTime") or None
    causes: list[Cause] = []
    if tail is not None and tail < 0:
        causes.append(
            Cause(
                "FieldValueInvalid",
                f"Invalid value: {tail}: must be greater than or equal to 0",
                "tailLines",
            )
        )
    if limit is not None and limit < 1:
        causes.append(
            Cause(
                "FieldValueInvalid", f"Invalid value: {limit}: must be greater than 0", "limitBytes"
            )
        )
    if since_seconds is not None and since_time is not None:
        causes.append(
            Cause(
                "FieldValueForbidden",
                "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
                "",
            )
        )
    elif since_seconds is not None and since_seconds < 1:
        causes.append(
            Cause(
                "FieldValueInvalid",
                f"Invalid value: {since_seconds}: must be greater than 0",
                "sinceSeconds",
            )
        )
    if causes:
        raise errors.invalid("PodLogOptions", "", name, causes)
    since: float | None = None
    if since_seconds is not None:
        since = time.time() - since_seconds
    elif since_time is not None:
        since = _rfc3339(since_time)
    return LogRequest(
        namespace=str(meta.get("namespace", "")),
        pod=name,
        container=_container(pod, query.get("container", ""), name),
        follow=_bool(query, "follow"),
        tail_lines=tail,
        limit_bytes=limit,
        previous=_bool(query, "previous"),
        timestamps=_bool(query, "timestamps"),
        since=since,
    )


def _rfc3339(text: str) -> float:
    """``sinceTime`` as Unix seconds (RFC 3339 with a zone, as metav1.Time parses it)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or "T" not in text:
        raise errors.bad_request(
            f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00": cannot parse it as RFC 3339'
        )
    return parsed.timestamp()


async def _logs(
    kube: Kube, request: web.Request, pod: Mapping[str, Any], name: str
) -> web.StreamResponse:
    log_request = _log_request(request.query, pod, name)
    try:
        chunks = kube.logs.read(log_request)
    except LogUnavailable as e:
        raise ApiError(400, "BadRequest", str(e)) from e
    response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    with contextlib.suppress(ConnectionResetError):
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
    return response
