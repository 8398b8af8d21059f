"""The local node of localkube: Pods as local processes in network namespaces, Services.

- ``network``: the pod network (cluster namespace, bridge, one namespace per Pod), stale cleanup.
- ``agent`` / ``pods``: the node agent (binds Pods to the node, runs them, reports status).
- ``proxy`` / ``endpoints`` / ``dns``: cluster IPs, node ports, Endpoints, EndpointSlices, DNS.
- ``logs``: container logs in files, the ``LogSource`` of ``kubectl logs``.
- ``sessions`` / ``stdio``: ``exec``, ``attach`` and ``port-forward`` into the Pods (the
  node's :class:`localkube.kubelet.Kubelet`), the processes' standard streams and terminals.
- ``node``: all of it in one ``async with LocalNode(...)``.
- ``rootless``: for a user without root, the rest of a program inside user, mount, PID and
  network namespaces of its own, where the node may make its namespaces.

See ``docs/local-mode.md``. Needs root, or ``rootless``, and ``ip`` (iproute2).
"""

from localkube.node.agent import NodeAgent, NodeSettings
from localkube.node.kubeapi import Api, ApiFailure, Informer
from localkube.node.logs import FileLogs
from localkube.node.network import NetworkUnavailable, PodNetwork, PodSandbox, check_capable
from localkube.node.node import LocalNode
from localkube.node.proxy import HostPort, ServiceProxy
from localkube.node.sessions import NodeSessions

__all__ = [
    "Api",
    "ApiFailure",
    "FileLogs",
    "HostPort",
    "Informer",
    "LocalNode",
    "NetworkUnavailable",
    "NodeAgent",
    "NodeSessions",
    "NodeSettings",
    "PodNetwork",
    "PodSandbox",
    "ServiceProxy",
    "check_capable",
]
