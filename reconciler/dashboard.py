"""The Ray dashboard client: Serve's REST API on a head Pod, and the Serve proxy's health.

The head is addressed by its Pod IP as the API reports it (never by cluster DNS), so the same code
works from inside a cluster, from a laptop with a routed pod network, and in local mode.

- ``GET /api/serve/applications/?api_type=declarative``: the applications and their deployments'
  statuses (:func:`parse_serve_status`, pure). Only declaratively deployed apps count, as for
  KubeRay: an app someone deployed by hand is not the RayService's.
- ``PUT /api/serve/applications/``: the whole Serve config as JSON. 200 means accepted (the apps
  then move through DEPLOYING); 4xx means Ray refused it (:class:`Refused`, with Ray's message,
  usually a pydantic report); anything else is :class:`DashboardError` (retried).
- ``GET :<serve port>/-/healthz`` on a Pod: its Serve proxy is healthy.

Every call has a timeout; a failure is counted in the metrics by call and outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import orjson

from reconciler.metrics import Metrics

__all__ = [
    "AppStatus",
    "DashboardClient",
    "DashboardError",
    "DeploymentStatus",
    "Refused",
    "ServeStatus",
    "parse_serve_status",
]

SERVE_PATH: Final = "/api/serve/applications/"
_MAX_MESSAGE: Final = 2000
_MAX_BODY: Final = 16 * 1024 * 1024
_MAX_ERROR_BODY: Final = 64 * 1024
_STEADY: Final = frozenset({"HEALTHY", "UPSCALING", "DOWNSCALING"})


@dataclass(frozen=True, slots=True)
class DeploymentStatus:
    status: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class AppStatus:
    status: str
    message: str = ""
    deployments: Mapping[str, DeploymentStatus] = field(default_factory=dict)
    deployed_config: Mapping[str, Any] | None = None
    """The application's config as Ray last accepted it (the fields that were set)."""


@dataclass(frozen=True, slots=True)
class ServeStatus:
    """What Serve reports: applications by name (an unnamed app is ``default``)."""

    apps: Mapping[str, AppStatus]

    @property
    def all_running(self) -> bool:
        """At least one application, and every one RUNNING: KubeRay's readiness of Serve."""
        return bool(self.apps) and all(app.status == "RUNNING" for app in self.apps.values())

    @property
    def settled(self) -> bool:
        """Every application RUNNING and no deployment updating to a new config: what was
        submitted is in place. Autoscaling (UPSCALING, DOWNSCALING) is not a config change and
        may go on for as long as the load moves."""
        return self.all_running and all(
            dep.status in _STEADY for app in self.apps.values() for dep in app.deployments.values()
        )

    def runs(self, config: Mapping[str, Any]) -> bool:
        """Ray already has exactly ``config``'s applications, as ``config`` states them.

        This is how a submission that succeeded just before a crash is recognised afterwards
        (no second PUT); any difference, or an older Ray that does not report the deployed
        configs, means "submit".
        """
        wanted = config.get("applications")
        if not isinstance(wanted, list) or not wanted:
            return False
        by_name = {str(app.get("name", "default")): app for app in wanted if isinstance(app, dict)}
        if set(by_name) != set(self.apps):
            return False
        return all(self.apps[name].deployed_config == app for name, app in by_name.items())


class DashboardError(Exception):
    """The dashboard could not be reached or answered an error; worth a retry."""


