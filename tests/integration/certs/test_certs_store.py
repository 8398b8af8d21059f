"""certs.store against localkube (the project's embedded API server) through kubernetes-asyncio:
get-or-create and rotation of the Secret with optimistic concurrency, caBundle injection, and an
admission webhook served with the stored certificate that localkube calls over real TLS while the
CA rotates."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from certs.errors import StoreError
from certs.issue import ServingNames, chains_to, load_pem_certs, renewal_time
from certs.plan import CertPolicy, SecretCerts, parse_secret_data
from certs.reload import ReloadingContext
from certs.store import CertStore, SecretRef, WebhookConfigs
from localkube import LocalKube, ServiceRef

pytestmark = pytest.mark.asyncio(loop_scope="session")

SERVICE = "raysvc-webhook"
DAY = dt.timedelta(days=1)
# Certificates are backdated by more than the test clock ever jumps (CA renewal comes at
# 2/3 * (60 + 35) - 35 = 28.3 days), so every certificate is also valid in real time and
# localkube's TLS client accepts it, while rotation follows the test clock.
POLICY = CertPolicy(
    ca_lifetime=60 * DAY,
    serving_lifetime=20 * DAY,
    backdate=35 * DAY,
    ca_overlap=dt.timedelta(hours=1),
)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@dataclasses.dataclass
class Cluster:
    """One test's corner of the shared localkube: its namespace, Secret and configurations."""

    kube: LocalKube
    api: client.ApiClient
    clock: Clock
    namespace: str

    @property
    def secret_ref(self) -> SecretRef:
        return SecretRef(self.namespace, "raysvc-webhook-tls")

    @property
    def configs(self) -> WebhookConfigs:
        return WebhookConfigs(
            mutating=(f"{self.namespace}-mutating",), validating=(f"{self.namespace}-validating",)
        )

    @property
    def names(self) -> ServingNames:
        return ServingNames(SERVICE, self.namespace)

    @property
    def admitted_namespace(self) -> str:
        """Where the test webhooks intercept ConfigMap CREATEs (nowhere else)."""
        return f"{self.namespace}-admitted"

    def store(self, **kwargs: Any) -> CertStore:
        options: dict[str, Any] = {
            "secret": self.secret_ref,
            "names": self.names,
            "webhook_configs": self.configs,
            "policy": POLICY,
            "clock": self.clock,
            "request_timeout": 5.0,
        }
        options.update(kwargs)
        return CertStore(self.api, **options)

    async def secret(self) -> Any:
        ref = self.secret_ref
        return await client.CoreV1Api(self.api).read_namespaced_secret(ref.name, ref.namespace)

    async def stored(self) -> SecretCerts:
        return parse_secret_data((await self.secret()).data)

    async def bundles(self) -> list[str | None]:
        admission = client.AdmissionregistrationV1Api(self.api)
        configs: list[Any] = [
            await admission.read_mutating_webhook_configuration(self.configs.mutating[0]),
            await admission.read_validating_webhook_configuration(self.configs.validating[0]),
        ]
        return [w.client_config.ca_bundle for c in configs for w in c.webhooks]

    async def resource_versions(self) -> list[str]:
        admission = client.AdmissionregistrationV1Api(self.api)
        objects: list[Any] = [
            await self.secret(),
            await admission.read_mutating_webhook_configuration(self.configs.mutating[0]),
            await admission.read_validating_webhook_configuration(self.configs.validating[0]),
        ]
        return [o.metadata.resource_version for o in objects]

    async def create_configs(self) -> None:
        admission = client.AdmissionregistrationV1Api(self.api)
        await admission.create_mutating_webhook_configuration(
            _raw(
                {
                    "metadata": {"name": self.configs.mutating[0]},
                    "webhooks": [self.webhook("m1.raysvc.io"), self.webhook("m2.raysvc.io")],
                }
            )
        )
        await self.create_validating_config()

    async def create_validating_config(self) -> None:
        await client.AdmissionregistrationV1Api(self.api).create_validating_webhook_configuration(
            _raw(
                {
                    "metadata": {"name": self.configs.validating[0]},
                    "webhooks": [self.webhook("v1.raysvc.io")],
                }
            )
        )

    def webhook(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "clientConfig": {
                "service": {
                    "name": SERVICE,
                    "namespace": self.namespace,
                    "path": "/admit",
                    "port": 443,
                }
            },
            "rules": [
                {
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE"],
                    "resources": ["configmaps"],
                }
            ],
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": self.admitted_namespace}
            },
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail",
            "timeoutSeconds": 5,
        }

    async def delete_configs(self) -> None:
        admission = client.AdmissionregistrationV1Api(self.api)
        for delete, name in (
            (admission.delete_mutating_webhook_configuration, self.configs.mutating[0]),
            (admission.delete_validating_webhook_configuration, self.configs.validating[0]),
        ):
            with contextlib.suppress(ApiException):
                await delete(name)


