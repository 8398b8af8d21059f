"""Self-managed webhook certificates kept in a Kubernetes Secret: the I/O shell.

Owns the reads and writes of the certificate Secret and of the project's webhook configurations,
and the periodic loop that keeps them and the serving ``ReloadingContext`` current. Every decision
(what to issue, when to rotate, which caBundle to set) is made by the pure ``certs.plan``; this
module only observes, calls it and writes the result.

Concurrency: every webhook replica runs the same loop against one Secret, which is the source of
truth. Writes are optimistic: create → 409 AlreadyExists → read the winner's Secret and use it;
replace with ``resourceVersion`` → 409 Conflict → re-read and decide again. Webhook
configurations are patched with a JSON patch whose first op tests ``metadata.resourceVersion``
(list items are addressed by index), retried on 409/422. A no-op never writes.

All Kubernetes calls go through one kubernetes-asyncio ``ApiClient`` passed in, each bounded by a
timeout. Key generation runs in a thread. Logs carry names and serials, never key material.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from certs._aio import cancel_and_wait
from certs.errors import CertError, StoreError
from certs.issue import ServingNames
from certs.plan import (
    KEY_CA_CRT,
    KEY_CA_KEY,
    KEY_CA_PREVIOUS,
    KEY_TLS_CRT,
    KEY_TLS_KEY,
    SECRET_TYPE,
    CertPolicy,
    SecretCerts,
    ca_bundle_patch,
    parse_secret_data,
    plan_secret,
    secret_data,
)
from certs.reload import ReloadingContext

__all__ = [
    "CertStore",
    "SecretRef",
    "WebhookConfigs",
]

log = logging.getLogger(__name__)

_GROUP = "admissionregistration.k8s.io"
_VERSION = "v1"
_MUTATING = "mutatingwebhookconfigurations"
_VALIDATING = "validatingwebhookconfigurations"
_OUR_KEYS = (KEY_TLS_CRT, KEY_TLS_KEY, KEY_CA_CRT, KEY_CA_KEY, KEY_CA_PREVIOUS)
_MANAGED_BY = {"app.kubernetes.io/managed-by": "raysvc"}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class SecretRef:
    """Where the certificate Secret lives."""

    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        """``NAMESPACE/NAME`` → ``SecretRef``; raises ``ValueError`` otherwise."""
        namespace, sep, name = text.partition("/")
        if not sep or not namespace or not name or "/" in name:
            raise ValueError(f"expected NAMESPACE/NAME, got {text!r}")
        return cls(namespace=namespace, name=name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class WebhookConfigs:
    """Names of the webhook configurations whose ``clientConfig.caBundle`` we own."""

    mutating: tuple[str, ...] = ()
    validating: tuple[str, ...] = ()


class CertStore:
    """Keeps the certificate Secret and the webhook caBundles current, and serves from them.

    Typical use in the webhook server::

        store = CertStore(api, secret=SecretRef("raysvc-system", "raysvc-webhook-tls"),
                          names=ServingNames("raysvc-webhook", "raysvc-system"),
                          webhook_configs=WebhookConfigs(mutating=("raysvc",),
                                                         validating=("raysvc",)))
        holder = await store.open()                 # first sync; raises if the API refuses
        async with store.running(holder):           # owned task: re-sync every interval
            site = web.TCPSite(runner, port=9443, ssl_context=holder.context)
    """

    def __init__(
        self,
        api: client.ApiClient,
        *,
        secret: SecretRef,
        names: ServingNames,
        webhook_configs: WebhookConfigs = WebhookConfigs(),
        policy: CertPolicy | None = None,
        request_timeout: float = 10.0,
        max_attempts: int = 5,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)
        self._secret = secret
        self._names = names
        self._webhook_configs = webhook_configs
        self._policy = policy or CertPolicy()
        self._timeout = request_timeout
        self._max_attempts = max_attempts
        self._clock = clock

    # --- one pass -------------------------------------------------------------------------------

    async def sync(self) -> SecretCerts:
        """One pass: make the Secret hold valid certificates, then inject the CA bundle.

        Returns the certificates now in the Secret. Raises ``StoreError`` if the API refuses,
        keeps conflicting, fails to connect or does not answer within the request timeout.
        """
        certs = await self.ensure_secret()
        await self.inject_ca_bundle(certs.ca_bundle(self._clock()))
        return certs

    async def ensure_secret(self) -> SecretCerts:
        """Get, create or rotate the certificate Secret; returns what it holds afterwards."""
        for _ in range(self._max_attempts):
            existing = await self._read_secret()
            if existing is None:
                plan = await asyncio.to_thread(
                    plan_secret, None, names=self._names, now=self._clock(), policy=self._policy
                )
                if await self._create_secret(plan.certs):
                    log.info(
                        "certificate secret created",
                        extra={"secret": str(self._secret), "changes": list(plan.changes)},
                    )
                    return plan.certs
                continue  # somebody else created it first: use theirs
            current: SecretCerts | None
            try:
                current = parse_secret_data(existing.data)
            except CertError as e:
                log.warning(
                    "certificate secret unusable; issuing new certificates",
                    extra={"secret": str(self._secret), "error": str(e)},
                )
                current = None
            plan = await asyncio.to_thread(
                plan_secret, current, names=self._names, now=self._clock(), policy=self._policy
            )
            if not plan.changed:
                return plan.certs
            if await self._replace_secret(existing, plan.certs):
                log.info(
                    "certificate secret updated",
                    extra={"secret": str(self._secret), "changes": list(plan.changes)},
                )
                return plan.certs
        raise StoreError(
            f"secret {self._secret} kept changing; gave up after {self._max_attempts} attempts"
        )

    async def inject_ca_bundle(self, ca_bundle_pem: bytes) -> int:
        """Set ``caBundle`` of every webhook of the configured configurations.

        Patches only configurations that differ; returns how many were patched. A configuration
        that does not exist (yet) is logged and skipped. Raises ``StoreError``.
        """
        patched = 0
        for plural, names in (
            (_MUTATING, self._webhook_configs.mutating),
            (_VALIDATING, self._webhook_configs.validating),
        ):
            for name in names:
                if await self._inject_one(plural=plural, name=name, ca_bundle_pem=ca_bundle_pem):
                    patched += 1
        return patched

    async def _inject_one(self, *, plural: str, name: str, ca_bundle_pem: bytes) -> bool:
        for _ in range(self._max_attempts):
            try:
                config = await self._call(
                    f"reading {plural} {name}",
                    self._custom.get_cluster_custom_object,
                    _GROUP,
                    _VERSION,
                    plural,
                    name,
                )
            except ApiException as e:
                if e.status == 404:
                    log.warning("webhook configuration not found", extra={"config": name})
                    return False
                raise StoreError(f"reading {plural} {name} failed: HTTP {e.status}") from e
            ops = ca_bundle_patch(_as_dict(config), ca_bundle_pem)
            if not ops:
                return False
            try:
                await self._call(
                    f"patching {plural} {name}",
                    self._custom.patch_cluster_custom_object,
                    _GROUP,
                    _VERSION,
                    plural,
                    name,
                    ops,
                    _content_type="application/json-patch+json",
                )
            except ApiException as e:
                if e.status in (409, 422):  # resourceVersion test failed: re-read, re-decide
                    continue
                if e.status == 404:
                    return False
                raise StoreError(f"patching {plural} {name} failed: HTTP {e.status}") from e
            log.info("webhook caBundle injected", extra={"config": name, "kind": plural})
            return True
        raise StoreError(f"{plural} {name} kept changing; gave up after {self._max_attempts}")

    async def _call(self, what: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        """Await one API call, bounded by the request timeout.

        ``ApiException`` passes through for the caller to interpret its status; a timeout or a
        connection failure becomes ``StoreError``.
        """
        try:
            async with asyncio.timeout(self._timeout):
                return await method(*args, _request_timeout=self._timeout, **kwargs)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise StoreError(f"{what} failed: {type(e).__name__}") from e

    # --- Secret I/O -----------------------------------------------------------------------------

    async def _read_secret(self) -> Any:
        try:
            return await self._call(
                f"reading secret {self._secret}",
                self._core.read_namespaced_secret,
                self._secret.name,
                self._secret.namespace,
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise StoreError(f"reading secret {self._secret} failed: HTTP {e.status}") from e

    async def _create_secret(self, certs: SecretCerts) -> bool:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self._secret.name,
                "namespace": self._secret.namespace,
                "labels": dict(_MANAGED_BY),
            },
            "type": SECRET_TYPE,
            "data": secret_data(certs),
        }
        try:
            await self._call(
                f"creating secret {self._secret}",
                self._core.create_namespaced_secret,
                self._secret.namespace,
                body,
            )
        except ApiException as e:
            if e.status == 409:
                return False
            raise StoreError(f"creating secret {self._secret} failed: HTTP {e.status}") from e
        return True

    async def _replace_secret(self, existing: Any, certs: SecretCerts) -> bool:
        meta = existing.metadata
        data = {k: v for k, v in (existing.data or {}).items() if k not in _OUR_KEYS}
        data.update(secret_data(certs))
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self._secret.name,
                "namespace": self._secret.namespace,
                "resourceVersion": meta.resource_version,
                "labels": dict(meta.labels or {}),
                "annotations": dict(meta.annotations or {}),
            },
            # The type of a Secret is immutable; keep whatever it was created with.
            "type": existing.type or SECRET_TYPE,
            "data": data,
        }
        try:
            await self._call(
                f"updating secret {self._secret}",
                self._core.replace_namespaced_secret,
                self._secret.name,
                self._secret.namespace,
                body,
            )
        except ApiException as e:
            if e.status in (404, 409):  # changed or deleted under us: re-read, re-decide
                return False
            raise StoreError(f"updating secret {self._secret} failed: HTTP {e.status}") from e
        return True

    # --- serving --------------------------------------------------------------------------------

    async def open(self) -> ReloadingContext:
        """First sync, then a :class:`ReloadingContext` serving the Secret's certificate."""
        certs = await self.sync()
        material = await asyncio.to_thread(certs.serving_material, self._clock())
        return await ReloadingContext.create(material)

    async def refresh(self, holder: ReloadingContext) -> bool:
        """One sync, then feed the serving certificate to ``holder``; True if it changed."""
        certs = await self.sync()
        material = await asyncio.to_thread(certs.serving_material, self._clock())
        return await holder.update(material)

    async def run(
        self, holder: ReloadingContext, *, interval: float = 60.0, retry_interval: float = 10.0
    ) -> None:
        """Refresh every ``interval`` seconds (``retry_interval`` after a failure), forever.

        Failures are logged and retried: the server keeps its current certificate meanwhile,
        which stays valid for a third of its lifetime after it became due.
        """
        while True:
            delay = interval
            try:
                await self.refresh(holder)
            except Exception:
                log.exception("certificate sync failed", extra={"secret": str(self._secret)})
                delay = min(interval, retry_interval)
            await asyncio.sleep(delay)

    def running(
        self, holder: ReloadingContext, *, interval: float = 60.0, retry_interval: float = 10.0
    ) -> _Running:
        """An async context manager that owns a task running :meth:`run` (first pass after
        ``interval``: call :meth:`open` or :meth:`refresh` before)."""
        return _Running(self, holder, interval=interval, retry_interval=retry_interval)


class _Running:
    def __init__(
        self, store: CertStore, holder: ReloadingContext, *, interval: float, retry_interval: float
    ) -> None:
        self._store, self._holder = store, holder
        self._interval, self._retry_interval = interval, retry_interval
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        await asyncio.sleep(self._interval)
        await self._store.run(
            self._holder, interval=self._interval, retry_interval=self._retry_interval
        )

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name="cert-store-sync")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)


def _as_dict(obj: object) -> dict[str, object]:
    if not isinstance(obj, dict):
        raise StoreError("the API returned a non-object webhook configuration")
    return obj
