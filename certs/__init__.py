"""CA and serving certificates for the admission webhook.

- ``certs.issue`` (pure): issue a CA and serving certificates, PEM, validation, rotation timing,
  caBundle composition.
- ``certs.plan`` (pure): the Secret layout and what to (re)issue when; the caBundle JSON patch.
- ``certs.reload``: a server ``SSLContext`` whose certificate is swapped without a restart, and a
  watcher for certificate files mounted by cert-manager.
- ``certs.store`` (Kubernetes I/O): the certificate Secret shared by all replicas, caBundle
  injection, and the periodic sync loop.

``certs`` may import ``rayservice``; it never imports ``webhook``, ``localkube`` or ``raysvc``.
The store is not imported here so that file-based users do not load kubernetes-asyncio.
"""

from certs.errors import CertError, CertMismatchError, PemError, StoreError
from certs.issue import (
    KeyedCert,
    RotationReason,
    ServingMaterial,
    ServingNames,
    compose_ca_bundle,
    issue_ca,
    issue_serving_cert,
    rotation_due,
    validate_serving,
)
from certs.plan import CertPolicy
from certs.reload import CertDirWatcher, ReloadingContext, load_cert_dir, read_cert_dir

__all__ = [
    "CertDirWatcher",
    "CertError",
    "CertMismatchError",
    "CertPolicy",
    "KeyedCert",
    "PemError",
    "ReloadingContext",
    "RotationReason",
    "ServingMaterial",
    "ServingNames",
    "StoreError",
    "compose_ca_bundle",
    "issue_ca",
    "issue_serving_cert",
    "load_cert_dir",
    "read_cert_dir",
    "rotation_due",
    "validate_serving",
]
