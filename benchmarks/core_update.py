"""Time per UPDATE of the pure core: defaults + validation + classification (``evaluate``).

Prints, for the sample and for a large RayService (50 worker groups, 100 applications):

- ``cluster-only``: the UPDATE changes the cluster; serveConfigV2 is the same text as before
  (already parsed once by this process, as in a webhook that admitted the previous version);
- ``serve-change``: every UPDATE carries a serveConfigV2 text never seen before (a cold parse);
- ``baseline``: ``json.loads`` of the AdmissionReview-sized JSON of old + new, measured in the
  same run, so figures can be compared across noisy machines as ratios.

Run: ``.venv/bin/python benchmarks/core_update.py [--rounds N]``. Target (issue 2): <= 2 ms per
UPDATE for the large RayService.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rayservice import evaluate
from tests.builders import large_rayservice, sample

Obj = dict[str, Any]


def per_call(func: Callable[[int], object], rounds: int) -> float:
    """Median seconds per call over ``rounds`` calls (after 3 warm-up calls)."""
    for i in range(3):
        func(-1 - i)
    times = []
    gc.collect()
    for i in range(rounds):
        start = time.perf_counter()
        func(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def scenarios(name: str, obj: Obj, rounds: int) -> None:
    old = evaluate(obj).mutated
    text = obj["spec"]["serveConfigV2"]

    def cluster_only(i: int) -> object:
        new = copy.copy(obj)
        new["spec"] = {**obj["spec"], "rayClusterConfig": {**obj["spec"]["rayClusterConfig"]}}
        new["spec"]["rayClusterConfig"]["rayVersion"] = f"2.{i + 1000}.0"
        result = evaluate(new, old)
        assert result.allowed, result.errors
        return result

    texts = [re.sub(r"price: \d+", f"price: {1000 + i}", text, count=1) for i in range(-3, rounds)]
    assert len(set(texts)) == len(texts), "every UPDATE must carry a new serveConfigV2"

    def serve_change(i: int) -> object:
        new = copy.copy(obj)
        new["spec"] = {**obj["spec"], "serveConfigV2": texts[i + 3]}
        result = evaluate(new, old)
        assert result.allowed, result.errors
        return result

    review_body = json.dumps({"object": obj, "oldObject": old})

    def baseline(i: int) -> object:
        return json.loads(review_body)

    base = per_call(baseline, rounds)
    print(f"{name}: {len(review_body) / 1024:.0f} KiB of JSON per UPDATE review")
    print(f"  baseline json.loads        {base * 1000:8.3f} ms")
    for label, func in (("cluster-only", cluster_only), ("serve-change", serve_change)):
        seconds = per_call(func, rounds)
        print(f"  {label:<26} {seconds * 1000:8.3f} ms   ({seconds / base:5.1f}x baseline)")


def bombs() -> None:
    """Time to refuse hostile serveConfigV2 texts (each text is new: no memo)."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 9):
        prev, this = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{this}: &{this} [" + ",".join([f"*{prev}"] * 9) + "]")
    laughs = "\n".join(lines)
    cases: dict[str, Callable[[int], str]] = {
        "billion laughs (9^9 nodes)": lambda i: laughs + f"\nn: {i}\n",
        "1 MiB + 1 byte of text": lambda i: f"# {i}\n" + "#" * (1024 * 1024),
    }
    print("hostile serveConfigV2 texts, refused by evaluate():")
    for label, make in cases.items():
        texts = [make(i) for i in range(23)]

        def refuse(i: int, texts: list[str] = texts) -> object:
            obj = sample()
            obj["spec"]["serveConfigV2"] = texts[i + 3]
            result = evaluate(obj)
            assert not result.allowed
            return result

        print(f"  {label:<26} {per_call(refuse, 20) * 1000:8.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    scenarios("sample", sample(), args.rounds)
    scenarios("large (50 groups, 100 apps)", large_rayservice(), max(20, args.rounds // 4))
    bombs()


if __name__ == "__main__":
    main()
