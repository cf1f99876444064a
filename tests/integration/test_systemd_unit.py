"""`systemd-analyze verify` and `security` on the unit the installer renders."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from argus_telemetry.service import program
from argus_telemetry.service.unit import render_unit

# systemd 252 (Debian 12). A change here means the hardening changed: update docs/service.md.
EXPECTED_EXPOSURE = "1.4"


def _write_unit(directory: Path) -> Path:
    unit = directory / "argus-telemetry.service"
    unit.write_text(
        render_unit(
            python=Path(sys.executable),  # verify needs an ExecStart that exists here
            config=Path("/etc/argus-telemetry/config.toml"),
            interpreter_prefix=program.base_prefix(),
        )
    )
    return unit


def test_rendered_unit_verifies_clean(tmp_path: Path) -> None:
    """systemd-analyze verify accepts the unit with no warning at all."""
    unit = _write_unit(tmp_path)
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The same check fails on a unit with a bad Restart= value (the lint is real)."""
    unit = _write_unit(tmp_path)
    unit.write_text(unit.read_text().replace("Restart=on-failure", "Restart=bogus"))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    assert "Failed to parse service restart specifier, ignoring: bogus" in done.stderr


def test_security_exposure_score(tmp_path: Path) -> None:
    """systemd-analyze security rates the unit 'OK' at the recorded exposure level."""
    unit = _write_unit(tmp_path)
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for argus-telemetry\.service: (\d+\.\d) (\w+)", done.stdout)
    assert match is not None, done.stdout + done.stderr
    assert match.groups() == (EXPECTED_EXPOSURE, "OK")
