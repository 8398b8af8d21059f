"""localkube as local mode runs it: HTTPS, opened only by the bearer token of its kubeconfig."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import ssl
import stat
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from certs.issue import ServingNames, issue_ca, issue_serving_cert
from localkube import LocalKube, Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")
T = TypeVar("T")
KUBECTL = Path("/usr/bin/kubectl")


def _settings(directory: Path, token: str) -> Settings:
    now = dt.datetime.now(dt.UTC)
    ca = issue_ca(now=now)
    leaf = issue_serving_cert(
        ca=ca,
        names=ServingNames(
            "localkube", "default", ip_addresses=(ipaddress.ip_address("127.0.0.1"),)
        ),
        now=now,
    )
    for name, data in (
        ("ca.crt", ca.cert_pem()),
        ("tls.crt", leaf.cert_pem()),
        ("tls.key", leaf.key_pem()),
    ):
        (directory / name).write_bytes(data)
    return Settings(
        tls_cert=directory / "tls.crt",
        tls_key=directory / "tls.key",
        tls_ca=directory / "ca.crt",
        token=token,
    )


def _get(url: str, ca: Path, token: str | None = None) -> tuple[int, dict[str, object] | str]:
    context = ssl.create_default_context(cafile=str(ca))
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            body = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as e:
        body, status = e.read().decode(), e.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


async def test_a_request_without_the_token_gets_401_as_kube_apiserver_answers(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, "s3cret-token")
    async with LocalKube(settings) as kube:
        assert kube.url.startswith("https://127.0.0.1:")
        ca = tmp_path / "ca.crt"
        status, body = await _run(_get, f"{kube.url}/api/v1/namespaces", ca)
        assert status == 401
        assert body == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }
        status, _ = await _run(_get, f"{kube.url}/api/v1/namespaces", ca, "wrong-token")
        assert status == 401
        status, body = await _run(_get, f"{kube.url}/api/v1/namespaces", ca, "s3cret-token")
        assert status == 200
        assert isinstance(body, dict)
        assert body["kind"] == "NamespaceList"
        # the streaming subresources (a process on this machine) are closed the same way
        for sub in ("exec?command=sh&stdin=true", "attach?stdin=true", "portforward?ports=80"):
            status, _ = await _run(_get, f"{kube.url}/api/v1/namespaces/default/pods/p/{sub}", ca)
            assert status == 401
        # public health and version need no credentials, as with kube-apiserver's defaults
        assert (await _run(_get, f"{kube.url}/healthz", ca))[0] == 200
        assert (await _run(_get, f"{kube.url}/version", ca))[0] == 200


@pytest.mark.kubectl
@pytest.mark.skipif(not KUBECTL.exists(), reason="/usr/bin/kubectl is not installed")
async def test_its_kubeconfig_is_private_and_opens_it_to_kubectl(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "another-token")
    async with LocalKube(settings) as kube:
        config = kube.write_kubeconfig(tmp_path / "kubeconfig")
        assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
        done = await _run(
            subprocess.run,
            [str(KUBECTL), "--kubeconfig", str(config), "get", "namespaces", "-o", "name"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "HOME": str(tmp_path)},
        )
        assert done.returncode == 0, done.stderr
        assert "namespace/default" in done.stdout.split()


async def _run(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(function, *args, **kwargs)
