"""Per-platform default paths: config file, data dir, spool folder, stream endpoint."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "argus-telemetry"
SERVICE_CONFIG = Path("/etc/argus-telemetry/config.toml")
SERVICE_DATA_DIR = Path("/var/lib/argus-telemetry")
SERVICE_SOCKET = Path("/run/argus-telemetry/TelemetryPipe.sock")
WINDOWS_PROGRAM_DIR = Path(r"C:\Program Files\PSG\ArgusTelemetry")
WINDOWS_PIPE = r"\\.\pipe\TelemetryPipe"
SOCKET_NAME = "TelemetryPipe.sock"


def is_windows() -> bool:
    return sys.platform == "win32"


def default_config_path() -> Path:
    """Where the installed service's config lives on this platform."""
    if is_windows():
        return WINDOWS_PROGRAM_DIR / "config.toml"
    return SERVICE_CONFIG


def default_data_dir() -> Path:
    """The data dir for `argus run` without `[agent] data_dir`: the user's data dir
    (platformdirs), or the service's dir when running as a Windows service."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def spool_dir(data_dir: Path) -> Path:
    """The spool folder of the contract: `<data_dir>/Logs`."""
    return data_dir / "Logs"


def default_stream_path(data_dir: Path) -> str:
    """The stream endpoint: the named pipe on Windows; elsewhere the Unix socket under
    $XDG_RUNTIME_DIR/argus-telemetry/ (or the data dir when that is unset)."""
    if is_windows():
        return WINDOWS_PIPE
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return str(Path(runtime) / APP / SOCKET_NAME)
    return str(data_dir / SOCKET_NAME)


def client_stream_path() -> str:
    """The endpoint `watch`, `status` and `panel` try without `--socket`: the service's
    socket if it exists, else the user's default."""
    if is_windows():
        return WINDOWS_PIPE
    if SERVICE_SOCKET.exists():
        return str(SERVICE_SOCKET)
    return default_stream_path(default_data_dir())
