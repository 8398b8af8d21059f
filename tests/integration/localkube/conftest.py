"""Fixtures of the localkube contract suite: the test CRDs, clients, faults reset, helpers."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio
import trustme
import yaml
from aiohttp import web
from kubernetes_asyncio import client

from localkube import LocalKube
from tests.integration.localkube.hookserver import SERVICE_NAMESPACE, HookServer, Registrar

CRD_DIR = Path(__file__).parent / "crds"
KUBECTL = Path("/usr/bin/kubectl")


def crd_documents() -> list[dict[str, Any]]:
    """The test-only RayService and RayCluster CRDs."""
    return [yaml.safe_load(p.read_text()) for p in sorted(CRD_DIR.glob("*.yaml"))]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def ray_crds(localkube: LocalKube, kube_api: client.ApiClient) -> list[str]:
    """The ray.io CRDs, created once per session; returns their names."""
    ext = client.ApiextensionsV1Api(kube_api)
    names = []
    for doc in crd_documents():
        try:
            await ext.create_custom_resource_definition(cast(Any, doc))
        except client.ApiException as e:
            if e.status != 409:
                raise
        names.append(doc["metadata"]["name"])
    return names


@pytest.fixture
def core(kube_api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api)


@pytest.fixture
def custom(kube_api: client.ApiClient, ray_crds: list[str]) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


@pytest.fixture(autouse=True)
def reset_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """Faults and the bookmark interval never leak from one test to the next."""
    yield
    if "localkube" in request.fixturenames:
        kube: LocalKube = request.getfixturevalue("localkube")
        kube.faults.clear()
        kube.bookmark_interval = kube.settings.bookmark_interval


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_kube(tmp_path: Path) -> AsyncIterator[Callable[..., LocalKube]]:
    """Factory of dedicated servers for tests that need their own (stopped afterwards)."""
    started: list[LocalKube] = []

    def make(**kwargs: Any) -> LocalKube:
        kube = LocalKube(**kwargs)
        started.append(kube)
        return kube

    yield make
    for kube in started:
        await kube.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def hooks() -> AsyncIterator[HookServer]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", f"hook.{SERVICE_NAMESPACE}.svc")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    server = HookServer(ca)
    app = web.Application()
    app.router.add_post("/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    server.port = runner.addresses[0][1]
    yield server
    await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="session")
async def register(
    kube_api: client.ApiClient, hooks: HookServer, kube_namespace: str
) -> AsyncIterator[Registrar]:
    """Store a webhook configuration scoped to the test namespace; removed after the test."""
    api = client.AdmissionregistrationV1Api(kube_api)
    made: list[tuple[bool, str]] = []

    async def make(
        path: str,
        *,
        mutating: bool = False,
        name: str = "",
        rules: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> str:
        config_name = name or f"{kube_namespace}-{len(made)}"
        hook: dict[str, Any] = {
            "name": f"{path.strip('/').split('?')[0] or 'root'}.{config_name}.example.com",
            "clientConfig": {"url": hooks.url(path), "caBundle": hooks.ca_bundle},
            "rules": rules
            or [
                {
                    "apiGroups": ["ray.io", ""],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE", "DELETE"],
                    "resources": ["rayservices", "configmaps"],
                }
            ],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": kube_namespace}},
            **extra,
        }
        body = {"metadata": {"name": config_name}, "webhooks": [hook]}
        if mutating:
            await api.create_mutating_webhook_configuration(body)  # type: ignore[arg-type]
        else:
            await api.create_validating_webhook_configuration(body)  # type: ignore[arg-type]
        made.append((mutating, config_name))
        return str(hook["name"])

    yield make
    for mutating, config_name in made:
        if mutating:
            await api.delete_mutating_webhook_configuration(config_name)
        else:
            await api.delete_validating_webhook_configuration(config_name)


Kubectl = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest_asyncio.fixture(loop_scope="session")
async def kubectl(
    localkube: LocalKube, tmp_path: Path, kube_namespace: str, ray_crds: list[str]
) -> Kubectl:
    """Run kubectl against the session's localkube (own kubeconfig and discovery cache).

    kubectl runs as a subprocess awaited on the loop the server lives in. Test modules that
    use it carry the ``kubectl`` marker and skip when ``/usr/bin/kubectl`` is absent.
    """
    config = localkube.write_kubeconfig(tmp_path / "kubeconfig", namespace=kube_namespace)
    env = {**os.environ, "KUBECONFIG": str(config), "HOME": str(tmp_path)}

    async def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            str(KUBECTL),
            "--cache-dir",
            str(tmp_path / "cache"),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(
            process.communicate(stdin.encode() if stdin else None), 60
        )
        return int(process.returncode or 0), out.decode(), err.decode()

    return run
