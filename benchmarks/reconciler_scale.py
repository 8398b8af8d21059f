"""The reconciler at scale: N RayServices on localkube with fake Ray heads.

Three processes, as in a cluster: ``raysvc localkube`` (the API server), ``raysvc reconcile``
(both controllers, default settings unless given), and this driver, which plays the kubelet and
every Ray head (``tests/integration/reconciler/fakeray.py``: one loopback address per head, the
standard ports, applications RUNNING 0.3 s after a PUT). The objects are stored as the mutating
webhook would leave them (defaulted and annotated with ``rayservice.evaluate``).

With ``--clusters-only`` it creates RayClusters (the sample's ``rayClusterConfig``) instead, runs
only the RayCluster controller, and prints startup (until every RayCluster's state is ``ready``)
and idle figures.

Prints:

- **startup**: seconds from the first create until every RayService's status says Running;
- **idle**: API writes per minute while nothing changes (the API server's resourceVersion before
  and after the window), the reconciler's CPU in % of one core over the window, its RSS;
- **serve-only**: for ``--updates`` RayServices one after another, the time from the PATCH of a
  new price until the head received the PUT (p50, p99, max).

There is no baseline process doing the same work (nothing else does); the targets are
absolute: 0 idle writes, <= 5 % CPU, <= 300 MiB RSS, p99 <= 250 ms. The machine load (1-minute
average at the start and end) is printed: other work on the 2 cores shows up in every figure.

Run: ``.venv/bin/python benchmarks/reconciler_scale.py [--count 1000] [--idle-seconds 60]
[--updates 100] [-- extra raysvc reconcile flags]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubernetes_asyncio import client, config

from rayservice import evaluate
from rayservice.crd import rayservice_crds
from reconciler.informer import Informer
from reconciler.kube import KubeClient, kind_of
from tests.builders import sample
from tests.integration.reconciler.fakeray import FakeKubelet, FakeRay

RAYSVC = str(Path(sys.executable).with_name("raysvc"))
NAMESPACE = "bench"


def _annotated(name: str, price: int, old: dict[str, Any] | None = None) -> dict[str, Any]:
    obj = sample()
    obj["metadata"] = {"name": name, "namespace": NAMESPACE}
    text = obj["spec"]["serveConfigV2"].replace("price: 3", f"price: {price}")
    obj["spec"]["serveConfigV2"] = text
    return dict(evaluate(obj, old, check=False).mutated)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _revision(custom: client.CustomObjectsApi) -> int:
    listed = await custom.list_namespaced_custom_object(
        "ray.io", "v1", NAMESPACE, "rayservices", limit=1
    )
    return int(listed["metadata"]["resourceVersion"])


def _running(watched: Informer) -> int:
    """RayServices whose status says Running (RayClusters: ready), from a watch (a list of a
    thousand objects every second would cost the API server more than the reconciler does)."""
    count = 0
    for obj in watched.objects():
        status = obj.get("status") or {}
        if obj["kind"] == "RayCluster":
            count += status.get("state") == "ready"
        else:
            count += status.get("serviceStatus") == "Running" and not status.get(
                "pendingServiceStatus"
            )
    return count


def _cluster(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": sample()["spec"]["rayClusterConfig"],
    }


async def run(args: argparse.Namespace, work: Path) -> None:
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    kubeconfig = work / "kubeconfig"
    localkube = await asyncio.create_subprocess_exec(
        RAYSVC,
        "localkube",
        "--port",
        "0",
        "--kubeconfig-out",
        str(kubeconfig),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    reconciler: asyncio.subprocess.Process | None = None
    try:
        assert localkube.stdout is not None
        await localkube.stdout.readline()
        await config.load_kube_config(config_file=str(kubeconfig))
        async with client.ApiClient() as api:
            ext = client.ApiextensionsV1Api(api)
            for crd in rayservice_crds():
                await ext.create_custom_resource_definition(crd)  # type: ignore[arg-type]
            await client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})  # type: ignore[arg-type]
            custom = client.CustomObjectsApi(api)
            async with FakeRay() as ray, FakeKubelet(api, NAMESPACE, ray=ray) as kubelet:
                reconciler = await asyncio.create_subprocess_exec(
                    RAYSVC,
                    "reconcile",
                    "--kubeconfig",
                    str(kubeconfig),
                    "--health-port",
                    "0",
                    "--metrics-port",
                    "0",
                    "--log-level",
                    "warning",
                    *args.reconcile_args,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                kind = "RayCluster" if args.clusters_only else "RayService"
                watched = Informer(
                    KubeClient(api), kind_of("ray.io/v1", kind), namespaces=(NAMESPACE,)
                )
                watching = asyncio.create_task(watched.run())
                await _startup(args, custom, watched)
                watching.cancel()
                await _idle(args, custom, reconciler.pid)
                if not args.clusters_only:
                    await _serve_only(args, custom, kubelet)
    finally:
        for process in (reconciler, localkube):
            if process is not None and process.returncode is None:
                process.terminate()
                await asyncio.wait_for(process.wait(), 30)
        print(f"load average at end: {os.getloadavg()[0]:.2f}")


async def _startup(
    args: argparse.Namespace, custom: client.CustomObjectsApi, rayservices: Informer
) -> None:
    start = time.monotonic()
    if args.clusters_only:
        plural, pending = "rayclusters", [_cluster(f"rc-{i:04d}") for i in range(args.count)]
    else:
        plural, pending = "rayservices", [_annotated(f"rs-{i:04d}", 3) for i in range(args.count)]
    semaphore = asyncio.Semaphore(16)

    async def create(obj: dict[str, Any]) -> None:
        async with semaphore:
            await custom.create_namespaced_custom_object("ray.io", "v1", NAMESPACE, plural, obj)

    await asyncio.gather(*(create(obj) for obj in pending))
    created = time.monotonic() - start
    while (running := _running(rayservices)) < args.count:
        if time.monotonic() - start > args.startup_limit:
            print(f"startup: only {running}/{args.count} Running after {args.startup_limit} s")
            return
        await asyncio.sleep(1.0)
    print(
        f"startup: {args.count} {plural} created in {created:.1f} s, "
        f"all {'ready' if args.clusters_only else 'Running'} after {time.monotonic() - start:.1f} s"
    )


async def _idle(args: argparse.Namespace, custom: client.CustomObjectsApi, pid: int) -> None:
    await asyncio.sleep(args.settle_seconds)
    revision, cpu, start = await _revision(custom), _cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(args.idle_seconds)
    elapsed = time.monotonic() - start
    writes = await _revision(custom) - revision
    used = _cpu_seconds(pid) - cpu
    print(
        f"idle over {elapsed:.0f} s: {writes * 60 / elapsed:.1f} API writes/min, "
        f"reconciler CPU {100 * used / elapsed:.2f} % of a core, RSS {_rss_mib(pid):.0f} MiB"
    )


async def _serve_only(
    args: argparse.Namespace, custom: client.CustomObjectsApi, kubelet: FakeKubelet
) -> None:
    latencies = []
    for i in range(args.updates):
        name = f"rs-{i:04d}"
        current = await custom.get_namespaced_custom_object(
            "ray.io", "v1", NAMESPACE, "rayservices", name
        )
        cluster = current["status"]["activeServiceStatus"]["rayClusterName"]
        head = kubelet.head(cluster)
        seen = len(head.put_times)
        body = _annotated(name, 4, current)
        patch = {
            "metadata": {"annotations": body["metadata"]["annotations"]},
            "spec": {"serveConfigV2": body["spec"]["serveConfigV2"]},
        }
        start = time.monotonic()
        await custom.patch_namespaced_custom_object(  # type: ignore[call-arg]
            "ray.io",
            "v1",
            NAMESPACE,
            "rayservices",
            name,
            patch,
            _content_type="application/merge-patch+json",
        )
        while len(head.put_times) == seen:
            if time.monotonic() - start > 30:
                raise RuntimeError(f"{name}: no PUT within 30 s")
            await asyncio.sleep(0.002)
        latencies.append((head.put_times[seen] - start) * 1000)
        await asyncio.sleep(0.05)
    if latencies:
        ordered = sorted(latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(
            f"serve-only apply -> dashboard PUT over {len(ordered)} updates: "
            f"p50 {statistics.median(ordered):.0f} ms, p99 {p99:.0f} ms, max {ordered[-1]:.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--settle-seconds", type=float, default=15.0)
    parser.add_argument("--startup-limit", type=float, default=900.0)
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--clusters-only", action="store_true")
    parser.add_argument("reconcile_args", nargs="*", help="extra raysvc reconcile flags")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        asyncio.run(run(args, Path(work)))


if __name__ == "__main__":
    main()
