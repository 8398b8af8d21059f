"""Errors raised by the ``certs`` package.

Tree::

    CertError                  base of everything below; never raised itself
    ├── PemError               bytes that are not the PEM the caller asked for
    ├── CertMismatchError      a key that does not match its certificate, or a leaf that does
    │                          not chain to any CA of the bundle
    └── StoreError             the Kubernetes API refused or kept conflicting (certs.store)

Library errors (``ValueError`` from cryptography, ``ApiException`` from kubernetes-asyncio) are
re-raised ``from`` the original so the cause stays visible. Messages never contain key material.
"""

from __future__ import annotations

__all__ = ["CertError", "CertMismatchError", "PemError", "StoreError"]


class CertError(Exception):
    """Base class of every error of the ``certs`` package."""


class PemError(CertError):
    """The bytes are not a PEM certificate, bundle or private key of a supported kind."""


class CertMismatchError(CertError):
    """A private key does not match its certificate, or a certificate chain does not verify."""


class StoreError(CertError):
    """The certificate Secret or a webhook configuration could not be read or written."""