class Refused(DashboardError):
    """Ray refused the Serve config (HTTP 4xx); ``message`` is Ray's explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


async def _read(response: aiohttp.ClientResponse, limit: int, *, truncate: bool = False) -> bytes:
    """The whole body, up to ``limit`` bytes: past it, the rest is dropped (``truncate``) or
    ``ValueError`` is raised. (``content.read(n)`` returns only what has arrived so far.)"""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        if size + len(chunk) > limit:
            if not truncate:
                raise ValueError(f"the answer is larger than {limit} bytes")
            chunks.append(chunk[: limit - size])
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _text(value: object) -> str:
    return value[:_MAX_MESSAGE] if isinstance(value, str) else ""


def parse_serve_status(doc: object) -> ServeStatus:
    """The statuses in a ``GET /api/serve/applications/`` document; unknown shapes are empty."""
    apps: dict[str, AppStatus] = {}
    raw_apps = doc.get("applications") if isinstance(doc, dict) else None
    if isinstance(raw_apps, dict):
        for name, app in raw_apps.items():
            if not isinstance(app, dict):
                continue
            deployments: dict[str, DeploymentStatus] = {}
            raw_deployments = app.get("deployments")
            if isinstance(raw_deployments, dict):
                for dep_name, dep in raw_deployments.items():
                    if isinstance(dep, dict):
                        deployments[str(dep_name)] = DeploymentStatus(
                            str(dep.get("status", "")), _text(dep.get("message"))
                        )
            deployed = app.get("deployed_app_config")
            apps[str(name) or "default"] = AppStatus(
                str(app.get("status", "")),
                _text(app.get("message")),
                deployments,
                deployed if isinstance(deployed, dict) else None,
            )
    return ServeStatus(apps)


class DashboardClient:
    """One pooled HTTP client for every head; open it with ``async with``."""

    def __init__(
        self,
        *,
        metrics: Metrics,
        get_timeout: float = 5.0,
        put_timeout: float = 15.0,
        connector: Callable[[], aiohttp.BaseConnector] | None = None,
    ) -> None:
        """``connector`` makes the pool's connector (default: plain TCP), e.g. one whose sockets
        start where Pod IPs are routed."""
        self.metrics = metrics
        self.connector = connector
        self.get_timeout = aiohttp.ClientTimeout(total=get_timeout)
        self.put_timeout = aiohttp.ClientTimeout(total=put_timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> DashboardClient:
        self._session = aiohttp.ClientSession(
            connector=self.connector() if self.connector else aiohttp.TCPConnector(limit=64),
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("DashboardClient is not open")
        return self._session

    async def applications(self, base_url: str) -> ServeStatus:
        """The declarative applications' statuses; raises ``DashboardError``."""
        try:
            async with self.session.get(
                f"{base_url}{SERVE_PATH}",
                params={"api_type": "declarative"},
                timeout=self.get_timeout,
            ) as response:
                body = await _read(response, _MAX_BODY)
                if response.status != 200:
                    self.metrics.dashboard_calls.labels("get", f"http-{response.status}").inc()
                    raise DashboardError(f"HTTP {response.status}: {_text(body.decode())}")
                doc = orjson.loads(body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            self.metrics.dashboard_calls.labels("get", "unreachable").inc()
            raise DashboardError(f"{type(e).__name__}: {e}") from e
        self.metrics.dashboard_calls.labels("get", "ok").inc()
        return parse_serve_status(doc)

    async def submit(self, base_url: str, config: Mapping[str, Any]) -> None:
        """PUT the whole Serve config; raises ``Refused`` (4xx) or ``DashboardError``."""
        try:
            async with self.session.put(
                f"{base_url}{SERVE_PATH}",
                data=orjson.dumps(config),
                headers={"Content-Type": "application/json"},
                timeout=self.put_timeout,
            ) as response:
                body = await _read(response, _MAX_ERROR_BODY, truncate=True)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as e:
            self.metrics.dashboard_calls.labels("put", "unreachable").inc()
            raise DashboardError(f"{type(e).__name__}: {e}") from e
        if 200 <= status < 300:
            self.metrics.dashboard_calls.labels("put", "ok").inc()
            return
        text = body.decode(errors="replace").strip()
        if 400 <= status < 500:
            self.metrics.dashboard_calls.labels("put", "refused").inc()
            raise Refused(status, _text(text))
        self.metrics.dashboard_calls.labels("put", f"http-{status}").inc()
        raise DashboardError(f"HTTP {status}: {_text(text)}")

    async def proxy_healthy(self, host: str, port: int) -> bool:
        """True when the Serve proxy on ``host:port`` answers ``/-/healthz`` with 200."""
        try:
            async with self.session.get(
                f"http://{host}:{port}/-/healthz", timeout=self.get_timeout
            ) as response:
                await _read(response, 4096, truncate=True)
                healthy = response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            self.metrics.dashboard_calls.labels("proxy-health", "unreachable").inc()
            return False
        self.metrics.dashboard_calls.labels("proxy-health", "ok" if healthy else "unhealthy").inc()
        return healthy
