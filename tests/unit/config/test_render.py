"""`argus config show`: effective config as TOML that loads back, secrets redacted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from argus_telemetry.config.load import parse_config
from argus_telemetry.config.render import render_config

SECRET_CONFIG = """
[agent]
interval = "500ms"
labels = { region = "eu-west" }
[pushgateway]
url = "https://pgw.example:9091"
[pushgateway.auth]
username = "ops"
password = "hunter2-pushgateway"
[loki]
url = "https://loki.example"
tenant = "team-a"
[loki.auth]
bearer_token = "tok-loki-s3cret"
[remote_write]
url = "https://vm.example/api/v1/write"
headers = { "X-Api-Key" = "rw-header-s3cret" }
"""


def test_show_redacts_every_secret_and_round_trips() -> None:
    """Rendered TOML has no secret text, says <redacted>, and parses back to the same non-secret values."""
    config = parse_config(SECRET_CONFIG, "s.toml")
    text = render_config(config)
    for secret in ("hunter2-pushgateway", "tok-loki-s3cret", "rw-header-s3cret"):
        assert secret not in text
    assert text.count('"<redacted>"') == 3
    again = parse_config(text, "rendered.toml")
    assert again.agent == config.agent
    assert again.spool == config.spool
    assert again.loki.tenant == "team-a"
    assert again.pushgateway.auth.username == "ops"
    assert again.pushgateway.auth.password.reveal() == "<redacted>"


def test_show_command_prints_effective_config(tmp_path: Path) -> None:
    """`argus config show -c FILE` exits 0 and prints the file's values with defaults filled in, no secrets."""
    path = tmp_path / "c.toml"
    path.write_text(SECRET_CONFIG)
    result = subprocess.run(
        [sys.executable, "-m", "argus_telemetry", "config", "show", "-c", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert 'interval = "500ms"' in result.stdout
    assert 'flush_interval = "10s"' in result.stdout
    assert 'max_bytes = "256MiB"' in result.stdout
    assert "hunter2" not in result.stdout
    assert "s3cret" not in result.stdout


def test_secret_repr_never_shows_value() -> None:
    """repr/str of the decoded config never contain the secret (safe in logs and tracebacks)."""
    config = parse_config(SECRET_CONFIG, "s.toml")
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config.pushgateway.auth.password)
