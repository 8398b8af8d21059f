"""certs.plan: the Secret's layout, what to (re)issue when, and the caBundle patch."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from certs.errors import CertMismatchError, PemError
from certs.issue import (
    ServingNames,
    chains_to,
    issue_ca,
    issue_serving_cert,
    load_pem_certs,
)
from certs.plan import (
    CertPolicy,
    SecretCerts,
    ca_bundle_patch,
    parse_secret_data,
    plan_secret,
    secret_data,
)

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
NAMES = ServingNames("raysvc-webhook", "raysvc-system")
# CA renewal at day 20, serving renewal every ~6.7 days, 1 h overlap.
POLICY = CertPolicy(
    ca_lifetime=30 * DAY, serving_lifetime=10 * DAY, backdate=dt.timedelta(0), ca_overlap=HOUR
)


def _fresh(now: dt.datetime = NOW) -> SecretCerts:
    return plan_secret(None, names=NAMES, now=now, policy=POLICY).certs


def test_nothing_yet_issues_a_ca_and_a_serving_cert() -> None:
    plan = plan_secret(None, names=NAMES, now=NOW, policy=POLICY)
    assert plan.changes == ("ca-issued",)
    assert plan.certs.previous_ca is None
    assert chains_to([plan.certs.serving.cert], [plan.certs.ca.cert])
    assert plan.certs.ca.cert.not_valid_after_utc == NOW + 30 * DAY
    assert plan.certs.serving.cert.not_valid_after_utc == NOW + 10 * DAY


def test_converged_state_plans_no_change() -> None:
    certs = _fresh()
    plan = plan_secret(certs, names=NAMES, now=NOW + DAY, policy=POLICY)
    assert not plan.changed
    assert plan.certs is certs


def test_due_serving_cert_is_reissued_by_the_same_ca() -> None:
    certs = _fresh()
    plan = plan_secret(certs, names=NAMES, now=NOW + 7 * DAY, policy=POLICY)
    assert plan.changes == ("serving-issued:renewal-time",)
    assert plan.certs.ca == certs.ca
    assert plan.certs.serving.cert.serial_number != certs.serving.cert.serial_number
    assert chains_to([plan.certs.serving.cert], [certs.ca.cert])


def test_new_names_reissue_the_serving_cert() -> None:
    more = ServingNames("raysvc-webhook", "raysvc-system", extra_dns_names=("x.example",))
    plan = plan_secret(_fresh(), names=more, now=NOW + HOUR, policy=POLICY)
    assert plan.changes == ("serving-issued:names-not-covered",)


def test_serving_cert_of_a_foreign_ca_is_reissued() -> None:
    certs = _fresh()
    foreign = issue_ca(now=NOW)
    leaf = issue_serving_cert(ca=foreign, names=NAMES, now=NOW)
    plan = plan_secret(
        SecretCerts(ca=certs.ca, serving=leaf), names=NAMES, now=NOW + HOUR, policy=POLICY
    )
    assert plan.changes == ("serving-issued:not-signed-by-a-bundle-ca",)


def _rotate_ca(certs: SecretCerts, now: dt.datetime) -> SecretCerts:
    plan = plan_secret(certs, names=NAMES, now=now, policy=POLICY)
    assert plan.changes[0] == "ca-rotated:renewal-time"
    return plan.certs


def test_ca_rotation_first_adds_the_new_ca_and_keeps_the_leaf() -> None:
    certs = _fresh()
    # Keep the leaf fresh so only the CA is due at day 20.
    leaf = issue_serving_cert(ca=certs.ca, names=NAMES, now=NOW + 19 * DAY, lifetime=10 * DAY)
    certs = SecretCerts(ca=certs.ca, serving=leaf)
    rotated = _rotate_ca(certs, NOW + 20 * DAY)
    assert rotated.previous_ca == certs.ca.cert
    assert rotated.ca != certs.ca
    assert rotated.serving == leaf  # still signed by the old CA: phase 1
    bundle = load_pem_certs(rotated.ca_bundle(NOW + 20 * DAY))
    assert bundle == (rotated.ca.cert, certs.ca.cert)
    assert chains_to([rotated.serving.cert], bundle)


def test_after_the_overlap_the_new_ca_signs_the_leaf() -> None:
    certs = _fresh()
    leaf = issue_serving_cert(ca=certs.ca, names=NAMES, now=NOW + 19 * DAY, lifetime=10 * DAY)
    rotated = _rotate_ca(SecretCerts(ca=certs.ca, serving=leaf), NOW + 20 * DAY)
    early = plan_secret(rotated, names=NAMES, now=NOW + 20 * DAY + HOUR / 2, policy=POLICY)
    assert not early.changed
    late = plan_secret(rotated, names=NAMES, now=NOW + 20 * DAY + HOUR, policy=POLICY)
    assert late.changes == ("serving-issued:ca-overlap-over",)
    assert chains_to([late.certs.serving.cert], [rotated.ca.cert])
    assert late.certs.previous_ca == certs.ca.cert  # old leaves still served elsewhere


def test_previous_ca_is_dropped_when_it_expires() -> None:
    certs = _rotate_ca(_fresh(), NOW + 20 * DAY)
    for day in (21, 28):
        certs = plan_secret(certs, names=NAMES, now=NOW + day * DAY, policy=POLICY).certs
    assert certs.previous_ca is not None
    plan = plan_secret(certs, names=NAMES, now=NOW + 30 * DAY, policy=POLICY)
    assert plan.changes == ("previous-ca-expired",)
    assert plan.certs.previous_ca is None


def test_an_expired_ca_is_replaced_without_overlap() -> None:
    plan = plan_secret(_fresh(), names=NAMES, now=NOW + 40 * DAY, policy=POLICY)
    assert plan.changes == ("ca-rotated:expired", "serving-issued:expired")
    assert plan.certs.previous_ca is None
    assert chains_to([plan.certs.serving.cert], [plan.certs.ca.cert])


def test_clients_always_trust_the_leaf_across_two_ca_lifetimes() -> None:
    """Walk 70 days in 4-hour passes: the leaf is valid, trusted by the bundle injected in the
    same pass, and a leaf signed by a different CA than before was already trusted by the bundle
    of the previous pass (the API server may still use that one)."""
    certs = _fresh()
    bundle = load_pem_certs(certs.ca_bundle(NOW))
    ca_rotations = 0
    now = NOW
    while now < NOW + 70 * DAY:
        now += 4 * HOUR
        plan = plan_secret(certs, names=NAMES, now=now, policy=POLICY)
        ca_rotations += any(c.startswith("ca-rotated") for c in plan.changes)
        new_bundle = load_pem_certs(plan.certs.ca_bundle(now))
        leaf = plan.certs.serving.cert
        assert leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc
        assert chains_to([leaf], new_bundle)
        if leaf != certs.serving.cert:
            assert chains_to([leaf], bundle), f"new leaf at {now} not trusted by the old bundle"
        certs, bundle = plan.certs, new_bundle
    assert ca_rotations >= 2


def test_a_serving_cert_due_in_the_ca_rotation_pass_is_signed_by_the_old_ca() -> None:
    certs = _fresh()
    leaf = issue_serving_cert(ca=certs.ca, names=NAMES, now=NOW + 13 * DAY, lifetime=10 * DAY)
    plan = plan_secret(
        SecretCerts(ca=certs.ca, serving=leaf), names=NAMES, now=NOW + 20 * DAY, policy=POLICY
    )
    assert plan.changes == ("ca-rotated:renewal-time", "serving-issued:renewal-time")
    assert chains_to([plan.certs.serving.cert], [certs.ca.cert])
    assert plan.certs.serving.cert.not_valid_after_utc == certs.ca.cert.not_valid_after_utc


# --- Secret data -------------------------------------------------------------------------------


def test_secret_data_round_trips() -> None:
    certs = _rotate_ca(_fresh(), NOW + 20 * DAY)
    data = secret_data(certs)
    assert set(data) == {"tls.crt", "tls.key", "ca.crt", "ca.key", "ca-previous.crt"}
    assert parse_secret_data(data) == certs


def test_secret_without_previous_ca_has_no_such_key() -> None:
    assert "ca-previous.crt" not in secret_data(_fresh())


@pytest.mark.parametrize("missing", ["tls.crt", "tls.key", "ca.crt", "ca.key"])
def test_missing_secret_key_is_a_pem_error(missing: str) -> None:
    data = secret_data(_fresh())
    del data[missing]
    with pytest.raises(PemError, match=missing):
        parse_secret_data(data)


def test_bad_base64_is_a_pem_error() -> None:
    data = secret_data(_fresh()) | {"tls.crt": "%%%"}
    with pytest.raises(PemError, match="base64"):
        parse_secret_data(data)


def test_swapped_keys_are_a_mismatch() -> None:
    data = secret_data(_fresh())
    data["ca.key"], data["tls.key"] = data["tls.key"], data["ca.key"]
    with pytest.raises(CertMismatchError, match=r"ca\.key does not match"):
        parse_secret_data(data)


def test_empty_secret_is_a_pem_error() -> None:
    with pytest.raises(PemError):
        parse_secret_data(None)


# --- policy ------------------------------------------------------------------------------------


def test_serving_lifetime_must_fit_a_third_of_the_ca_lifetime() -> None:
    with pytest.raises(ValueError, match="third"):
        CertPolicy(ca_lifetime=30 * DAY, serving_lifetime=11 * DAY)


# --- caBundle patch ----------------------------------------------------------------------------


def _config(*bundles: str | None) -> dict[str, object]:
    webhooks: list[object] = []
    for i, bundle in enumerate(bundles):
        client_config: dict[str, object] = {"service": {"name": "svc", "namespace": "ns"}}
        if bundle is not None:
            client_config["caBundle"] = bundle
        webhooks.append({"name": f"w{i}.raysvc.io", "clientConfig": client_config})
    return {"metadata": {"name": "raysvc", "resourceVersion": "42"}, "webhooks": webhooks}


PEM = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
B64 = base64.b64encode(PEM).decode()


def test_patch_sets_every_webhook_guarded_by_the_resource_version() -> None:
    ops = ca_bundle_patch(_config(None, "b2xk"), PEM)
    assert ops == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
        {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": B64},
        {"op": "replace", "path": "/webhooks/1/clientConfig/caBundle", "value": B64},
    ]


def test_patch_is_empty_when_every_bundle_is_current() -> None:
    assert ca_bundle_patch(_config(B64, B64), PEM) == []


def test_patch_touches_only_the_webhooks_that_differ() -> None:
    ops = ca_bundle_patch(_config(B64, "b2xk"), PEM)
    assert [op["path"] for op in ops] == [
        "/metadata/resourceVersion",
        "/webhooks/1/clientConfig/caBundle",
    ]


def test_patch_of_a_configuration_without_webhooks_is_empty() -> None:
    assert ca_bundle_patch({"metadata": {"resourceVersion": "1"}}, PEM) == []
