"""``raysvc webhook`` against clients that hold connections, trickle bytes or flood it."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from raysvc.commands.webhook import ConnectionDefaults
from tests.builders import admission_review, head_container, sample
from tests.integration.webhook.support import Webhook, review_body, wait_until
from webhook.connections import ConnectionLimits, bind
from webhook.health import HealthServer, ServerState
from webhook.server import WebhookSettings

UID = "4b1f5a7e-0000-4000-8000-000000000001"


def tls_socket(server: Webhook, context: ssl.SSLContext | None = None) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return (context or server.tls()).wrap_socket(raw, server_hostname="127.0.0.1")


def closed_by_server(sock: ssl.SSLSocket, within: float) -> bool:
    """True when the server closes ``sock`` within ``within`` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except (ConnectionError, ssl.SSLError):
        return True
    except TimeoutError:
        return False


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def strict(start_webhook: Callable[..., Webhook]) -> Webhook:
    """A webhook with short deadlines and a small connection cap."""
    return start_webhook("--header-timeout", "1", "--body-timeout", "1", "--max-connections", "4")


def test_a_connection_that_never_sends_a_request_is_closed(strict: Webhook) -> None:
    with tls_socket(strict) as sock:
        assert closed_by_server(sock, within=10)


def test_headers_trickled_byte_by_byte_are_cut_off(strict: Webhook) -> None:
    with tls_socket(strict) as sock:
        sock.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\n")
        deadline = time.monotonic() + 10
        closed = False
        while time.monotonic() < deadline and not closed:
            try:
                sock.sendall(b"X")
            except (ConnectionError, ssl.SSLError):
                closed = True
                break
            closed = closed_by_server(sock, within=0.2)
        assert closed


def test_a_stalled_body_gets_408_and_the_connection_closes(strict: Webhook) -> None:
    with tls_socket(strict) as sock:
        sock.sendall(
            b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"apiVersion":'
        )
        sock.settimeout(10)
        reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 408 ")
        assert b"Server: raysvc\r\n" in reply
        assert closed_by_server(sock, within=10)
    lines = [json.loads(line) for line in strict.log]
    assert not any(entry.get("level") == "error" for entry in lines)
    assert not any("exception" in entry for entry in lines)


def test_at_the_cap_the_idlest_connection_makes_room(strict: Webhook) -> None:
    body = review_body(admission_review(sample()))
    idle = [strict.connect() for _ in range(4)]
    try:
        for conn in idle:
            assert strict.post("/validate", body, conn)[0] == 200  # now idle, kept alive
        status, _, reply = strict.post("/validate", body)  # a fifth connection
        assert status == 200
        assert reply["response"]["uid"] == UID
    finally:
        for conn in idle:
            conn.close()
    wait_until(lambda: any("idle connection closed" in line for line in strict.log))


def test_at_the_cap_busy_connections_hold_new_ones_back_until_they_free_a_slot(
    strict: Webhook,
) -> None:
    busy = [tls_socket(strict) for _ in range(4)]
    for sock in busy:
        sock.sendall(b"POST /validate HTTP/1.1\r\n")  # partial headers: not idle
    started = time.monotonic()
    status, _, _ = strict.post("/validate", review_body(admission_review(sample())))
    waited = time.monotonic() - started
    for sock in busy:
        sock.close()
    assert status == 200
    assert 0.5 < waited < 5  # served once the header deadline (1 s) freed a slot


def test_an_idle_connection_costs_little_memory_and_returns_it(
    start_webhook: Callable[..., Webhook],
) -> None:
    server = start_webhook()
    server.post("/validate", review_body(admission_review(sample())))  # warm up
    before = rss_kib(server.process.pid)
    sockets = [tls_socket(server) for _ in range(400)]
    wait_until(
        lambda: "raysvc_webhook_connections 400.0" in server.health("/metrics")[1], timeout=30
    )
    held = rss_kib(server.process.pid) - before
    for sock in sockets:
        sock.close()
    wait_until(lambda: "raysvc_webhook_connections 0.0" in server.health("/metrics")[1])
    # asyncio's TLS layer alone used to keep 256 KiB per connection (about 100 MiB here).
    assert held < 400 * 100
    assert rss_kib(server.process.pid) - before < 400 * 100


