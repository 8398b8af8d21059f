"""Large reviews take turns (``large_concurrency``); a turn that comes too late is refused."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.builders import admission_review, head_container, sample
from tests.integration.webhook.support import review_body
from webhook.server import WebhookSettings, Workers, make_app


def large_review(uid: str) -> bytes:
    obj = sample()
    head_container(obj)["env"] = [{"name": f"VAR_{i}", "value": "v" * 40} for i in range(500)]
    return review_body(admission_review(obj, uid=uid))


@pytest.mark.asyncio
async def test_a_review_that_waits_past_the_deadline_for_its_turn_gets_408() -> None:
    executor = ThreadPoolExecutor(1)
    busy = executor.submit(time.sleep, 2.5)  # the one worker is busy with an earlier review
    settings = WebhookSettings(large_concurrency=1, body_timeout=1.0)
    server = TestServer(make_app(settings, workers=Workers(lambda: executor)))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:

            async def post(uid: str) -> int:
                url = server.make_url("/validate")
                async with session.post(url, data=large_review(uid)) as response:
                    await response.read()
                    return response.status

            first = asyncio.create_task(post("first"))  # holds the turn, waiting for the worker
            await asyncio.sleep(0.2)
            started = time.monotonic()
            second = await post("second")
            waited = time.monotonic() - started
            assert second == 408
            assert waited < 2.0  # refused at its deadline, not after the first's turn
            assert await first == 200
    finally:
        await server.close()
        busy.result()
        executor.shutdown()


def test_a_broken_pool_is_replaced_once_when_two_reviews_fail_with_it() -> None:
    made: list[ThreadPoolExecutor] = []

    def make() -> ThreadPoolExecutor:
        made.append(ThreadPoolExecutor(1))
        return made[-1]

    workers = Workers(make)
    broken = workers.executor
    workers.restart(broken)  # the first review that failed
    fresh = workers.executor
    workers.restart(broken)  # the second one, failed with the same pool
    assert workers.executor is fresh
    assert len(made) == 2
    workers.shutdown()
