"""Pure decisions for self-managed certificates kept in a Kubernetes Secret.

Owns the Secret's layout, the choice of what to (re)issue at a given ``now``, and the JSON patch
that puts the CA bundle into a webhook configuration. It must not do I/O or read the clock:
``certs.store`` observes the cluster, calls these functions (in a thread, since issuing generates
keys) and writes the result.

Secret layout (type ``kubernetes.io/tls``, values base64 as usual)::

    tls.crt          serving certificate (PEM), signed by ca.crt or, during a CA overlap, by
                     ca-previous.crt
    tls.key          its private key (PKCS#8 PEM)
    ca.crt           the current CA certificate: it signs new serving certificates
    ca.key           the current CA's private key
    ca-previous.crt  the CA that ca.crt replaced, kept until it expires (absent if none)

The trust bundle (webhook ``clientConfig.caBundle``) is ``ca.crt`` plus ``ca-previous.crt``
without expired CAs.

CA rotation runs in two phases so no client ever meets a serving certificate it does not trust
(the race of open-policy-agent/cert-controller#13):

1. at two thirds of the CA's lifetime a new CA is issued; the serving certificate stays signed by
   the old CA, which moves to ``ca-previous.crt``; the bundle now holds both CAs and is injected;
2. once the new CA is ``ca_overlap`` old, the serving certificate is re-issued by the new CA.
   Replicas still serving the old leaf stay trusted: the old CA remains in the bundle until it
   expires.

If the serving certificate falls due in the very pass that rotates the CA, the old CA (still in
hand, valid for a third of its life) signs it, and phase 2 replaces it after the overlap.

A serving certificate that is due (two thirds of its lifetime, SANs that don't cover the wanted
names, not signed by a CA of the bundle) is re-issued at once by the current CA.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography import x509

from certs.errors import CertMismatchError, PemError
from certs.issue import (
    DEFAULT_BACKDATE,
    DEFAULT_CA_LIFETIME,
    DEFAULT_SERVING_LIFETIME,
    KeyedCert,
    PrivateKey,
    RotationReason,
    ServingMaterial,
    ServingNames,
    cert_to_pem,
    chains_to,
    compose_ca_bundle,
    generate_key,
    issue_ca,
    issue_serving_cert,
    key_matches_cert,
    load_pem_cert,
    load_pem_certs,
    load_pem_key,
    rotation_reason,
    validate_serving,
)

__all__ = [
    "KEY_CA_CRT",
    "KEY_CA_KEY",
    "KEY_CA_PREVIOUS",
    "KEY_TLS_CRT",
    "KEY_TLS_KEY",
    "SECRET_TYPE",
    "CertPolicy",
    "SecretCerts",
    "SecretPlan",
    "ca_bundle_patch",
    "parse_secret_data",
    "plan_secret",
    "secret_data",
]

SECRET_TYPE = "kubernetes.io/tls"
KEY_TLS_CRT = "tls.crt"
KEY_TLS_KEY = "tls.key"
KEY_CA_CRT = "ca.crt"
KEY_CA_KEY = "ca.key"
KEY_CA_PREVIOUS = "ca-previous.crt"


@dataclass(frozen=True)
class CertPolicy:
    """Lifetimes of the self-managed certificates.

    ``serving_lifetime`` may be at most a third of ``ca_lifetime``, so that when the CA is
    replaced (at two thirds of its life) a full serving certificate still fits before the old CA
    expires. ``ca_overlap`` is how long a new CA sits in the bundle, counted from its issue time
    (``notBefore + backdate``), before it signs the serving certificate. Raises ``ValueError``
    otherwise.
    """

    ca_lifetime: dt.timedelta = DEFAULT_CA_LIFETIME
    serving_lifetime: dt.timedelta = DEFAULT_SERVING_LIFETIME
    backdate: dt.timedelta = DEFAULT_BACKDATE
    ca_overlap: dt.timedelta = dt.timedelta(minutes=10)

    def __post_init__(self) -> None:
        if self.serving_lifetime <= dt.timedelta(0):
            raise ValueError("serving_lifetime must be positive")
        if self.serving_lifetime * 3 > self.ca_lifetime:
            raise ValueError("serving_lifetime must be at most a third of ca_lifetime")
        if self.backdate < dt.timedelta(0) or self.ca_overlap < dt.timedelta(0):
            raise ValueError("backdate and ca_overlap must not be negative")


@dataclass(frozen=True)
class SecretCerts:
    """The certificates kept in the Secret (see the module docstring for the layout)."""

    ca: KeyedCert
    serving: KeyedCert
    previous_ca: x509.Certificate | None = None

    def ca_bundle(self, now: dt.datetime) -> bytes:
        """The trust bundle at ``now``: current CA, then the previous one unless expired."""
        return compose_ca_bundle((self.ca.cert, self.previous_ca), now)

    def serving_material(self, now: dt.datetime) -> ServingMaterial:
        """The serving certificate, key and trust bundle, validated.

        Raises ``CertMismatchError`` if the serving certificate does not chain to the bundle at
        ``now`` (``plan_secret`` never leaves it so) and ``PemError`` if the bundle is empty.
        """
        return validate_serving(
            cert_pem=self.serving.cert_pem(),
            key_pem=self.serving.key_pem(),
            ca_bundle_pem=self.ca_bundle(now),
        )


@dataclass(frozen=True)
class SecretPlan:
    """What the Secret should hold, and why it changed (empty ``changes``: leave it alone)."""

    certs: SecretCerts
    changes: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """True if the Secret must be written."""
        return bool(self.changes)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def secret_data(certs: SecretCerts) -> dict[str, str]:
    """The Secret's ``data`` (base64 values) for ``certs``."""
    data = {
        KEY_TLS_CRT: _b64(certs.serving.cert_pem()),
        KEY_TLS_KEY: _b64(certs.serving.key_pem()),
        KEY_CA_CRT: _b64(certs.ca.cert_pem()),
        KEY_CA_KEY: _b64(certs.ca.key_pem()),
    }
    if certs.previous_ca is not None:
        data[KEY_CA_PREVIOUS] = _b64(cert_to_pem(certs.previous_ca))
    return data


