"""certs.reload over real TLS: an aiohttp HTTPS server swaps its certificate (and CA) while
clients keep sending requests on keep-alive and on new connections; certificate files mounted
kubelet-style (``..data`` symlink swap) are watched and reloaded, and incomplete ones rejected."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import ipaddress
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import ClientRequest, web
from aiohttp.connector import Connection
from aiohttp.tracing import Trace
from cryptography import x509

from certs.errors import CertError, CertMismatchError, PemError
from certs.issue import KeyedCert, ServingMaterial, ServingNames, issue_ca, issue_serving_cert
from certs.reload import CertDirWatcher, ReloadingContext, load_cert_dir, read_cert_dir

NAMES = ServingNames(
    "raysvc-webhook", "raysvc-system", ip_addresses=(ipaddress.ip_address("127.0.0.1"),)
)
SNI = "raysvc-webhook.raysvc-system.svc"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_ca() -> KeyedCert:
    return issue_ca(now=utcnow(), lifetime=dt.timedelta(days=3))


def serving_material(ca: KeyedCert, bundle: list[KeyedCert] | None = None) -> ServingMaterial:
    leaf = issue_serving_cert(ca=ca, names=NAMES, now=utcnow(), lifetime=dt.timedelta(days=1))
    cas = bundle or [ca]
    return ServingMaterial(
        cert_pem=leaf.cert_pem(),
        key_pem=leaf.key_pem(),
        ca_bundle_pem=b"".join(c.cert_pem() for c in cas),
        leaf=leaf.cert,
    )


def client_context(*cas: KeyedCert) -> ssl.SSLContext:
    """A client context trusting exactly ``cas`` and checking the host name, like the API server."""
    ctx = ssl.create_default_context(cadata=b"".join(c.cert_pem() for c in cas).decode())
    ctx.check_hostname = True
    return ctx


def peer_serial(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> int:
    assert ssl_object is not None
    der = ssl_object.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def handshake_serial(port: int, ctx: ssl.SSLContext) -> int:
    """Open a fresh TLS connection and return the serial of the certificate the server sent."""
    async with asyncio.timeout(5):
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=SNI)
    try:
        return peer_serial(writer.get_extra_info("ssl_object"))
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def tls_server(
    holder: ReloadingContext, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> AsyncIterator[int]:
    """An aiohttp HTTPS server on 127.0.0.1, port 0, serving through ``holder``; yields the port."""
    app = web.Application()
    app.router.add_post("/validate", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=holder.context)
    await site.start()
    try:
        port = runner.addresses[0][1]
        assert isinstance(port, int)
        yield port
    finally:
        await runner.cleanup()


async def wait_for(
    condition: Callable[[], bool], *, within: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``condition`` until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


# --- kubelet-style Secret volume -----------------------------------------------------------------


class SecretVolume:
    """A directory laid out like kubelet's Secret volume.

    ``dir/tls.crt -> ..data/tls.crt``, ``..data -> ..<version>``; :meth:`publish` writes a new
    version directory and swaps ``..data`` atomically with a rename, as kubelet's atomic writer
    does.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._version = 0

    def publish(self, files: dict[str, bytes]) -> None:
        self._version += 1
        version_dir = self.root / f"..2026_01_01_00_00_{self._version:02d}.{os.getpid()}"
        version_dir.mkdir()
        for name, data in files.items():
            (version_dir / name).write_bytes(data)
        tmp_link = self.root / "..data_tmp"
        tmp_link.symlink_to(version_dir.name)
        old_target = os.readlink(self.root / "..data") if (self.root / "..data").exists() else None
        os.rename(tmp_link, self.root / "..data")
        for name in files:
            link = self.root / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")
        if old_target is not None:
            for child in (self.root / old_target).iterdir():
                child.unlink()
            (self.root / old_target).rmdir()


def material_files(material: ServingMaterial) -> dict[str, bytes]:
    return {
        "tls.crt": material.cert_pem,
        "tls.key": material.key_pem,
        "ca.crt": material.ca_bundle_pem,
    }


# --- TLS rotation ---

REVIEW = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u"}}


async def _allow(request: web.Request) -> web.Response:
    review = await request.json()
    return web.json_response({"response": {"uid": review["request"]["uid"], "allowed": True}})


@dataclasses.dataclass
class Tally:
    ok: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)


class Generation:
    """Counts completed rotations; a connection tagged g was requested after rotation g."""

    value = 0


