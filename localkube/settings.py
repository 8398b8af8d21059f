"""Settings of one localkube API server (what ``make_app`` and :class:`LocalKube` take)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Settings"]


def _admin() -> dict[str, Any]:
    return {
        "username": "localkube-admin",
        "uid": "",
        "groups": ["system:masters", "system:authenticated"],
    }


@dataclass(frozen=True)
class Settings:
    """Listening address, bounds and behaviours of one server.

    ``port=0`` picks a free port. ``state_file`` turns on SQLite persistence. Times are seconds.
    ``tls_cert``/``tls_key`` and ``token`` make it a server that only its kubeconfig opens (local
    mode, where whoever may create a Pod runs a process on this machine).
    """

    host: str = "127.0.0.1"
    port: int = 0
    state_file: Path | None = None
    history_size: int = 10_000
    watch_queue_size: int = 1_000
    bookmark_interval: float = 60.0
    max_watch_seconds: float = 1_800.0
    max_body_bytes: int = 3 * 1024 * 1024
    garbage_collection: bool = True
    user_info: Mapping[str, Any] = field(default_factory=_admin)
    service_cidr: str = "10.96.0.0/12"
    git_version: str = "v1.32.4"
    tls_cert: Path | None = None
    """Serve HTTPS with this certificate chain (PEM) and ``tls_key``; plain HTTP when unset."""
    tls_key: Path | None = None
    tls_ca: Path | None = None
    """The CA that signed ``tls_cert``, written into kubeconfigs as certificate-authority-data."""
    token: str | None = None
    """When set, every request but the public health and version paths must carry
    ``Authorization: Bearer <token>``; others get 401, as kube-apiserver answers."""
