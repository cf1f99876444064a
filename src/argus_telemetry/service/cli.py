"""`argus service install|uninstall|start|stop|status`: picks the platform's Installer.

systemd on Linux; the Windows SCM installer (service/windows.py) plugs in at
`make_installer` with the same Installer protocol.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from argus_telemetry.errors import ServiceError
from argus_telemetry.service.base import Installer, InstallOptions, Say, ServiceStatus


def make_installer(say: Say, *, root: Path | None) -> Installer:
    """The Installer for this platform; ServiceError where none exists."""
    if sys.platform.startswith("linux"):
        from argus_telemetry.service.systemd import SystemdInstaller

        return SystemdInstaller(say, root=root)
    if sys.platform == "win32":  # pragma: no cover - the Windows installer lands later
        from argus_telemetry.service import windows

        installer: Installer = windows.WindowsInstaller(say, root=root)
        return installer
    raise ServiceError(f"no service installer for this platform ({sys.platform}); run `argus run` instead")


def service_command(args: argparse.Namespace) -> int:
    """Run one `argus service` action; return the exit status (errors raise ServiceError)."""
    root = Path(args.root).resolve() if args.root else None
    installer = make_installer(_say, root=root)
    action: str = args.action
    if action == "install":
        installer.install(
            InstallOptions(
                config_file=Path(args.config) if args.config else None,
                ca_cert=Path(args.ca_cert) if args.ca_cert else None,
            )
        )
    elif action == "uninstall":
        installer.uninstall(purge=bool(args.purge))
    elif action == "start":
        installer.start()
    elif action == "stop":
        installer.stop()
    elif action == "status":
        status = installer.status()
        print(format_status(status))
        return 0 if status.agent is not None or root is not None else 3  # LSB: 3 = not running
    else:
        raise AssertionError(action)
    return 0


def format_status(status: ServiceStatus) -> str:
    """Human-readable lines: installed version, the OS's view, the agent's own status."""
    lines = [f"installed version: {status.installed_version or 'not installed'}"]
    for key, value in status.state.items():
        lines.append(f"{key}: {value}")
    if status.agent is not None:
        lines.append("agent status: " + json.dumps(status.agent, indent=2, sort_keys=True))
    elif status.agent_error:
        lines.append(f"agent status: unavailable ({status.agent_error})")
    return "\n".join(lines)


def _say(line: str) -> None:
    print(line, flush=True)
