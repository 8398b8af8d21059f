"""The interactive kubectl commands against the local node: exec (exit codes, stdin, a
terminal that follows resizes, the Pod's network, environment and working directory),
port-forward to a Pod and to a Service, ``kubectl run --rm -i`` printing a Service's answer,
an interactive ``kubectl run -i --tty`` session, ``logs -f`` and ``attach`` following a
container, and deletion ending interactive shells and exec sessions. No Ray here.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pexpect
import pytest
import pytest_asyncio

from localkube.node import netns
from tests.commands import KUBECTL
from tests.nodekit import (
    Cluster,
    PortForward,
    alive,
    eventually,
    local_cluster,
    needs_root,
    pod,
)

pytestmark = [needs_root, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

NS = "default"
PODS = f"/api/v1/namespaces/{NS}/pods"
SERVICES = f"/api/v1/namespaces/{NS}/services"
PROMPT = r"[#$] $"

# A fruit stand on port 8000: POST ["MANGO", 2] answers 6 (the sample's prices), GET a greeting.
FRUIT_STAND = """
import http.server, json
PRICES = {"MANGO": 3, "ORANGE": 2, "PEAR": 1}
class Stand(http.server.BaseHTTPRequestHandler):
    def answer(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        fruit, amount = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        price = PRICES.get(fruit)
        self.answer(json.dumps(-1 if price is None else price * amount).encode())
    def do_GET(self):
        self.answer(b"fruit stand\\n")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", 8000), Stand).serve_forever()
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """A fruit stand Pod behind the Service ``fruit-svc`` (port 8000)."""
    async with local_cluster(tmp_path_factory.mktemp("node")) as c:
        body = pod(
            "fruit",
            ["python", "-c", FRUIT_STAND],
            labels={"app": "fruit"},
            env=[{"name": "GREETING", "value": "hello from the stand"}],
            workingDir="/etc",
            ports=[{"name": "serve", "containerPort": 8000}],
            readinessProbe={"httpGet": {"path": "/", "port": "serve"}, "periodSeconds": 1},
        )
        await c.create(PODS, body)
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "fruit-svc"},
            "spec": {
                "selector": {"app": "fruit"},
                "ports": [{"name": "serve", "port": 8000, "targetPort": "serve"}],
            },
        }
        await c.create(SERVICES, service)
        await c.ready(NS, "fruit")
        yield c


def spawn(cluster: Cluster, *args: str) -> pexpect.spawn[str]:
    """kubectl on a pseudo-terminal of 30 rows and 100 columns (drive it from a thread)."""
    argv = [f"--kubeconfig={cluster.kubeconfig}", f"--cache-dir={cluster.cache}", *args]
    return pexpect.spawn(KUBECTL, argv, dimensions=(30, 100), timeout=30, encoding="utf-8")


def matched(child: pexpect.spawn[str], group: int) -> str:
    """A group of what the last ``expect`` matched."""
    assert isinstance(child.match, re.Match)
    return str(child.match.group(group))


async def _post(session: aiohttp.ClientSession, url: str, body: Any) -> Any:
    async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=10)) as r:
        assert r.status == 200
        return await r.json()


async def test_kubectl_exec_returns_the_exit_code_and_keeps_stdout_and_stderr_apart(
    cluster: Cluster,
) -> None:
    code, out, err = await cluster.run_kubectl(
        "exec", "fruit", "--", "sh", "-c", "echo out; echo err >&2; exit 3"
    )
    assert (code, out) == (3, "out\n")
    assert err.splitlines() == ["err", "command terminated with exit code 3"]
    code, out, err = await cluster.run_kubectl("exec", "fruit", "--", "true")
    assert (code, out, err) == (0, "", "")


async def test_kubectl_exec_sends_large_output_whole(cluster: Cluster) -> None:
    script = "head -c 30000000 /dev/zero | tr '\\0' a; echo; echo done >&2"
    code, out, err = await cluster.run_kubectl("exec", "fruit", "--", "sh", "-c", script)
    assert code == 0, err
    assert len(out) == 30_000_001
    assert set(out[:-1]) == {"a"}
    assert err == "done\n"


