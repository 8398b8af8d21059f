"""Server CPU per review, latency and memory of ``raysvc webhook``, against a fair bare server.

Both servers run pinned to core 0 (``taskset``, inherited by the webhook's worker processes);
the load comes from this process, pinned to core 1, over TLS keep-alive connections. The
measure that travels across a shared, noisy machine is **server CPU time per review** (user +
system of the server and all its processes, from ``/proc``), and its ratio to the baseline in
the same run; latencies are printed beside it.

The baseline, "bare", is an aiohttp TLS server that does the unavoidable work of any webhook:
it orjson-parses the AdmissionReview and answers ``allowed`` with its uid.

Workloads (a) and (b) are driven by ``wrk``, 4 threads of one keep-alive connection each, so
each connection sends ``/validate`` only after its ``/mutate`` was answered, as the API server
does; rounds interleave the servers:

- **(a) repeated**: the same UPDATE of the sample (padded with ``managedFields`` to ~10 KiB;
  MangoStand's price 3 -> 4, a serve-only change) sent again and again: ``/mutate``, then
  ``/validate`` of its output. GitOps re-applies, retries, dry-run then apply. Bare answers the
  same two requests.
- **(b) apply pairs**: the same, but every pair carries a new price, so a serveConfigV2 never
  seen before: ``/mutate``, then ``/validate`` of what the mutation produced (as the API server
  sends it). Bare answers the same two requests.
- **(c) large, cold**: an UPDATE of the large RayService (50 worker groups, 100 applications,
  ~300 KiB) with a new serveConfigV2 every time, to ``/validate`` on one connection, while a
  second connection sends small reviews (the sample, repeated) at 200/s: the p99 of each.

Targets: (a) >= 0.7 of bare; (b) >= 0.5 of bare; (c) large p99 <= 10 ms, small p99 <= 5 ms.

Run: ``.venv/bin/python benchmarks/webhook_throughput.py [--seconds 5] [--rounds 3]``. Needs
``taskset`` (util-linux).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import datetime as dt
import hashlib
import ipaddress
import itertools
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import yaml

from benchmarks.procs import cpu_seconds, rss_kib
from certs.issue import ServingNames, issue_ca, issue_serving_cert
from rayservice import evaluate
from rayservice.hashing import canonical_json
from rayservice.yamldoc import load_json_data
from tests.builders import admission_review, large_rayservice, sample

RAYSVC = str(Path(sys.executable).with_name("raysvc"))
MARK = 987654321
"""A price no real config has: replaced by each request's price in the templates."""
HASH_MARK = "0" * 63 + "f"
Obj = dict[str, Any]


# ----------------------------------------------------------------------------------------------
# Reviews


def padded(obj: Obj) -> Obj:
    """``obj`` with ``managedFields`` as kubectl leaves them, to about 10 KiB of review."""
    obj = copy.deepcopy(obj)
    obj["metadata"]["managedFields"] = [
        {
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "apiVersion": "ray.io/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {f"f:field-number-{i}": {"f:value": {}} for i in range(70)},
        }
    ]
    return obj


def set_price(obj: Obj, price: int, *, app: int = 0, deployment: int = 0) -> Obj:
    """``obj`` with a deployment's user_config price replaced in the serveConfigV2 text."""
    obj = copy.deepcopy(obj)
    config, _ = load_json_data(obj["spec"]["serveConfigV2"])
    assert isinstance(config, dict)
    config["applications"][app]["deployments"][deployment]["user_config"]["price"] = price
    obj["spec"]["serveConfigV2"] = yaml.safe_dump(config, sort_keys=False)
    return obj