class RecordingConnector(aiohttp.TCPConnector):
    """Records, for every request, (generation, peer certificate serial, connection id)."""

    def __init__(self, *, ssl_context: ssl.SSLContext, keep_alive: bool) -> None:
        super().__init__(ssl=ssl_context, limit=1, force_close=not keep_alive)
        self.seen: list[tuple[int, int, int]] = []

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> Connection:
        generation = Generation.value
        conn = await super().connect(req, traces, timeout)
        assert conn.transport is not None
        serial = peer_serial(conn.transport.get_extra_info("ssl_object"))
        self.seen.append((generation, serial, id(conn.protocol)))
        return conn


async def _post(session: aiohttp.ClientSession, port: int, tally: Tally) -> None:
    try:
        async with asyncio.timeout(5):
            async with session.post(
                f"https://127.0.0.1:{port}/validate", json=REVIEW, server_hostname=SNI
            ) as resp:
                body = await resp.json()
                assert resp.status == 200, resp.status
                assert body["response"]["allowed"] is True
        tally.ok += 1
    except (aiohttp.ClientError, ssl.SSLError, TimeoutError, AssertionError) as e:
        tally.failures.append(f"{type(e).__name__}: {e}")


async def _client_loop(
    port: int, connector: RecordingConnector, tally: Tally, stop: asyncio.Event
) -> None:
    async with aiohttp.ClientSession(connector=connector) as session:
        while not stop.is_set():
            await _post(session, port, tally)


async def test_rotation_under_continuous_load_fails_no_request() -> None:
    old_ca, new_ca_ = new_ca(), new_ca()
    before, after = serving_material(old_ca), serving_material(new_ca_, [new_ca_, old_ca])
    # The API server trusts the caBundle of the overlap: old and new CA.
    ctx = client_context(old_ca, new_ca_)
    holder = await ReloadingContext.create(before)
    Generation.value = 0
    keep_alive, fresh = Tally(), Tally()
    ka_conn = RecordingConnector(ssl_context=ctx, keep_alive=True)
    fresh_conn = RecordingConnector(ssl_context=ctx, keep_alive=False)
    stop = asyncio.Event()
    async with tls_server(holder, _allow) as port, asyncio.TaskGroup() as tg:
        tg.create_task(_client_loop(port, ka_conn, keep_alive, stop))
        tg.create_task(_client_loop(port, fresh_conn, fresh, stop))
        try:
            await wait_for(lambda: keep_alive.ok >= 20 and fresh.ok >= 20, what="warm-up")
            ok_before = keep_alive.ok, fresh.ok
            assert await holder.update(after)
            Generation.value = 1
            await wait_for(
                lambda: keep_alive.ok >= ok_before[0] + 50 and fresh.ok >= ok_before[1] + 20,
                what="requests after rotation",
            )
        finally:
            stop.set()

    assert keep_alive.failures == []
    assert fresh.failures == []
    old_serial, new_serial = before.leaf.serial_number, after.leaf.serial_number
    # Every new connection requested after the swap got the new certificate ...
    assert {s for g, s, _ in fresh_conn.seen if g == 1} == {new_serial}
    assert old_serial in {s for g, s, _ in fresh_conn.seen if g == 0}
    # ... while the keep-alive connection made before it kept working on the old one.
    assert {(s, c) for _, s, c in ka_conn.seen} == {(old_serial, ka_conn.seen[0][2])}
    # It went on serving after the swap. Requests started while ``update`` was awaited count as
    # generation 0, so fewer than the 50 completed since are generation 1; how many is a race.
    assert sum(1 for g, _, _ in ka_conn.seen if g == 1) >= 25
    assert holder.reloads == 1


async def test_a_request_in_flight_during_the_swap_completes() -> None:
    ca = new_ca()
    before, after = serving_material(ca), serving_material(ca)
    holder = await ReloadingContext.create(before)
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return await _allow(request)

    ctx = client_context(ca)
    connector = RecordingConnector(ssl_context=ctx, keep_alive=True)
    async with (
        tls_server(holder, slow) as port,
        aiohttp.ClientSession(connector=connector) as session,
    ):
        tally = Tally()
        in_flight = asyncio.create_task(_post(session, port, tally))
        async with asyncio.timeout(5):
            await entered.wait()
        await holder.update(after)
        assert await handshake_serial(port, ctx) == after.leaf.serial_number
        release.set()
        await in_flight
    assert tally.failures == []
    assert tally.ok == 1
    assert [s for _, s, _ in connector.seen] == [before.leaf.serial_number]


async def test_clients_that_trust_only_the_new_ca_connect_after_the_swap() -> None:
    old_ca, newer = new_ca(), new_ca()
    holder = await ReloadingContext.create(serving_material(old_ca))
    async with tls_server(holder, _allow) as port:
        with pytest.raises(ssl.SSLCertVerificationError):
            await handshake_serial(port, client_context(newer))
        await holder.update(serving_material(newer))
        await handshake_serial(port, client_context(newer))


