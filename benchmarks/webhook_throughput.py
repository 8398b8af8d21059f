"""Throughput, latency and memory of ``raysvc webhook``, against a bare aiohttp TLS handler.

Both servers run pinned to core 0 (``taskset``) and are driven from core 1 over TLS keep-alive
with the same UPDATE AdmissionReview of the sample (old and new object, padded with
``managedFields`` to about 10 KB; the new object changes MangoStand's price, a serve-only
change). The bare server reads the body and returns a fixed "allowed" review: the ceiling of
aiohttp + TLS on this machine, measured in the same run.

The same review sent again and again is answered from the memos of the core (the parsed
serveConfigV2, the cluster hashes), as the validating admission after the mutating one, or the
next UPDATE's old object, is in a cluster. ``/validate, new`` changes the price in every request:
each review then carries a serveConfigV2 never seen before (the worst case).

Printed figures:

- throughput: ``wrk`` (4 connections) against ``/validate`` and ``/mutate``, and against the
  bare handler, in interleaved rounds; medians and the ratio webhook / bare;
- latency at a fixed 300 reviews/s (open loop, one keep-alive connection): p50, p99, max;
- RSS of the webhook process after 100,000 reviews.

Needs ``wrk`` (Debian package ``wrk``) and ``taskset``. Run:
``.venv/bin/python benchmarks/webhook_throughput.py``. Targets (issue 3): ratio >= 0.5,
>= 2,000 reviews/s on one core, p99 <= 5 ms at 300 reviews/s, RSS <= 100 MiB after 100k reviews.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from certs.issue import ServingNames, issue_ca, issue_serving_cert
from tests.builders import admission_review, sample, with_serve

RAYSVC = str(Path(sys.executable).with_name("raysvc"))


def review_body(price: object = 4) -> bytes:
    """An UPDATE review of the sample, about 10 KB; the new object sets MangoStand's price."""
    old = sample()
    old["metadata"]["managedFields"] = [
        {
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "apiVersion": "ray.io/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {f"f:field-number-{i}": {"f:value": {}} for i in range(70)},
        }
    ]
    new = copy.deepcopy(old)
    with_serve(
        new,
        lambda c: c["applications"][0]["deployments"][0]["user_config"].update(price=price),
    )
    return json.dumps(admission_review(new, old)).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_certs(directory: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    ca = issue_ca(now=now)
    names = ServingNames("bench", "bench", ip_addresses=(ipaddress.ip_address("127.0.0.1"),))
    leaf = issue_serving_cert(ca=ca, names=names, now=now)
    (directory / "ca.crt").write_bytes(ca.cert_pem())
    (directory / "tls.crt").write_bytes(leaf.cert_pem())
    (directory / "tls.key").write_bytes(leaf.key_pem())


def bare_server(port: int, cert_dir: str) -> None:
    """The baseline: aiohttp over TLS, read the body, answer a fixed allowed review."""
    from aiohttp import web

    answer = json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": "fixed", "allowed": True},
        }
    ).encode()

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=answer, content_type="application/json")

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post("/validate", handle)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(f"{cert_dir}/tls.crt", f"{cert_dir}/tls.key")
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, access_log=None, print=None)


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


MARKER = "__N__"


def wrk(port: int, path: str, body_file: Path, seconds: int) -> tuple[float, int]:
    """Requests/s and request count from wrk on core 1 (4 connections, 1 thread).

    A body containing ``MARKER`` gets a counter there: every request carries new content.
    """
    script = body_file.with_suffix(".lua")
    script.write_text(
        "wrk.method = 'POST'\n"
        "wrk.headers['Content-Type'] = 'application/json'\n"
        f"local f = io.open('{body_file}', 'rb')\nlocal body = f:read('*a')\nf:close()\n"
        "wrk.body = body\n"
        f"local at = string.find(body, '{MARKER}', 1, true)\n"
        "local counter = 0\n"
        "if at then\n"
        f"  local head, tail = string.sub(body, 1, at - 1), string.sub(body, at + {len(MARKER)})\n"
        "  function request()\n"
        "    counter = counter + 1\n"
        "    return wrk.format(nil, nil, nil, head .. counter .. tail)\n"
        "  end\n"
        "end\n"
        "function response(status, headers, body)\n"
        "  if status ~= 200 then error('status ' .. status) end\nend\n"
    )
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            "-c4",
            f"-d{seconds}s",
            "-s",
            str(script),
            f"https://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out or "errors" in out.lower():
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return rate, count


