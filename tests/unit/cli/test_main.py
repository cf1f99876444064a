"""The command line's exit codes and one-sentence errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from argus_telemetry import __version__
from argus_telemetry.cli.main import main


def _argus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "argus_telemetry", *args], capture_output=True, text=True, check=False)


def test_version() -> None:
    """`argus --version` prints the package version and exits 0."""
    result = _argus("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"argus {__version__}"


def test_unknown_command_is_usage_error() -> None:
    """An unknown subcommand is bad usage: exit 2."""
    result = _argus("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_config_check_defaults_ok(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With $ARGUS_CONFIG pointing at a valid file, `config check` says OK and exits 0."""
    path = tmp_path / "ok.toml"
    path.write_text('[agent]\ninterval = "1s"\n')
    monkeypatch.setenv("ARGUS_CONFIG", str(path))
    assert main(["config", "check"]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: OK"


def test_run_with_bad_config_exits_2_before_starting(tmp_path: Path) -> None:
    """`argus run` with a bad config exits 2 with the one-line reason, and creates no data dir."""
    path = tmp_path / "bad.toml"
    data = tmp_path / "data"
    path.write_text(f'[agent]\ndata_dir = "{data}"\nflush_max_items = -1\n')
    result = _argus("run", "-c", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"argus: {path}: [agent] flush_max_items: -1 is too small (at least 1)"
    assert not data.exists()
