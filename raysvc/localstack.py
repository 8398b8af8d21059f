"""Local mode's whole stack on one machine: the standalone profile without Kubernetes.

:class:`LocalStack` starts, in order, and stops in reverse:

1. **localkube** over HTTPS on ``127.0.0.1``, opened only by the bearer token of the kubeconfig
   it writes (mode 0600): whoever may create a Pod here runs a process on this machine;
2. raysvc's CRDs (``raysvc crds``);
3. the **webhook** as its own process, exactly as in a cluster: ``raysvc webhook --cert-secret``
   keeps its certificates in a Secret and injects the CA into the Mutating- and
   ValidatingWebhookConfiguration it is registered with, behind the Service
   ``raysvc-system/raysvc-webhook``;
4. the **local node** (``localkube.node``): the pod network, the node agent running Pods as
   processes with the project's own Ray, the service proxy and DNS;
5. the **reconciler** (both controllers) in this process, reaching Ray heads by Pod IP through
   sockets made inside the pod network.

Everything it makes (processes, network namespaces, interfaces, temporary files) is removed
when it stops; a set left by a killed run is removed at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import logging
import os
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from kubernetes_asyncio import client, config

from certs.issue import ServingNames, issue_ca, issue_serving_cert
from localkube import LocalKube, Settings
from localkube.node import FileLogs, LocalNode
from rayservice.crd import rayservice_crds
from reconciler.manager import Reconciler, ReconcilerSettings

__all__ = ["LocalStack", "StackError"]

log = logging.getLogger(__name__)

WEBHOOK_NAMESPACE: Final = "raysvc-system"
WEBHOOK_SERVICE: Final = "raysvc-webhook"
WEBHOOK_CONFIG: Final = "raysvc"
_RAYSVC = str(Path(sys.executable).with_name("raysvc"))
_STARTUP_SECONDS: Final = 60.0


class StackError(Exception):
    """Local mode cannot start: the message is one line for the user."""


def _hook(kind: str, path: str) -> dict[str, Any]:
    return {
        "name": f"{kind}.raysvc.io",
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "timeoutSeconds": 10,
        "clientConfig": {
            "service": {
                "namespace": WEBHOOK_NAMESPACE,
                "name": WEBHOOK_SERVICE,
                "path": path,
                "port": 443,
            }
        },
        "namespaceSelector": {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": [WEBHOOK_NAMESPACE, "kube-system"],
                }
            ]
        },
        "rules": [
            {
                "apiGroups": ["ray.io"],
                "apiVersions": ["v1", "v1alpha1"],
                "resources": ["rayservices"],
                "operations": ["CREATE", "UPDATE"],
            }
        ],
    }


class LocalStack:
    """The running stack; use ``async with``. ``state`` holds its kubeconfig, certificates
    and logs."""

    def __init__(
        self,
        state: Path,
        *,
        api_port: int = 0,
        api_socket: socket.socket | None = None,
        reconciler_settings: ReconcilerSettings | None = None,
    ) -> None:
        self.state = state
        # With ``api_socket`` (the host's port, bound before entering namespaces of its own),
        # the API server also listens on the same port number of this namespace's loopback, so
        # one kubeconfig serves kubectl on the host and the components in here.
        self.api_port = api_socket.getsockname()[1] if api_socket is not None else api_port
        self.api_socket = api_socket
        self.reconciler_settings = reconciler_settings or ReconcilerSettings(
            health_host="127.0.0.1", health_port=0, metrics_host="127.0.0.1", metrics_port=0
        )
        self.kubeconfig = state / "kubeconfig"
        self.logs = FileLogs(state / "logs")
        self._stack = contextlib.AsyncExitStack()
        self.kube: LocalKube | None = None
        self.api: client.ApiClient | None = None
        self.node: LocalNode | None = None
        self.reconciler: Reconciler | None = None

    async def __aenter__(self) -> LocalStack:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True, mode=0o700)
        settings = self._tls_settings()
        listen_also = [self.api_socket] if self.api_socket is not None else []
        self.kube = await self._stack.enter_async_context(
            LocalKube(settings, logs=self.logs, listen_also=listen_also)
        )
        self.kube.write_kubeconfig(self.kubeconfig)
        configuration = client.Configuration()
        await config.load_kube_config(
            config_file=str(self.kubeconfig), client_configuration=configuration
        )
        api: client.ApiClient = await self._stack.enter_async_context(
            client.ApiClient(configuration)
        )
        self.api = api
        await self._install()
        await self._stack.enter_async_context(self._webhook())
        self.node = await self._stack.enter_async_context(
            LocalNode(api, logs=self.logs, kubelets=self.kube.kubelets)
        )
        await self._stack.enter_async_context(self._reconciler())

    def _tls_settings(self) -> Settings:
        now = dt.datetime.now(dt.UTC)
        ca = issue_ca(now=now)
        leaf = issue_serving_cert(
            ca=ca,
            names=ServingNames(
                "localkube",
                "default",
                extra_dns_names=("localhost",),
                ip_addresses=(ipaddress.ip_address("127.0.0.1"),),
            ),
            now=now,
        )
        tls = self.state / "tls"
        tls.mkdir(exist_ok=True, mode=0o700)
        for name, data in (
            ("ca.crt", ca.cert_pem()),
            ("tls.crt", leaf.cert_pem()),
            ("tls.key", leaf.key_pem()),
        ):
            path = tls / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        return Settings(
            host="127.0.0.1",
            port=self.api_port,
            tls_cert=tls / "tls.crt",
            tls_key=tls / "tls.key",
            tls_ca=tls / "ca.crt",
            token=secrets.token_urlsafe(32),
        )

    async def _install(self) -> None:
        assert self.api is not None
        ext = client.ApiextensionsV1Api(self.api)
        for crd in rayservice_crds():
            await ext.create_custom_resource_definition(crd)  # type: ignore[arg-type]
        core = client.CoreV1Api(self.api)
        await core.create_namespace({"metadata": {"name": WEBHOOK_NAMESPACE}})  # type: ignore[arg-type]
        admission = client.AdmissionregistrationV1Api(self.api)
        await admission.create_mutating_webhook_configuration(
            {"metadata": {"name": WEBHOOK_CONFIG}, "webhooks": [_hook("mutate", "/mutate")]}  # type: ignore[arg-type]
        )
        await admission.create_validating_webhook_configuration(
            {"metadata": {"name": WEBHOOK_CONFIG}, "webhooks": [_hook("validate", "/validate")]}  # type: ignore[arg-type]
        )

    @contextlib.asynccontextmanager
    async def _webhook(self) -> AsyncIterator[None]:
        """``raysvc webhook --cert-secret`` as a process, behind its Service, until it has
        injected its CA into both configurations."""
        assert self.api is not None
        log_path = self.state / "webhook.log"
        log_file = log_path.open("wb")  # this run's log; the webhook writes to it itself
        process = await asyncio.create_subprocess_exec(
            _RAYSVC,
            "webhook",
            "--cert-secret",
            f"{WEBHOOK_NAMESPACE}/{WEBHOOK_SERVICE}-tls",
            "--webhook-config",
            WEBHOOK_CONFIG,
            "--service",
            WEBHOOK_SERVICE,
            "--namespace",
            WEBHOOK_NAMESPACE,
            "--kubeconfig",
            str(self.kubeconfig),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--health-host",
            "127.0.0.1",
            "--health-port",
            "0",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log_file,
            # its own session: a Ctrl-C in the terminal stops raysvc up, which stops it last
            start_new_session=True,
        )
        log_file.close()  # the child has its own descriptor
        try:
            port = await asyncio.wait_for(self._webhook_port(process, log_path), _STARTUP_SECONDS)
            await self._register(port)
            try:
                yield
            finally:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 15)
        except TimeoutError as e:
            raise StackError("the webhook did not start: see its log in " + str(self.state)) from e
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    async def _webhook_port(self, process: asyncio.subprocess.Process, log: Path) -> int:
        """The port from the webhook's ``webhook listening`` log line (callers bound the wait)."""
        while True:
            with log.open("rb") as f:
                for line in f:
                    with contextlib.suppress(ValueError, AttributeError):
                        entry = json.loads(line)
                        if entry.get("message") == "webhook listening":
                            return int(entry["port"])
            if process.returncode is not None:
                raise StackError(
                    "the webhook exited at start: see webhook.log in " + str(self.state)
                )
            await asyncio.sleep(0.05)

    async def _register(self, port: int) -> None:
        """The webhook's Service and Endpoints, then wait for its CA in both configurations."""
        assert self.api is not None
        core = client.CoreV1Api(self.api)
        await core.create_namespaced_service(
            WEBHOOK_NAMESPACE,
            {  # type: ignore[arg-type]
                "metadata": {"name": WEBHOOK_SERVICE},
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]},
            },
        )
        await core.create_namespaced_endpoints(
            WEBHOOK_NAMESPACE,
            {  # type: ignore[arg-type]
                "metadata": {"name": WEBHOOK_SERVICE},
                "subsets": [
                    {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": port}]}
                ],
            },
        )
        admission = client.AdmissionregistrationV1Api(self.api)
        async with asyncio.timeout(_STARTUP_SECONDS):
            while True:
                mutating = await admission.read_mutating_webhook_configuration(WEBHOOK_CONFIG)
                validating = await admission.read_validating_webhook_configuration(WEBHOOK_CONFIG)
                if all(
                    hook.client_config.ca_bundle
                    for cfg in (mutating, validating)
                    for hook in cfg.webhooks
                ):
                    return
                await asyncio.sleep(0.2)

    @contextlib.asynccontextmanager
    async def _reconciler(self) -> AsyncIterator[None]:
        assert self.api is not None
        assert self.node is not None
        network = self.node.network
        self.reconciler = Reconciler(
            self.api, self.reconciler_settings, dashboard_connector=network.connector
        )
        stop = asyncio.Event()
        task = asyncio.create_task(self.reconciler.run(stop), name="reconciler")
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)

    async def expose(
        self,
        namespace: str,
        service: str,
        port: int,
        host_port: int,
        sock: socket.socket | None = None,
    ) -> int:
        """Forward ``localhost:host_port`` (0: any free port), or the listening socket ``sock``,
        to a Service port; returns the port bound."""
        assert self.node is not None
        try:
            exposed = await self.node.expose(
                namespace, service, port, host_port=host_port, sock=sock
            )
        except OSError as e:
            raise StackError(f"cannot listen on localhost:{host_port}: {e.strerror}") from e
        return exposed.port

    async def apply(self, docs: Sequence[Mapping[str, Any]]) -> list[str]:
        """Create or update each RayService of ``docs`` (its namespace created if needed);
        returns one line per object, as kubectl prints them."""
        assert self.api is not None
        custom = client.CustomObjectsApi(self.api)
        core = client.CoreV1Api(self.api)
        lines = []
        for doc in docs:
            meta = dict(doc.get("metadata") or {})
            namespace = str(meta.get("namespace") or "default")
            name = str(meta.get("name", ""))
            version = str(doc.get("apiVersion", "")).rpartition("/")[2]
            with contextlib.suppress(client.ApiException):
                await core.create_namespace({"metadata": {"name": namespace}})  # type: ignore[arg-type]
            # as kubectl apply does, so a later kubectl apply of the same file merges cleanly
            applied = json.dumps(
                {**doc, "metadata": {**meta, "namespace": namespace}},
                sort_keys=True,
                separators=(",", ":"),
            )
            annotations = {
                **(meta.get("annotations") or {}),
                "kubectl.kubernetes.io/last-applied-configuration": applied + "\n",
            }
            body = {**doc, "metadata": {**meta, "namespace": namespace, "annotations": annotations}}
            try:
                current = await custom.get_namespaced_custom_object(
                    "ray.io", version, namespace, "rayservices", name
                )
            except client.ApiException as e:
                if e.status != 404:
                    raise
                await custom.create_namespaced_custom_object(
                    "ray.io", version, namespace, "rayservices", body
                )
                lines.append(f"rayservice.ray.io/{name} created")
                continue
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await custom.replace_namespaced_custom_object(
                "ray.io", version, namespace, "rayservices", name, body
            )
            lines.append(f"rayservice.ray.io/{name} configured")
        return lines
