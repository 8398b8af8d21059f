"""A node that was SIGKILLed leaves its namespaces, directories and Pod processes behind; the
next node to start on the machine removes them."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from localkube import LocalKube, Settings
from localkube.node import FileLogs, LocalNode, netns
from localkube.node.network import DEFAULT_ROOT
from tests.nodekit import alive, eventually, needs_root, netns_names, pod

pytestmark = [needs_root, pytest.mark.asyncio(loop_scope="session")]


async def test_a_killed_nodes_namespaces_processes_and_files_are_removed_at_the_next_start(
    tmp_path: Path,
) -> None:
    logs = FileLogs(tmp_path / "logs")
    async with LocalKube(Settings(), logs=logs) as kube:
        config = kube.write_kubeconfig(tmp_path / "kubeconfig")
        node = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "localkube.node",
            "--kubeconfig",
            str(config),
            "--logs",
            str(tmp_path / "logs"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            assert node.stdout is not None
            ready = await asyncio.wait_for(node.stdout.readline(), 60)
            instance = ready.decode().split()[-1]
            async with client.ApiClient(client.Configuration(host=kube.url)) as api:
                core = client.CoreV1Api(api)
                await core.create_namespaced_pod("default", pod("sleeper", ["sleep", "600"]))  # type: ignore[arg-type]

                async def running() -> list[int]:
                    names = [n for n in netns_names(instance) if not n.endswith("-c")]
                    return [pid for n in names for pid in netns.pids_in(netns.NETNS_RUN_DIR / n)]

                pids = await eventually(running, within=60)
            node.send_signal(signal.SIGKILL)
            await node.wait()
            assert netns_names(instance)  # left behind
            assert alive(pids)
            assert (DEFAULT_ROOT / instance).exists()
        finally:
            if node.returncode is None:
                node.kill()
                await node.wait()

        async with (
            client.ApiClient(client.Configuration(host=kube.url)) as api,
            LocalNode(api, logs=logs),
        ):
            assert netns_names(instance) == []
            assert not alive(pids)
            left = [DEFAULT_ROOT / instance, DEFAULT_ROOT / f"{instance}.lock"]
            assert not [path for path in left if path.exists()]
