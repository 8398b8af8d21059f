"""Fixtures of the reconciler's integration tests: a localkube of their own with raysvc's CRDs,
the real webhook registered in it over TLS, fake Ray below, and the reconciler in-process.

The session's API server serves ``raysvc crds`` (the standalone profile), and the mutating and
validating webhook configurations point at a real ``raysvc webhook`` process, so every
RayService a test applies is defaulted, validated and annotated as in a cluster.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from kubernetes_asyncio import client

from localkube import LocalKube, Settings
from rayservice.crd import rayservice_crds
from tests.integration.reconciler.fakeray import FakeKubelet
from tests.integration.webhook.support import Webhook, write_cert_dir

NO_WEBHOOK_LABEL = "test.raysvc.io/no-webhook"


def _hook(kind: str, url: str, ca: str) -> dict[str, Any]:
    return {
        "name": f"{kind}.raysvc.io",
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "timeoutSeconds": 10,
        "clientConfig": {"url": url, "caBundle": ca},
        # a namespace labelled so plays "the webhook was away"
        "namespaceSelector": {
            "matchExpressions": [{"key": NO_WEBHOOK_LABEL, "operator": "DoesNotExist"}]
        },
        "rules": [
            {
                "apiGroups": ["ray.io"],
                "apiVersions": ["v1", "v1alpha1"],
                "resources": ["rayservices"],
                "operations": ["CREATE", "UPDATE"],
            }
        ],
    }


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def rk_kube(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalKube]:
    """A localkube serving raysvc's CRDs, with the real webhook registered."""
    cert_dir = tmp_path_factory.mktemp("rk-certs")
    ca = write_cert_dir(cert_dir)
    webhook = await asyncio.to_thread(Webhook, cert_dir)
    bundle = base64.b64encode(ca.cert_pem()).decode()
    async with LocalKube(Settings()) as kube:
        async with client.ApiClient(client.Configuration(host=kube.url)) as api:
            ext = client.ApiextensionsV1Api(api)
            for crd in rayservice_crds():
                await ext.create_custom_resource_definition(crd)  # type: ignore[arg-type]
            admission = client.AdmissionregistrationV1Api(api)
            base = f"https://127.0.0.1:{webhook.port}"
            await admission.create_mutating_webhook_configuration(
                {
                    "metadata": {"name": "raysvc"},
                    "webhooks": [_hook("mutate", f"{base}/mutate", bundle)],
                }  # type: ignore[arg-type]
            )
            await admission.create_validating_webhook_configuration(
                {
                    "metadata": {"name": "raysvc"},
                    "webhooks": [_hook("validate", f"{base}/validate", bundle)],
                }  # type: ignore[arg-type]
            )
        try:
            yield kube
        finally:
            await asyncio.to_thread(webhook.stop)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def rk_api(rk_kube: LocalKube) -> AsyncIterator[client.ApiClient]:
    async with client.ApiClient(client.Configuration(host=rk_kube.url)) as api:
        yield api


@pytest_asyncio.fixture(loop_scope="session")
async def namespace(rk_api: client.ApiClient) -> AsyncIterator[str]:
    name = f"rs-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(rk_api)
    await core.create_namespace({"metadata": {"name": name}})  # type: ignore[arg-type]
    yield name
    await core.delete_namespace(name)


@pytest_asyncio.fixture(loop_scope="session")
async def unhooked_namespace(rk_api: client.ApiClient) -> AsyncIterator[str]:
    """A namespace the webhook configurations do not select."""
    name = f"rs-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(rk_api)
    body = {"metadata": {"name": name, "labels": {NO_WEBHOOK_LABEL: "true"}}}
    await core.create_namespace(body)  # type: ignore[arg-type]
    yield name
    await core.delete_namespace(name)


@pytest_asyncio.fixture(loop_scope="session")
async def kubelet(rk_api: client.ApiClient, namespace: str) -> AsyncIterator[FakeKubelet]:
    async with FakeKubelet(rk_api, namespace) as fake:
        yield fake


@pytest.fixture(autouse=True)
def no_reconcile_crashes(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A reconcile that raises something unexpected is a bug, even when a retry hides it.

    Every reconciler record is built (debug level), so a log call that cannot be made fails
    here rather than in a user's terminal."""
    caplog.set_level(logging.DEBUG, logger="reconciler")
    yield
    crashes = [r for r in caplog.records if r.getMessage() == "reconcile crashed"]
    assert not crashes, f"{len(crashes)} reconciles crashed: {crashes[0].exc_text}"
