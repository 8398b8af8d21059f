"""The sample's Serve application code, packed where the sample RayService expects it.

Owns :func:`build_sample_apps`: ``examples/apps/*.py`` zipped (flat, deterministic) to the
``working_dir`` the sample names, ``file:///tmp/raysvc/examples/test_dag.zip``, so the apps load
without internet. The file is replaced atomically and only when its content changes (Ray caches
packages by URI, so a running cluster keeps the code it loaded; see docs/local-mode.md).
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

__all__ = ["SAMPLE_APPS_DIR", "SAMPLE_ZIP", "build_sample_apps"]

SAMPLE_APPS_DIR = Path(__file__).resolve().parents[2] / "examples" / "apps"
SAMPLE_ZIP = Path("/tmp/raysvc/examples/test_dag.zip")


def _pack(source: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.glob("*.py")):
            info = zipfile.ZipInfo(path.name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def build_sample_apps(source: Path = SAMPLE_APPS_DIR, target: Path = SAMPLE_ZIP) -> Path:
    """Zip the ``*.py`` files of ``source`` to ``target``; returns ``target``.

    Raises ``FileNotFoundError`` when ``source`` has no Python file.
    """
    if not any(source.glob("*.py")):
        raise FileNotFoundError(f"no Serve application code in {source}")
    data = _pack(source)
    if target.exists() and target.read_bytes() == data:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    partial.write_bytes(data)
    partial.chmod(0o644)
    os.replace(partial, target)
    return target