@dataclass
class PairTemplate:
    """The bodies of one apply (``/mutate``, then ``/validate`` of its output) for any price.

    The mutated object differs from the template only in the price and the serve hash (the
    canonical JSON of the config has the price in one place), so each pair costs the client a
    string replace and a SHA-256, and the server a serveConfigV2 it never saw.
    """

    mutate: str
    validate: str
    canonical: str

    @classmethod
    def build(cls, stored: Obj, *, app: int = 0) -> PairTemplate:
        new = set_price(stored, MARK, app=app)
        result = evaluate(new, stored)
        assert result.allowed, result.errors
        mutated = copy.deepcopy(dict(result.mutated))
        annotations = mutated["metadata"]["annotations"]
        canonical = canonical_json(load_json_data(new["spec"]["serveConfigV2"])[0])
        assert hashlib.sha256(canonical.encode()).hexdigest() == annotations["raysvc.io/serve-hash"]
        annotations["raysvc.io/serve-hash"] = HASH_MARK
        return cls(
            mutate=json.dumps(admission_review(new, stored)),
            validate=json.dumps(admission_review(mutated, stored)),
            canonical=canonical,
        )

    def digest(self, price: int) -> str:
        """The serve hash of the config with ``price``."""
        text = self.canonical.replace(str(MARK), str(price))
        return hashlib.sha256(text.encode()).hexdigest()

    def pair(self, price: int) -> tuple[bytes, bytes]:
        text = str(price)
        digest = self.digest(price)
        return (
            self.mutate.replace(str(MARK), text).encode(),
            self.validate.replace(str(MARK), text).replace(HASH_MARK, digest).encode(),
        )


def stored_object(obj: Obj) -> Obj:
    """``obj`` as the API server stores it after its create: defaulted and annotated."""
    return dict(evaluate(obj).mutated)


# ----------------------------------------------------------------------------------------------
# Servers


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
    """The fair baseline: aiohttp over TLS, orjson-parse the review, answer with its uid."""
    import orjson
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        review = orjson.loads(await request.read())
        answer = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], "allowed": True},
        }
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post("/mutate", handle)
    app.router.add_post("/validate", handle)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(f"{cert_dir}/tls.crt", f"{cert_dir}/tls.key")
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, access_log=None, print=None)