async def test_same_material_is_not_reloaded() -> None:
    material = serving_material(new_ca())
    holder = await ReloadingContext.create(material)
    assert not await holder.update(material)
    assert holder.reloads == 0


async def test_material_openssl_refuses_keeps_the_current_certificate() -> None:
    ca = new_ca()
    good, other = serving_material(ca), serving_material(ca)
    holder = await ReloadingContext.create(good)
    # Bypass validation: a certificate with somebody else's key.
    broken = dataclasses.replace(good, key_pem=other.key_pem)
    with pytest.raises(CertError, match="OpenSSL refused"):
        await holder.update(broken)
    assert holder.material is good
    async with tls_server(holder, _allow) as port:
        assert await handshake_serial(port, client_context(ca)) == good.leaf.serial_number


# --- certificate files mounted from a Secret ---------------------------------------------------


@pytest.fixture
def volume(tmp_path: Path) -> SecretVolume:
    return SecretVolume(tmp_path)


def test_read_cert_dir_reads_through_the_data_symlink(volume: SecretVolume) -> None:
    material = serving_material(new_ca())
    volume.publish(material_files(material))
    assert (volume.root / "tls.crt").is_symlink()
    assert read_cert_dir(volume.root) == material


def test_read_cert_dir_refuses_missing_and_mismatched_files(volume: SecretVolume) -> None:
    ca = new_ca()
    good, other = serving_material(ca), serving_material(ca)
    volume.publish({"tls.crt": good.cert_pem, "tls.key": good.key_pem})
    with pytest.raises(PemError, match=r"ca\.crt"):
        read_cert_dir(volume.root)
    volume.publish(material_files(good) | {"tls.key": other.key_pem})
    with pytest.raises(CertMismatchError, match="private key"):
        read_cert_dir(volume.root)
    volume.publish(material_files(good) | {"ca.crt": new_ca().cert_pem()})
    with pytest.raises(CertMismatchError, match="chain"):
        read_cert_dir(volume.root)


async def test_a_kubelet_style_swap_is_picked_up_by_the_watcher(volume: SecretVolume) -> None:
    first_ca, second_ca = new_ca(), new_ca()
    first, second = serving_material(first_ca), serving_material(second_ca)
    volume.publish(material_files(first))
    holder = await load_cert_dir(volume.root)
    ctx = client_context(first_ca, second_ca)
    async with (
        tls_server(holder, _allow) as port,
        CertDirWatcher(holder, volume.root, interval=0.02),
    ):
        assert await handshake_serial(port, ctx) == first.leaf.serial_number
        volume.publish(material_files(second))
        await wait_for(lambda: holder.material == second, what="reload after the swap")
        assert await handshake_serial(port, ctx) == second.leaf.serial_number
    assert holder.reloads == 1


async def test_incomplete_files_keep_the_old_certificate(
    volume: SecretVolume, caplog: pytest.LogCaptureFixture
) -> None:
    ca = new_ca()
    good, newer = serving_material(ca), serving_material(ca)
    volume.publish(material_files(good))
    holder = await load_cert_dir(volume.root)
    watcher = CertDirWatcher(holder, volume.root, interval=60)
    assert not await watcher.check()  # same content: nothing to do

    caplog.set_level(logging.WARNING, logger="certs.reload")
    volume.publish({"tls.crt": newer.cert_pem, "ca.crt": newer.ca_bundle_pem})  # no key
    assert not await watcher.check()
    volume.publish(material_files(newer) | {"tls.key": good.key_pem})  # someone else's key
    assert not await watcher.check()
    assert not await watcher.check()  # unchanged bad content is not logged again
    volume.publish(material_files(newer) | {"tls.crt": b"garbage"})
    assert not await watcher.check()
    assert holder.material == good
    rejected = [
        r for r in caplog.records if r.getMessage().startswith("certificate files rejected")
    ]
    assert [str(getattr(r, "error", "")) for r in rejected] == [
        "missing or empty certificate files: tls.key",
        "the private key does not match the certificate",
        "no PEM certificate found",
    ]
    assert all(b"PRIVATE" not in r.getMessage().encode() for r in caplog.records)

    volume.publish(material_files(newer))
    assert await watcher.check()
    assert holder.material == newer


async def test_load_cert_dir_fails_on_an_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(PemError, match="missing"):
        await load_cert_dir(tmp_path)


async def test_the_watcher_task_is_cancelled_on_exit(volume: SecretVolume) -> None:
    volume.publish(material_files(serving_material(new_ca())))
    holder = await load_cert_dir(volume.root)
    watcher = CertDirWatcher(holder, volume.root, interval=0.01)
    async with watcher:
        tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("cert-dir-watcher")]
        assert len(tasks) == 1
    assert tasks[0].cancelled()
