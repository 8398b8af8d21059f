"""``raysvc webhook`` over real TLS: what the API server (and so kubectl) gets back."""

from __future__ import annotations

import base64
import copy
import json
import signal
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import Obj, admission_review, put, sample, worker
from tests.commands import RAYSVC
from tests.integration.webhook.support import (
    Webhook,
    review_body,
    wait_until,
    write_cert_dir,
)

UID = "4b1f5a7e-0000-4000-8000-000000000001"


def apply_mutation(server: Webhook, obj: Obj, old: Obj | None = None, dry_run: bool = False) -> Obj:
    status, _, reply = server.post(
        "/mutate", review_body(admission_review(obj, old, dry_run=dry_run))
    )
    assert status == 200
    response = reply["response"]
    assert response["allowed"] is True
    if "patch" not in response:
        return obj
    patched: Obj = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(response["patch"])))
    return patched


def test_a_create_is_mutated_then_allowed_with_warnings(webhook: Webhook) -> None:
    mutated = apply_mutation(webhook, sample())
    assert mutated["metadata"]["annotations"]["raysvc.io/change"] == "create"
    assert mutated["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["numOfHosts"] == 1
    status, _, reply = webhook.post("/validate", review_body(admission_review(mutated)))
    assert status == 200
    assert reply["apiVersion"] == "admission.k8s.io/v1"
    assert reply["kind"] == "AdmissionReview"
    response = reply["response"]
    assert response["uid"] == UID
    assert response["allowed"] is True
    assert response["warnings"][0].startswith("creates a RayCluster with 2 pods")


def test_an_invalid_rayservice_is_denied_with_422_and_field_paths(webhook: Webhook) -> None:
    obj = sample()
    worker(obj)["minReplicas"] = 6
    status, _, reply = webhook.post(
        "/validate", review_body(admission_review(apply_mutation(webhook, obj)))
    )
    assert status == 200
    response = reply["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 422
    assert response["status"]["reason"] == "Invalid"
    assert response["status"]["message"] == (
        'RayService.ray.io "rayservice-sample" is invalid: '
        "spec.rayClusterConfig.workerGroupSpecs[0].minReplicas: Invalid value: 6: must be less "
        "than or equal to maxReplicas (5)"
    )


def test_the_patch_applies_cleanly_and_a_second_mutation_is_empty(webhook: Webhook) -> None:
    once = apply_mutation(webhook, sample())
    status, _, reply = webhook.post("/mutate", review_body(admission_review(once)))
    assert status == 200
    assert "patch" not in reply["response"]


def test_an_update_is_classified_through_the_server(webhook: Webhook) -> None:
    old = apply_mutation(webhook, sample())
    new = put(copy.deepcopy(old), "spec.rayClusterConfig.workerGroupSpecs[0].maxReplicas", 10)
    mutated = apply_mutation(webhook, new, old)
    assert mutated["metadata"]["annotations"]["raysvc.io/change"] == "scale-bounds"
    _, _, reply = webhook.post("/validate", review_body(admission_review(mutated, old)))
    assert reply["response"]["warnings"] == [
        "minReplicas/maxReplicas are patched into the running RayCluster in place"
    ]


def test_dry_run_gets_the_same_verdict_patch_and_warnings(webhook: Webhook) -> None:
    obj = put(sample(), "spec.rayClusterConfig.rayVersion", "2.100.0")
    answers = []
    for dry_run in (False, True):
        _, _, mutated = webhook.post("/mutate", review_body(admission_review(obj, dry_run=dry_run)))
        patched = apply_mutation(webhook, obj, dry_run=dry_run)
        _, _, validated = webhook.post(
            "/validate", review_body(admission_review(patched, dry_run=dry_run))
        )
        answers.append((mutated["response"], validated["response"]))
    assert answers[0] == answers[1]


def test_forged_annotations_are_denied(webhook: Webhook) -> None:
    mutated = apply_mutation(webhook, sample())
    mutated["metadata"]["annotations"]["raysvc.io/change"] = "none"
    _, _, reply = webhook.post("/validate", review_body(admission_review(mutated)))
    assert reply["response"]["allowed"] is False
    assert (
        'metadata.annotations[raysvc.io/change]: Invalid value: "none": does not match'
        in (reply["response"]["status"]["message"])
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "request body is not JSON"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "has no request"),
        (
            json.dumps(
                {**admission_review(sample()), "apiVersion": "admission.k8s.io/v1beta1"}
            ).encode(),
            "expected kind AdmissionReview in admission.k8s.io/v1",
        ),
    ],
    ids=["not-json", "no-request", "v1beta1"],
)
def test_a_malformed_review_gets_400_with_a_message(
    webhook: Webhook, body: bytes, message: str
) -> None:
    for path in ("/mutate", "/validate"):
        status, _, reply = webhook.post(path, body)
        assert status == 400
        assert message in reply["response"]["status"]["message"]


