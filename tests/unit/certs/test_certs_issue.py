"""certs.issue: certificate shape, PEM, validation, rotation timing and bundles (fixed clock)."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs.errors import CertMismatchError, PemError
from certs.issue import (
    KeyedCert,
    RotationReason,
    ServingNames,
    cert_to_pem,
    chains_to,
    compose_ca_bundle,
    issue_ca,
    issue_serving_cert,
    key_matches_cert,
    key_to_pem,
    load_pem_cert,
    load_pem_certs,
    load_pem_key,
    renewal_time,
    rotation_due,
    rotation_reason,
    validate_serving,
)

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
NAMES = ServingNames(
    service="raysvc-webhook",
    namespace="raysvc-system",
    extra_dns_names=("webhook.example.com",),
    ip_addresses=(ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")),
)


@pytest.fixture(scope="module")
def ca() -> KeyedCert:
    return issue_ca(now=NOW, lifetime=300 * DAY)


@pytest.fixture(scope="module")
def serving(ca: KeyedCert) -> KeyedCert:
    return issue_serving_cert(ca=ca, names=NAMES, now=NOW, lifetime=90 * DAY)


def _sans(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def test_serving_cert_names_the_service_in_every_form_plus_extras(serving: KeyedCert) -> None:
    san = _sans(serving.cert)
    assert san.get_values_for_type(x509.DNSName) == [
        "raysvc-webhook",
        "raysvc-webhook.raysvc-system",
        "raysvc-webhook.raysvc-system.svc",
        "raysvc-webhook.raysvc-system.svc.cluster.local",
        "webhook.example.com",
    ]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]


def test_duplicate_extra_names_appear_once() -> None:
    names = ServingNames("svc", "ns", extra_dns_names=("svc.ns.svc", "other"))
    assert names.dns_names == ("svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.cluster.local", "other")


def test_ca_is_a_ca_that_may_sign_certificates(ca: KeyedCert) -> None:
    bc = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    ku = ca.cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert bc.critical
    assert bc.value.ca
    assert bc.value.path_length == 0
    assert ku.critical
    assert ku.value.key_cert_sign
    assert ca.cert.issuer == ca.cert.subject
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey)
    assert ca.key.curve.name == "secp256r1"


def test_serving_cert_is_a_p256_tls_server_leaf(serving: KeyedCert, ca: KeyedCert) -> None:
    ext = serving.cert.extensions
    assert not ext.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not ext.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert (
        ExtendedKeyUsageOID.SERVER_AUTH in ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    assert serving.cert.issuer == ca.cert.subject
    assert isinstance(serving.key, ec.EllipticCurvePrivateKey)
    assert serving.key.curve.name == "secp256r1"


def test_lifetimes_are_backdated_and_configurable(ca: KeyedCert, serving: KeyedCert) -> None:
    assert ca.cert.not_valid_before_utc == NOW - dt.timedelta(minutes=5)
    assert ca.cert.not_valid_after_utc == NOW + 300 * DAY
    assert serving.cert.not_valid_after_utc == NOW + 90 * DAY


def test_serving_cert_never_outlives_its_ca(ca: KeyedCert) -> None:
    late = NOW + 250 * DAY
    leaf = issue_serving_cert(ca=ca, names=NAMES, now=late, lifetime=90 * DAY)
    assert leaf.cert.not_valid_after_utc == ca.cert.not_valid_after_utc


def test_an_expired_ca_cannot_sign(ca: KeyedCert) -> None:
    with pytest.raises(ValueError, match="expired"):
        issue_serving_cert(ca=ca, names=NAMES, now=NOW + 301 * DAY)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        issue_ca(now=dt.datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("service", "namespace", "extra"),
    [("Bad_Name", "ns", ()), ("svc", "", ()), ("svc", "ns", ("under_score.example",))],
)
def test_invalid_names_are_refused(service: str, namespace: str, extra: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="DNS"):
        ServingNames(service, namespace, extra_dns_names=extra)


# --- key/cert match and chains ----------------------------------------------------------------


def test_key_matches_only_its_own_certificate(ca: KeyedCert, serving: KeyedCert) -> None:
    assert key_matches_cert(serving.key, serving.cert)
    assert key_matches_cert(ca.key, ca.cert)
    assert not key_matches_cert(ca.key, serving.cert)


def test_leaf_chains_to_its_ca_only(ca: KeyedCert, serving: KeyedCert) -> None:
    other = issue_ca(now=NOW)
    assert chains_to([serving.cert], [ca.cert])
    assert chains_to([serving.cert], [other.cert, ca.cert])
    assert not chains_to([serving.cert], [other.cert])
    assert not chains_to([], [ca.cert])


def test_a_leaf_with_the_same_issuer_name_but_another_key_does_not_chain(ca: KeyedCert) -> None:
    impostor = issue_ca(now=NOW)  # same default common name, different key
    assert impostor.cert.subject == ca.cert.subject
    leaf = issue_serving_cert(ca=impostor, names=NAMES, now=NOW)
    assert not chains_to([leaf.cert], [ca.cert])


def test_validate_serving_accepts_a_matching_set(ca: KeyedCert, serving: KeyedCert) -> None:
    material = validate_serving(
        cert_pem=serving.cert_pem(), key_pem=serving.key_pem(), ca_bundle_pem=ca.cert_pem()
    )
    assert material.leaf == serving.cert
    assert "key_pem" not in repr(material)


def test_validate_serving_refuses_a_foreign_key(ca: KeyedCert, serving: KeyedCert) -> None:
    with pytest.raises(CertMismatchError, match="private key does not match"):
        validate_serving(
            cert_pem=serving.cert_pem(), key_pem=ca.key_pem(), ca_bundle_pem=ca.cert_pem()
        )


def test_validate_serving_refuses_an_untrusted_leaf(serving: KeyedCert) -> None:
    other = issue_ca(now=NOW)
    with pytest.raises(CertMismatchError, match="does not chain"):
        validate_serving(
            cert_pem=serving.cert_pem(), key_pem=serving.key_pem(), ca_bundle_pem=other.cert_pem()
        )


# --- PEM ---------------------------------------------------------------------------------------


def test_pem_round_trip(ca: KeyedCert, serving: KeyedCert) -> None:
    assert load_pem_cert(serving.cert_pem()) == serving.cert
    key = load_pem_key(serving.key_pem())
    assert key_to_pem(key) == serving.key_pem()
    bundle = ca.cert_pem() + serving.cert_pem()
    assert load_pem_certs(bundle) == (ca.cert, serving.cert)


def test_rsa_keys_from_elsewhere_load() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert isinstance(load_pem_key(key_to_pem(key)), rsa.RSAPrivateKey)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no PEM certificate"),
        (b"hello", "no PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n", "malformed"),
    ],
)
def test_bad_certificate_pem_is_a_pem_error(data: bytes, message: str) -> None:
    with pytest.raises(PemError, match=message):
        load_pem_certs(data)


def test_one_certificate_means_one(ca: KeyedCert, serving: KeyedCert) -> None:
    with pytest.raises(PemError, match="found 2"):
        load_pem_cert(ca.cert_pem() + serving.cert_pem())


def test_truncated_certificate_is_a_pem_error(serving: KeyedCert) -> None:
    pem = serving.cert_pem()
    with pytest.raises(PemError):
        load_pem_cert(pem[: len(pem) // 2] + b"\n-----END CERTIFICATE-----\n")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no PEM private key"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "malformed"),
    ],
)
def test_bad_key_pem_is_a_pem_error(data: bytes, message: str) -> None:
    with pytest.raises(PemError, match=message):
        load_pem_key(data)


def test_a_certificate_is_not_a_key(serving: KeyedCert) -> None:
    with pytest.raises(PemError):
        load_pem_key(serving.cert_pem())


def test_an_encrypted_key_is_refused(serving: KeyedCert) -> None:
    encrypted = serving.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(PemError, match="encrypted"):
        load_pem_key(encrypted)


# --- rotation ----------------------------------------------------------------------------------

# A serving certificate valid from NOW to NOW + 90 days (no backdate): renewal at day 60.
_LEAF_CA = issue_ca(now=NOW, lifetime=400 * DAY)
_LEAF = issue_serving_cert(
    ca=_LEAF_CA, names=NAMES, now=NOW, lifetime=90 * DAY, backdate=dt.timedelta(0)
).cert
_OTHER_NAMES = ServingNames("raysvc-webhook", "elsewhere")
_MORE_IPS = ServingNames(
    "raysvc-webhook",
    "raysvc-system",
    ip_addresses=(ipaddress.ip_address("10.0.0.1"),),
)


@pytest.mark.parametrize(
    ("when", "names", "expected"),
    [
        pytest.param(NOW, None, None, id="fresh"),
        pytest.param(NOW + 30 * DAY, NAMES, None, id="halfway-with-matching-names"),
        pytest.param(NOW + 60 * DAY - dt.timedelta(seconds=1), None, None, id="just-before-2/3"),
        pytest.param(NOW + 60 * DAY, None, RotationReason.RENEWAL_TIME, id="at-2/3"),
        pytest.param(NOW + 89 * DAY, None, RotationReason.RENEWAL_TIME, id="late"),
        pytest.param(NOW + 90 * DAY, None, RotationReason.EXPIRED, id="expired-at-notAfter"),
        pytest.param(NOW + 400 * DAY, None, RotationReason.EXPIRED, id="long-expired"),
        pytest.param(NOW - dt.timedelta(seconds=1), None, RotationReason.NOT_YET_VALID, id="early"),
        pytest.param(NOW, _OTHER_NAMES, RotationReason.NAMES_NOT_COVERED, id="other-namespace"),
        pytest.param(NOW, _MORE_IPS, RotationReason.NAMES_NOT_COVERED, id="missing-ip"),
        pytest.param(
            NOW + 60 * DAY, _OTHER_NAMES, RotationReason.RENEWAL_TIME, id="time-wins-over-names"
        ),
    ],
)
def test_rotation_table(
    when: dt.datetime, names: ServingNames | None, expected: RotationReason | None
) -> None:
    assert rotation_reason(_LEAF, when, names=names) == expected
    assert rotation_due(_LEAF, when, names=names) is (expected is not None)


def test_renewal_time_is_two_thirds_of_the_lifetime() -> None:
    assert renewal_time(_LEAF) == NOW + 60 * DAY


def test_a_subset_of_names_is_covered() -> None:
    assert not rotation_due(_LEAF, NOW, names=ServingNames("raysvc-webhook", "raysvc-system"))


# --- bundles -----------------------------------------------------------------------------------


def test_bundle_keeps_old_and_new_ca_during_the_overlap() -> None:
    old = issue_ca(now=NOW, lifetime=30 * DAY).cert
    new = issue_ca(now=NOW + 20 * DAY, lifetime=30 * DAY).cert
    bundle = compose_ca_bundle([new, old], NOW + 21 * DAY)
    assert load_pem_certs(bundle) == (new, old)


def test_bundle_drops_expired_cas_duplicates_and_nones() -> None:
    old = issue_ca(now=NOW, lifetime=30 * DAY).cert
    new = issue_ca(now=NOW + 20 * DAY, lifetime=30 * DAY).cert
    bundle = compose_ca_bundle([new, None, old, new], NOW + 30 * DAY)
    assert load_pem_certs(bundle) == (new,)
    assert compose_ca_bundle([old], NOW + 31 * DAY) == b""


def test_bundle_is_plain_concatenated_pem() -> None:
    ca = issue_ca(now=NOW).cert
    assert compose_ca_bundle([ca], NOW) == cert_to_pem(ca)
