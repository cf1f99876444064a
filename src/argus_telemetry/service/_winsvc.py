"""The Windows service's platform-free parts: names, the service command line and its
parsing, config and data dir selection, recovery actions, and the runner that turns an
SCM stop request into the agent's flushing stop.

Nothing here imports pywin32, so all of it is tested on Linux; `service/windows.py` holds
the SCM and CryptoAPI calls.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

import msgspec

from argus_telemetry.config.model import Config
from argus_telemetry.errors import UsageError

SERVICE_NAME = "PSG - Argus Telemetry"
DISPLAY_NAME = "PSG - Argus Telemetry"
DESCRIPTION = "Monitors and reports telemetry metrics from client systems"
SERVICE_MODULE = "argus_telemetry.service.windows"
# Restart after 5 s, 5 s, then 60 s; the failure count resets after a day. The MSI
# carries the same values (packaging/windows/build.py).
RESTART_DELAYS_MS = (5000, 5000, 60000)
FAILURE_RESET_SECONDS = 86400
STOP_WAIT_HINT_MS = 10_000  # the agent stops within 5 s (contract); the SCM waits this long


@dataclass(frozen=True)
class ServiceArgs:
    """What the service process was told on its command line."""

    config: Path | None  # the config file (absent file: built-in defaults)
    data_dir: Path | None  # the data dir when the config does not set one


def service_command_line(python: PureWindowsPath, config: PureWindowsPath, data_dir: PureWindowsPath) -> str:
    """The SCM ImagePath: the quoted interpreter, `-B -m argus_telemetry.service.windows`,
    `--config` and `--data-dir`, quoted by the C runtime's rules (a trailing backslash
    before a closing quote is doubled, so the quote is not escaped)."""
    return subprocess.list2cmdline(
        [str(python), "-B", "-m", SERVICE_MODULE, "--config", str(config), "--data-dir", str(data_dir)]
    )


def parse_service_args(argv: Sequence[str]) -> ServiceArgs:
    """The service's own arguments (sys.argv[1:]); UsageError naming the bad one."""
    parser = _ServiceParser(prog=SERVICE_MODULE, add_help=False)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(list(argv))
    return ServiceArgs(config=args.config, data_dir=args.data_dir)


class _ServiceParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # raise instead of exiting the service
        raise UsageError(f"service arguments: {message}")


def service_config(args: ServiceArgs, load: Callable[[Path | None], Config]) -> tuple[Config, str]:
    """The Config the service runs with and the file it came from ("" for defaults).

    A config path that does not exist means the built-in defaults (the MSI installs no
    config.toml; an administrator writes one). The data dir given on the command line
    applies when the config does not set `[agent] data_dir`."""
    path = args.config if args.config is not None and args.config.is_file() else None
    config = load(path)
    if not config.agent.data_dir and args.data_dir is not None:
        agent = msgspec.structs.replace(config.agent, data_dir=str(args.data_dir))
        config = msgspec.structs.replace(config, agent=agent)
    return config, str(path) if path else ""


class ServiceRunner:
    """Runs `main(stop)` on its own event loop in the calling thread (SvcDoRun) and lets
    another thread (SvcStop, called by the SCM) set `stop`, the same event SIGTERM sets on
    Linux, so a service stop flushes exactly like `argus run` does."""

    def __init__(self, main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        self._main = main
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False

    def run(self) -> None:
        """Run until `main` returns; its exception propagates (the caller exits non-zero,
        so the SCM applies the recovery actions)."""
        asyncio.run(self._run())

    async def _run(self) -> None:
        stop = asyncio.Event()
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._stop = stop
            if self._stop_requested:
                stop.set()
        try:
            await self._main(stop)
        finally:
            with self._lock:
                self._loop = None
                self._stop = None

    def request_stop(self) -> None:
        """Ask the agent to stop (flush, then return from run()); safe from any thread,
        before, during or after run()."""
        with self._lock:
            self._stop_requested = True
            if self._loop is not None and self._stop is not None:
                self._loop.call_soon_threadsafe(self._stop.set)
