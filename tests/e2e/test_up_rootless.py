"""``raysvc up`` without root: the sample with real Ray, reached from the host, nothing left.

Run as a user without root, ``raysvc up`` makes user, mount, PID and network namespaces of its
own (``localkube.node.rootless``). When the tests run as root (CI), they start it as uid 1000 of
a user namespace mapped onto root: the process has no capability on the host (it cannot touch
the host's network or mounts, and may make namespaces only as an unprivileged user may), while
the files it needs stay readable (CI's Python lives under ``/root``, mode 0700).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.commands import RAYSVC
from tests.e2e.test_up_walkthrough import STARTUP_SECONDS, Up, manifest
from tests.nodekit import alive

pytestmark = [pytest.mark.e2e]

UID = 1000  # the uid raysvc up has in the user namespace the tests start it in, as root


def _host_network() -> tuple[set[str], str]:
    """The host's network namespaces and interfaces, to compare before and after."""
    names = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    return names, "\n".join(sorted(line.split(":")[1] for line in links.stdout.splitlines()))


def _start(state: Path) -> tuple[subprocess.Popen[str], Up, threading.Thread]:
    first = state / "rayservice.yaml"
    first.write_text(manifest())
    command = [RAYSVC, "up", "-f", str(first), "--state-dir", str(state / "state")]
    command += ["--api-port", "0", "--serve-port", "0", "--dashboard-port", "0"]
    if os.geteuid() == 0:
        command = ["unshare", "--user", f"--map-user={UID}", f"--map-group={UID}", "--", *command]
    with (state / "stderr").open("w") as errors:  # the child keeps its own copy
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
    running = Up(process, state / "state")
    reader = threading.Thread(target=running.read, daemon=True)
    reader.start()
    return process, running, reader


def _close(process: subprocess.Popen[str], reader: threading.Thread) -> None:
    """Close the output pipe once every process writing to it is gone and it was read out."""
    reader.join(60)
    assert process.stdout is not None
    process.stdout.close()


def _namespace_members(parent: int) -> list[int]:
    """Every process in the PID namespace of ``parent``'s child (raysvc up's PID 1)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    assert len(children) == 1, children
    inner = os.readlink(f"/proc/{children[0]}/ns/pid")
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == inner:
                    members.append(int(entry))
            except OSError:
                continue
    return members


def _stop(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            return process.wait(90)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def _wait_gone(pids: list[int], within: float) -> list[int]:
    deadline = time.monotonic() + within
    while (left := alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture(scope="module")
def rootless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Up, tuple[set[str], str]]]:
    before = _host_network()
    state = tmp_path_factory.mktemp("rootless")
    process, running, reader = _start(state)
    try:
        running.wait_for("every application is RUNNING", STARTUP_SECONDS)
        running.serve_port = int(running.wait_for(r"serve +http://localhost:(\d+)", 5).group(1))
        yield running, before
    finally:
        _stop(process)
        _close(process, reader)
        print("\n".join(running.lines))


def test_the_sample_answers_on_the_hosts_loopback_without_root(
    rootless: tuple[Up, tuple[set[str], str]],
) -> None:
    up, before = rootless
    assert up.post("/fruit/", ["MANGO", 2]) == "6"
    assert up.post("/calc/", ["MUL", 3]) == "15 pizzas please!"
    table = up.kubectl("get", "rayservice").splitlines()
    assert table[1].split()[:2] == ["rayservice-sample", "Running"]
    pods = up.kubectl("get", "pods", "-l", "ray.io/is-ray-node=yes", "-o", "name").split()
    assert len(pods) == 2, pods
    # The Pods' namespaces, bridge and veths are the run's own: the host's network is as it was.
    assert _host_network() == before


def test_sigterm_stops_every_process_and_leaves_nothing(
    rootless: tuple[Up, tuple[set[str], str]],
) -> None:
    up, before = rootless
    members = _namespace_members(up.process.pid)
    assert len(members) > 5, members  # raysvc up, the webhook, Ray's processes
    assert _stop(up.process) == 0
    assert not alive(members)
    assert "stopped: every process, namespace and interface of this run is gone" in up.lines[-1]
    assert _host_network() == before
    root = Path(f"/tmp/rsvnode-{UID if os.geteuid() == 0 else os.getuid()}")
    assert not [p for p in root.iterdir() if not p.name.endswith(".lock")]


def test_a_killed_raysvc_up_leaves_no_process_behind(tmp_path: Path) -> None:
    """SIGKILL of the process the user started: its namespaces' PID 1 stops everything."""
    process, running, reader = _start(tmp_path)
    members: list[int] = []
    try:
        running.wait_for(r"API server on https://127\.0\.0\.1:\d+", 60)
        running.wait_for(r"Pod \S+-head-\S+: Running", 120)  # Ray's processes are starting
        members = _namespace_members(process.pid)
    finally:
        _stop(process, signal.SIGKILL)
        left = _wait_gone(members, 60)
        _close(process, reader)
    assert len(members) > 3, members  # raysvc up, the webhook, Ray's first processes
    assert left == []