async def test_kubectl_exec_runs_in_the_pods_network_with_its_environment_and_directory(
    cluster: Cluster,
) -> None:
    private = pod("private", ["python", "-m", "http.server", "8081", "--bind", "127.0.0.1"])
    await cluster.create(PODS, private)
    await cluster.ready(NS, "private")
    probe = "curl -s -o /dev/null -w '%{http_code}\\n' --retry 20 --retry-connrefused"
    code, out, err = await cluster.run_kubectl(
        "exec", "private", "--", "sh", "-c", f"{probe} --retry-delay 0 127.0.0.1:8081/"
    )
    assert (code, out) == (0, "200\n"), err  # only the Pod's own localhost has that server
    code, out, err = await cluster.run_kubectl(
        "exec", "fruit", "--", "sh", "-c", 'pwd; echo "$GREETING"; echo "$HOSTNAME"'
    )
    assert (code, out.splitlines()) == (0, ["/etc", "hello from the stand", "fruit"]), err


async def test_an_exec_whose_client_leaves_is_ended_in_the_pod(cluster: Cluster) -> None:
    fruit = await cluster.pod(NS, "fruit")
    sandbox = next(
        s for s in cluster.node.network._sandboxes.values() if s.ip == fruit["status"]["podIP"]
    )
    before = set(netns.pids_in(sandbox.path))
    client = await asyncio.create_subprocess_exec(
        *cluster.kubectl_argv(),
        "exec",
        "fruit",
        "--",
        "sleep",
        "302",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )

    async def started() -> set[int]:
        return set(netns.pids_in(sandbox.path)) - before

    exec_pids = await eventually(started, within=10)
    client.kill()  # the client goes away without a goodbye
    await client.wait()

    async def ended() -> bool:
        return not alive(list(exec_pids))

    await eventually(ended, within=10)
    assert set(alive(list(before))) == before  # the container itself runs on


async def test_a_v4_client_gets_the_channels_and_the_exit_status_the_kubelet_sends(
    cluster: Cluster,
) -> None:
    # v4 has no way to end stdin but closing the connection: the command reads one line
    query = "command=sh&command=-c&command=head+-n1%3B+echo+oops+%3E%262%3B+exit+2"
    url = f"{cluster.kube.url}{PODS}/fruit/exec?{query}&stdin=true&stdout=true&stderr=true"
    messages: list[tuple[int, bytes]] = []
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws,
    ):
        assert ws.protocol == "v4.channel.k8s.io"
        await ws.send_bytes(b"\x00typed\n")
        async with asyncio.timeout(10):
            async for message in ws:
                messages.append((message.data[0], message.data[1:]))
                if message.data[0] == 3:
                    break
    assert messages[0] == (1, b"")  # the session is open
    assert (1, b"typed\n") in messages
    assert (2, b"oops\n") in messages
    status = json.loads(messages[-1][1])
    assert status["status"] == "Failure"
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "2"}]


async def test_kubectl_exec_i_passes_stdin_through_and_ends_it(cluster: Cluster) -> None:
    data = b"".join(b"line %d\n" % i for i in range(20000))  # about 200 KB: more than a pipe
    code, out, err = await cluster.run_kubectl("exec", "-i", "fruit", "--", "wc", "-c", stdin=data)
    assert (code, out.strip()) == (0, str(len(data))), err
    code, out, err = await cluster.run_kubectl("exec", "-i", "fruit", "--", "cat", stdin=b"hi\n")
    assert (code, out) == (0, "hi\n"), err


async def test_kubectl_exec_it_gives_a_terminal_that_follows_resizes(cluster: Cluster) -> None:
    def session() -> tuple[list[str], int | None]:
        child = spawn(cluster, "exec", "-it", "fruit", "--", "sh")
        try:
            child.expect(PROMPT)
            child.sendline("stty size; echo $TERM; tty")
            child.expect(r"(\d+ \d+)\r\n(\S+)\r\n(/dev/pts/\d+)")
            first = [matched(child, 1), matched(child, 2)]
            child.expect(PROMPT)
            child.setwinsize(40, 120)
            child.sendline("stty size")
            child.expect(r"(\d+ \d+)\r\n")
            resized = matched(child, 1)
            child.sendline("exit 7")
            child.expect(pexpect.EOF)
        finally:
            child.close()
        return [*first, resized], child.exitstatus

    seen, status = await asyncio.to_thread(session)
    assert seen == ["30 100", "xterm", "40 120"]
    assert status == 7


