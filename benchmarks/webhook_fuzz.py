"""Fuzz ``raysvc webhook`` over TLS: every answer well-formed, no 5xx, no internal error, flat RSS.

Starts a real ``raysvc webhook`` and sends it ``--count`` reviews (seeded, so a run can be
repeated) from four keep-alive connections: the sample RayService with random parts replaced
by random JSON (wrong types, huge and deep values, big integers), hostile serveConfigV2 texts
(aliases, recursive aliases, tags, huge integers, sexagesimal numbers, deep nesting), damaged
AdmissionReview envelopes (uid, kind, operation, namespace of every shape) and bodies that are
not JSON at all. Each answer must be:

- HTTP 200 or 400 (never a 5xx);
- an AdmissionReview whose ``response.uid`` is the request's uid whenever the request had a
  string uid, and never an internal-error denial (``status.code`` 500);
- and the webhook's ``raysvc_admission_internal_errors_total`` must stay 0.

RSS of the webhook (with its worker processes) is sampled as the run goes; after the memos have
filled (half-way) it must stay flat (less than 10% growth to the end).

Run: ``.venv/bin/python benchmarks/webhook_fuzz.py [--count 100000] [--seed 1]``. Exit status 0
when every check held; the CI runs it with a small count (``tests/integration/webhook``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import shutil
import ssl
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.procs import rss_kib as tree_rss_kib
from tests.builders import admission_review, sample
from tests.hostile_cases import HOSTILE
from tests.integration.webhook.support import Webhook, write_cert_dir

Obj = dict[str, Any]

YAML_PIECES = [
    "applications: []\n",
    "applications: &x [*x]\n",
    "a: &a [1, 2]\nb: [*a, *a, *a]\napplications: []\n",
    "applications:\n- name: a\n  import_path: m.app\n  deployments: [{name: d, num_replicas: 2}]\n",
    "applications:\n- {name: a, import_path: m.app, route_prefix: x}\n",
    "applications:\n- import_path: m.app\n  args: !!binary aGVsbG8=\n",
    "applications:\n- import_path: m.app\n  args: {when: 2001-12-14t21:59:43.10-05:00}\n",
    "applications: !!set {a, b}\n",
    "applications: !!omap [{a: 1}, {b: 2}]\n",
    "applications:\n- import_path: m.app\n  args: {n: 1:20:30, f: 1:30.5, y: yes, o: 0o17}\n",
    "applications:\n- import_path: m.app\n  args: {n: " + "9" * 30 + "}\n",
    "applications:\n- import_path: m.app\n  args: {n: " + "9" * 5000 + "}\n",
    "applications:\n- import_path: m.app\n  args: {n: " + ":".join(["59"] * 400) + ".5}\n",
    "applications:\n- import_path: m.app\n  args: {x: .inf, y: .nan}\n",
    "x: " + "[" * 300 + "]" * 300 + "\napplications: []\n",
    "x: " + "[" * 990 + "]" * 990 + "\n",
    "x: " + "{a: " * 200 + "1" + "}" * 200 + "\n",
    "? [a, b]\n: c\napplications: []\n",
    "<<: {applications: []}\n",
    "applications:\n- import_path: m.app\n  name: " + "n" * 20000 + "\n",
    "- just\n- a list\n",
    "'unterminated\n",
    "\t\ttabs: [\n",
    "%YAML 1.1\n---\napplications: []\n",
    "applications: []\n---\napplications: []\n",
    "",
]

MANGLE_PATHS = [
    ["spec"],
    ["spec", "serveConfigV2"],
    ["spec", "rayClusterConfig"],
    ["spec", "rayClusterConfig", "rayVersion"],
    ["spec", "rayClusterConfig", "workerGroupSpecs"],
    ["spec", "rayClusterConfig", "headGroupSpec"],
    ["spec", "rayClusterConfig", "headGroupSpec", "template"],
    ["spec", "rayClusterConfig", "headGroupSpec", "rayStartParams"],
    ["spec", "upgradeStrategy"],
    ["spec", "rayClusterDeletionDelaySeconds"],
    ["metadata"],
    ["metadata", "name"],
    ["metadata", "annotations"],
    ["metadata", "annotations", "raysvc.io/change"],
    ["metadata", "annotations", "ray.io/initializing-timeout"],
    ["metadata", "labels"],
    ["status"],
    ["apiVersion"],
    ["kind"],
]

QUANTITIES = ["1e999999999", "-1e400", "1e400", "8Ei", "1.5Gi", "500m", "1e1.5", "", "٣", "0.1n"]


def nested(depth: int, leaf: object = 1) -> object:
    value: object = leaf
    for _ in range(depth):
        value = [value]
    return value


def random_json(rng: random.Random, depth: int = 0) -> object:
    roll = rng.random()
    if roll < 0.08:
        return nested(rng.choice([10, 200, 260, 600, 1000]))
    if roll < 0.14:
        return rng.choice([2**63, 2**64, -(2**63) - 1, 10**30, 1e308, -1e-308, 0.5])
    if roll < 0.2:
        return "x" * rng.choice([0, 64, 5000, 200_000])
    if roll < 0.25:
        return rng.choice(QUANTITIES)
    if roll < 0.5 or depth > 3:
        return rng.choice([None, True, False, 0, -1, 1, 2**31, "", "a", "🎉", "\x00", 3.5])
    if roll < 0.75:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        rng.choice(["a", "name", "groupName", "template", "spec", "", "é"]): random_json(
            rng, depth + 1
        )
        for _ in range(rng.randrange(4))
    }


def mangle(obj: Obj, path: list[str], value: object) -> Obj:
    node: Any = obj
    for key in path[:-1]:
        if not isinstance(node, dict):
            return obj
        node = node.setdefault(key, {})
    if isinstance(node, dict):
        if value is _DELETE:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
    return obj


_DELETE = object()


def fuzzed_object(rng: random.Random) -> Obj:
    obj = sample()
    roll = rng.random()
    if roll < 0.15:
        _, edit, _ = rng.choice(HOSTILE)
        edit(obj)
    elif roll < 0.35:
        obj["spec"]["serveConfigV2"] = "".join(rng.choice(YAML_PIECES) for _ in range(2))
    elif roll < 0.45:
        containers = obj["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"][
            "containers"
        ]
        containers[0]["resources"]["requests"]["cpu"] = rng.choice(QUANTITIES)
    for _ in range(rng.randrange(3)):
        value = _DELETE if rng.random() < 0.1 else random_json(rng)
        mangle(obj, rng.choice(MANGLE_PATHS), value)
    return obj


def dumps(value: object) -> bytes:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        return json.dumps(value).encode()
    finally:
        sys.setrecursionlimit(limit)


def fuzzed_body(rng: random.Random, index: int) -> tuple[bytes, str | None]:
    """A request body, and the uid the answer must echo (``None``: no string uid to echo)."""
    uid = f"fuzz-{index:08d}"
    roll = rng.random()
    if roll < 0.05:
        return rng.randbytes(rng.randrange(1, 300)), None
    operation = rng.choice(["CREATE", "UPDATE", "UPDATE", "DELETE"])
    obj = fuzzed_object(rng) if operation != "DELETE" else None
    old = sample() if operation != "CREATE" else None
    # The envelope comes from clean objects (the builder reads their name), then gets the fuzz.
    clean = sample() if operation != "DELETE" else None
    review: Obj = admission_review(clean, old, operation=operation, uid=uid)
    request = review["request"]
    request["object"] = obj
    if roll < 0.2:
        field = rng.choice(["kind", "operation", "namespace", "name", "subResource", "dryRun"])
        request[field] = random_json(rng)
    elif roll < 0.25:
        request["uid"] = random_json(rng)
    elif roll < 0.28:
        review[rng.choice(["apiVersion", "kind"])] = random_json(rng)
    elif roll < 0.3:
        request[rng.choice(["object", "oldObject"])] = random_json(rng)
    body = dumps(review)
    if 0.3 <= roll < 0.32:
        body = body[: rng.randrange(len(body))]
        return body, None
    expected = request.get("uid")
    return body, expected if isinstance(expected, str) and roll >= 0.28 else None


def expected_uid(body: bytes, promised: str | None) -> str | None:
    """The uid the answer must carry: the promised one, or whatever string the body holds."""
    if promised is not None:
        return promised
    try:
        review = json.loads(body)
        uid = review["request"]["uid"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    return uid if isinstance(uid, str) else None


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        self.done = 0

    def fail(self, message: str) -> None:
        with self.lock:
            if len(self.failures) < 20:
                self.failures.append(message)


def check(
    tally: Tally, index: int, body: bytes, promised: str | None, status: int, raw: bytes
) -> None:
    with tally.lock:
        tally.statuses[status] += 1
        tally.done += 1
    if status not in (200, 400):
        tally.fail(f"review {index}: HTTP {status}: {raw[:200]!r}")
        return
    try:
        reply = json.loads(raw)
        response = reply["response"]
    except (ValueError, TypeError, KeyError):
        tally.fail(f"review {index}: HTTP {status} without an AdmissionReview: {raw[:200]!r}")
        return
    if response.get("status", {}).get("code") == 500:
        tally.fail(f"review {index}: internal error: {raw[:300]!r}")
    uid = expected_uid(body, promised)
    if uid is not None and response.get("uid") != uid:
        tally.fail(f"review {index}: uid {response.get('uid')!r}, expected {uid!r}")


def client(server: Webhook, bodies: Iterator[tuple[int, bytes, str | None]], tally: Tally) -> None:
    context = server.tls()
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=60)
    paths = ["/mutate", "/validate"]
    for index, body, promised in bodies:
        path = paths[index % 2]
        for attempt in range(2):
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                raw = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                break
            except (ConnectionError, http.client.HTTPException, ssl.SSLError, TimeoutError) as e:
                conn.close()
                conn = http.client.HTTPSConnection(
                    "127.0.0.1", server.port, context=context, timeout=60
                )
                if attempt:
                    tally.fail(f"review {index}: {e!r}")
                    raw, response = b"", None
        if response is not None:
            check(tally, index, body, promised, response.status, raw)
    conn.close()


def run(count: int, seed: int, report: Callable[[str], None] = print) -> bool:
    """Fuzz a fresh webhook with ``count`` reviews; True when every check held."""
    work = Path(tempfile.mkdtemp(prefix="raysvc-fuzz-"))
    write_cert_dir(work)
    server = Webhook(work)
    rng = random.Random(seed)
    lock = threading.Lock()
    produced = iter(range(count))
    samples: list[tuple[int, int]] = []

    def bodies() -> Iterator[tuple[int, bytes, str | None]]:
        while True:
            with lock:
                index = next(produced, None)
                if index is None:
                    return
                body, promised = fuzzed_body(rng, index)
            yield index, body, promised

    tally = Tally()
    started = time.monotonic()
    try:
        clients = [
            threading.Thread(target=client, args=(server, bodies(), tally)) for _ in range(4)
        ]
        for thread in clients:
            thread.start()
        step = max(1, count // 20)
        next_sample = 0
        while any(thread.is_alive() for thread in clients):
            if tally.done >= next_sample:
                samples.append((tally.done, tree_rss_kib(server.process.pid)))
                next_sample += step
            time.sleep(0.05)
        for thread in clients:
            thread.join()
        samples.append((tally.done, tree_rss_kib(server.process.pid)))
        metrics = server.health("/metrics")[1]
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    counted = re.findall(r"^raysvc_admission_internal_errors_total\S* (\S+)$", metrics, re.M)
    if not counted:  # a renamed or missing metric must not read as "no internal error"
        tally.fail("the webhook reports no raysvc_admission_internal_errors_total")
    internal = sum(float(value) for value in counted)
    elapsed = time.monotonic() - started
    statuses = dict(sorted(tally.statuses.items()))
    report(f"{tally.done} reviews in {elapsed:.0f} s; HTTP statuses {statuses}")
    report(f"internal errors (metric): {internal:.0f}")
    half = next((rss for done, rss in samples if done >= tally.done // 2), samples[-1][1])
    last = samples[-1][1]
    report(
        "RSS (webhook and workers, MiB) by reviews done: "
        + ", ".join(
            f"{done}: {rss / 1024:.0f}" for done, rss in samples[:: max(1, len(samples) // 8)]
        )
        + f"; half-way {half / 1024:.0f} -> end {last / 1024:.0f}"
    )
    flat = last <= half * 1.10 or count < 20_000  # small runs end before the memos fill
    for failure in tally.failures:
        report(f"FAIL {failure}")
    if not flat:
        report("FAIL RSS grew by more than 10% in the second half")
    if tally.done != count:
        report(f"FAIL only {tally.done} of {count} reviews were answered")
    return not tally.failures and internal == 0 and flat and tally.done == count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="reviews to send")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    args = parser.parse_args()
    sys.exit(0 if run(args.count, args.seed) else 1)


if __name__ == "__main__":
    main()
