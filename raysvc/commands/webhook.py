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
        "--cert-dir", metavar="DIR", help="read tls.crt, tls.key, ca.crt from DIR; reload on change"
    )
    source.add_argument(
        "--cert-secret",
        metavar="NAMESPACE/NAME",
        help="keep self-issued certificates in this Secret (shared by all replicas)",
    )
    parser.add_argument("--host", default="0.0.0.0", help="admission address (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=9443, help="admission port (default 9443)")
    parser.add_argument("--health-host", default="0.0.0.0", help="health address")
    parser.add_argument("--health-port", type=int, default=8081, help="health port (default 8081)")
    parser.add_argument(
        "--webhook-config",
        metavar="NAME",
        action="append",
        default=[],
        help="with --cert-secret: Mutating/ValidatingWebhookConfiguration whose caBundle to set "
        "(repeatable)",
    )
    parser.add_argument("--service", default="raysvc-webhook", help="the webhook's Service name")
    parser.add_argument(
        "--namespace", help="the webhook's namespace (default: the Secret's, or $POD_NAMESPACE)"
    )
    parser.add_argument("--dns-name", action="append", default=[], help="extra certificate name")
    parser.add_argument("--ip", action="append", default=[], help="extra certificate IP address")
    parser.add_argument("--kubeconfig", help="kubeconfig for --cert-secret (default: in-cluster)")
    parser.add_argument(
        "--cert-poll-seconds",
        type=float,
        help="certificate re-check interval (default: 10 s for --cert-dir, 60 s for --cert-secret)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=0.0,
        help="after SIGTERM, keep answering (with Connection: close) this long before closing",
    )
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    parser.set_defaults(handler=run)


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
    from webhook.server import WebhookSettings, serve

    settings = WebhookSettings(
        host=args.host,
        port=args.port,
        health_host=args.health_host,
        health_port=args.health_port,
        drain_seconds=args.drain_seconds,
    )
    async with _tls(args) as ssl_context:
        await serve(settings, ssl_context)


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
