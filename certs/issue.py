"""Pure certificate decisions: issue, encode, decode, validate, decide rotation.

This module owns the shape of the project's certificates: a self-signed CA (basicConstraints
``CA:TRUE``, keyUsage ``keyCertSign``) and serving certificates it signs for the webhook Service,
with ECDSA P-256 keys. It must not do I/O, read the clock or touch asyncio: time-dependent
functions take ``now`` (an aware datetime), and the only randomness is key and serial generation,
which callers can inject. Key generation is CPU work: async callers run these functions through
``asyncio.to_thread``.

Rotation happens at two thirds of a certificate's lifetime (cert-manager's default ``renewBefore``
ratio), so a certificate is replaced while a third of its life is left.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import ipaddress
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.errors import CertMismatchError, PemError

__all__ = [
    "DEFAULT_BACKDATE",
    "DEFAULT_CA_LIFETIME",
    "DEFAULT_SERVING_LIFETIME",
    "ROTATION_FRACTION",
    "IPAddress",
    "KeyedCert",
    "PrivateKey",
    "RotationReason",
    "ServingMaterial",
    "ServingNames",
    "cert_to_pem",
    "chains_to",
    "compose_ca_bundle",
    "covers_names",
    "fingerprint",
    "generate_key",
    "issue_ca",
    "issue_serving_cert",
    "key_matches_cert",
    "key_to_pem",
    "load_pem_cert",
    "load_pem_certs",
    "load_pem_key",
    "renewal_time",
    "rotation_due",
    "rotation_reason",
    "validate_serving",
]

DEFAULT_CA_LIFETIME = dt.timedelta(days=365)
DEFAULT_SERVING_LIFETIME = dt.timedelta(days=90)
# Certificates start this long before they are issued, so a peer whose clock is a little behind
# (another replica, the API server) already accepts them.
DEFAULT_BACKDATE = dt.timedelta(minutes=5)
ROTATION_FRACTION = Fraction(2, 3)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_NAME = re.compile(
    r"^(\*\.)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
)


@dataclass(frozen=True)
class ServingNames:
    """Who the serving certificate is for: a Service plus optional extra DNS names and IPs.

    ``dns_names`` is ``<svc>``, ``<svc>.<ns>``, ``<svc>.<ns>.svc``,
    ``<svc>.<ns>.svc.cluster.local`` then the extra names, without duplicates. Raises
    ``ValueError`` for a service or namespace that is not a DNS-1123 label or an extra name that is
    not a DNS name.
    """

    service: str
    namespace: str
    extra_dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[IPAddress, ...] = ()

    def __post_init__(self) -> None:
        for what, value in (("service", self.service), ("namespace", self.namespace)):
            if not _DNS_LABEL.match(value):
                raise ValueError(f"{what} {value!r} is not a DNS-1123 label")
        for name in self.extra_dns_names:
            if len(name) > 253 or not _DNS_NAME.match(name):
                raise ValueError(f"dns name {name!r} is not a valid DNS name")
        for ip in self.ip_addresses:
            if not isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
                raise ValueError(f"ip address {ip!r} is not an IPv4Address or IPv6Address")

    @property
    def dns_names(self) -> tuple[str, ...]:
        """Every DNS name the certificate must carry, Service forms first."""
        svc, ns = self.service, self.namespace
        names = (svc, f"{svc}.{ns}", f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.cluster.local")
        return tuple(dict.fromkeys((*names, *self.extra_dns_names)))


@dataclass(frozen=True)
class KeyedCert:
    """A certificate and its private key (equal when the certificates are equal)."""

    cert: x509.Certificate
    key: PrivateKey = field(compare=False, repr=False)

    def cert_pem(self) -> bytes:
        """The certificate as PEM."""
        return cert_to_pem(self.cert)

    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM."""
        return key_to_pem(self.key)


@dataclass(frozen=True)
class ServingMaterial:
    """What a TLS server needs, as PEM, already checked by :func:`validate_serving`.

    ``cert_pem`` is the leaf followed by any intermediates; ``ca_bundle_pem`` the CAs clients trust
    (the leaf chains to one of them). ``leaf`` is the parsed first certificate of ``cert_pem``.
    """

    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    ca_bundle_pem: bytes
    leaf: x509.Certificate = field(compare=False)

    def digest(self) -> str:
        """SHA-256 over the three PEMs: equal digests mean identical material."""
        h = hashlib.sha256()
        for part in (self.cert_pem, self.key_pem, self.ca_bundle_pem):
            h.update(len(part).to_bytes(8, "big"))
            h.update(part)
        return h.hexdigest()