@pytest_asyncio.fixture(loop_scope="session")
async def cluster(
    localkube: LocalKube, kube_api: client.ApiClient, kube_namespace: str
) -> AsyncIterator[Cluster]:
    c = Cluster(kube=localkube, api=kube_api, clock=Clock(), namespace=kube_namespace)
    try:
        yield c
    finally:
        localkube.faults.clear()
        localkube.service_resolver = None
        await c.delete_configs()


def _raw(body: dict[str, Any]) -> Any:
    """kubernetes-asyncio sends plain dicts as they are; its stubs only name the models."""
    return body


def _b64(pem: bytes) -> str:
    return base64.b64encode(pem).decode()


# --- Secret and caBundle ---------------------------------------------------------------------


async def test_open_creates_the_secret_injects_the_bundle_and_serves_it(cluster: Cluster) -> None:
    await cluster.create_configs()
    holder = await cluster.store().open()

    secret = await cluster.secret()
    assert secret.type == "kubernetes.io/tls"
    assert set(secret.data) == {"tls.crt", "tls.key", "ca.crt", "ca.key"}
    assert secret.metadata.labels == {"app.kubernetes.io/managed-by": "raysvc"}
    stored = await cluster.stored()
    assert holder.material.leaf == stored.serving.cert
    assert await cluster.bundles() == [_b64(stored.ca.cert_pem())] * 3


async def test_a_converged_pass_writes_nothing(cluster: Cluster) -> None:
    await cluster.create_configs()
    store = cluster.store()
    holder = await store.open()
    versions = await cluster.resource_versions()
    assert not await store.refresh(holder)
    assert await cluster.resource_versions() == versions


async def test_replicas_starting_together_share_one_secret(cluster: Cluster) -> None:
    await cluster.create_configs()
    results = await asyncio.gather(*(cluster.store().sync() for _ in range(3)))
    stored = await cluster.stored()
    assert all(r == stored for r in results)


async def test_a_conflicting_update_is_re_read_and_re_decided(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    await cluster.create_configs()
    first = await cluster.store().sync()
    cluster.clock.now = renewal_time(first.serving.cert) + dt.timedelta(minutes=1)
    cluster.kube.faults.fail(409, verb="update", resource="secrets", namespace=cluster.namespace)
    caplog.set_level(logging.INFO, logger="certs.store")
    rotated = await cluster.store().sync()
    assert rotated.serving != first.serving
    assert await cluster.stored() == rotated
    updates = [r for r in caplog.records if r.getMessage() == "certificate secret updated"]
    assert len(updates) == 1


async def test_replicas_rotating_together_agree(cluster: Cluster) -> None:
    await cluster.create_configs()
    first = await cluster.store().sync()
    cluster.clock.now = renewal_time(first.ca.cert) + dt.timedelta(minutes=1)
    results = await asyncio.gather(*(cluster.store().sync() for _ in range(3)))
    stored = await cluster.stored()
    assert all(r == stored for r in results)
    assert stored.previous_ca == first.ca.cert


async def test_an_unusable_secret_is_replaced_and_other_keys_kept(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    await client.CoreV1Api(cluster.api).create_namespaced_secret(
        cluster.namespace,
        _raw(
            {
                "metadata": {
                    "name": cluster.secret_ref.name,
                    "annotations": {"owner": "someone"},
                },
                "type": "Opaque",
                "data": {"tls.crt": _b64(b"garbage"), "extra": _b64(b"keep me")},
            }
        ),
    )
    caplog.set_level(logging.WARNING, logger="certs.store")
    certs = await cluster.store().sync()
    secret = await cluster.secret()
    assert secret.type == "Opaque"  # a Secret's type is immutable
    assert secret.metadata.annotations == {"owner": "someone"}
    assert base64.b64decode(secret.data["extra"]) == b"keep me"
    assert await cluster.stored() == certs
    assert any("unusable" in r.getMessage() for r in caplog.records)


async def test_a_reset_ca_bundle_is_repaired(cluster: Cluster) -> None:
    await cluster.create_configs()
    store = cluster.store()
    await store.sync()
    # e.g. `helm upgrade` re-applies the configuration without caBundle
    admission = client.AdmissionregistrationV1Api(cluster.api)
    await admission.delete_validating_webhook_configuration(cluster.configs.validating[0])
    await cluster.create_validating_config()
    assert (await cluster.bundles())[2] is None
    await store.sync()
    stored = await cluster.stored()
    assert await cluster.bundles() == [_b64(stored.ca.cert_pem())] * 3


async def test_missing_webhook_configurations_are_skipped(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="certs.store")
    assert await cluster.store().inject_ca_bundle(b"-----BEGIN CERTIFICATE-----\n") == 0
    assert [r.getMessage() for r in caplog.records] == ["webhook configuration not found"] * 2


async def test_an_api_server_error_is_a_store_error(cluster: Cluster) -> None:
    cluster.kube.faults.fail(
        500, verb="get", resource="secrets", namespace=cluster.namespace, times=None
    )
    with pytest.raises(StoreError, match="HTTP 500"):
        await cluster.store().sync()


async def test_an_api_server_that_does_not_answer_times_out(cluster: Cluster) -> None:
    cluster.kube.faults.delay(
        2.0, verb="get", resource="secrets", namespace=cluster.namespace, times=None
    )
    with pytest.raises(StoreError, match="TimeoutError"):
        await cluster.store(request_timeout=0.2).sync()


async def test_conflicts_that_never_end_give_up(cluster: Cluster) -> None:
    cluster.kube.faults.fail(
        409, verb="create", resource="secrets", namespace=cluster.namespace, times=None
    )
    with pytest.raises(StoreError, match="kept changing"):
        await cluster.store(max_attempts=3).sync()


# --- the whole story over TLS ----------------------------------------------------------------


@dataclasses.dataclass
class Admissions:
    ok: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)
    served: int = 0


async def _admit(request: web.Request) -> web.Response:
    review = await request.json()
    request.app[SERVED].served += 1
    return web.json_response(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], "allowed": True},
        }
    )