async def fixed_rate(
    port: int, path: str, body: bytes, rate: int, seconds: int, ca: str
) -> list[float]:
    """Latencies (s) of an open-loop client sending ``rate`` requests/s on one connection."""
    import aiohttp

    context = ssl.create_default_context(cafile=ca)
    connector = aiohttp.TCPConnector(ssl=context, limit=1)
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=connector) as session:
        url = f"https://127.0.0.1:{port}{path}"
        headers = {"Content-Type": "application/json"}
        start = time.perf_counter()
        for i in range(rate * seconds):
            target = start + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                assert response.status == 200
            latencies.append(time.perf_counter() - sent)
    return latencies


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of each run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per server")
    parser.add_argument(
        "--bare-server", nargs=2, metavar=("PORT", "CERT_DIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.bare_server:
        bare_server(int(args.bare_server[0]), args.bare_server[1])
        return
    if not shutil.which("wrk") or not shutil.which("taskset"):
        sys.exit("needs wrk and taskset (apt-get install wrk util-linux)")
    work = Path(tempfile.mkdtemp(prefix="raysvc-bench-"))
    write_certs(work)
    body = review_body()
    body_file = work / "review.json"
    body_file.write_bytes(body)
    fresh_file = work / "fresh.json"
    fresh_file.write_bytes(review_body(MARKER))
    print(
        f"review: UPDATE of the sample, {len(body) / 1024:.1f} KiB; "
        "servers on core 0, load on core 1"
    )

    port, bare_port = free_port(), free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    webhook = subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            RAYSVC,
            "webhook",
            "--cert-dir",
            str(work),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--health-host",
            "127.0.0.1",
            "--health-port",
            str(free_port()),
        ],
        stderr=subprocess.DEVNULL,
        env=env,
    )
    bare = subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            sys.executable,
            __file__,
            "--bare-server",
            str(bare_port),
            str(work),
        ],
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_listening(port)
        wait_listening(bare_port)
        ca = str(work / "ca.crt")
        targets = {
            "bare aiohttp TLS handler": (bare_port, "/validate", body_file),
            "raysvc /validate": (port, "/validate", body_file),
            "raysvc /mutate": (port, "/mutate", body_file),
            "raysvc /validate, new": (port, "/validate", fresh_file),
        }
        # Interleaved rounds, medians: a neighbour's burst hits every server alike.
        rates: dict[str, list[float]] = {name: [] for name in targets}
        total = 0
        for _ in range(args.rounds):
            for name, (target_port, path, source) in targets.items():
                rate, count = wrk(target_port, path, source, args.seconds)
                rates[name].append(rate)
                total += count if target_port == port else 0
        latencies = {
            name: asyncio.run(fixed_rate(target_port, path, body, 300, args.seconds, ca))
            for name, (target_port, path, _) in list(targets.items())[:3]
        }
        base = statistics.median(rates["bare aiohttp TLS handler"])
        for name in targets:
            rate = statistics.median(rates[name])
            if name not in latencies:
                median = f"(median of {args.rounds}; ratio {rate / base:.2f})"
                print(f"{name:<26} {rate:8.0f} reviews/s {median}")
                continue
            lat = latencies[name]
            print(
                f"{name:<26} {rate:8.0f} reviews/s (median of {args.rounds}; "
                f"ratio {rate / base:.2f})   at 300/s: p50 {pct(lat, 0.5) * 1000:.2f} ms"
                f"  p99 {pct(lat, 0.99) * 1000:.2f} ms  max {max(lat) * 1000:.2f} ms"
            )
        while total < 100_000:
            _, count = wrk(port, "/validate", body_file, args.seconds)
            total += count
        print(f"webhook RSS after {total:,} reviews: {rss_mib(webhook.pid):.1f} MiB")
    finally:
        for process in (webhook, bare):
            process.terminate()
            process.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