def wait_listening(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


# ----------------------------------------------------------------------------------------------
# Load


@dataclass
class Run:
    """What one workload did against one server."""

    requests: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    p50: float = float("nan")
    p99: float = float("nan")

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.requests * 1e6 if self.requests else float("nan")


Unit = list[tuple[str, bytes]]
"""Requests one connection sends in order, each after the previous answer."""


def lua_string(data: str) -> str:
    return "[==[" + data + "]==]"


def pairs_script(template: PairTemplate, *, first: int, count: int, threads: int) -> str:
    """A wrk script: each thread (one connection) sends /mutate then /validate for prices
    ``first + thread``, ``first + thread + threads``, ...; never the same price twice."""
    mutate = template.mutate.split(str(MARK))
    assert len(mutate) == 2
    validate_parts: list[str] = []
    order: list[str] = []
    rest = template.validate
    while True:
        hits = [(rest.find(mark), mark) for mark in (str(MARK), HASH_MARK) if mark in rest]
        if not hits:
            validate_parts.append(rest)
            break
        at, mark = min(hits)
        validate_parts.append(rest[:at])
        order.append("price" if mark == str(MARK) else "digest")
        rest = rest[at + len(mark) :]
    digests = [template.digest(first + i) for i in range(count)]
    lines = [
        "local next_id = 0",
        "function setup(thread) thread:set('id', next_id); next_id = next_id + 1 end",
        f"local first, count, threads = {first}, {count}, {threads}",
        f"local m = {{{', '.join(lua_string(part) for part in mutate)}}}",
        f"local v = {{{', '.join(lua_string(part) for part in validate_parts)}}}",
        f"local order = {{{', '.join(repr(name) for name in order)}}}",
        "local digests = {" + ",".join(f'"{d}"' for d in digests) + "}",
        "local n = 0",
        "local headers = {['Content-Type'] = 'application/json'}",
        "function request()",
        "  local k = (id + threads * math.floor(n / 2)) % count",
        "  local price = tostring(first + k)",
        "  local body",
        "  if n % 2 == 0 then",
        "    body = m[1] .. price .. m[2]",
        "    n = n + 1",
        "    return wrk.format('POST', '/mutate', headers, body)",
        "  end",
        "  local values = {price = price, digest = digests[k + 1]}",
        "  local out = {v[1]}",
        "  for i, name in ipairs(order) do",
        "    out[#out + 1] = values[name]",
        "    out[#out + 1] = v[i + 1]",
        "  end",
        "  n = n + 1",
        "  return wrk.format('POST', '/validate', headers, table.concat(out))",
        "end",
        "function response(status, headers, body)",
        "  if status ~= 200 then error('status ' .. status) end",
        "end",
    ]
    return "\n".join(lines) + "\n"


def wrk(port: int, script: Path, *, seconds: float, threads: int, pid: int) -> Run:
    """Run wrk (``threads`` threads, one connection each) on core 1 against ``port``."""
    cpu = cpu_seconds(pid)
    started = time.monotonic()
    out = subprocess.run(
        [
            *("taskset", "-c", "1", "wrk", f"-t{threads}", f"-c{threads}", f"-d{seconds:.0f}s"),
            *("--latency", "--timeout", "30s", "-s", str(script), f"https://127.0.0.1:{port}"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    run = Run(seconds=time.monotonic() - started, cpu=cpu_seconds(pid) - cpu)
    if "Non-2xx" in out or "error" in out.lower():
        raise RuntimeError(f"wrk saw errors:\n{out}")
    run.requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    run.p50 = _wrk_latency(out, "50%")
    run.p99 = _wrk_latency(out, "99%")
    return run


def _wrk_latency(out: str, quantile: str) -> float:
    match = re.search(rf"^\s*{quantile}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if match is None:
        return float("nan")
    return float(match.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[match.group(2)]


async def closed_loop(
    url: str, units: Callable[[], Unit], *, connections: int, seconds: float, ca: str, pid: int
) -> Run:
    """``connections`` clients, each sending ``units()`` in order, for ``seconds``."""
    context = ssl.create_default_context(cafile=ca)
    run = Run()
    connector = aiohttp.TCPConnector(ssl=context, limit=connections)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(connections):  # open and warm every connection first
            async with session.post(url + "/validate", data=units()[0][1], headers=headers) as r:
                await r.read()
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                for path, body in units():
                    sent = time.perf_counter()
                    async with session.post(url + path, data=body, headers=headers) as response:
                        await response.read()
                        assert response.status == 200, response.status
                    run.latencies.append(time.perf_counter() - sent)
                    run.requests += 1

        cpu = cpu_seconds(pid)
        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        run.seconds = time.monotonic() - started
        run.cpu = cpu_seconds(pid) - cpu
    return run


async def beside(
    url: str,
    large: Callable[[], Unit],
    small: Unit,
    *,
    seconds: float,
    rate: float,
    ca: str,
    pid: int,
) -> tuple[Run, Run]:
    """Large reviews closed-loop on one connection; small ones at ``rate`` on another."""
    context = ssl.create_default_context(cafile=ca)
    headers = {"Content-Type": "application/json"}
    big, little = Run(), Run()
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=1)) as one,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=1)) as two,
    ):
        for session, unit in ((one, large()), (two, small)):
            async with session.post(url + unit[0][0], data=unit[0][1], headers=headers) as r:
                await r.read()
        deadline = time.monotonic() + seconds

        async def send(session: aiohttp.ClientSession, unit: Unit, run: Run) -> None:
            for path, body in unit:
                sent = time.perf_counter()
                async with session.post(url + path, data=body, headers=headers) as response:
                    await response.read()
                    assert response.status == 200, response.status
                run.latencies.append(time.perf_counter() - sent)
                run.requests += 1

        async def large_loop() -> None:
            while time.monotonic() < deadline:
                await send(one, large(), big)

        async def small_loop() -> None:
            start = time.perf_counter()
            for i in itertools.count():
                target = start + i / rate
                if time.monotonic() > deadline:
                    return
                delay = target - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await send(two, small, little)

        cpu = cpu_seconds(pid)
        await asyncio.gather(large_loop(), small_loop())
        big.cpu = cpu_seconds(pid) - cpu
    return big, little


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


# ----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5, help="length of each run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per workload")
    parser.add_argument(
        "--source",
        metavar="DIR",
        help="run the webhook from this source tree (e.g. an older commit, for before/after)",
    )
    parser.add_argument(
        "--bare-server", nargs=2, metavar=("PORT", "CERT_DIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.bare_server:
        bare_server(int(args.bare_server[0]), args.bare_server[1])
        return
    if not shutil.which("taskset") or not shutil.which("wrk"):
        sys.exit("needs wrk and taskset (apt-get install wrk util-linux)")
    os.sched_setaffinity(0, {1})
    work = Path(tempfile.mkdtemp(prefix="raysvc-bench-"))
    write_certs(work)
    ca = str(work / "ca.crt")

    stored = stored_object(padded(sample()))
    small = PairTemplate.build(stored)
    repeated: Unit = list(zip(("/mutate", "/validate"), small.pair(4), strict=True))
    prices = itertools.count(1000)
    big = PairTemplate.build(stored_object(large_rayservice()), app=50)
    large_prices = itertools.count(10**8)

    def large_cold() -> Unit:
        return [("/validate", big.pair(next(large_prices))[0])]

    print(
        f"reviews: sample UPDATE {len(repeated[0][1]) / 1024:.1f} KiB; large UPDATE "
        f"{len(large_cold()[0][1]) / 1024:.0f} KiB. Servers on core 0, load from core 1."
    )
    port, bare_port = free_port(), free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [RAYSVC]
    if args.source:
        boot = "import sys; sys.path.insert(0, sys.argv.pop(1)); from raysvc.cli import main; "
        command = [sys.executable, "-c", boot + "sys.exit(main())", args.source]
    webhook = subprocess.Popen(
        [
            *("taskset", "-c", "0", *command, "webhook", "--cert-dir", str(work)),
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--health-host", "127.0.0.1", "--health-port", str(free_port())),
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
        time.sleep(2)  # the webhook's worker processes start in the background
        servers = {"bare": (bare_port, bare.pid), "raysvc": (port, webhook.pid)}
        threads = 4
        results: dict[tuple[str, str], list[Run]] = {}
        per_run = int(10_000 * args.seconds)
        for _ in range(args.rounds):
            for workload in ("(a) repeated", "(b) apply pairs"):
                for server, (server_port, pid) in servers.items():
                    script = work / "load.lua"
                    if workload == "(a) repeated":  # one price, forever
                        text = pairs_script(small, first=4, count=1, threads=threads)
                    else:
                        first = next(prices)
                        text = pairs_script(small, first=first, count=per_run, threads=threads)
                        prices = itertools.count(first + per_run)
                    script.write_text(text)
                    run = wrk(server_port, script, seconds=args.seconds, threads=threads, pid=pid)
                    results.setdefault((workload, server), []).append(run)
        print(
            f"{'workload':<17}{'server':<8}{'CPU/review':>12}{'ratio':>7}"
            f"{'reviews/s':>11}{'p50':>10}{'p99':>10}"
        )
        for workload in ("(a) repeated", "(b) apply pairs"):
            base = statistics.median(r.cpu_us for r in results[(workload, "bare")])
            for server in servers:
                runs = results[(workload, server)]
                cpu = statistics.median(r.cpu_us for r in runs)
                rate = statistics.median(r.requests / r.seconds for r in runs)
                p50 = statistics.median(r.p50 for r in runs)
                p99 = statistics.median(r.p99 for r in runs)
                print(
                    f"{workload:<17}{server:<8}{cpu:9.0f} µs{base / cpu:7.2f}{rate:11.0f}"
                    f"{ms(p50):>10}{ms(p99):>10}"
                )
        url = f"https://127.0.0.1:{port}"
        alone = asyncio.run(
            closed_loop(
                url, large_cold, connections=1, seconds=args.seconds, ca=ca, pid=webhook.pid
            )
        )
        big_run, small_run = asyncio.run(
            beside(
                url,
                large_cold,
                [repeated[1]],
                seconds=args.seconds * args.rounds,
                rate=200,
                ca=ca,
                pid=webhook.pid,
            )
        )
        print(
            f"(c) large cold /validate alone: {alone.cpu_us / 1000:.1f} ms CPU/review, "
            f"p50 {ms(pct(alone.latencies, 0.5))}, p99 {ms(pct(alone.latencies, 0.99))}"
        )
        print(
            f"(c) beside small reviews at 200/s: large p50 {ms(pct(big_run.latencies, 0.5))} "
            f"p99 {ms(pct(big_run.latencies, 0.99))} ({big_run.requests}); small p50 "
            f"{ms(pct(small_run.latencies, 0.5))} p99 {ms(pct(small_run.latencies, 0.99))} "
            f"({small_run.requests})"
        )
        print(f"webhook RSS (with its worker processes): {rss_kib(webhook.pid) / 1024:.0f} MiB")
    finally:
        for process in (webhook, bare):
            process.terminate()
            process.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