SERVED = web.AppKey("served", Admissions)


async def _serve(holder: ReloadingContext, tally: Admissions) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app[SERVED] = tally
    app.router.add_post("/admit", _admit)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=holder.context)
    await site.start()
    port = runner.addresses[0][1]
    assert isinstance(port, int)
    return runner, port


async def _create_configmaps(
    api: client.ApiClient, namespace: str, tally: Admissions, stop: asyncio.Event
) -> None:
    core = client.CoreV1Api(api)
    i = 0
    while not stop.is_set():
        i += 1
        try:
            async with asyncio.timeout(10):
                await core.create_namespaced_config_map(
                    namespace, _raw({"metadata": {"name": f"c{i}"}})
                )
            tally.ok += 1
        except (ApiException, TimeoutError) as e:
            tally.failures.append(f"{getattr(e, 'status', '')} {getattr(e, 'body', e)}")


async def _wait(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail after 20 seconds."""
    deadline = time.monotonic() + 20
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_the_api_server_admits_through_a_full_ca_rotation(cluster: Cluster) -> None:
    """localkube calls the webhook over TLS trusting the injected caBundle while the CA rotates
    in two phases under continuous CREATEs: no admission fails."""
    core = client.CoreV1Api(cluster.api)
    await core.create_namespace(_raw({"metadata": {"name": cluster.admitted_namespace}}))
    store = cluster.store()
    holder = await store.open()
    tally = Admissions()
    runner, port = await _serve(holder, tally)
    cluster.kube.service_resolver = _fixed(port)
    try:
        await cluster.create_configs()
        await store.sync()
        first = await cluster.stored()
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(_create_configmaps(cluster.api, cluster.admitted_namespace, tally, stop))
            try:
                await _wait(lambda: tally.ok >= 5, "admissions before rotation")
                # phase 1: new CA in the bundle; the leaf (expired by the test clock, so
                # re-issued) is still signed by the old CA
                cluster.clock.now = renewal_time(first.ca.cert) + dt.timedelta(minutes=1)
                await store.refresh(holder)
                phase1 = await cluster.stored()
                assert phase1.previous_ca == first.ca.cert
                assert chains_to([holder.material.leaf], [first.ca.cert])
                bundle = load_pem_certs(base64.b64decode(str((await cluster.bundles())[0])))
                assert bundle == (phase1.ca.cert, first.ca.cert)
                mark = tally.ok
                await _wait(lambda: tally.ok >= mark + 5, "admissions in phase 1")
                # phase 2: the new CA signs the leaf; the server reloads it
                cluster.clock.now += POLICY.ca_overlap
                assert await store.refresh(holder)
                assert chains_to([holder.material.leaf], [phase1.ca.cert])
                mark = tally.ok
                await _wait(lambda: tally.ok >= mark + 5, "admissions in phase 2")
            finally:
                stop.set()
        assert tally.failures == []
        assert tally.served == 3 * tally.ok  # every CREATE went through the three webhooks
        # a new handshake gets the leaf of the new CA: a client trusting only it connects
        only_new = ssl.create_default_context(cadata=phase1.ca.cert_pem().decode())
        async with asyncio.timeout(5):
            _, writer = await asyncio.open_connection(
                "127.0.0.1",
                port,
                ssl=only_new,
                server_hostname=f"{SERVICE}.{cluster.namespace}.svc",
            )
        writer.close()
        await writer.wait_closed()
    finally:
        await runner.cleanup()
        await core.delete_namespace(cluster.admitted_namespace)


def _fixed(port: int) -> Any:
    async def resolve(ref: ServiceRef) -> str | None:
        return f"127.0.0.1:{port}"

    return resolve


async def test_the_sync_loop_feeds_another_replicas_rotation_to_the_server(
    cluster: Cluster,
) -> None:
    await cluster.create_configs()
    mine = cluster.store()
    holder = await mine.open()
    async with mine.running(holder, interval=0.02):
        # another replica, whose pass comes first, re-issues the serving certificate
        other_clock = Clock()
        other_clock.now = renewal_time(holder.material.leaf) + dt.timedelta(minutes=1)
        rotated = await cluster.store(clock=other_clock).sync()
        await _wait(lambda: holder.material.leaf == rotated.serving.cert, "the reload")
    assert holder.reloads == 1
