"""`argus service … --root DIR`: every file staged, nothing outside DIR, clear refusals."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from argus_telemetry import __version__
from argus_telemetry.cli.main import main

ARGUS = (sys.executable, "-m", "argus_telemetry")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _install(root: Path, *extra: str) -> int:
    return main(["service", "install", "--root", str(root), *extra])


def _snapshot_tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "site-packages" not in p.parts
    }


def test_install_stages_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Unit, sysusers entry, config, data dir + Logs (0700), venv and version record."""
    assert _install(tmp_path) == 0
    unit = (tmp_path / "etc/systemd/system/argus-telemetry.service").read_text()
    assert "Description=PSG - Argus Telemetry\n" in unit
    assert _mode(tmp_path / "etc/systemd/system/argus-telemetry.service") == 0o644
    assert (tmp_path / "usr/lib/sysusers.d/argus-telemetry.conf").is_file()
    assert _mode(tmp_path / "etc/argus-telemetry/config.toml") == 0o640
    assert _mode(tmp_path / "var/lib/argus-telemetry") == 0o700
    assert _mode(tmp_path / "var/lib/argus-telemetry/Logs") == 0o700
    record = json.loads((tmp_path / "opt/argus-telemetry/installed.json").read_text())
    assert record["version"] == __version__
    python = tmp_path / "opt/argus-telemetry/venv/bin/python3"
    # The staged venv imports the agent and its dependencies, isolated from this venv.
    done = subprocess.run(
        [
            str(python),
            "-I",
            "-c",
            "import argus_telemetry, cramjam, psutil, msgspec; print(argus_telemetry.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == f"{__version__}\n"
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"staged argus-telemetry {__version__} under {tmp_path} (systemctl skipped)"
    )


def test_existing_config_is_never_overwritten(tmp_path: Path) -> None:
    """A second install keeps the user's edited config byte for byte."""
    assert _install(tmp_path) == 0
    config = tmp_path / "etc/argus-telemetry/config.toml"
    config.write_text('[agent]\ninterval = "5s"\n')
    assert _install(tmp_path) == 0
    assert config.read_text() == '[agent]\ninterval = "5s"\n'


def test_given_config_is_installed_and_the_old_one_kept(tmp_path: Path) -> None:
    """--config FILE replaces the config; the previous one is kept as config.toml.bak."""
    assert _install(tmp_path) == 0
    old = (tmp_path / "etc/argus-telemetry/config.toml").read_text()
    given = tmp_path / "mine.toml"
    given.write_text('[agent]\ninterval = "1s"\n')
    assert _install(tmp_path, "--config", str(given)) == 0
    assert (tmp_path / "etc/argus-telemetry/config.toml").read_text() == '[agent]\ninterval = "1s"\n'
    assert (tmp_path / "etc/argus-telemetry/config.toml.bak").read_text() == old


def test_config_with_an_unwritable_data_dir_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A data dir the hardened service cannot write is refused with exit 2; nothing staged."""
    given = tmp_path / "mine.toml"
    given.write_text('[agent]\ndata_dir = "/srv/argus"\n')
    root = tmp_path / "root"
    assert _install(root, "--config", str(given)) == 2
    assert capsys.readouterr().err == (
        f"argus: {given}: [agent] data_dir: the service can only write to /var/lib/argus-telemetry, not /srv/argus\n"
    )
    assert not root.exists()


def test_downgrade_is_refused_and_nothing_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With a newer version recorded, install exits 2 and leaves every file as it was."""
    assert _install(tmp_path) == 0
    record = tmp_path / "opt/argus-telemetry/installed.json"
    record.write_text(json.dumps({"version": "99.0.0"}))
    (tmp_path / "etc/argus-telemetry/config.toml").unlink()
    before = _snapshot_tree(tmp_path)
    capsys.readouterr()
    assert _install(tmp_path) == 2
    assert capsys.readouterr().err == (
        f"argus: version 99.0.0 is installed and {__version__} is older: downgrades are refused "
        f"(uninstall 99.0.0 first to go back to {__version__}); nothing was changed\n"
    )
    assert _snapshot_tree(tmp_path) == before


def test_uninstall_keeps_config_and_data_unless_purged(tmp_path: Path) -> None:
    """uninstall removes unit, sysusers entry and program; --purge also config and data."""
    assert _install(tmp_path) == 0
    assert main(["service", "uninstall", "--root", str(tmp_path)]) == 0
    assert not (tmp_path / "etc/systemd/system/argus-telemetry.service").exists()
    assert not (tmp_path / "usr/lib/sysusers.d/argus-telemetry.conf").exists()
    assert not (tmp_path / "opt/argus-telemetry").exists()
    assert (tmp_path / "etc/argus-telemetry/config.toml").is_file()
    assert (tmp_path / "var/lib/argus-telemetry/Logs").is_dir()
    assert main(["service", "uninstall", "--root", str(tmp_path), "--purge"]) == 0
    assert not (tmp_path / "etc/argus-telemetry").exists()
    assert not (tmp_path / "var/lib/argus-telemetry").exists()


def test_ca_is_staged_and_removed(tmp_path: Path) -> None:
    """A valid CA lands in usr/local/share/ca-certificates; uninstall removes it."""
    ca = trustme.CA()
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    assert _install(tmp_path / "root", "--ca-cert", str(pem)) == 0
    staged = tmp_path / "root/usr/local/share/ca-certificates/argus-telemetry-ca.crt"
    assert staged.read_bytes() == pem.read_bytes()
    assert main(["service", "uninstall", "--root", str(tmp_path / "root")]) == 0
    assert not staged.exists()


def test_bad_ca_files_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Missing, non-PEM, non-CA and bundled files: exit 2, one sentence each, nothing staged."""
    ca = trustme.CA()
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(ca.issue_cert("example.test").cert_chain_pems[0].bytes())
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    garbled = tmp_path / "garbled.pem"
    garbled.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(ca.cert_pem.bytes() * 2)
    cases = {
        tmp_path / "absent.pem": "the CA certificate file does not exist",
        junk: "not a PEM certificate (no -----BEGIN CERTIFICATE----- line)",
        garbled: "not a valid PEM certificate (openssl cannot read it)",
        leaf: "the certificate is not a CA (basicConstraints CA:TRUE is missing)",
        bundle: "holds 2 certificates; give one root CA per file",
    }
    root = tmp_path / "root"
    for path, reason in cases.items():
        assert _install(root, "--ca-cert", str(path)) == 2
        assert capsys.readouterr().err == f"argus: {path}: {reason}\n"
    assert not root.exists()


def test_status_under_root_shows_the_recorded_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """status --root reads the staged version record, without systemctl."""
    assert main(["service", "status", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "installed version: not installed\n"
    assert _install(tmp_path) == 0
    capsys.readouterr()
    assert main(["service", "status", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"installed version: {__version__}\n"


def test_start_under_root_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """start/stop need the live system: exit 2 with the reason."""
    assert main(["service", "start", "--root", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "argus: --root only stages files; `start` needs the live system\n"


def test_live_install_needs_root(tmp_path: Path) -> None:
    """As an unprivileged user the installer exits 1 saying it needs root."""
    done = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-m",
            "argus_telemetry",
            "service",
            "install",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
        env={**os.environ, "HOME": "/nonexistent"},
    )
    assert (done.returncode, done.stderr) == (
        1,
        "argus: the service installer must run as root (try: sudo argus service ...)\n",
    )


def test_live_install_needs_systemd() -> None:
    """On a machine whose init is not systemd (this one), the installer says so, exit 1."""
    assert not Path("/run/systemd/system").exists(), "this test expects a host without systemd as init"
    done = subprocess.run(
        [sys.executable, "-m", "argus_telemetry", "service", "install"], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stderr) == (
        1,
        "argus: systemd is not running on this machine (no /run/systemd/system); "
        "use --root DIR to stage the files instead\n",
    )
