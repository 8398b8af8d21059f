"""Fixtures: a real ``raysvc webhook`` process over real TLS, with the project's own certificates.

``webhook`` is session-scoped: one process serves every test that only sends reviews. Tests that
stop, rotate or otherwise disturb the server start their own with ``start_webhook``.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.webhook.support import Webhook, write_cert_dir


@pytest.fixture(scope="session")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    cert_dir = tmp_path_factory.mktemp("webhook-certs")
    write_cert_dir(cert_dir)
    server = Webhook(cert_dir)
    yield server
    server.stop()


@pytest.fixture
def start_webhook(tmp_path: Path) -> Iterator[Callable[..., Webhook]]:
    started: list[Webhook] = []

    def start(*extra: str) -> Webhook:
        cert_dir = tmp_path / f"certs-{len(started)}"
        write_cert_dir(cert_dir)
        server = Webhook(cert_dir, *extra)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(signal.SIGKILL)
