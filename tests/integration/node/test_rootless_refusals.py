"""``raysvc up`` without root says in one line why it cannot start, and starts nothing."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from localkube.node import rootless
from tests.commands import RAYSVC

UID = 1000


def _as_user(*args: str) -> list[str]:
    """``raysvc`` run by a user without any capability on the host (uid 1000 of a user
    namespace mapped onto root, when the tests run as root)."""
    command = [RAYSVC, *args]
    if os.geteuid() == 0:
        command = ["unshare", "--user", f"--map-user={UID}", f"--map-group={UID}", "--", *command]
    return command


def test_missing_netns_directories_are_named_with_the_command_that_creates_them(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "netns"
    with pytest.raises(rootless.Unavailable) as refused:
        rootless.preflight([tmp_path, missing])
    message = str(refused.value)
    assert f"mkdir -p {missing}" in message
    assert "\n" not in message


def test_a_taken_host_port_is_refused_before_any_namespace_is_made(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            _as_user("up", "--state-dir", str(tmp_path / "state"), "--serve-port", str(port)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    assert done.stderr == f"raysvc up: cannot listen on localhost:{port}: Address already in use\n"
    assert done.stdout == ""
    assert not (tmp_path / "state").exists()
