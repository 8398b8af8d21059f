"""The Serve dashboard client against a real HTTP server: whole answers, bounded answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
import pytest_asyncio
from aiohttp import web

from reconciler import dashboard
from reconciler.dashboard import (
    AppStatus,
    DashboardClient,
    DashboardError,
    DeploymentStatus,
    ServeStatus,
)
from reconciler.metrics import Metrics

APPS = 400  # with their deployed configs, about 2 MB: many TCP segments, many reads


def status_document(count: int) -> bytes:
    apps = {
        f"app{i}": {
            "status": "RUNNING",
            "deployments": {"D": {"status": "HEALTHY", "message": ""}},
            "deployed_app_config": {"name": f"app{i}", "import_path": "m:a", "pad": "x" * 5000},
        }
        for i in range(count)
    }
    return orjson.dumps({"applications": apps})


@pytest_asyncio.fixture
async def head() -> AsyncIterator[str]:
    body = status_document(APPS)

    async def applications(_: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(_)
        for start in range(0, len(body), 8192):  # as a slow head sends it
            await response.write(body[start : start + 8192])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/api/serve/applications/", applications)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_a_large_status_is_read_whole(head: str) -> None:
    async with DashboardClient(metrics=Metrics()) as client:
        status = await client.applications(head)
    assert len(status.apps) == APPS
    assert status.all_running


@pytest.mark.asyncio
async def test_a_status_over_the_limit_is_an_error_not_a_partial_read(
    head: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboard, "_MAX_BODY", len(status_document(APPS)) - 1)
    async with DashboardClient(metrics=Metrics()) as client:
        with pytest.raises(DashboardError, match="larger than"):
            await client.applications(head)


@pytest.mark.parametrize(
    ("deployment", "settled"),
    [("HEALTHY", True), ("UPSCALING", True), ("DOWNSCALING", True), ("UPDATING", False)],
)
def test_autoscaling_deployments_are_settled_updating_ones_are_not(
    deployment: str, settled: bool
) -> None:
    app = AppStatus("RUNNING", deployments={"D": DeploymentStatus(deployment)})
    assert ServeStatus({"a": app}).settled is settled
