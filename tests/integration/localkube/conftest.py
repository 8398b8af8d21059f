"""Fixtures of the localkube contract suite: the test CRDs, clients, faults reset, helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio
import yaml
from kubernetes_asyncio import client

from localkube import LocalKube

CRD_DIR = Path(__file__).parent / "crds"


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
