"""Serving TLS contexts that change certificates without a restart.

:class:`ReloadingContext` owns one "outer" ``ssl.SSLContext`` that the server listens with for its
whole life. Its ``sni_callback`` runs at the start of every handshake (with or without SNI) and
points the connection at the *current* context, so a new certificate is used by every handshake
that starts after :meth:`ReloadingContext.update` returns. Established connections keep the
context they were made with, so keep-alive requests in flight are never cut. Swapping a reference
is atomic; nothing is mutated under a live connection.

:class:`CertDirWatcher` feeds it from a directory mounted from a Secret (cert-manager's
``tls.crt``, ``tls.key``, ``ca.crt``). Kubelet updates such a mount by swapping a ``..data``
symlink, so the three files change together, but a read may still straddle the swap: the watcher
reads all three, compares a digest of their contents with the last one it saw, and reloads only
material that validates (key matches certificate, certificate chains to ``ca.crt``). Anything
else keeps the current certificate and is logged once per distinct content.

This module must not talk to Kubernetes (see ``certs.store``). File reads and context building are
blocking and run through ``asyncio.to_thread``. Private keys never touch the disk: they are handed
to OpenSSL through an anonymous memory file where the platform has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from certs._aio import cancel_and_wait
from certs.errors import CertError, PemError
from certs.issue import ServingMaterial, validate_serving

__all__ = [
    "CA_FILE",
    "CERT_FILE",
    "KEY_FILE",
    "CertDirWatcher",
    "ReloadingContext",
    "build_server_context",
    "load_cert_dir",
    "read_cert_dir",
]

log = logging.getLogger(__name__)

CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
CA_FILE = "ca.crt"


@contextlib.contextmanager
def _pem_path(data: bytes) -> Iterator[str]:
    """A path OpenSSL can read ``data`` from, gone when the block exits."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd_create("raysvc-pem", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="raysvc-pem-") as tmp:
        path = os.path.join(tmp, "pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield path


def build_server_context(material: ServingMaterial) -> ssl.SSLContext:
    """A TLS 1.2+ server context serving ``material`` (blocking: call it in a thread).

    Raises ``CertError`` if OpenSSL refuses the certificate or key.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        with _pem_path(material.cert_pem) as cert_path, _pem_path(material.key_pem) as key_path:
            ctx.load_cert_chain(cert_path, key_path)
    except ssl.SSLError as e:
        raise CertError(f"OpenSSL refused the certificate or key: {e.reason}") from e
    return ctx


def _describe(material: ServingMaterial) -> dict[str, str]:
    leaf = material.leaf
    return {
        "serial": format(leaf.serial_number, "x"),
        "not_after": leaf.not_valid_after_utc.isoformat(),
    }


class ReloadingContext:
    """A server ``SSLContext`` whose certificate can be replaced while the server runs.

    Pass :attr:`context` to the server once (``web.TCPSite(runner, ssl_context=holder.context)``)
    and call :meth:`update` with new material; handshakes that start afterwards use it.
    Build one with :meth:`create` (async) or the constructor (blocking).
    """

    def __init__(self, material: ServingMaterial) -> None:
        """Build the contexts for ``material`` (blocking). Raises ``CertError``."""
        self._outer = build_server_context(material)
        self._current = self._outer
        self._material = material
        self._digest = material.digest()
        self._lock = asyncio.Lock()
        self._reloads = 0
        self._outer.sni_callback = self._select
        log.info("serving certificate loaded", extra=_describe(material))

    @classmethod
    async def create(cls, material: ServingMaterial) -> Self:
        """Build a holder for ``material`` without blocking the event loop."""
        return await asyncio.to_thread(cls, material)

    @property
    def context(self) -> ssl.SSLContext:
        """The context to listen with; it stays the same object for the holder's life."""
        return self._outer

    @property
    def material(self) -> ServingMaterial:
        """The material new handshakes are served with."""
        return self._material

    @property
    def reloads(self) -> int:
        """How many times :meth:`update` installed new material."""
        return self._reloads

    def _select(self, ssl_object: ssl.SSLObject, server_name: str | None, _: object) -> None:
        # Runs on the event loop thread inside the handshake: one attribute read, no I/O.
        current = self._current
        if ssl_object.context is not current:
            ssl_object.context = current

    async def update(self, material: ServingMaterial) -> bool:
        """Serve ``material`` to new handshakes; False if it is what is served already.

        The new context is fully built (off the loop) before it is swapped in, so a failure
        leaves the current certificate in place. Raises ``CertError`` if OpenSSL refuses it.
        """
        async with self._lock:
            digest = material.digest()
            if digest == self._digest:
                return False
            ctx = await asyncio.to_thread(build_server_context, material)
            self._current, self._material, self._digest = ctx, material, digest
            self._reloads += 1
        log.info("serving certificate reloaded", extra=_describe(material))
        return True


def _read_files(directory: Path, names: tuple[str, ...]) -> dict[str, bytes | None]:
    contents: dict[str, bytes | None] = {}
    for name in names:
        try:
            contents[name] = (directory / name).read_bytes()
        except FileNotFoundError:
            contents[name] = None
    return contents


def _digest(contents: Mapping[str, bytes | None]) -> str:
    h = hashlib.sha256()
    for name in sorted(contents):
        data = contents[name]
        h.update(name.encode() + b"\0")
        h.update(b"-" if data is None else b"+" + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def _validate_files(
    contents: Mapping[str, bytes | None], *, cert_file: str, key_file: str, ca_file: str
) -> ServingMaterial:
    missing = [name for name in (cert_file, key_file, ca_file) if not contents.get(name)]
    if missing:
        raise PemError(f"missing or empty certificate files: {', '.join(missing)}")
    return validate_serving(
        cert_pem=contents[cert_file] or b"",
        key_pem=contents[key_file] or b"",
        ca_bundle_pem=contents[ca_file] or b"",
    )


def read_cert_dir(
    directory: str | os.PathLike[str],
    *,
    cert_file: str = CERT_FILE,
    key_file: str = KEY_FILE,
    ca_file: str = CA_FILE,
) -> ServingMaterial:
    """Read and validate the serving files of ``directory`` (blocking).

    Raises ``PemError`` for a missing, empty or unparsable file, ``CertMismatchError`` if the key
    does not match or the certificate does not chain to ``ca_file``, ``OSError`` if unreadable.
    """
    contents = _read_files(Path(directory), (cert_file, key_file, ca_file))
    return _validate_files(contents, cert_file=cert_file, key_file=key_file, ca_file=ca_file)


async def load_cert_dir(
    directory: str | os.PathLike[str],
    *,
    cert_file: str = CERT_FILE,
    key_file: str = KEY_FILE,
    ca_file: str = CA_FILE,
) -> ReloadingContext:
    """A :class:`ReloadingContext` serving the files of ``directory``.

    Raises like :func:`read_cert_dir`: at startup there is no old certificate to fall back on.
    """
    material = await asyncio.to_thread(
        read_cert_dir, directory, cert_file=cert_file, key_file=key_file, ca_file=ca_file
    )
    return await ReloadingContext.create(material)


class CertDirWatcher:
    """Polls a certificate directory and reloads ``holder`` when the files change.

    Use as ``async with CertDirWatcher(holder, path):`` (it owns its polling task and cancels it on
    exit), or run :meth:`run` in a task group of your own. ``interval`` is in seconds.
    """

    def __init__(
        self,
        holder: ReloadingContext,
        directory: str | os.PathLike[str],
        *,
        interval: float = 10.0,
        cert_file: str = CERT_FILE,
        key_file: str = KEY_FILE,
        ca_file: str = CA_FILE,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._holder = holder
        self._directory = Path(directory)
        self._interval = interval
        self._files = (cert_file, key_file, ca_file)
        self._last_digest: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> bool:
        """Poll once; True if the holder now serves new material.

        Unchanged contents cost one read of three small files. Changed contents that do not
        validate are logged (once per distinct content) and the current certificate stays.
        """
        contents = await asyncio.to_thread(_read_files, self._directory, self._files)
        digest = _digest(contents)
        if digest == self._last_digest:
            return False
        self._last_digest = digest
        try:
            cert_file, key_file, ca_file = self._files
            material = _validate_files(
                contents, cert_file=cert_file, key_file=key_file, ca_file=ca_file
            )
            return await self._holder.update(material)
        except CertError as e:
            log.warning(
                "certificate files rejected; keeping the current certificate",
                extra={"directory": str(self._directory), "error": str(e)},
            )
            return False

    async def run(self) -> None:
        """Poll forever, every ``interval`` seconds. Only cancellation ends it."""
        while True:
            try:
                await self.check()
            except Exception:
                # A transient read error must not stop future reloads; the server keeps serving.
                log.exception(
                    "certificate directory check failed", extra={"directory": str(self._directory)}
                )
            await asyncio.sleep(self._interval)

    async def __aenter__(self) -> Self:
        if self._task is not None:
            raise RuntimeError("CertDirWatcher is already running")
        self._task = asyncio.create_task(self.run(), name=f"cert-dir-watcher:{self._directory}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        await cancel_and_wait(task)