class RotationReason(enum.StrEnum):
    """Why a certificate must be replaced now."""

    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    RENEWAL_TIME = "renewal-time"
    NAMES_NOT_COVERED = "names-not-covered"


# --- keys and issuing ---------------------------------------------------------------------------


def generate_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 private key (CPU work: run it in a thread from async code)."""
    return ec.generate_private_key(ec.SECP256R1())


def _check_aware(now: dt.datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def _ski(key: PrivateKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def _hash_for(key: PrivateKey) -> hashes.SHA256 | None:
    # Ed25519 signs without a separate digest; cryptography wants None for it.
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def issue_ca(
    *,
    now: dt.datetime,
    lifetime: dt.timedelta = DEFAULT_CA_LIFETIME,
    common_name: str = "raysvc-webhook-ca",
    key: PrivateKey | None = None,
    backdate: dt.timedelta = DEFAULT_BACKDATE,
    serial: int | None = None,
) -> KeyedCert:
    """Issue a self-signed CA valid from ``now - backdate`` to ``now + lifetime``.

    The CA may sign end-entity certificates only (``pathLenConstraint`` 0). Raises ``ValueError``
    for a naive ``now`` or a non-positive lifetime.
    """
    _check_aware(now)
    if lifetime <= dt.timedelta(0):
        raise ValueError("lifetime must be positive")
    key = key if key is not None else generate_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(now - backdate)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(_ski(key), critical=False)
    )
    return KeyedCert(builder.sign(key, _hash_for(key)), key)


def issue_serving_cert(
    *,
    ca: KeyedCert,
    names: ServingNames,
    now: dt.datetime,
    lifetime: dt.timedelta = DEFAULT_SERVING_LIFETIME,
    key: PrivateKey | None = None,
    backdate: dt.timedelta = DEFAULT_BACKDATE,
    serial: int | None = None,
) -> KeyedCert:
    """Issue a serving (TLS server) certificate for ``names``, signed by ``ca``.

    Valid from ``now - backdate`` to ``now + lifetime`` but never past the CA's own expiry, so a
    leaf cannot outlive its issuer. Raises ``ValueError`` if the CA is expired at ``now``, for a
    naive ``now`` or a non-positive lifetime.
    """
    _check_aware(now)
    if lifetime <= dt.timedelta(0):
        raise ValueError("lifetime must be positive")
    not_after = min(now + lifetime, ca.cert.not_valid_after_utc)
    if not_after <= now:
        raise ValueError("the CA is expired; it cannot sign a serving certificate")
    not_before = max(now - backdate, ca.cert.not_valid_before_utc)
    key = key if key is not None else generate_key()
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names.dns_names]
    sans += [x509.IPAddress(ip) for ip in names.ip_addresses]
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names.dns_names[2])]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(_ski(key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )
    return KeyedCert(builder.sign(ca.key, _hash_for(ca.key)), key)


# --- PEM ------------------------------------------------------------------------------------------


def cert_to_pem(cert: x509.Certificate) -> bytes:
    """One certificate as PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


def key_to_pem(key: PrivateKey) -> bytes:
    """A private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_pem_certs(data: bytes) -> tuple[x509.Certificate, ...]:
    """Every certificate of a PEM bundle, in order. Raises ``PemError`` if there is none."""
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise PemError("no PEM certificate found")
    try:
        return tuple(x509.load_pem_x509_certificates(data))
    except ValueError as e:
        raise PemError(f"malformed PEM certificate: {e}") from e


def load_pem_cert(data: bytes) -> x509.Certificate:
    """Exactly one PEM certificate. Raises ``PemError`` for none, several or garbage."""
    certs = load_pem_certs(data)
    if len(certs) != 1:
        raise PemError(f"expected one PEM certificate, found {len(certs)}")
    return certs[0]


def load_pem_key(data: bytes) -> PrivateKey:
    """An unencrypted PEM private key (EC, RSA or Ed25519). Raises ``PemError`` otherwise."""
    if b"PRIVATE KEY-----" not in data:
        raise PemError("no PEM private key found")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as e:
        raise PemError("the private key is encrypted") from e
    except (ValueError, UnsupportedAlgorithm) as e:
        raise PemError("malformed PEM private key") from e
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise PemError(f"unsupported private key type {type(key).__name__}")
    return key


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint of a certificate, lowercase hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


# --- validation -----------------------------------------------------------------------------------


def key_matches_cert(key: PrivateKey, cert: x509.Certificate) -> bool:
    """True if ``key`` is the private half of the certificate's public key."""
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return key.public_key().public_bytes(der, fmt) == cert.public_key().public_bytes(der, fmt)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def chains_to(chain: Sequence[x509.Certificate], cas: Iterable[x509.Certificate]) -> bool:
    """True if ``chain`` (leaf first, then intermediates) is signed link by link up to a CA.

    Checks names and signatures only, not validity periods (see :func:`rotation_reason`). A
    chain whose top certificate is itself one of ``cas`` also chains.
    """
    if not chain:
        return False
    for child, parent in itertools.pairwise(chain):
        if not _issued_by(child, parent):
            return False
    top = chain[-1]
    return any(ca == top or _issued_by(top, ca) for ca in cas)