def test_a_bad_review_with_a_uid_echoes_it(webhook: Webhook) -> None:
    review = admission_review(sample())
    review["request"]["kind"]["kind"] = "RayCluster"
    status, _, reply = webhook.post("/validate", review_body(review))
    assert status == 400
    assert reply["response"]["uid"] == UID


def test_an_oversized_body_gets_413(webhook: Webhook) -> None:
    body = b'{"pad": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    status, _, _ = webhook.post("/validate", body)
    assert status == 413


def test_a_review_near_the_limit_is_decided_in_a_thread_and_answered(webhook: Webhook) -> None:
    obj = sample()
    obj["spec"]["serveConfigV2"] += "#" * (900 * 1024) + "\n"
    old = copy.deepcopy(obj)
    old["spec"]["serveConfigV2"] += "# old\n"
    status, _, reply = webhook.post("/validate", review_body(admission_review(obj, old)))
    assert status == 200
    assert reply["response"]["allowed"] is True


def test_a_yaml_bomb_is_denied(webhook: Webhook) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 9):
        prev, this = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{this}: &{this} [" + ",".join([f"*{prev}"] * 9) + "]")
    obj = put(sample(), "spec.serveConfigV2", "\n".join(lines) + "\napplications: []\n")
    _, _, reply = webhook.post("/validate", review_body(admission_review(obj)))
    assert reply["response"]["allowed"] is False
    assert "YAML aliases expand to more than" in reply["response"]["status"]["message"]


def test_health_readiness_and_metrics(webhook: Webhook) -> None:
    webhook.post("/validate", review_body(admission_review(apply_mutation(webhook, sample()))))
    assert webhook.health("/healthz") == (200, "ok\n")
    assert webhook.health("/readyz") == (200, "ok\n")
    status, text = webhook.health("/metrics")
    assert status == 200
    assert (
        'raysvc_admissions_total{change="create",operation="CREATE",verdict="allowed",webhook="validate"}'
        in text
    )
    assert "raysvc_admission_duration_seconds_bucket" in text


def test_denials_are_logged_as_json_lines_without_object_contents(webhook: Webhook) -> None:
    obj = sample()
    obj["metadata"]["labels"] = {"secret-looking": "do-not-log-me"}
    worker(obj)["minReplicas"] = 6
    webhook.post("/validate", review_body(admission_review(apply_mutation(webhook, obj))))
    wait_until(lambda: any('"denied"' in line for line in webhook.log))
    entries = [json.loads(line) for line in webhook.log]
    admission = next(e for e in entries if e["message"] == "admission")
    assert admission["level"] == "info"
    assert {"webhook", "uid", "rayservice", "verdict", "change", "duration_ms"} <= set(admission)
    assert admission["verdict"] == "denied"
    assert not any("do-not-log-me" in line for line in webhook.log)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _mangle(obj: Obj, path: list[str], value: Any) -> Obj:
    node: Any = obj
    for key in path[:-1]:
        if not isinstance(node, dict):
            return obj
        node = node.setdefault(key, {})
    if isinstance(node, dict):
        node[path[-1]] = value
    return obj


