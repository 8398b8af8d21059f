"""``raysvc localkube`` as a user runs it: prints its URL, writes a kubeconfig, keeps state."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes_asyncio import client, config

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def serve(tmp_path: Path, *extra: str) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "raysvc",
        "localkube",
        "--port",
        "0",
        "--kubeconfig-out",
        str(tmp_path / "kubeconfig"),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    return process, line.decode().strip()


async def stop(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), 30)


async def test_the_command_serves_and_its_kubeconfig_works_with_kubernetes_asyncio(
    tmp_path: Path,
) -> None:
    process, url = await serve(tmp_path, "--state", str(tmp_path / "state.db"))
    try:
        kubeconfig = yaml.safe_load((tmp_path / "kubeconfig").read_text())
        assert kubeconfig["clusters"][0]["cluster"]["server"] == url
        configuration = client.Configuration()
        await config.load_kube_config(
            config_file=str(tmp_path / "kubeconfig"), client_configuration=configuration
        )
        async with client.ApiClient(configuration) as api:
            await client.CoreV1Api(api).create_namespaced_config_map(
                "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="kept"))
            )
    finally:
        assert await stop(process) == 0
    process, url = await serve(tmp_path, "--state", str(tmp_path / "state.db"))
    try:
        configuration = client.Configuration(host=url)
        async with client.ApiClient(configuration) as api:
            kept = await client.CoreV1Api(api).read_namespaced_config_map("kept", "default")
            assert kept.metadata.name == "kept"
    finally:
        assert await stop(process) == 0
