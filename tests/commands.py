"""The command-line tools the tests run: raysvc (this environment's) and the real kubectl."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KUBECTL", "RAYSVC", "Result", "kubectl", "run", "warnings"]

KUBECTL = "/usr/bin/kubectl"
RAYSVC = str(Path(sys.executable).with_name("raysvc"))


@dataclass(frozen=True)
class Result:
    """A finished command: exit code, standard output, standard error."""

    code: int
    out: str
    err: str


def run(
    argv: list[str],
    *,
    env: dict[str, str],
    stdin: str | None = None,
    check: bool = True,
    timeout: float = 60,
) -> Result:
    """Run a command to its end; with ``check``, a non-zero exit fails the test with what it
    printed."""
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    result = Result(done.returncode, done.stdout, done.stderr)
    if check:
        assert done.returncode == 0, result
    return result


def kubectl(
    kubeconfig: Path,
    home: Path,
    *args: str,
    stdin: str | None = None,
    check: bool = True,
    timeout: float = 60,
) -> Result:
    """Run ``kubectl ARGS`` with ``kubeconfig`` and a discovery cache under ``home``."""
    return run(
        [
            KUBECTL,
            "--kubeconfig",
            str(kubeconfig),
            "--cache-dir",
            str(home / "kubectl-cache"),
            *args,
        ],
        env={**os.environ, "HOME": str(home)},
        stdin=stdin,
        check=check,
        timeout=timeout,
    )


def warnings(result: Result) -> list[str]:
    """The ``Warning:`` lines kubectl printed, without the prefix."""
    return [
        line.removeprefix("Warning: ")
        for line in result.err.splitlines()
        if line.startswith("Warning: ")
    ]
