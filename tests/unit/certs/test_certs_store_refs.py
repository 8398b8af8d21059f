"""certs.store's pure value types: how a Secret reference is parsed and printed."""

from __future__ import annotations

import pytest

from certs.store import SecretRef


def test_secret_ref_parses_namespace_slash_name() -> None:
    ref = SecretRef.parse("raysvc-system/raysvc-webhook-tls")
    assert ref == SecretRef(namespace="raysvc-system", name="raysvc-webhook-tls")
    assert str(ref) == "raysvc-system/raysvc-webhook-tls"


@pytest.mark.parametrize("text", ["", "name-only", "/name", "ns/", "a/b/c"])
def test_secret_ref_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="NAMESPACE/NAME"):
        SecretRef.parse(text)
