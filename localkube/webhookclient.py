"""Calls admission webhooks over HTTPS, as kube-apiserver's webhook client does.

Owns the transport: ``clientConfig.url`` (HTTPS only) or ``clientConfig.service`` mapped to an
address by a resolver hook (the certificate is still checked against
``<service>.<namespace>.svc``), trust from ``caBundle``, the per-webhook ``timeoutSeconds``
(sent as ``?timeout=Ns`` like kube-apiserver), and error messages in Go's wording
(``Post "<url>": context deadline exceeded``). One pooled client session, owned by the server.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

__all__ = ["CallError", "ServiceRef", "ServiceResolver", "WebhookClient"]

_MAX_RESPONSE = 8 * 1024 * 1024  # bytes of an AdmissionReview answer we are willing to read


@dataclass(frozen=True)
class ServiceRef:
    """``clientConfig.service`` of a webhook."""

    namespace: str
    name: str
    port: int
    path: str


# Maps a service reference to "host:port" (or None when it cannot be resolved).
ServiceResolver = Callable[[ServiceRef], Awaitable[str | None]]


class CallError(Exception):
    """The webhook could not be called or answered nonsense (a ``failurePolicy`` matter)."""


class WebhookClient:
    """POSTs AdmissionReviews; see the module docstring."""

    def __init__(self, resolver: ServiceResolver | None = None) -> None:
        self.resolver = resolver
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ssl(self, ca_bundle: str) -> ssl.SSLContext:
        context = self._contexts.get(ca_bundle)
        if context is None:
            context = ssl.create_default_context()
            if ca_bundle:
                try:
                    pem = base64.b64decode(ca_bundle).decode()
                    context = ssl.create_default_context(cadata=pem)
                except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError) as e:
                    raise CallError(f"failed to call webhook: invalid caBundle: {e}") from e
            self._contexts[ca_bundle] = context
        return context

    async def _target(
        self, client_config: Mapping[str, Any], timeout_seconds: int
    ) -> tuple[str, str, str | None]:
        """(URL to connect to, URL to show in errors, TLS server name)."""
        suffix = f"timeout={timeout_seconds}s"
        if client_config.get("url"):
            url = str(client_config["url"])
            if urlsplit(url).scheme != "https":
                raise CallError(
                    f'failed to call webhook: Post "{url}": "https" is the only allowed URL scheme'
                )
            joined = f"{url}{'&' if '?' in url else '?'}{suffix}"
            return joined, joined, None
        service = client_config.get("service") or {}
        ref = ServiceRef(
            namespace=str(service.get("namespace", "")),
            name=str(service.get("name", "")),
            port=int(service.get("port") or 443),
            path=str(service.get("path") or "/"),
        )
        host = f"{ref.name}.{ref.namespace}.svc"
        shown = f"https://{host}:{ref.port}{ref.path}?{suffix}"
        address = await self.resolver(ref) if self.resolver is not None else None
        if address is None:
            raise CallError(
                f'failed to call webhook: Post "{shown}": dial tcp: lookup {host}: no such host'
            )
        return f"https://{address}{ref.path}?{suffix}", shown, host

    async def call(
        self, client_config: Mapping[str, Any], review: Mapping[str, Any], timeout_seconds: int
    ) -> Any:
        """POST ``review``; returns the decoded JSON answer or raises :class:`CallError`."""
        url, shown, server_name = await self._target(client_config, timeout_seconds)
        context = self._ssl(str(client_config.get("caBundle") or ""))
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(timeout_seconds):
                async with self._session.post(
                    url,
                    data=json.dumps(review),
                    headers={"Content-Type": "application/json", "Accept": "application/json"},
                    ssl=context,
                    server_hostname=server_name,
                ) as response:
                    status = response.status
                    raw = b""
                    async for chunk in response.content.iter_chunked(65536):
                        raw += chunk
                        if len(raw) > _MAX_RESPONSE:
                            break
            if len(raw) > _MAX_RESPONSE:
                raise CallError("failed to call webhook: the response is larger than the limit")
            text = raw.decode(errors="replace")
        except TimeoutError as e:
            raise CallError(
                f'failed to call webhook: Post "{shown}": context deadline exceeded'
            ) from e
        except aiohttp.ClientConnectorCertificateError as e:
            cause = getattr(e.certificate_error, "verify_message", "") or str(e.certificate_error)
            raise CallError(
                f'failed to call webhook: Post "{shown}": tls: failed to verify certificate: '
                f"x509: {cause}"
            ) from e
        except aiohttp.ClientConnectorError as e:
            where = f"{e.host}:{e.port}"
            raise CallError(
                f'failed to call webhook: Post "{shown}": dial '
                f"tcp {where}: connect: connection refused"
            ) from e
        except (aiohttp.ClientError, ssl.SSLError, OSError) as e:
            raise CallError(f'failed to call webhook: Post "{shown}": {e}') from e
        if status != 200:
            raise CallError(
                f"failed to call webhook: the server responded with the status code {status} "
                "but did not return more information"
            )
        try:
            return json.loads(text)
        except ValueError as e:
            raise CallError(f"received invalid webhook response: {e}") from e