def test_malformed_http_is_answered_400_and_logged_at_a_bounded_rate(
    start_webhook: Callable[..., Webhook],
) -> None:
    server = start_webhook()
    for _ in range(200):
        with tls_socket(server) as sock:
            sock.sendall(b"POST /validate HTTP/1.1\r\nContent-Length: x\r\n\r\n")
            assert sock.recv(4096).split(b"\r\n")[0].endswith(b" 400 Bad Request")
    server.post("/validate", b"not json")  # a line after the flood, once the rate allows
    wait_until(lambda: any('"bad admission request"' in line for line in server.log))
    malformed = [line for line in server.log if "malformed HTTP request" in line]
    assert 0 < len(malformed) <= 60
    assert not any("Traceback" in line for line in server.log)


def test_a_huge_bad_kind_is_logged_in_one_short_line(webhook: Webhook) -> None:
    review = admission_review(sample())
    review["request"]["kind"] = {"group": "x" * (5 * 1024 * 1024)}
    status, _, reply = webhook.post("/validate", review_body(review))
    assert status == 400
    assert reply["response"]["uid"] == UID
    assert len(reply["response"]["status"]["message"]) < 300
    wait_until(lambda: any("x" * 20 in line for line in webhook.log))
    assert max(len(line) for line in webhook.log) < 2000


@pytest.fixture(scope="module")
def big_review() -> bytes:
    """A 7.7 MiB UPDATE whose object is expensive to decide (70,000 environment variables)."""
    obj = sample()
    head_container(obj)["env"] = [{"name": f"VAR_{i}", "value": "v" * 80} for i in range(70000)]
    return review_body(admission_review(obj, sample()))


def test_health_answers_at_once_while_large_reviews_are_decided(
    start_webhook: Callable[..., Webhook], big_review: bytes
) -> None:
    server = start_webhook()
    results: list[int] = []

    def send() -> None:
        results.append(server.post("/validate", big_review)[0])

    senders = [threading.Thread(target=send) for _ in range(8)]
    for sender in senders:
        sender.start()
    slowest = 0.0
    probes = 0
    while any(sender.is_alive() for sender in senders):
        started = time.monotonic()
        assert server.health("/healthz") == (200, "ok\n")
        slowest = max(slowest, time.monotonic() - started)
        probes += 1
        time.sleep(0.02)
    for sender in senders:
        sender.join()
    assert results == [200] * 8
    assert probes >= 10, probes  # the probes did run while the large reviews were decided
    assert slowest < 1.0  # 4 s when the probes shared the interpreter with the decisions


def test_tls_12_offers_only_aead_suites_and_the_server_header_names_no_version(
    webhook: Webhook,
) -> None:
    cbc = webhook.tls()
    cbc.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA")
    with pytest.raises(ssl.SSLError):
        tls_socket(webhook, cbc).close()
    gcm = webhook.tls()
    gcm.maximum_version = ssl.TLSVersion.TLSv1_2
    with tls_socket(webhook, gcm) as sock:
        cipher = sock.cipher()
        assert cipher is not None
        assert "GCM" in cipher[0] or "CHACHA20" in cipher[0]
    status, headers, _ = webhook.post("/validate", review_body(admission_review(sample())))
    assert status == 200
    assert headers["server"] == "raysvc"


def test_a_body_cut_off_by_the_client_leaves_no_error_or_traceback(webhook: Webhook) -> None:
    for _ in range(20):
        with tls_socket(webhook) as sock:
            sock.sendall(
                b'POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{"a": 1'
            )
    status, _, _ = webhook.post("/validate", review_body(admission_review(sample())))
    assert status == 200
    wait_until(lambda: any('"request body aborted"' in line for line in webhook.log))
    assert not any('"level": "error"' in line for line in webhook.log)
    assert not any("Traceback" in line for line in webhook.log)


def test_healthz_fails_when_the_admission_loop_stops_turning() -> None:
    stalled = ServerState(ready=True, heartbeat=time.monotonic() - 60)
    server = HealthServer(bind("127.0.0.1", 0), CollectorRegistry(), stalled)
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        assert (response.status, response.read()) == (503, b"admission loop stalled\n")
        conn.close()
    finally:
        server.stop()


def test_the_flags_default_to_the_servers_own_limits() -> None:
    shown = ConnectionDefaults()
    limits = ConnectionLimits()
    assert shown.max_connections == limits.max_connections
    assert shown.header_timeout == limits.header_timeout
    assert shown.idle_timeout == limits.idle_timeout
    assert shown.body_timeout == WebhookSettings().body_timeout