async def test_port_forward_to_a_pod_and_to_a_service_answers_on_localhost(
    cluster: Cluster,
) -> None:
    for target in ("pod/fruit", "svc/fruit-svc"):
        forward = await PortForward.start(cluster, target, 8000)
        try:
            url = f"http://127.0.0.1:{forward.port}/fruit/"
            async with aiohttp.ClientSession() as session:
                answers = [await _post(session, url, ["MANGO", 2]) for _ in range(5)]
                answers += await asyncio.gather(
                    *(_post(session, url, [fruit, 3]) for fruit in ("PEAR", "ORANGE", "KIWI"))
                )
            assert answers == [6, 6, 6, 6, 6, 3, 6, -1], target
        finally:
            err = await forward.stop()
        assert "error" not in err.lower(), err


async def test_port_forward_to_a_closed_port_reports_what_the_node_could_not_reach(
    cluster: Cluster,
) -> None:
    forward = await PortForward.start(cluster, "pod/fruit", 9999)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", forward.port)
        async with asyncio.timeout(10):
            assert await reader.read() == b""  # the local connection just closes
        writer.close()
        async with asyncio.timeout(10):
            await forward.process.wait()  # kubectl gives up the forward, as it does in a cluster
    finally:
        err = await forward.stop()
    assert "error forwarding port 9999 to pod fruit" in err
    assert "failed to connect to localhost:9999 inside namespace" in err
    assert "connection refused" in err


async def test_the_proxy_subresources_reach_a_pod_and_a_service_over_http(
    cluster: Cluster,
) -> None:
    code, out, err = await cluster.run_kubectl("get", "--raw", f"{PODS}/fruit:8000/proxy/", "-v=0")
    assert (code, out) == (0, "fruit stand\n"), err
    url = f"{cluster.kube.url}{SERVICES}"
    async with aiohttp.ClientSession() as session:
        for name in ("fruit-svc", "fruit-svc:serve", "fruit-svc:8000", "http:fruit-svc:8000"):
            assert await _post(session, f"{url}/{name}/proxy/fruit/?q=1", ["MANGO", 2]) == 6
        pod_url = f"{cluster.kube.url}{PODS}/fruit:8000/proxy/"
        async with session.get(pod_url, headers={"X-Note": "prix en €"}) as response:
            assert response.status == 200  # a header beyond Latin-1 is passed on as sent
            assert await response.text() == "fruit stand\n"
        async with session.get(f"{cluster.kube.url}{PODS}/fruit:9999/proxy/") as response:
            assert response.status == 503
            assert "error trying to reach service" in (await response.json())["message"]
        async with session.get(f"{url}/fruit-svc:nope/proxy/") as response:
            assert response.status == 503
            message = (await response.json())["message"]
            assert message == 'no endpoints available for service "fruit-svc"'


async def test_kubectl_run_rm_i_prints_a_services_answer_and_deletes_its_pod(
    cluster: Cluster,
) -> None:
    code, out, err = await cluster.run_kubectl(
        "run",
        "curl",
        "--image=radial/busyboxplus:curl",
        "--rm",
        "-i",
        "--restart=Never",
        "--",
        "curl",
        "-s",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "fruit-svc:8000/fruit/",
        "-d",
        '["MANGO", 2]',
    )
    assert code == 0, err
    assert out.startswith("6")  # curl prints no newline; kubectl's own line follows
    assert out.removeprefix("6").strip() == 'pod "curl" deleted'
    code, _, err = await cluster.run_kubectl("get", "pod", "curl")
    assert code == 1
    assert 'pods "curl" not found' in err
    code, out, _ = await cluster.run_kubectl(
        "get", "events", "--field-selector=reason=DefaultCommand", "-o", "json"
    )
    messages = [e["message"] for e in json.loads(out)["items"]]
    assert any("radial/busyboxplus:curl" in m and "args run as the command" in m for m in messages)


