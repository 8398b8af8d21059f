"""Hostile edits of the sample RayService, each with the one field error it must get.

Shared by the unit tests of the core, the webhook's integration tests and the fuzz script, so
the same inputs are proven harmless at every layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.builders import Obj, head_container

NESTING = "Forbidden: lists and maps may not nest more than 254 levels deep"
INT_RANGE = "must be an integer between -9223372036854775808 and 18446744073709551615"
TEMPLATE = "spec.rayClusterConfig.headGroupSpec.template"


def nested(levels: int) -> list[Any]:
    """``levels`` lists, each holding the next: ``[[[...]]]``."""
    root: list[Any] = []
    current = root
    for _ in range(levels - 1):
        inner: list[Any] = []
        current.append(inner)
        current = inner
    return root


def serve_text(text: str) -> Callable[[Obj], object]:
    return lambda obj: obj["spec"].update(serveConfigV2=text)


APP = "applications:\n- name: a\n  import_path: a.b\n  deployments:\n  - name: d\n"

HOSTILE: list[tuple[str, Callable[[Obj], object], str]] = [
    (
        "a recursive alias in serveConfigV2",
        serve_text("applications: &x [*x]\n"),
        "spec.serveConfigV2.applications[0]: Forbidden: "
        "a YAML alias may not refer to a node that contains it",
    ),
    (
        "an integer of 5,000 digits in serveConfigV2",
        serve_text(APP + "    user_config: {price: " + "9" * 5000 + "}\n"),
        'spec.serveConfigV2.applications[0].deployments[0].user_config.price: Invalid value: "'
        + "9" * 76
        + "...: "
        + INT_RANGE,
    ),
    (
        "an integer above 2^64 in serveConfigV2",
        serve_text(APP + "    num_replicas: 100000000000000000000000\n"),
        "spec.serveConfigV2.applications[0].deployments[0].num_replicas: "
        f'Invalid value: "100000000000000000000000": {INT_RANGE}',
    ),
    (
        "a sexagesimal float with thousands of parts in serveConfigV2",
        serve_text(APP + "    user_config: {price: " + ":".join(["1"] * 3000) + ".5}\n"),
        "spec.serveConfigV2.applications[0].deployments[0].user_config.price: "
        'Invalid value: "inf": must be a finite number',
    ),
    (
        "lists 990 deep in serveConfigV2",
        serve_text("applications: []\nx: " + "[" * 990 + "]" * 990 + "\n"),
        f"spec.serveConfigV2.x{'[0]' * 11}: {NESTING}",
    ),
    (
        "lists 1,000 deep in the pod template",
        lambda obj: obj["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"].update(
            x=nested(1000)
        ),
        f"{TEMPLATE}.spec.x{'[0]' * 6}: {NESTING}",
    ),
    (
        "lists 1,000 deep in an unknown spec field",
        lambda obj: obj["spec"].update(extra=nested(1000)),
        f"spec.extra{'[0]' * 10}: {NESTING}",
    ),
    (
        "a quantity of 1e400",
        lambda obj: head_container(obj)["resources"]["limits"].update(memory="1e400"),
        f"{TEMPLATE}.spec.containers[0].resources.limits[memory]: "
        'Invalid value: "1e400": must be no more than 9223372036854775807 in magnitude',
    ),
    (
        "a quantity of -1e400",
        lambda obj: head_container(obj)["resources"]["limits"].update(cpu="-1e400"),
        f"{TEMPLATE}.spec.containers[0].resources.limits[cpu]: "
        'Invalid value: "-1e400": must be no more than 9223372036854775807 in magnitude',
    ),
    (
        "an initializing timeout of 5,000 digits",
        lambda obj: obj["metadata"].update(annotations={"ray.io/initializing-timeout": "1" * 5000}),
        "metadata.annotations[ray.io/initializing-timeout]: Invalid value: "
        f'"{"1" * 76}...: must be a positive duration such as "10m" or a positive number of '
        "seconds",
    ),
    (
        "an upgrade timeout of 5,000 digits",
        lambda obj: obj["metadata"].update(
            annotations={"raysvc.io/upgrade-timeout-seconds": "1" * 5000}
        ),
        "metadata.annotations[raysvc.io/upgrade-timeout-seconds]: Invalid value: "
        f'"{"1" * 76}...: must be a positive integer number of seconds',
    ),
]
