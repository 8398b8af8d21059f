"""Liveness and readiness probes of the Ray container, as KubeRay injects them.

From ``ray-operator/controllers/ray/common/pod.go`` (``initLivenessAndReadinessProbe``) and the
constants in ``utils/constant.go``. A probe the user wrote is kept as it is.

- Ray >= 2.53 (one health endpoint): an HTTP GET of ``/api/healthz`` on the dashboard agent port.
- Older Ray (the sample's 2.52.0): ``bash -c`` with ``wget`` checks: the raylet through the agent
  (``52365/api/local_raylet_healthz``, timeout 2 s) on every node, plus GCS through the dashboard
  (``8265/api/gcs_healthz``, timeout 10 s) on the head.
- Workers of a RayService cluster: readiness also checks the Serve proxy
  (``<serve port>/-/healthz``, timeout 10 s) with failureThreshold 1, so a worker without a
  healthy proxy leaves the serve Service at once; this check is an exec probe whatever the Ray
  version. The head's proxy is not probed: the RayService controller sets its ``ray.io/serve``
  label instead, because a failing head readiness probe would drop the head from the Service the
  workers join through.
- Timings: readiness 10 s delay, every 5 s, 10 failures; liveness 30 s delay, every 5 s, 120
  failures; timeouts 5 s on the head (two checks), 2 s on workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from rayservice.cluster_rules import parse_version
from reconciler.raycluster.raystart import DASHBOARD_AGENT_PORT, DEFAULT_DASHBOARD_PORT

__all__ = ["add_probes", "supports_unified_health_check"]

_WGET: Final = "wget --tries 1 -T {timeout} -q -O- http://localhost:{port}/{path} | grep success"
_SERVE_PORT: Final = 8000


def supports_unified_health_check(ray_version: str) -> bool:
    """Whether this Ray serves ``/api/healthz`` on the agent (2.53.0 and later)."""
    return (parse_version(ray_version) or (0, 0, 0)) >= (2, 53, 0)


def _port(params: Mapping[str, str], key: str, default: int) -> int:
    try:
        value = int(params.get(key, default))
    except ValueError:
        return default
    return value if -(2**31) <= value < 2**31 else default


def _container_port(container: Mapping[str, Any], name: str, default: int) -> int:
    for port in container.get("ports") or ():
        if isinstance(port, Mapping) and port.get("name") == name:
            number = port.get("containerPort")
            if isinstance(number, int):
                return number
    return default


def _exec(commands: list[str]) -> dict[str, Any]:
    return {"exec": {"command": ["bash", "-c", " && ".join(commands)]}}


def add_probes(
    container: dict[str, Any],
    *,
    node_type: str,
    serve_cluster: bool,
    params: Mapping[str, str],
    ray_version: str,
) -> None:
    """Set the Ray container's liveness and readiness probes where the user set none."""
    agent = _port(params, "dashboard-agent-listen-port", DASHBOARD_AGENT_PORT)
    dashboard = _port(params, "dashboard-port", DEFAULT_DASHBOARD_PORT)
    commands = [_WGET.format(timeout=2, port=agent, path="api/local_raylet_healthz")]
    if node_type == "head":
        # KubeRay passes the readiness failure threshold (10) as this wget's timeout.
        commands.append(_WGET.format(timeout=10, port=dashboard, path="api/gcs_healthz"))
    unified = supports_unified_health_check(ray_version)

    def action() -> dict[str, Any]:
        if unified:
            return {"httpGet": {"path": "/api/healthz", "port": agent}}
        return _exec(commands)

    timeout = 5 if node_type == "head" else 2
    if container.get("livenessProbe") is None:
        container["livenessProbe"] = {
            **action(),
            "initialDelaySeconds": 30,
            "timeoutSeconds": timeout,
            "periodSeconds": 5,
            "successThreshold": 1,
            "failureThreshold": 120,
        }
    if container.get("readinessProbe") is None:
        readiness: dict[str, Any] = {
            **action(),
            "initialDelaySeconds": 10,
            "timeoutSeconds": timeout,
            "periodSeconds": 5,
            "successThreshold": 1,
            "failureThreshold": 10,
        }
        if serve_cluster and node_type == "worker":
            serve = _container_port(container, "serve", _SERVE_PORT)
            # KubeRay passes the readiness initial delay (10) as this wget's timeout.
            proxy = _WGET.format(timeout=10, port=serve, path="-/healthz")
            readiness = {**readiness, **_exec([*commands, proxy]), "failureThreshold": 1}
            readiness.pop("httpGet", None)
        container["readinessProbe"] = readiness
