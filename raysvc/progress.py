"""What ``raysvc up`` tells its user while things move: one line per change (pure).

Each object gets a one-line summary; a line is printed when an object's summary changes, so the
output reads as the walkthrough unfolds (the RayCluster appears, its Pods start and become Ready,
the applications deploy and run, traffic switches) and stays quiet while nothing happens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Progress", "all_running", "summary"]


def _ready(pod: Mapping[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def _apps(section: object) -> str:
    apps = section.get("applicationStatuses") if isinstance(section, Mapping) else None
    if not isinstance(apps, Mapping) or not apps:
        return "no applications yet"
    parts = []
    for name, app in sorted(apps.items()):
        status = app.get("status", "?") if isinstance(app, Mapping) else "?"
        deployments = app.get("serveDeploymentStatuses") if isinstance(app, Mapping) else None
        moving = sorted(
            f"{dep} {info.get('status')}"
            for dep, info in (deployments or {}).items()
            if isinstance(info, Mapping) and info.get("status") not in (None, "HEALTHY")
        )
        parts.append(f"{name} {status}" + (f" ({', '.join(moving)})" if moving else ""))
    return ", ".join(parts)


def summary(obj: Mapping[str, Any]) -> str:
    """The one-line state of a RayService, RayCluster or Pod."""
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    name = meta.get("name", "")
    if meta.get("deletionTimestamp"):
        return f"{kind} {name}: terminating"
    if kind == "RayService":
        state = status.get("serviceStatus") or "not ready"
        line = f"RayService {name}: {state}"
        active = status.get("activeServiceStatus") or {}
        pending = status.get("pendingServiceStatus") or {}
        if active.get("rayClusterName"):
            line += f"; active {active['rayClusterName']}: {_apps(active)}"
        if pending.get("rayClusterName"):
            line += f"; pending {pending['rayClusterName']}: {_apps(pending)}"
        return line
    if kind == "RayCluster":
        state = status.get("state") or "starting"
        desired = status.get("desiredWorkerReplicas", "?")
        available = status.get("availableWorkerReplicas", 0)
        return f"RayCluster {name}: {state}, {available}/{desired} workers"
    phase = status.get("phase") or "Pending"
    return f"Pod {name}: {phase}" + (", Ready" if _ready(obj) else "")


def all_running(rayservice: Mapping[str, Any]) -> bool:
    """Serving, with no pending cluster, and every application RUNNING."""
    status = rayservice.get("status") or {}
    if status.get("serviceStatus") != "Running" or status.get("pendingServiceStatus"):
        return False
    apps = (status.get("activeServiceStatus") or {}).get("applicationStatuses") or {}
    return bool(apps) and all(
        isinstance(app, Mapping) and app.get("status") == "RUNNING" for app in apps.values()
    )


class Progress:
    """Remembers each object's last line; ``change`` returns the new line or None."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str, str], str] = {}

    def change(self, event: str, obj: Mapping[str, Any]) -> str | None:
        meta = obj.get("metadata") or {}
        key = (str(obj.get("kind")), str(meta.get("namespace", "")), str(meta.get("name", "")))
        if event == "DELETED":
            if self._last.pop(key, None) is None:
                return None
            return f"{key[0]} {key[2]}: deleted"
        line = summary(obj)
        if self._last.get(key) == line:
            return None
        self._last[key] = line
        return line