MANGLE_PATHS = [
    ["spec"],
    ["spec", "rayClusterConfig"],
    ["spec", "rayClusterConfig", "workerGroupSpecs"],
    ["spec", "rayClusterConfig", "headGroupSpec", "template"],
    ["spec", "serveConfigV2"],
    ["spec", "upgradeStrategy"],
    ["metadata"],
    ["metadata", "annotations"],
    ["metadata", "name"],
    ["status"],
]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(MANGLE_PATHS),
    value=json_values,
    operation=st.sampled_from(["CREATE", "UPDATE", "DELETE"]),
    endpoint=st.sampled_from(["/mutate", "/validate"]),
)
def test_generated_rayservices_never_get_a_5xx_and_always_their_uid(
    webhook: Webhook, path: list[str], value: Any, operation: str, endpoint: str
) -> None:
    obj = _mangle(sample(), path, value)
    old = sample() if operation != "CREATE" else None
    review = admission_review(obj if operation != "DELETE" else None, old, operation=operation)
    status, _, reply = webhook.post(endpoint, review_body(review))
    assert status in (200, 400)
    assert reply["response"]["uid"] == UID
    if status == 200 and endpoint == "/mutate":
        assert reply["response"]["allowed"] is True


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_garbage_bodies_get_400_never_a_5xx(webhook: Webhook, body: bytes) -> None:
    status, _, reply = webhook.post("/validate", body)
    assert status == 400
    assert reply["response"]["allowed"] is False


def test_sigterm_finishes_in_flight_work_closes_connections_and_exits(
    start_webhook: Callable[..., Webhook],
) -> None:
    server = start_webhook("--drain-seconds", "1.5")
    conn = server.connect()
    body = review_body(admission_review(sample()))
    status, headers, _ = server.post("/validate", body, conn)
    assert status == 200
    assert headers.get("connection", "").lower() != "close"
    server.process.send_signal(signal.SIGTERM)
    wait_until(lambda: server.health("/readyz")[0] == 503)
    status, headers, reply = server.post("/validate", body, conn)  # same keep-alive connection
    assert status == 200
    assert reply["response"]["allowed"] is True
    assert headers["connection"].lower() == "close"
    assert server.process.wait(30) == 0
    assert any('"webhook stopped"' in line for line in server.log)


def test_rotating_the_certificate_under_load_fails_no_admission(
    start_webhook: Callable[..., Webhook],
) -> None:
    server = start_webhook()
    old_ca = (server.cert_dir / "ca.crt").read_bytes()
    both = server.cert_dir / "both-cas.crt"
    results: list[int | str] = []
    stop = threading.Event()
    body = review_body(admission_review(sample()))

    def keep_alive_client() -> None:
        conn = server.connect()
        try:
            while not stop.is_set():
                try:
                    results.append(server.post("/validate", body, conn)[0])
                except Exception as exc:  # every failure is counted
                    results.append(repr(exc))
                    conn.close()
                    conn = server.connect()
        finally:
            conn.close()

    def new_connection_client() -> None:
        context = ssl.create_default_context(cafile=str(both))
        while not stop.is_set():
            try:
                results.append(server.post("/validate", body, context=context)[0])
            except Exception as exc:  # every failure is counted
                results.append(repr(exc))

    new_dir = server.cert_dir.parent / "next"
    new_ca = write_cert_dir(new_dir)
    both.write_bytes(old_ca + new_ca.cert_pem())  # the caBundle during the overlap
    threads = [
        threading.Thread(target=keep_alive_client),
        threading.Thread(target=new_connection_client),
    ]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(results) > 20, timeout=30)

    def reloads() -> int:
        return sum('"serving certificate reloaded"' in line for line in server.log)

    assert reloads() == 0
    for name in ("ca.crt", "tls.key", "tls.crt"):  # one by one: mismatched files in between
        (new_dir / name).replace(server.cert_dir / name)
    wait_until(lambda: reloads() == 1, timeout=15)
    count = len(results)
    wait_until(lambda: len(results) > count + 20, timeout=30)
    stop.set()
    for thread in threads:
        thread.join(30)
    failures = [r for r in results if r != 200]
    assert failures == []
    assert len(results) > 40
    # A client trusting only the new CA now gets through: the new certificate is served.
    only_new = ssl.create_default_context(cafile=str(server.cert_dir / "ca.crt"))
    assert server.post("/validate", body, context=only_new)[0] == 200


def test_a_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    write_cert_dir(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                RAYSVC,
                "webhook",
                "--cert-dir",
                str(tmp_path),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--health-port",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f"raysvc webhook: error while attempting to bind on address ('127.0.0.1', {port}): "
        "address already in use"
    )
    assert "Traceback" not in done.stderr


def test_unusable_certificate_files_are_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [RAYSVC, "webhook", "--cert-dir", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "raysvc webhook: missing or empty certificate files: tls.crt, tls.key, ca.crt\n"
    )
