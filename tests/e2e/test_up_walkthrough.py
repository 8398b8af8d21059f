"""The seed walkthrough against ``raysvc up`` with real Ray, through kubectl and HTTP.

One ``raysvc up`` runs for the module; the tests follow the walkthrough in order, each starting
from where the previous one left the RayService (as a person following the guide would):
the apps answer; a price change is applied in place; a replicas change touches nothing; a
cluster upgrade under a steady client loses no request; a head whose processes die is replaced
past the (lowered) threshold; deleting the RayService removes every object and Ray process;
Ctrl-C leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pexpect
import pytest
import yaml

from localkube.node import netns
from tests.builders import SAMPLE_PATH
from tests.commands import KUBECTL, RAYSVC, kubectl
from tests.nodekit import alive, needs_root

pytestmark = [pytest.mark.e2e, needs_root]

STARTUP_SECONDS = 240


@dataclass
class Up:
    """A running ``raysvc up`` and what it printed."""

    process: subprocess.Popen[str]
    state: Path
    lines: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    """When the process started: raysvc up's elapsed times count from about here."""
    serve_port: int = 0
    dashboard_port: int = 0
    cluster_netns: str = ""

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, within: float) -> re.Match[str]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"raysvc up never printed {pattern!r}:\n" + "\n".join(self.lines))

    def tail(self, count: int = 40) -> str:
        """The last lines raysvc up printed, for a failure's message."""
        return "\n".join(["raysvc up printed:", *self.lines[-count:]])

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return kubectl(self.kubeconfig, self.state, *args, stdin=stdin, timeout=120).out

    @contextlib.contextmanager
    def streaming(
        self, *args: str, on_line: Callable[[str], None] | None = None
    ) -> Iterator[subprocess.Popen[str]]:
        """A kubectl that keeps running (port-forward, logs -f, get --watch), stopped at the end.

        With ``on_line``, a thread hands it every line until kubectl ends.
        """
        process = subprocess.Popen(
            [KUBECTL, "--kubeconfig", str(self.kubeconfig), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "HOME": str(self.state)},
        )
        assert process.stdout is not None
        stdout = process.stdout
        reader = None
        if on_line is not None:
            handle = on_line

            def read() -> None:
                for line in stdout:
                    handle(line)

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
        try:
            yield process
        finally:
            process.terminate()
            process.wait(10)
            if reader is not None:
                reader.join(10)
            stdout.close()

    def post(self, path: str, body: Any, timeout: float = 10) -> str:
        request = urllib.request.Request(
            f"http://localhost:{self.serve_port}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return str(response.read().decode())


def manifest(**changes: Any) -> str:
    """The sample, with a short deletion delay and the walkthrough's changes applied."""
    doc = yaml.safe_load(SAMPLE_PATH.read_text())
    doc["spec"]["rayClusterDeletionDelaySeconds"] = 10
    text = doc["spec"]["serveConfigV2"]
    if "price" in changes:
        doc["spec"]["serveConfigV2"] = text.replace("price: 3", f"price: {changes['price']}")
    cluster = doc["spec"]["rayClusterConfig"]
    if "replicas" in changes:
        cluster["workerGroupSpecs"][0]["replicas"] = changes["replicas"]
    if "ray_version" in changes:
        cluster["rayVersion"] = changes["ray_version"]
    if "threshold" in changes:
        doc["spec"]["deploymentUnhealthySecondThreshold"] = changes["threshold"]
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    state = tmp_path_factory.mktemp("up")
    first = state / "rayservice.yaml"
    first.write_text(manifest())
    errors = (state / "stderr").open("w")
    process = subprocess.Popen(
        [
            RAYSVC,
            "up",
            "-f",
            str(first),
            "--state-dir",
            str(state / "state"),
            "--api-port",
            "0",
            "--serve-port",
            "0",
            "--dashboard-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    running = Up(process, state / "state")
    reader = threading.Thread(target=running.read, daemon=True)
    reader.start()
    try:
        running.cluster_netns = running.wait_for(r"namespace (rsv\w+-c)", 60).group(1)
        running.wait_for("every application is RUNNING", STARTUP_SECONDS)
        running.serve_port = int(running.wait_for(r"serve +http://localhost:(\d+)", 5).group(1))
        running.dashboard_port = int(
            running.wait_for(r"dashboard +http://localhost:(\d+)", 5).group(1)
        )
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(10)
        assert process.stdout is not None
        process.stdout.close()
        errors.close()
        print("\n".join(running.lines))


def rayclusters(up: Up) -> list[dict[str, Any]]:
    items = json.loads(up.kubectl("get", "rayclusters", "-o", "json"))["items"]
    return [c for c in items if not c["metadata"].get("deletionTimestamp")]


def test_the_applications_answer_through_the_serve_service(up: Up) -> None:
    assert up.post("/fruit/", ["MANGO", 2]) == "6"
    assert up.post("/calc/", ["MUL", 3]) == "15 pizzas please!"
    table = up.kubectl("get", "rayservice").splitlines()
    name, status, endpoints = table[1].split()[:3]
    assert (name, status) == ("rayservice-sample", "Running")
    assert int(endpoints) >= 1
    (cluster,) = rayclusters(up)
    assert cluster["metadata"]["name"].startswith("rayservice-sample-raycluster-")
    version = json.loads(
        urllib.request.urlopen(
            f"http://localhost:{up.dashboard_port}/api/version", timeout=10
        ).read()
    )
    assert version["ray_version"]


def test_port_forward_to_the_head_service_reaches_the_dashboard(up: Up) -> None:
    """Walkthrough step 5.2 (on another local port: raysvc up already serves 8265)."""
    with up.streaming(
        *("port-forward", "svc/rayservice-sample-head-svc", "--address", "0.0.0.0", ":8265")
    ) as forward:
        assert forward.stdout is not None
        line = forward.stdout.readline()
        found = re.search(r"Forwarding from 0\.0\.0\.0:(\d+) -> 8265", line)
        assert found, line
        url = f"http://127.0.0.1:{found.group(1)}/api/version"
        with urllib.request.urlopen(url, timeout=20) as response:
            assert json.loads(response.read())["ray_version"]


def test_a_curl_pod_reaches_the_serve_service_by_name(up: Up) -> None:
    """Walkthrough steps 6.1-6.3, one shot each: kubectl run of a curl Pod, deleted after."""
    for path, body, answer in (
        ("fruit", '["MANGO", 2]', "6"),
        ("calc", '["MUL", 3]', "15 pizzas please!"),
    ):
        out = up.kubectl(
            *("run", "curl", "--image=radial/busyboxplus:curl", "--rm", "-i", "--restart=Never"),
            *("--", "curl", "-s", "-X", "POST", "-H", "Content-Type: application/json"),
            *(f"rayservice-sample-serve-svc:8000/{path}/", "-d", body),
        )
        assert out.startswith(answer), out
        assert 'pod "curl" deleted' in out


def test_an_interactive_curl_session_gets_a_prompt_and_exits_cleanly(up: Up) -> None:
    """Walkthrough step 6.1 literally: kubectl run -i --tty, curl at the prompt, exit."""
    session = pexpect.spawn(
        KUBECTL,
        [
            *("--kubeconfig", str(up.kubeconfig), "run", "curl"),
            *("--image=radial/busyboxplus:curl", "-i", "--tty"),
        ],
        env={**os.environ, "HOME": str(up.state)},
        dimensions=(30, 120),
        encoding="utf-8",
        timeout=60,
    )
    try:
        session.expect(r"[#$] $")
        session.sendline(
            "curl -X POST -H 'Content-Type: application/json' "
            "rayservice-sample-serve-svc:8000/fruit/ -d '[\"MANGO\", 2]'"
        )
        session.expect("6")
        session.expect(r"[#$] $")
        session.sendline("exit")
        session.expect(pexpect.EOF)
    finally:
        session.close()
    assert session.exitstatus == 0
    up.kubectl("delete", "pod", "curl", "--grace-period=1")


def test_exec_and_logs_reach_the_head_pod(up: Up) -> None:
    (head,) = up.kubectl("get", "pods", "-l", "ray.io/node-type=head", "-o", "name").split()
    status = up.kubectl("exec", head, "--", "ray", "status")
    assert "Active:" in status
    assert "headgroup" in status
    with up.streaming("logs", "-f", head, "--tail=3") as follow:
        assert follow.stdout is not None
        assert follow.stdout.readline()
        time.sleep(2)
        assert follow.poll() is None  # still following


def test_a_price_change_is_applied_in_place(up: Up) -> None:
    (before,) = rayclusters(up)
    path = "{.status.activeServiceStatus.applicationStatuses.fruit_app"
    path += ".serveDeploymentStatuses.MangoStand.status}"
    seen: list[str] = []

    def follow(line: str) -> None:
        if line.strip() and (not seen or seen[-1] != line.strip()):
            seen.append(line.strip())

    watch = ("get", "rayservice", "rayservice-sample", "--watch")
    with up.streaming(*watch, "-o", f'jsonpath={path}{{"\\n"}}', on_line=follow):
        up.kubectl("apply", "-f", "-", stdin=manifest(price=4))
        deadline = time.monotonic() + 60
        while up.post("/fruit/", ["MANGO", 2]) != "8":
            assert time.monotonic() < deadline, "the new price never answered"
            time.sleep(0.2)
        while (not seen or seen[-1] != "HEALTHY") and time.monotonic() < deadline:
            time.sleep(0.2)
    assert "UPDATING" in seen, seen
    assert seen[-1] == "HEALTHY"
    (after,) = rayclusters(up)
    assert after["metadata"]["name"] == before["metadata"]["name"]


def test_replicas_change_nothing_in_the_running_cluster(up: Up) -> None:
    (before,) = rayclusters(up)
    out = up.kubectl("apply", "-f", "-", stdin=manifest(price=4, replicas=2))
    assert "configured" in out
    time.sleep(3)
    (after,) = rayclusters(up)
    assert after["metadata"]["name"] == before["metadata"]["name"]
    assert after["spec"]["workerGroupSpecs"][0]["replicas"] == 1
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


class Client:
    """Sends ``["MANGO", 2]`` at about 25 requests/s and counts the answers (bounded in time).

    A request fails when it gets an error or no answer within 30 s; how long the answers took
    is kept too (two Ray clusters starting on two cores can make an answer slow, not wrong)."""

    def __init__(self, up: Up, seconds: float) -> None:
        self.up = up
        self.answers: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.failed_at: list[str] = []
        self.seconds_taken: list[float] = []
        """Each failure, at raysvc up's elapsed time (to read beside its progress lines)."""
        self.stop = threading.Event()
        self.seconds = seconds
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        end = time.monotonic() + self.seconds
        while not self.stop.is_set() and time.monotonic() < end:
            start = time.monotonic()
            try:
                answer = self.up.post("/fruit/", ["MANGO", 2], timeout=30)
                self.answers[answer] = self.answers.get(answer, 0) + 1
                self.seconds_taken.append(time.monotonic() - start)
            except (OSError, urllib.error.URLError) as e:
                key = type(e).__name__
                self.failures[key] = self.failures.get(key, 0) + 1
                self.failed_at.append(f"{start - self.up.started:.1f}s sent, {key}: {e}")
            time.sleep(max(0.0, 0.04 - (time.monotonic() - start)))


def test_a_cluster_upgrade_switches_traffic_without_a_failed_request(up: Up) -> None:
    (old,) = rayclusters(up)
    load = Client(up, seconds=300)
    load.thread.start()
    try:
        time.sleep(2)
        changed = manifest(price=4, replicas=2, ray_version="2.100.0")
        up.kubectl("apply", "-f", "-", stdin=changed)
        deadline = time.monotonic() + 420
        seen_two = False
        while True:
            names = [c["metadata"]["name"] for c in rayclusters(up)]
            seen_two = seen_two or len(names) == 2
            if seen_two and names and old["metadata"]["name"] not in names:
                break
            assert time.monotonic() < deadline, f"the upgrade did not finish: {names}\n{up.tail()}"
            time.sleep(1)
    finally:
        load.stop.set()
        load.thread.join(30)
    total = sum(load.answers.values()) + sum(load.failures.values())
    slowest = max(load.seconds_taken, default=0.0)
    print(
        f"during the upgrade: {total} requests, answers {load.answers}, failed {load.failures}, "
        f"slowest answer {slowest:.2f} s"
    )
    assert total >= 20 * 30
    assert load.failures == {}, f"{load.failed_at}\n{up.tail(60)}"
    assert set(load.answers) == {"8"}
    (new,) = rayclusters(up)
    assert new["spec"]["rayVersion"] == "2.100.0"
    assert new["spec"]["workerGroupSpecs"][0]["replicas"] == 2
    assert up.post("/fruit/", ["MANGO", 2]) == "8"


def _netns_of(ip: str, cluster_netns: str) -> str:
    prefix = cluster_netns.removesuffix("-c")
    for name in sorted(os.listdir("/run/netns")):
        if not name.startswith(prefix) or name == cluster_netns:
            continue
        shown = subprocess.run(
            ["ip", "-n", name, "-4", "-o", "addr", "show"], capture_output=True, text=True
        )
        if f" {ip}/" in shown.stdout:
            return name
    raise AssertionError(f"no Pod namespace holds {ip}")


def test_a_head_whose_processes_die_is_replaced_and_traffic_recovers(up: Up) -> None:
    up.kubectl(
        "apply",
        "-f",
        "-",
        stdin=manifest(price=4, replicas=2, ray_version="2.100.0", threshold=5),
    )
    (old,) = rayclusters(up)
    head_ip = old["status"]["head"]["podIP"]
    pids = netns.pids_in(netns.NETNS_RUN_DIR / _netns_of(head_ip, up.cluster_netns))
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 420
    while True:
        names = [c["metadata"]["name"] for c in rayclusters(up)]
        if names and old["metadata"]["name"] not in names:
            break
        assert time.monotonic() < deadline, f"never replaced: {names}\n{up.tail()}"
        time.sleep(1)
    events = up.kubectl("get", "events", "--field-selector", "involvedObject.kind=RayService")
    assert "UnhealthyClusterReplaced" in events
    deadline = time.monotonic() + 60
    while True:
        try:
            if up.post("/fruit/", ["MANGO", 2]) == "8":
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, f"traffic did not recover\n{up.tail()}"
        time.sleep(0.5)


def test_deleting_the_rayservice_removes_every_object_and_ray_process(up: Up) -> None:
    prefix = up.cluster_netns.removesuffix("-c")
    pods = [n for n in os.listdir("/run/netns") if n.startswith(prefix) and n != up.cluster_netns]
    pids = [pid for name in pods for pid in netns.pids_in(netns.NETNS_RUN_DIR / name)]
    assert pids
    up.kubectl("delete", "rayservice", "rayservice-sample")
    deadline = time.monotonic() + 120
    while True:
        left = up.kubectl("get", "rayservices,rayclusters,pods,services", "-o", "name")
        remaining = [line for line in left.split() if not line.startswith("service/kubernetes")]
        if not remaining and not alive(pids):
            break
        assert time.monotonic() < deadline, f"left behind: {remaining}, {alive(pids)}"
        time.sleep(1)
    names = [n for n in os.listdir("/run/netns") if n.startswith(prefix)]
    assert names == [up.cluster_netns]


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *_descendants(int(child))]
    return found


def test_ctrl_c_stops_everything_and_leaves_nothing_behind(up: Up) -> None:
    processes = _descendants(up.process.pid)  # the webhook and its workers, at least
    assert processes
    up.process.send_signal(signal.SIGINT)
    assert up.process.wait(90) == 0
    assert not alive(processes)
    with socket.socket() as probe:  # nothing listens on the serve port any more
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no listener
        probe.bind(("127.0.0.1", up.serve_port))
    prefix = up.cluster_netns.removesuffix("-c")
    assert not [n for n in os.listdir("/run/netns") if n.startswith(prefix)]
    assert not Path("/tmp/rsvnode", prefix.removeprefix("rsv")).exists()
    assert "stopped: every process, namespace and interface of this run is gone" in up.lines[-1]
