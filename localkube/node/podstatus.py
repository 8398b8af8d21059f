"""A Pod's status as the kubelet reports it, computed from what the node observed. Pure.

Owns the container state records (``waiting``/``running``/``terminated`` with reasons, exit codes
and times), ``containerStatuses``, the phase (Pending, Running, Succeeded, Failed, from the
restart policy and the containers' ends) and the conditions (PodScheduled, Initialized,
ContainersReady, Ready) whose ``lastTransitionTime`` moves only when their status changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ContainerView", "pod_phase", "pod_status"]

Obj = dict[str, Any]


@dataclass
class ContainerView:
    """What the node knows about one container (mutable: the worker updates it)."""

    name: str
    image: str
    state: str = "waiting"  # "waiting" | "running" | "terminated"
    reason: str = "ContainerCreating"
    message: str = ""
    pid: int = 0
    started_at: str = ""
    finished_at: str = ""
    exit_code: int = 0
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    will_restart: bool = True
    last: Obj = field(default_factory=dict)

    def record(self) -> Obj:
        """The ``state`` (or ``lastState``) object of this container's current run."""
        if self.state == "running":
            return {"running": {"startedAt": self.started_at}}
        if self.state == "terminated":
            return {
                "terminated": {
                    "exitCode": self.exit_code,
                    "reason": self.reason,
                    **({"message": self.message} if self.message else {}),
                    "startedAt": self.started_at,
                    "finishedAt": self.finished_at,
                    "containerID": f"localkube://{self.pid}",
                }
            }
        waiting: Obj = {"reason": self.reason}
        if self.message:
            waiting["message"] = self.message
        return {"waiting": waiting}

    def status(self) -> Obj:
        out: Obj = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": self.record(),
            "lastState": self.last,
        }
        if self.pid:
            out["containerID"] = f"localkube://{self.pid}"
        return out


def pod_phase(containers: Sequence[ContainerView], *, initialized: bool) -> str:
    """Pending until every container ran once; Succeeded/Failed when all ended for good."""
    if containers and all(c.state == "terminated" and not c.will_restart for c in containers):
        return "Succeeded" if all(c.exit_code == 0 for c in containers) else "Failed"
    if not initialized or any(c.state == "waiting" and not c.started_at for c in containers):
        return "Pending"
    return "Running"


def _condition(
    kind: str, value: bool, previous: Mapping[str, Obj], now: str, reason: str = ""
) -> Obj:
    status = "True" if value else "False"
    before = previous.get(kind)
    changed_at = (
        before.get("lastTransitionTime", now) if before and before.get("status") == status else now
    )
    out: Obj = {"type": kind, "status": status, "lastProbeTime": None}
    out["lastTransitionTime"] = changed_at
    if not value and reason:
        out["reason"] = reason
    return out


def pod_status(
    *,
    previous: Mapping[str, Any],
    containers: Sequence[ContainerView],
    init_containers: Sequence[ContainerView],
    initialized: bool,
    pod_ip: str,
    host_ip: str,
    start_time: str,
    now: str,
    message: str = "",
    reason: str = "",
) -> Obj:
    """The whole ``status`` of a Pod; ``previous`` is the stored one (kept: qosClass, times)."""
    phase = pod_phase(containers, initialized=initialized)
    conditions = {c.get("type", ""): c for c in previous.get("conditions") or []}
    all_ready = bool(containers) and all(c.ready for c in containers)
    unready = [c.name for c in containers if not c.ready]
    not_ready = "ContainersNotReady" if phase != "Succeeded" else "PodCompleted"
    status: Obj = {
        "phase": phase,
        "conditions": [
            _condition("PodReadyToStartContainers", bool(pod_ip), conditions, now),
            _condition("Initialized", initialized, conditions, now, "ContainersNotInitialized"),
            _condition("Ready", all_ready, conditions, now, not_ready),
            _condition("ContainersReady", all_ready, conditions, now, not_ready),
            _condition("PodScheduled", True, conditions, now),
        ],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": start_time,
        "containerStatuses": [c.status() for c in containers],
    }
    if unready and phase != "Succeeded":
        for condition in status["conditions"]:
            if condition["type"] in ("Ready", "ContainersReady") and condition["status"] == "False":
                condition["message"] = f"containers with unready status: [{' '.join(unready)}]"
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if init_containers:
        status["initContainerStatuses"] = [c.status() for c in init_containers]
    if previous.get("qosClass"):
        status["qosClass"] = previous["qosClass"]
    if message:
        status["message"] = message
    if reason:
        status["reason"] = reason
    return status
