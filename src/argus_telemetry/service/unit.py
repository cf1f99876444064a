"""The systemd unit and sysusers.d text of the Linux service (pure functions).

Hardening is what `systemd-analyze security` rewards without breaking the agent: the
agent reads /proc and /sys (so no ProcSubset=pid), talks TCP and Unix sockets, writes
only its StateDirectory and RuntimeDirectory, and needs no capabilities at all.
"""

from __future__ import annotations

from pathlib import Path

from argus_telemetry import paths

UNIT_NAME = "argus-telemetry.service"
DESCRIPTION = "PSG - Argus Telemetry"
SERVICE_USER = "argus-telemetry"
STATE_DIRECTORY = paths.SERVICE_DATA_DIR.name  # /var/lib/argus-telemetry
RUNTIME_DIRECTORY = paths.SERVICE_SOCKET.parent.name  # /run/argus-telemetry
CONFIG_CHECK_EXIT = 2  # the agent's exit status for a bad config: restarting cannot help
_HOME_ROOTS = (Path("/root"), Path("/home"), Path("/run/user"))


def render_unit(*, python: Path, config: Path, interpreter_prefix: Path) -> str:
    """The unit file text. `python` is the venv interpreter the service runs, `config`
    the config file, `interpreter_prefix` the base interpreter the venv links to: when it
    lives under a home directory (pyenv), only that prefix is exposed, read-only."""
    home = "yes"
    bind = ""
    if any(interpreter_prefix.is_relative_to(root) for root in _HOME_ROOTS):
        home = "tmpfs"  # hides every home directory, except the bind below
        bind = f"BindReadOnlyPaths={interpreter_prefix}\n"
    return f"""\
# Written by `argus service install`; reinstalling rewrites it.
[Unit]
Description={DESCRIPTION}
Documentation=file:///opt/argus-telemetry/venv/
After=network-online.target
Wants=network-online.target
StartLimitIntervalSec=60s
StartLimitBurst=5

[Service]
Type=exec
User={SERVICE_USER}
Group={SERVICE_USER}
ExecStart={python} -m argus_telemetry run -c {config}
Restart=on-failure
RestartSec=1s
RestartPreventExitStatus={CONFIG_CHECK_EXIT}
TimeoutStopSec=10s
# The agent resolves its default data dir and socket from these (platformdirs):
# $XDG_DATA_HOME/argus-telemetry = /var/lib/argus-telemetry, and
# $XDG_RUNTIME_DIR/argus-telemetry/TelemetryPipe.sock = /run/argus-telemetry/TelemetryPipe.sock.
Environment=XDG_DATA_HOME=%S XDG_RUNTIME_DIR=%t PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
StateDirectory={STATE_DIRECTORY}
StateDirectoryMode=0700
RuntimeDirectory={RUNTIME_DIRECTORY}
RuntimeDirectoryMode=0750
UMask=0077

ProtectSystem=strict
ProtectHome={home}
{bind}PrivateTmp=yes
PrivateDevices=yes
PrivateIPC=yes
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
DevicePolicy=closed
KeyringMode=private
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
"""


def render_sysusers() -> str:
    """The sysusers.d entry for the service's system user (no login, home = data dir)."""
    return (
        "# Written by `argus service install`.\n"
        f'u {SERVICE_USER} - "{DESCRIPTION}" {paths.SERVICE_DATA_DIR} /usr/sbin/nologin\n'
    )


def default_config() -> str:
    """The config written when none exists: the service's contract paths, no exporters."""
    return f"""\
# Argus Telemetry service configuration. Written once by `argus service install`,
# never overwritten by it. `argus config check -c {paths.SERVICE_CONFIG}` validates edits;
# `systemctl restart {UNIT_NAME}` applies them.

[agent]
data_dir = "{paths.SERVICE_DATA_DIR}"

[stream]
path = "{paths.SERVICE_SOCKET}"

# [pushgateway]
# url = "https://pushgateway.example:9091"
"""