def _field(data: Mapping[str, str], key: str) -> bytes:
    value = data.get(key)
    if not value:
        raise PemError(f"secret key {key} is missing or empty")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise PemError(f"secret key {key} is not valid base64") from e


def parse_secret_data(data: Mapping[str, str] | None) -> SecretCerts:
    """Decode a Secret's ``data`` into :class:`SecretCerts`.

    Raises ``PemError`` for a missing key or bad PEM, ``CertMismatchError`` if a private key does
    not belong to its certificate. Whether the serving certificate chains to the CAs is left to
    :func:`plan_secret`, which re-issues it if not.
    """
    data = data or {}
    ca = KeyedCert(load_pem_cert(_field(data, KEY_CA_CRT)), load_pem_key(_field(data, KEY_CA_KEY)))
    serving_chain = load_pem_certs(_field(data, KEY_TLS_CRT))
    serving = KeyedCert(serving_chain[0], load_pem_key(_field(data, KEY_TLS_KEY)))
    previous = load_pem_cert(_field(data, KEY_CA_PREVIOUS)) if data.get(KEY_CA_PREVIOUS) else None
    if not key_matches_cert(ca.key, ca.cert):
        raise CertMismatchError(f"{KEY_CA_KEY} does not match {KEY_CA_CRT}")
    if not key_matches_cert(serving.key, serving.cert):
        raise CertMismatchError(f"{KEY_TLS_KEY} does not match {KEY_TLS_CRT}")
    return SecretCerts(ca=ca, serving=serving, previous_ca=previous)


