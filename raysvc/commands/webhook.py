"""``raysvc webhook``: run the admission webhook.

Certificates come either from files (``--cert-dir``, e.g. a Secret mounted from cert-manager,
polled and reloaded on change) or from a Secret the webhook manages itself (``--cert-secret``),
rotating it and injecting its CA into the named webhook configurations. Either way the server
reloads certificates without a restart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from raysvc.cli import EXIT_DENIED, EXIT_OK, EXIT_USAGE

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``webhook`` subcommand."""
    parser = subparsers.add_parser(
        "webhook",
        help="run the RayService admission webhook (HTTPS)",
        description="Serve /mutate and /validate over HTTPS, and /healthz, /readyz, /metrics "
        "over plain HTTP on the health port.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--cert-dir",
        metavar="DIR",
        help="read tls.crt, tls.key, ca.crt from DIR; reload on change (required, or "
        "--cert-secret)",
    )
    source.add_argument(
        "--cert-secret",
        metavar="NAMESPACE/NAME",
        help="keep self-issued certificates in this Secret, shared by all replicas (required, "
        "or --cert-dir)",
    )
    parser.add_argument(
        "--host", default="0.0.0.0", help="admission address (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=9443, help="admission port (default: %(default)s)"
    )
    parser.add_argument(
        "--health-host", default="0.0.0.0", help="health address (default: %(default)s)"
    )
    parser.add_argument(
        "--health-port", type=int, default=8081, help="health port (default: %(default)s)"
    )
    parser.add_argument(
        "--webhook-config",
        metavar="NAME",
        action="append",
        default=[],
        help="with --cert-secret: Mutating/ValidatingWebhookConfiguration whose caBundle to set "
        "(repeatable; default: none)",
    )
    parser.add_argument(
        "--service",
        default="raysvc-webhook",
        help="the webhook's Service name, for the certificate (default: %(default)s)",
    )
    parser.add_argument(
        "--namespace",
        help="the webhook's namespace, for the certificate (default: $POD_NAMESPACE, "
        "else the Secret's)",
    )
    parser.add_argument(
        "--dns-name",
        action="append",
        default=[],
        help="extra certificate DNS name (repeatable; default: none)",
    )
    parser.add_argument(
        "--ip",
        action="append",
        default=[],
        help="extra certificate IP address (repeatable; default: none)",
    )
    parser.add_argument(
        "--kubeconfig",
        help="kubeconfig for --cert-secret (default: $KUBECONFIG, else the in-cluster account)",
    )
    parser.add_argument(
        "--cert-poll-seconds",
        type=float,
        help="certificate re-check interval (default: 10 for --cert-dir, 60 for --cert-secret)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=0.0,
        help="after SIGTERM, keep answering (with Connection: close) this long before closing "
        "(default: %(default)s)",
    )
    limits = ConnectionDefaults()
    parser.add_argument(
        "--max-connections",
        type=int,
        default=limits.max_connections,
        help="HTTPS connections open at once; at the cap the idlest is closed or new ones wait "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=limits.header_timeout,
        metavar="SECONDS",
        help="to receive a request's headers, from the connection's start or the request's "
        "first byte (default: %(default)s)",
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=limits.body_timeout,
        metavar="SECONDS",
        help="to receive a request's body (default: %(default)s)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=limits.idle_timeout,
        metavar="SECONDS",
        help="an idle keep-alive connection is closed after this; keep it above the API "
        "server's 90 s (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning"),
        help="log verbosity (default: %(default)s)",
    )
    parser.set_defaults(handler=run)


@dataclass(frozen=True, slots=True)
class ConnectionDefaults:
    """The defaults of ``webhook.server`` the flags show, without importing aiohttp for help."""

    max_connections: int = 1000
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    idle_timeout: float = 120.0


def run(args: argparse.Namespace) -> int:
    """Run until SIGTERM/SIGINT; 2 for bad arguments or certificates, 1 if the API refuses or
    the ports cannot be bound."""
    from certs.errors import CertError, StoreError
    from raysvc.logs import configure

    configure(args.log_level)
    if args.cert_secret and not args.webhook_config:
        print(
            "raysvc webhook: --cert-secret needs at least one --webhook-config NAME",
            file=sys.stderr,
        )
        return EXIT_USAGE
    # Large reviews are decided in a worker thread; a short switch interval lets the event loop
    # (small reviews, connections) take the interpreter back within a millisecond.
    sys.setswitchinterval(0.001)
    try:
        asyncio.run(_serve(args))
    except CertError as exc:
        kind = EXIT_DENIED if isinstance(exc, StoreError) else EXIT_USAGE
        print(f"raysvc webhook: {exc}", file=sys.stderr)
        return kind
    except ValueError as exc:
        print(f"raysvc webhook: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a port in use, an unreadable directory
        print(
            f"raysvc webhook: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return EXIT_DENIED
    return EXIT_OK


async def _serve(args: argparse.Namespace) -> None:
    from webhook.connections import ConnectionLimits
    from webhook.server import WebhookSettings, bind_sockets, serve

    settings = WebhookSettings(
        host=args.host,
        port=args.port,
        health_host=args.health_host,
        health_port=args.health_port,
        drain_seconds=args.drain_seconds,
        body_timeout=args.body_timeout,
        connections=ConnectionLimits(
            max_connections=args.max_connections,
            header_timeout=args.header_timeout,
            idle_timeout=args.idle_timeout,
        ),
    )
    # Bind first: a webhook that cannot listen must not create the Secret or patch caBundles.
    sockets = bind_sockets(settings)
    try:
        async with _tls(args) as ssl_context:
            await serve(settings, ssl_context, sockets=sockets)
    finally:
        sockets.close()


@contextlib.asynccontextmanager
async def _tls(args: argparse.Namespace) -> AsyncIterator[Any]:
    """The reloading SSL context, with the task that keeps it current."""
    if args.cert_dir:
        from certs.reload import CertDirWatcher, load_cert_dir

        holder = await load_cert_dir(args.cert_dir)
        interval = args.cert_poll_seconds or 10.0
        async with CertDirWatcher(holder, args.cert_dir, interval=interval):
            yield holder.context
        return

    from kubernetes_asyncio import client, config

    from certs.issue import ServingNames
    from certs.store import CertStore, SecretRef, WebhookConfigs

    secret = SecretRef.parse(args.cert_secret)
    namespace = args.namespace or os.environ.get("POD_NAMESPACE") or secret.namespace
    names = ServingNames(
        args.service,
        namespace,
        extra_dns_names=tuple(args.dns_name),
        ip_addresses=tuple(ipaddress.ip_address(ip) for ip in args.ip),
    )
    if args.kubeconfig or os.environ.get("KUBECONFIG"):
        await config.load_kube_config(config_file=args.kubeconfig)
    else:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    async with client.ApiClient() as api:
        configs = tuple(args.webhook_config)
        store = CertStore(
            api,
            secret=secret,
            names=names,
            webhook_configs=WebhookConfigs(mutating=configs, validating=configs),
        )
        holder = await store.open()
        async with store.running(holder, interval=args.cert_poll_seconds or 60.0):
            yield holder.context