async def test_an_interactive_kubectl_run_gets_a_prompt_runs_curl_and_exits_cleanly(
    cluster: Cluster,
) -> None:
    request = (
        "curl -s -X POST -H 'Content-Type: application/json' "
        "fruit-svc.default.svc.cluster.local:8000/fruit/ -d '[\"MANGO\", 2]'; echo"
    )

    def session() -> tuple[str, int | None]:
        child = spawn(
            cluster,
            "run",
            "shell",
            "--image=radial/busyboxplus:curl",
            "-i",
            "--tty",
            "--rm",
            "--restart=Never",
        )
        child.expect(PROMPT)  # the shell's prompt (printed before kubectl attached, replayed)
        child.sendline(request)
        child.expect(r"\r\n(-?\d+)\r\n")
        answer = matched(child, 1)
        child.expect(PROMPT)
        child.sendline("exit")
        child.expect(pexpect.EOF)
        child.close()
        return answer, child.exitstatus

    answer, status = await asyncio.to_thread(session)
    assert (answer, status) == ("6", 0)

    async def gone() -> bool:
        code, _, _ = await cluster.run_kubectl("get", "pod", "shell")
        return code == 1

    await eventually(gone, within=20)


async def test_kubectl_logs_f_and_attach_follow_what_a_container_writes(cluster: Cluster) -> None:
    ticker = 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done'
    await cluster.create(PODS, pod("ticker", ["sh", "-c", ticker]))
    await cluster.ready(NS, "ticker")
    for args in (("logs", "-f", "ticker", "--timestamps"), ("attach", "ticker")):
        process = await asyncio.create_subprocess_exec(
            KUBECTL,
            f"--kubeconfig={cluster.kubeconfig}",
            f"--cache-dir={cluster.cache}",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert process.stdout is not None
        lines: list[list[str]] = []
        arrived: list[float] = []
        try:
            async with asyncio.timeout(20):
                while len(lines) < 6:
                    lines.append((await process.stdout.readline()).decode().split())
                    arrived.append(time.monotonic())
        finally:
            process.terminate()
            await process.wait()
        ticks = [int(line[-1]) for line in lines]
        assert ticks == list(range(ticks[0], ticks[0] + 6)), args
        assert arrived[-1] - arrived[1] > 0.5, args  # streamed as written, not read at once
        if "--timestamps" in args:
            stamps = [line[0] for line in lines]
            assert stamps == sorted(stamps)
            assert all(s.endswith("Z") for s in stamps)


async def test_deleting_a_pod_ends_its_interactive_shell_and_its_exec_sessions(
    cluster: Cluster,
) -> None:
    shell: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "shell"},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {"name": "shell", "image": "busybox", "stdin": True, "tty": True},
                {"name": "sidecar", "image": "busybox", "command": ["sleep", "300"]},
            ],
        },
    }
    await cluster.create(PODS, shell)
    ready = await cluster.ready(NS, "shell")
    session = await asyncio.create_subprocess_exec(
        KUBECTL,
        f"--kubeconfig={cluster.kubeconfig}",
        f"--cache-dir={cluster.cache}",
        "exec",
        "shell",
        "-c",
        "shell",
        "--",
        "sleep",
        "301",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    sandbox = next(
        s for s in cluster.node.network._sandboxes.values() if s.ip == ready["status"]["podIP"]
    )

    async def both_running() -> list[int]:
        pids = netns.pids_in(sandbox.path)
        return pids if len(pids) >= 3 else []  # /bin/sh on its terminal, the sidecar, the exec

    pids = await eventually(both_running, within=10)
    started = time.monotonic()
    code, _, err = await cluster.run_kubectl("delete", "pod", "shell", "--wait=false")
    assert code == 0, err
    # The interactive shell ignores SIGTERM (the sidecar does not, so its status changes): the
    # Pod stays Terminating through the node's status writes until the grace period ends.
    terminating = await cluster.pod(NS, "shell")
    assert terminating["metadata"]["deletionGracePeriodSeconds"] == 2

    async def gone() -> bool:
        code, _, _ = await cluster.run_kubectl("get", "pod", "shell")
        return code == 1

    await eventually(gone, within=15)
    assert 1.5 < time.monotonic() - started < 10
    async with asyncio.timeout(10):
        assert await session.wait() != 0  # the exec session ended with the Pod
    assert not alive(pids)
