"""Helpers for the webhook tests: a real ``raysvc webhook`` process, certificates, clients."""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import json
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from certs.issue import KeyedCert, ServingNames, issue_ca, issue_serving_cert
from tests.commands import RAYSVC

NAMES = ServingNames(
    "raysvc-webhook", "raysvc-system", ip_addresses=(ipaddress.ip_address("127.0.0.1"),)
)


def write_cert_dir(directory: Path, ca: KeyedCert | None = None) -> KeyedCert:
    """Write ``tls.crt``, ``tls.key``, ``ca.crt`` for 127.0.0.1 into ``directory``; returns the CA."""
    now = dt.datetime.now(dt.UTC)
    ca = ca or issue_ca(now=now)
    leaf = issue_serving_cert(ca=ca, names=NAMES, now=now)
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in (
        ("ca.crt", ca.cert_pem()),
        ("tls.crt", leaf.cert_pem()),
        ("tls.key", leaf.key_pem()),
    ):
        tmp = directory / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(directory / name)
    return ca


class Webhook:
    """A running ``raysvc webhook`` process (by default ``--cert-dir cert_dir``), its JSON log
    lines, and HTTPS clients for it. ``args`` replace the certificate source."""

    def __init__(self, cert_dir: Path, *extra: str, args: tuple[str, ...] | None = None) -> None:
        self.cert_dir = cert_dir
        self.log: list[str] = []
        self._listening = threading.Event()
        self.port = self.health_port = 0
        source = args if args is not None else ("--cert-dir", str(cert_dir))
        self.process = subprocess.Popen(
            [
                RAYSVC,
                "webhook",
                *source,
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--health-host",
                "127.0.0.1",
                "--health-port",
                "0",
                "--cert-poll-seconds",
                "0.2",
                *extra,
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        if not self._listening.wait(30):
            self.stop(signal.SIGKILL)
            raise RuntimeError("webhook did not start:\n" + "\n".join(self.log))

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip("\n"))
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("message") == "webhook listening":
                self.port, self.health_port = entry["port"], entry["health_port"]
                self._listening.set()

    def tls(self) -> ssl.SSLContext:
        """A client context trusting the CA currently in the cert dir."""
        context = ssl.create_default_context(cafile=str(self.cert_dir / "ca.crt"))
        return context

    def connect(self, context: ssl.SSLContext | None = None) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=context or self.tls(), timeout=30
        )

    def post(
        self,
        path: str,
        body: bytes,
        conn: http.client.HTTPSConnection | None = None,
        *,
        context: ssl.SSLContext | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """POST on ``conn`` (kept open), or on a new connection (closed after)."""
        own = conn is None
        conn = conn or self.connect(context)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            raw = response.read()
            headers = {k.lower(): v for k, v in response.getheaders()}
            try:
                payload = json.loads(raw)
            except json.JSONDecodeError:
                payload = raw.decode(errors="replace")
            return response.status, headers, payload
        finally:
            if own:
                conn.close()

    def health(self, path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.health_port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the process, wait for it, and release its log pipe."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return code


def review_body(review: dict[str, Any]) -> bytes:
    """The review as JSON; hostile reviews nest deeper than the default recursion limit."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5000))
    try:
        return json.dumps(review).encode()
    finally:
        sys.setrecursionlimit(limit)


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Poll ``predicate`` until it is true or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(interval)
