"""The rendered unit file: contract names, restart policy, directories, hardening."""

from __future__ import annotations

from pathlib import Path

from argus_telemetry.service.unit import default_config, render_sysusers, render_unit

PY = Path("/opt/argus-telemetry/venv/bin/python3")
CONFIG = Path("/etc/argus-telemetry/config.toml")


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_unit_carries_the_contract_names_and_policy() -> None:
    """Description, user, ExecStart, restart policy and the contract's directories."""
    lines = _lines(render_unit(python=PY, config=CONFIG, interpreter_prefix=Path("/usr")))
    for expected in (
        "Description=PSG - Argus Telemetry",
        "User=argus-telemetry",
        "ExecStart=/opt/argus-telemetry/venv/bin/python3 -m argus_telemetry run -c /etc/argus-telemetry/config.toml",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "StateDirectory=argus-telemetry",
        "StateDirectoryMode=0700",
        "RuntimeDirectory=argus-telemetry",
        "RuntimeDirectoryMode=0750",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "WantedBy=multi-user.target",
    ):
        assert expected in lines, expected
    assert not any(line.startswith("BindReadOnlyPaths") for line in lines)


def test_interpreter_under_a_home_is_bound_read_only() -> None:
    """A pyenv interpreter under /root stays reachable: homes become an empty tmpfs and
    only the interpreter's prefix is bound in, read-only."""
    lines = _lines(render_unit(python=PY, config=CONFIG, interpreter_prefix=Path("/root/.pyenv/versions/3.11.7")))
    assert "ProtectHome=tmpfs" in lines
    assert "BindReadOnlyPaths=/root/.pyenv/versions/3.11.7" in lines


def test_sysusers_entry() -> None:
    """One system user, no login shell, home = the data dir."""
    assert render_sysusers().splitlines()[1] == (
        'u argus-telemetry - "PSG - Argus Telemetry" /var/lib/argus-telemetry /usr/sbin/nologin'
    )


def test_default_config_parses_to_the_contract_paths() -> None:
    """The config written on first install is valid and names the contract's paths."""
    from argus_telemetry.config.load import parse_config

    config = parse_config(default_config(), "default")
    assert config.agent.data_dir == "/var/lib/argus-telemetry"
    assert config.stream.path == "/run/argus-telemetry/TelemetryPipe.sock"
    assert config.pushgateway.url == ""
