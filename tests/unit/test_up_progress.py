"""What ``raysvc up`` prints while things move, and what it refuses before starting anything."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from raysvc.progress import Progress, all_running, summary
from tests.commands import RAYSVC


def rayservice(status: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "kind": "RayService",
        "metadata": {"name": "rs", "namespace": "default"},
        "status": status,
    }


RUNNING: dict[str, Any] = {
    "serviceStatus": "Running",
    "activeServiceStatus": {
        "rayClusterName": "rs-raycluster-aaaaa",
        "applicationStatuses": {
            "fruit_app": {
                "status": "DEPLOYING",
                "serveDeploymentStatuses": {
                    "MangoStand": {"status": "UPDATING"},
                    "PearStand": {"status": "HEALTHY"},
                },
            },
            "math_app": {"status": "RUNNING"},
        },
    },
}


def test_a_rayservice_line_names_its_clusters_and_what_moves_in_them() -> None:
    assert summary(rayservice(RUNNING)) == (
        "RayService rs: Running; active rs-raycluster-aaaaa: "
        "fruit_app DEPLOYING (MangoStand UPDATING), math_app RUNNING"
    )
    assert summary(rayservice({})) == "RayService rs: not ready"


def test_only_changes_are_printed_and_a_deletion_once() -> None:
    progress = Progress()
    pod = {
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert progress.change("ADDED", pod) == "Pod p: Running, Ready"
    assert progress.change("MODIFIED", pod) is None
    assert progress.change("DELETED", pod) == "Pod p: deleted"
    assert progress.change("DELETED", pod) is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (RUNNING, False),
        (
            {
                **RUNNING,
                "activeServiceStatus": {"applicationStatuses": {"a": {"status": "RUNNING"}}},
            },
            True,
        ),
        ({**RUNNING, "pendingServiceStatus": {"rayClusterName": "x"}}, False),
        ({}, False),
    ],
)
def test_ready_means_serving_with_every_application_running(
    status: dict[str, Any], expected: bool
) -> None:
    assert all_running(rayservice(status)) is expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
            "raysvc up applies RayServices only (found ConfigMap)",
        ),
        ("{{{", "not YAML"),
        ("", "no RayService in it"),
    ],
)
def test_a_file_it_cannot_apply_is_one_line_and_exit_2_before_anything_starts(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "in.yaml"
    path.write_text(content)
    done = subprocess.run(
        [RAYSVC, "up", "-f", str(path), "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("raysvc up: ")
    assert message in done.stderr
    assert done.stderr.count("\n") == 1
    assert not (tmp_path / "state").exists()
