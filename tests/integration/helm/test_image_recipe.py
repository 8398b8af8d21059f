"""The Dockerfile's build steps, replayed without a Docker engine.

The build context is what ``.dockerignore`` lets through; from it the wheel is built
(``pip wheel --no-deps``), installed with its dependencies as binary wheels only into a
virtual environment without pip, and the image's entrypoint ``raysvc`` runs from there. This
catches a package missing from the context, a dependency without a binary wheel (the slim image
has no compiler) and a console script that does not start. About 10 s (pip and PyPI).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PIP = (sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-cache-dir", "--quiet")


def build_context(into: Path) -> Path:
    """Copy the files the ``*``-then-``!name`` rules of ``.dockerignore`` admit."""
    rules = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert rules[0] == "*"
    into.mkdir()
    for rule in rules[1:]:
        if not rule.startswith("!"):
            continue
        source = ROOT / rule[1:].rstrip("/")
        if source.is_dir():
            shutil.copytree(
                source, into / source.name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(source, into / source.name)
    return into


def run(*command: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done.stdout


def test_the_image_recipe_builds_a_wheel_and_runs_raysvc_from_a_pip_free_venv(
    tmp_path: Path,
) -> None:
    context = build_context(tmp_path / "context")
    wheels = tmp_path / "wheels"
    run(*PIP, "wheel", "--no-deps", "--wheel-dir", str(wheels), ".", cwd=context)
    (wheel,) = wheels.glob("raysvc-*.whl")

    venv = tmp_path / "opt-raysvc"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    run(*PIP, "--python", str(python), "install", "--only-binary=:all:", str(wheel))
    assert not (venv / "bin" / "pip").exists()

    usage = run(str(venv / "bin" / "raysvc"), "--help")
    for command in ("webhook", "certs", "crds", "check"):
        assert command in usage
    assert "--cert-secret" in run(str(venv / "bin" / "raysvc"), "webhook", "--help")
