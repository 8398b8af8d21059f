"""What hostile traffic costs ``raysvc webhook``: idle connections, and a burst of large reviews.

- **Idle connections**: RSS of the webhook (with its worker processes) before, while
  ``--idle`` TLS connections that never send a request are open, and after they closed.
- **Large reviews**: ``--large`` concurrent UPDATEs of 7.7 MiB whose object is expensive to
  decide (70,000 environment variables); the slowest ``/healthz`` answer meanwhile (polled every
  20 ms), the peak RSS, and how long the burst took.

Run: ``.venv/bin/python benchmarks/webhook_hostile.py [--idle 2000] [--large 24]
[--source DIR]`` (``--source`` runs the webhook from another tree, e.g. an older commit).
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.procs import rss_kib
from tests.builders import admission_review, head_container, sample
from tests.integration.webhook.support import write_cert_dir

RAYSVC = str(Path(sys.executable).with_name("raysvc"))


def rss_mib(pid: int) -> float:
    return rss_kib(pid) / 1024


class Server:
    def __init__(self, cert_dir: Path, source: str | None) -> None:
        command = [RAYSVC]
        if source:
            boot = "import sys; sys.path.insert(0, sys.argv.pop(1)); from raysvc.cli import main; "
            command = [sys.executable, "-c", boot + "sys.exit(main())", source]
        self.process = subprocess.Popen(
            [
                *command,
                *("webhook", "--cert-dir", str(cert_dir), "--host", "127.0.0.1", "--port", "0"),
                *("--health-host", "127.0.0.1", "--health-port", "0"),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        for line in self.process.stderr:
            entry = json.loads(line)
            if entry.get("message") == "webhook listening":
                self.port, self.health_port = entry["port"], entry["health_port"]
                break
        threading.Thread(target=self._drain, daemon=True).start()
        self.context = ssl.create_default_context(cafile=str(cert_dir / "ca.crt"))

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for _ in self.process.stderr:
            pass

    def post(self, body: bytes) -> int:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self.context, timeout=300
        )
        try:
            conn.request("POST", "/validate", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def healthz(self) -> float:
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.health_port, timeout=300)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        conn.close()
        return time.monotonic() - started

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def idle_connections(server: Server, count: int) -> None:
    time.sleep(1)
    before = rss_mib(server.process.pid)
    sockets = []
    for _ in range(count):
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sockets.append(server.context.wrap_socket(raw, server_hostname="127.0.0.1"))
    time.sleep(1)
    held = rss_mib(server.process.pid)
    for sock in sockets:
        sock.close()
    time.sleep(2)
    after = rss_mib(server.process.pid)
    print(
        f"{count} idle TLS connections: RSS {before:.0f} MiB before, {held:.0f} MiB while open "
        f"(+{(held - before) * 1024 / count:.0f} KiB each), {after:.0f} MiB after they closed"
    )


def large_reviews(server: Server, count: int) -> None:
    obj = sample()
    head_container(obj)["env"] = [{"name": f"VAR_{i}", "value": "v" * 80} for i in range(70000)]
    template = json.dumps(admission_review(obj, sample()))
    # Every review different: none is answered from the memo.
    bodies = [template.replace("VAR_0", f"VAR_{n}x", 1).encode() for n in range(count)]
    statuses: list[int] = []

    def send(body: bytes) -> None:
        statuses.append(server.post(body))

    senders = [threading.Thread(target=send, args=(body,)) for body in bodies]
    started = time.monotonic()
    for sender in senders:
        sender.start()
    slowest, peak = 0.0, 0.0
    while any(sender.is_alive() for sender in senders):
        slowest = max(slowest, server.healthz())
        peak = max(peak, rss_mib(server.process.pid))
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    print(
        f"{count} concurrent {len(bodies[0]) / 2**20:.1f} MiB reviews: all answered in "
        f"{elapsed:.1f} s "
        f"(statuses {sorted(set(statuses))}); slowest /healthz {slowest * 1000:.0f} ms; "
        f"peak RSS {peak:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=2000, help="idle connections to open")
    parser.add_argument("--large", type=int, default=24, help="concurrent large reviews")
    parser.add_argument("--source", metavar="DIR", help="run the webhook from this source tree")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="raysvc-hostile-"))
    write_cert_dir(work)
    server = Server(work, args.source)
    try:
        idle_connections(server, args.idle)
        large_reviews(server, args.large)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
