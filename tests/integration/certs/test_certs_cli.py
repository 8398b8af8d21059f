"""``raysvc certs generate``: files, permissions, names, and one-line errors."""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from certs.issue import ServingNames, covers_names, load_pem_cert
from certs.reload import read_cert_dir
from raysvc.cli import main


def _generate(out: Path, *extra: str) -> int:
    return main(["certs", "generate", "--out-dir", str(out), *extra])


def test_generate_writes_a_verifiable_cert_dir(tmp_path: Path) -> None:
    out = tmp_path / "new" / "certs"
    args = ("--service", "hook", "--namespace", "ops", "--dns-name", "hook.example.com")
    assert _generate(out, *args, "--ip", "127.0.0.1", "--ip", "::1", "--days", "30") == 0

    assert sorted(p.name for p in out.iterdir()) == ["ca.crt", "tls.crt", "tls.key"]
    assert stat.S_IMODE((out / "tls.key").stat().st_mode) == 0o600
    material = read_cert_dir(out)  # key matches, chains to ca.crt
    wanted = ServingNames(
        "hook",
        "ops",
        extra_dns_names=("hook.example.com",),
        ip_addresses=(ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")),
    )
    assert covers_names(material.leaf, wanted)
    lifetime = material.leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=29) < lifetime <= dt.timedelta(days=30)
    ca = load_pem_cert((out / "ca.crt").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_verifies_the_generated_chain_for_tls_servers(tmp_path: Path) -> None:
    assert _generate(tmp_path) == 0
    result = subprocess.run(
        ["openssl", "verify", "-purpose", "sslserver", "-CAfile", "ca.crt", "tls.crt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "tls.crt: OK"


def test_generate_defaults_to_the_project_service(tmp_path: Path) -> None:
    assert _generate(tmp_path) == 0
    leaf = read_cert_dir(tmp_path).leaf
    assert covers_names(leaf, ServingNames("raysvc-webhook", "raysvc-system"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--ip", "10.0.0.300"), "--ip '10.0.0.300' is not an IPv4 or IPv6 address"),
        (("--days", "0"), "--days 0 must be between 1 and 36500"),
        (("--days", "ten"), "--days 'ten' is not a whole number"),
        (("--service", "Bad_Name"), "service 'Bad_Name' is not a DNS-1123 label"),
        (("--dns-name", "a..b"), "dns name 'a..b' is not a valid DNS name"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    assert _generate(tmp_path / "out", *args) == 2
    err = capsys.readouterr().err
    assert err == f"raysvc certs generate: error: {message}\n"
    assert not (tmp_path / "out").exists()


def test_unwritable_out_dir_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert _generate(blocker / "certs") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"raysvc certs generate: error: cannot write to {blocker / 'certs'}: ")
    assert err.count("\n") == 1


def _raysvc() -> list[str]:
    return [sys.executable, "-m", "raysvc"]


def test_the_console_command_generates_and_reports_errors(tmp_path: Path) -> None:
    ok = subprocess.run(
        [*_raysvc(), "certs", "generate", "--out-dir", str(tmp_path), "--ip", "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"wrote ca.crt, tls.crt, tls.key to {tmp_path}")
    read_cert_dir(tmp_path)

    bad = subprocess.run(
        [*_raysvc(), "certs", "generate", "--out-dir", str(tmp_path), "--ip", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert (
        bad.stderr == "raysvc certs generate: error: --ip 'nope' is not an IPv4 or IPv6 address\n"
    )
    assert "Traceback" not in bad.stderr
