"""Fixtures shared by the integration tests: a localkube API server and a client for it.

``localkube`` and ``kube_api`` are session-scoped and live in the session event loop, so a test
module using them marks its tests ``pytest.mark.asyncio(loop_scope="session")``. Tests share the
server: each works in its own namespace (``kube_namespace``) and cleans up what is global.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from kubernetes_asyncio import client

from localkube import LocalKube, Settings


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def localkube() -> AsyncIterator[LocalKube]:
    """One localkube API server for the whole session (plain HTTP on a free port)."""
    async with LocalKube(Settings()) as kube:
        yield kube


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def kube_api(localkube: LocalKube) -> AsyncIterator[client.ApiClient]:
    """A kubernetes-asyncio ApiClient pointed at the session's localkube."""
    configuration = client.Configuration(host=localkube.url)
    async with client.ApiClient(configuration) as api:
        yield api


@pytest_asyncio.fixture(loop_scope="session")
async def kube_namespace(kube_api: client.ApiClient) -> AsyncIterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(kube_api)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    await core.delete_namespace(name)
