"""``raysvc certs``: the webhook's TLS certificates.

``raysvc certs generate --out-dir DIR`` writes a fresh CA (``ca.crt``) and a serving certificate
(``tls.crt``, ``tls.key``, mode 0600) for the webhook Service, in the layout of a cert-manager
Secret mount, ready for ``raysvc webhook --cert-dir DIR``. The CA's key is not written: nothing
else can be signed with it. Bad input is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from pathlib import Path

from certs.issue import IPAddress, ServingNames, issue_ca, issue_serving_cert

__all__ = ["register"]

DEFAULT_SERVICE = "raysvc-webhook"
DEFAULT_NAMESPACE = "raysvc-system"
DEFAULT_DAYS = 365
_PROG = "raysvc certs generate"


class _UsageError(Exception):
    """Bad input: reported as one line, exit code 2."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``certs`` and its actions to the top-level parser."""
    parser = subparsers.add_parser(
        "certs",
        help="manage the webhook's TLS certificates",
        description="Manage the admission webhook's TLS certificates.",
    )
    actions = parser.add_subparsers(dest="certs_action", metavar="ACTION", required=True)
    generate = actions.add_parser(
        "generate",
        help="write a CA and a serving certificate (ca.crt, tls.crt, tls.key) to a directory",
        description=(
            "Write a new CA (ca.crt) and a serving certificate signed by it (tls.crt, tls.key) "
            "for the webhook Service to DIR, overwriting files of those names. The serving "
            "certificate names <service>, <service>.<namespace>, <service>.<namespace>.svc and "
            "<service>.<namespace>.svc.cluster.local, plus every --dns-name and --ip."
        ),
    )
    generate.add_argument("--out-dir", required=True, metavar="DIR", help="created if missing")
    generate.add_argument(
        "--service",
        default=DEFAULT_SERVICE,
        metavar="NAME",
        help=f"webhook Service name (default {DEFAULT_SERVICE})",
    )
    generate.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        metavar="NS",
        help=f"webhook Service namespace (default {DEFAULT_NAMESPACE})",
    )
    generate.add_argument(
        "--dns-name",
        action="append",
        default=[],
        metavar="NAME",
        help="extra DNS name (repeatable)",
    )
    generate.add_argument(
        "--ip", action="append", default=[], metavar="IP", help="IP address SAN (repeatable)"
    )
    generate.add_argument(
        "--days",
        default=str(DEFAULT_DAYS),
        metavar="N",
        help=f"lifetime of the CA and the serving certificate in days (default {DEFAULT_DAYS})",
    )
    generate.set_defaults(handler=_generate)


def _parse_ips(values: list[str]) -> tuple[IPAddress, ...]:
    ips: list[IPAddress] = []
    for value in values:
        try:
            ips.append(ipaddress.ip_address(value))
        except ValueError:
            raise _UsageError(f"--ip {value!r} is not an IPv4 or IPv6 address") from None
    return tuple(ips)


def _parse_days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise _UsageError(f"--days {value!r} is not a whole number") from None
    if not 1 <= days <= 36500:
        raise _UsageError(f"--days {days} must be between 1 and 36500")
    return days


def _write(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``path`` atomically with ``mode`` set before any byte is written."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode is filtered by the umask
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def _generate(args: argparse.Namespace) -> int:
    try:
        names = ServingNames(
            service=args.service,
            namespace=args.namespace,
            extra_dns_names=tuple(args.dns_name),
            ip_addresses=_parse_ips(args.ip),
        )
        lifetime = dt.timedelta(days=_parse_days(args.days))
    except (_UsageError, ValueError) as e:
        print(f"{_PROG}: error: {e}", file=sys.stderr)
        return 2

    now = dt.datetime.now(dt.UTC)
    ca = issue_ca(now=now, lifetime=lifetime)
    serving = issue_serving_cert(ca=ca, names=names, now=now, lifetime=lifetime)
    out = Path(args.out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write(out / "ca.crt", ca.cert_pem(), mode=0o644)
        _write(out / "tls.key", serving.key_pem(), mode=0o600)
        _write(out / "tls.crt", serving.cert_pem(), mode=0o644)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        print(f"{_PROG}: error: cannot write to {out}: {reason}", file=sys.stderr)
        return 2
    expires = serving.cert.not_valid_after_utc.date().isoformat()
    print(f"wrote ca.crt, tls.crt, tls.key to {out} (valid until {expires})")
    return 0
