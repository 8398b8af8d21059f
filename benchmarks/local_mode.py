"""Local mode's figures: ``raysvc up`` on the sample with real Ray, as a user runs it.

Runs ``raysvc up`` (free ports, a state directory of its own) and prints:

- **startup**: seconds from starting ``raysvc up`` until it says every application is RUNNING;
- **serve-only**: seconds from ``kubectl apply`` of a new MangoStand price until ``["MANGO", 2]``
  answers with it;
- **cluster upgrade**: seconds from ``kubectl apply`` of a new rayVersion until the old RayCluster
  is gone, and the requests a client sending about 25 per second saw fail meanwhile;
- **memory**: the PSS and RSS of every process of the stack (``raysvc up``, the webhook, every
  Ray process of every Pod), at rest after the upgrade;
- **proxy**: the time of one HTTP request (``GET /-/healthz`` of the Serve proxy, a new
  connection each time) through the host port the service proxy exposes, against the same
  request sent straight to the head Pod's IP from a socket made in the pod network: the
  baseline, measured in the same run, doing the same unavoidable work.

``--rootless`` runs ``raysvc up`` without root (as uid 1000 of a user namespace mapped onto root
when started as root, so it has no capability on the host), in namespaces of its own; the proxy
figure is then skipped (its baseline needs a socket inside the run's private pod network).

Run: ``.venv/bin/python benchmarks/local_mode.py [--requests 500] [--rootless]``. Other work on
the 2 cores shows in every figure; the load average is printed at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.procs import memory_gib
from localkube.node import netns
from tests.builders import SAMPLE_PATH

RAYSVC = str(Path(sys.executable).with_name("raysvc"))
KUBECTL = "/usr/bin/kubectl"


def _manifest(**changes: object) -> str:
    doc = yaml.safe_load(SAMPLE_PATH.read_text())
    doc["spec"]["rayClusterDeletionDelaySeconds"] = 5
    if "price" in changes:
        text = doc["spec"]["serveConfigV2"]
        doc["spec"]["serveConfigV2"] = text.replace("price: 3", f"price: {changes['price']}")
    if "ray_version" in changes:
        doc["spec"]["rayClusterConfig"]["rayVersion"] = changes["ray_version"]
    return yaml.safe_dump(doc, sort_keys=False)


class Stack:
    def __init__(self, work: Path, *, rootless: bool = False) -> None:
        self.state = work / "state"
        prefix = []
        if rootless and os.geteuid() == 0:
            prefix = ["unshare", "--user", "--map-user=1000", "--map-group=1000", "--"]
        (work / "sample.yaml").write_text(_manifest())
        self.lines: list[str] = []
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [
                *prefix,
                *(RAYSVC, "up", "-f", str(work / "sample.yaml"), "--state-dir", str(self.state)),
                *("--api-port", "0", "--serve-port", "0", "--dashboard-port", "0"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.serve_port = 0
        self.cluster_netns = ""

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, within: float = 300) -> re.Match[str]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            time.sleep(0.05)
        raise RuntimeError(f"raysvc up never printed {pattern!r}")

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.state / "kubeconfig"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout

    def mango(self) -> str:
        request = urllib.request.Request(
            f"http://localhost:{self.serve_port}/fruit/",
            data=b'["MANGO", 2]',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(response.read().decode())

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(120)


def _until(check: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("condition not met in time")
        time.sleep(0.05)


def _request(connect: Callable[[], socket.socket]) -> float:
    start = time.perf_counter()
    with connect() as sock:
        sock.sendall(b"GET /-/healthz HTTP/1.1\r\nHost: serve\r\nConnection: close\r\n\r\n")
        while sock.recv(65536):
            pass
    return (time.perf_counter() - start) * 1000


def _latency(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):.3f} ms, p99 {p99:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rootless", action="store_true", help="run raysvc up without root")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as work:
        stack = Stack(Path(work), rootless=args.rootless)
        try:
            stack.cluster_netns = stack.wait_for(r"namespace (rsv\w+-c)", 60).group(1)
            stack.wait_for("every application is RUNNING")
            print(
                f"startup: both applications RUNNING after {time.monotonic() - stack.started:.1f} s"
            )
            stack.serve_port = int(stack.wait_for(r"serve +http://localhost:(\d+)").group(1))

            start = time.monotonic()
            stack.kubectl("apply", "-f", "-", stdin=_manifest(price=4))
            _until(lambda: stack.mango() == "8", 60)
            print(
                f"serve-only: the new price answered {time.monotonic() - start:.2f} s after apply"
            )

            old = json.loads(stack.kubectl("get", "rayclusters", "-o", "json"))["items"][0]
            answers: dict[str, int] = {}
            taken: list[float] = []
            stop = threading.Event()

            def load() -> None:
                while not stop.is_set():
                    began = time.monotonic()
                    try:
                        key = stack.mango()
                        taken.append(time.monotonic() - began)
                    except OSError as e:
                        key = type(e).__name__
                    answers[key] = answers.get(key, 0) + 1
                    time.sleep(max(0.0, 0.04 - (time.monotonic() - began)))

            client = threading.Thread(target=load, daemon=True)
            client.start()
            start = time.monotonic()
            stack.kubectl("apply", "-f", "-", stdin=_manifest(price=4, ray_version="2.100.0"))

            def old_gone() -> bool:
                names = stack.kubectl("get", "rayclusters", "-o", "name").split()
                return f"raycluster.ray.io/{old['metadata']['name']}" not in names

            _until(old_gone, 600)
            took = time.monotonic() - start
            stop.set()
            client.join(10)
            failed = {k: v for k, v in answers.items() if k != "8"}
            print(
                f"cluster upgrade: old cluster gone {took:.1f} s after apply (deletion delay 5 s); "
                f"{sum(answers.values())} requests, failed {sum(failed.values())} {failed}, "
                f"slowest answer {max(taken, default=0.0):.2f} s"
            )

            pss, rss = memory_gib(stack.process.pid)
            print(f"memory of the whole stack at rest: PSS {pss:.2f} GiB, RSS {rss:.2f} GiB")

            if args.rootless:
                print("proxy: skipped (the run's pod network is private to its namespaces)")
            else:
                head = json.loads(stack.kubectl("get", "rayclusters", "-o", "json"))["items"][0]
                head_ip = head["status"]["head"]["podIP"]
                cluster = netns.NETNS_RUN_DIR / stack.cluster_netns

                def direct() -> socket.socket:
                    sock = netns.socket_in(cluster, socket.AF_INET, socket.SOCK_STREAM)
                    sock.setblocking(True)
                    sock.connect((head_ip, 8000))
                    return sock

                def proxied() -> socket.socket:
                    return socket.create_connection(("127.0.0.1", stack.serve_port))

                for connect in (direct, proxied):  # warm up both paths
                    for _ in range(20):
                        _request(connect)
                baseline = [_request(direct) for _ in range(args.requests)]
                through = [_request(proxied) for _ in range(args.requests)]
                added = statistics.median(through) - statistics.median(baseline)
                print(
                    f"proxy: straight to the Pod {_latency(baseline)}; through the host port "
                    f"{_latency(through)}; added p50 {added:.3f} ms "
                    f"({statistics.median(through) / statistics.median(baseline):.2f}x)"
                )
        finally:
            stack.stop()
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