def validate_serving(*, cert_pem: bytes, key_pem: bytes, ca_bundle_pem: bytes) -> ServingMaterial:
    """Check serving PEMs and return them as :class:`ServingMaterial`.

    Raises ``PemError`` if one of them does not parse, ``CertMismatchError`` if the key is not the
    leaf's or the chain does not reach a CA of the bundle.
    """
    chain = load_pem_certs(cert_pem)
    key = load_pem_key(key_pem)
    cas = load_pem_certs(ca_bundle_pem)
    if not key_matches_cert(key, chain[0]):
        raise CertMismatchError("the private key does not match the certificate")
    if not chains_to(chain, cas):
        raise CertMismatchError("the certificate does not chain to a CA of the bundle")
    return ServingMaterial(
        cert_pem=cert_pem, key_pem=key_pem, ca_bundle_pem=ca_bundle_pem, leaf=chain[0]
    )


# --- rotation and bundles -------------------------------------------------------------------------


def renewal_time(cert: x509.Certificate, *, fraction: Fraction = ROTATION_FRACTION) -> dt.datetime:
    """When ``cert`` should be replaced: ``fraction`` of the way through its validity."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    lifetime = end - start
    return start + lifetime * fraction.numerator / fraction.denominator


def covers_names(cert: x509.Certificate, names: ServingNames) -> bool:
    """True if the certificate's SANs include every DNS name and IP address of ``names``."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have_dns = {n.lower().rstrip(".") for n in san.get_values_for_type(x509.DNSName)}
    have_ips = set(san.get_values_for_type(x509.IPAddress))
    want_dns = {n.lower() for n in names.dns_names}
    return want_dns <= have_dns and set(names.ip_addresses) <= have_ips


def rotation_reason(
    cert: x509.Certificate,
    now: dt.datetime,
    *,
    names: ServingNames | None = None,
    fraction: Fraction = ROTATION_FRACTION,
) -> RotationReason | None:
    """Why ``cert`` must be replaced at ``now``, or ``None`` if it may stay.

    Order of precedence: expired (``now >= notAfter``), not yet valid, past the renewal time
    (two thirds of the lifetime by default), SANs not covering ``names`` (when given).
    """
    _check_aware(now)
    if now >= cert.not_valid_after_utc:
        return RotationReason.EXPIRED
    if now < cert.not_valid_before_utc:
        return RotationReason.NOT_YET_VALID
    if now >= renewal_time(cert, fraction=fraction):
        return RotationReason.RENEWAL_TIME
    if names is not None and not covers_names(cert, names):
        return RotationReason.NAMES_NOT_COVERED
    return None


def rotation_due(
    cert: x509.Certificate,
    now: dt.datetime,
    *,
    names: ServingNames | None = None,
    fraction: Fraction = ROTATION_FRACTION,
) -> bool:
    """True if ``cert`` must be replaced at ``now`` (see :func:`rotation_reason`)."""
    return rotation_reason(cert, now, names=names, fraction=fraction) is not None


def compose_ca_bundle(cas: Iterable[x509.Certificate | None], now: dt.datetime) -> bytes:
    """A PEM caBundle of ``cas`` in the given order, without duplicates and expired CAs.

    During a CA rotation callers pass the new CA and the previous one, so clients trust a
    serving certificate signed by either while replicas and the API server catch up.
    ``None`` entries are skipped. The result is empty if nothing is left.
    """
    _check_aware(now)
    seen: set[str] = set()
    parts: list[bytes] = []
    for ca in cas:
        if ca is None or now >= ca.not_valid_after_utc:
            continue
        fp = fingerprint(ca)
        if fp in seen:
            continue
        seen.add(fp)
        parts.append(cert_to_pem(ca))
    return b"".join(parts)
