"""What kubectl's interactive commands cost against localkube and the local node.

One localkube and one LocalNode in this process (root needed), one Pod running a small aiohttp
server (``/`` answers ``ok``, ``/bulk?mb=N`` streams N MiB). Measured in the same run:

- HTTP latency, a new connection per request (as curl and kubectl port-forward users make
  them), through three paths: straight to the Pod IP from the cluster namespace (the baseline),
  through ``LocalNode.expose`` (the service proxy on a host port), and through
  ``kubectl port-forward`` (WebSocket + SPDY, through localkube and the node). p50 and p99, and
  the ratio of each p50 to the baseline's;
- throughput of one download of ``--mb`` MiB through the baseline and through port-forward;
- ``kubectl exec POD -- true`` wall time against ``kubectl get pod POD`` (kubectl's start and
  one API request: the part exec cannot avoid), medians.

Run: ``.venv/bin/python benchmarks/streams.py [--requests 300] [--mb 64] [--execs 15]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.nodekit import Cluster, PortForward, local_cluster, pod

SERVER = """
import asyncio
from aiohttp import web
async def ok(request):
    return web.Response(text="ok")
async def bulk(request):
    response = web.StreamResponse()
    await response.prepare(request)
    block = b"0" * (1 << 20)
    for _ in range(int(request.query.get("mb", "1"))):
        await response.write(block)
    return response
app = web.Application()
app.add_routes([web.get("/", ok), web.get("/bulk", bulk)])
web.run_app(app, port=8080, print=None, access_log=None)
"""


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latencies(session: aiohttp.ClientSession, url: str, count: int) -> list[float]:
    """Seconds per request, each on a new connection (the session does not keep them)."""
    taken = []
    for _ in range(count):
        started = time.perf_counter()
        async with session.get(url) as response:
            assert await response.read() == b"ok"
        taken.append(time.perf_counter() - started)
    return taken


async def download(session: aiohttp.ClientSession, url: str) -> tuple[int, float]:
    started = time.perf_counter()
    size = 0
    async with session.get(url) as response:
        async for chunk in response.content.iter_chunked(1 << 16):
            size += len(chunk)
    return size, time.perf_counter() - started


async def pipe_bytes(argv: list[str]) -> tuple[int, float]:
    """Bytes a command writes to its standard output, and the seconds until it ended."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    size = 0
    while chunk := await process.stdout.read(1 << 16):
        size += len(chunk)
    await process.wait()
    return size, time.perf_counter() - started


async def timed(run: Callable[[], Awaitable[tuple[int, str, str]]], count: int) -> list[float]:
    taken = []
    for _ in range(count):
        started = time.perf_counter()
        code, _, err = await run()
        assert code == 0, err
        taken.append(time.perf_counter() - started)
    return taken


async def measure(cluster: Cluster, args: argparse.Namespace) -> None:
    probe = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    body = pod("bench", ["python", "-c", SERVER], labels={"app": "bench"}, readinessProbe=probe)
    await cluster.create("/api/v1/namespaces/default/pods", body)
    ready = await cluster.ready("default", "bench")
    ip = ready["status"]["podIP"]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "bench"},
        "spec": {"selector": {"app": "bench"}, "ports": [{"port": 8080}]},
    }
    await cluster.create("/api/v1/namespaces/default/services", service)
    exposed = await cluster.node.expose("default", "bench", 8080)
    forward = await PortForward.start(cluster, "pod/bench", 8080)
    fresh = aiohttp.TCPConnector(force_close=True)
    inside = cluster.node.network.connector(force_close=True)
    try:
        async with (
            aiohttp.ClientSession(connector=inside) as direct,
            aiohttp.ClientSession(connector=fresh) as host,
        ):
            paths = {
                "direct to the Pod IP (baseline)": (direct, f"http://{ip}:8080"),
                "LocalNode.expose host port": (host, f"http://127.0.0.1:{exposed.port}"),
                "kubectl port-forward": (host, f"http://127.0.0.1:{forward.port}"),
            }
            for session, url in paths.values():  # warm up every path
                await latencies(session, f"{url}/", 20)
            results = {
                name: await latencies(session, f"{url}/", args.requests)
                for name, (session, url) in paths.items()
            }
            base = statistics.median(results["direct to the Pod IP (baseline)"])
            print(f"HTTP GET, new connection each, {args.requests} requests per path")
            print(f"{'path':34} {'p50 ms':>8} {'p99 ms':>8} {'p50 ratio':>10}")
            for name, values in results.items():
                p50, p99 = statistics.median(values), quantile(values, 0.99)
                print(f"{name:34} {p50 * 1e3:8.2f} {p99 * 1e3:8.2f} {p50 / base:10.2f}")
            print(f"\none download of {args.mb} MiB")
            rates = {}
            for name in ("direct to the Pod IP (baseline)", "kubectl port-forward"):
                session, url = paths[name]
                size, seconds = await download(session, f"{url}/bulk?mb={args.mb}")
                assert size == args.mb << 20
                rates[name] = size / seconds / (1 << 20)
            for name, rate in rates.items():
                ratio = rate / rates["direct to the Pod IP (baseline)"]
                print(f"{name:34} {rate:8.1f} MiB/s {ratio:6.3f}")
    finally:
        await forward.stop()
    print(f"\nkubectl exec -- head -c {args.mb}M /dev/zero, read through a pipe")
    rates = {}
    for name, argv in (
        ("the same command run locally (baseline)", ["head", "-c", f"{args.mb}M", "/dev/zero"]),
        (
            "kubectl exec",
            [
                *cluster.kubectl_argv(),
                "exec",
                "bench",
                "--",
                "head",
                "-c",
                f"{args.mb}M",
                "/dev/zero",
            ],
        ),
    ):
        size, seconds = await pipe_bytes(argv)
        assert size == args.mb << 20, size
        rates[name] = size / seconds / (1 << 20)
    for name, rate in rates.items():
        ratio = rate / rates["the same command run locally (baseline)"]
        print(f"{name:40} {rate:8.1f} MiB/s {ratio:6.3f}")
    gets = await timed(lambda: cluster.run_kubectl("get", "pod", "bench"), args.execs)
    execs = await timed(lambda: cluster.run_kubectl("exec", "bench", "--", "true"), args.execs)
    print(f"\nkubectl, median of {args.execs}")
    print(f"{'kubectl get pod (baseline)':34} {statistics.median(gets) * 1e3:8.1f} ms")
    ratio = statistics.median(execs) / statistics.median(gets)
    print(f"{'kubectl exec -- true':34} {statistics.median(execs) * 1e3:8.1f} ms {ratio:6.2f}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--execs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="raysvc-bench-streams-") as tmp:
        async with local_cluster(Path(tmp)) as cluster:
            await measure(cluster, args)


if __name__ == "__main__":
    asyncio.run(main())
