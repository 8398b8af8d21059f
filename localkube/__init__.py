"""localkube: an embedded Kubernetes API server for local mode and tests.

Faithful enough for the real kubectl and kubernetes-asyncio: CRUD with Status errors, one global
resourceVersion, watch with history, bookmarks and 410, the admission webhook chain over HTTPS,
CRD schemas (pruning, defaults, validation), finalizers and garbage collection, server-side apply
(simplified), optional SQLite persistence and fault injection. See ``docs/localkube.md``.

Production code never imports this package (``.importlinter``).
"""

from localkube.faults import Fault, Faults
from localkube.kube import LocalKube, kubeconfig
from localkube.logsource import LogRequest, LogSource, MemoryLogs
from localkube.server import make_app
from localkube.settings import Settings
from localkube.webhookclient import ServiceRef, ServiceResolver

__all__ = [
    "Fault",
    "Faults",
    "LocalKube",
    "LogRequest",
    "LogSource",
    "MemoryLogs",
    "ServiceRef",
    "ServiceResolver",
    "Settings",
    "kubeconfig",
    "make_app",
]