def plan_secret(
    current: SecretCerts | None,
    *,
    names: ServingNames,
    now: dt.datetime,
    policy: CertPolicy | None = None,
    new_key: Callable[[], PrivateKey] = generate_key,
) -> SecretPlan:
    """Decide the Secret's certificates at ``now``, starting from ``current`` (``None``: none).

    Converged input returns ``current`` itself with no changes, so callers write nothing. The
    ``changes`` strings (``ca-issued``, ``ca-rotated:<reason>``, ``previous-ca-expired``,
    ``serving-issued:<reason>``) are for logs and events.
    """
    policy = policy or CertPolicy()

    def new_ca() -> KeyedCert:
        return issue_ca(
            now=now, lifetime=policy.ca_lifetime, key=new_key(), backdate=policy.backdate
        )

    def new_serving(ca: KeyedCert) -> KeyedCert:
        return issue_serving_cert(
            ca=ca,
            names=names,
            now=now,
            lifetime=policy.serving_lifetime,
            key=new_key(),
            backdate=policy.backdate,
        )

    if current is None:
        ca = new_ca()
        return SecretPlan(SecretCerts(ca=ca, serving=new_serving(ca)), ("ca-issued",))

    changes: list[str] = []
    ca, previous, serving = current.ca, current.previous_ca, current.serving
    if previous is not None and now >= previous.not_valid_after_utc:
        previous = None
        changes.append("previous-ca-expired")
    # Signs a serving certificate re-issued in this pass: the current CA, except right after a
    # CA rotation, when the new CA is not in any injected bundle yet but the old one is.
    signer = ca
    ca_reason = rotation_reason(ca.cert, now)
    if ca_reason is not None:
        previous = ca.cert if now < ca.cert.not_valid_after_utc else None
        old_ca = ca
        ca = new_ca()
        signer = old_ca if ca_reason is RotationReason.RENEWAL_TIME else ca
        changes.append(f"ca-rotated:{ca_reason}")

    serving_reason: str | None = rotation_reason(serving.cert, now, names=names)
    if serving_reason is None:
        trusted = [c for c in (ca.cert, previous) if c is not None]
        overlap_over = now >= ca.cert.not_valid_before_utc + policy.backdate + policy.ca_overlap
        if not chains_to([serving.cert], trusted):
            serving_reason = "not-signed-by-a-bundle-ca"
        elif overlap_over and not chains_to([serving.cert], [ca.cert]):
            serving_reason = "ca-overlap-over"
    if serving_reason is not None:
        serving = new_serving(signer)
        changes.append(f"serving-issued:{serving_reason}")

    if not changes:
        return SecretPlan(current, ())
    return SecretPlan(SecretCerts(ca=ca, serving=serving, previous_ca=previous), tuple(changes))


def ca_bundle_patch(config: Mapping[str, object], ca_bundle_pem: bytes) -> list[dict[str, object]]:
    """A JSON patch setting ``clientConfig.caBundle`` of every webhook of ``config``.

    ``config`` is a Mutating- or ValidatingWebhookConfiguration as a JSON dict. Returns ``[]`` if
    every webhook already carries the bundle (compared decoded, so base64 formatting does not
    matter). Otherwise the patch starts with a ``test`` of ``metadata.resourceVersion``: list
    items are addressed by index, and the test makes the API server refuse the patch (422) if the
    list changed since ``config`` was read.
    """
    wanted = _b64(ca_bundle_pem)
    ops: list[dict[str, object]] = []
    webhooks = config.get("webhooks")
    for i, webhook in enumerate(webhooks if isinstance(webhooks, list) else []):
        client_config = webhook.get("clientConfig") if isinstance(webhook, dict) else None
        if not isinstance(client_config, dict):
            continue
        current = client_config.get("caBundle")
        if isinstance(current, str) and _same_bundle(current, ca_bundle_pem):
            continue
        op = "add" if current is None else "replace"
        ops.append({"op": op, "path": f"/webhooks/{i}/clientConfig/caBundle", "value": wanted})
    if not ops:
        return []
    metadata = config.get("metadata")
    rv = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
    if isinstance(rv, str) and rv:
        ops.insert(0, {"op": "test", "path": "/metadata/resourceVersion", "value": rv})
    return ops


def _same_bundle(current_b64: str, wanted_pem: bytes) -> bool:
    try:
        return base64.b64decode(current_b64, validate=False) == wanted_pem
    except (binascii.Error, ValueError):
        return False
