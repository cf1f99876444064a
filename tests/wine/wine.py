"""A Wine prefix driven from tests, with the traps of docs/windows.md handled:

- boot with `wineboot -i`, wait for it (`wineserver -w`), then keep one persistent
  server (`wineserver -p`): an msiexec run during wine's first-boot service restart
  installs into a dying SCM;
- wine's output never goes into a pipe (services inherit it and the reader never ends):
  to files or /dev/null only;
- Windows python.exe dies when its stdout is a regular file: it runs with /dev/null and
  reports through its exit status and a result file;
- exit statuses are seen modulo 256 (1603 → 67, 1060 → 36).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

PROGRAM = r"C:\Program Files\PSG\ArgusTelemetry"
PYTHON = PROGRAM + r"\python\python.exe"


class WinePrefix:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.logs = path.parent / "wine-logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "WINEPREFIX": str(path), "WINEDEBUG": "-all", "WINEARCH": "win64"}
        self._count = 0
        for tool in ("wine", "wineserver", "wineboot"):
            assert shutil.which(tool), f"{tool} is not installed (apt-get install wine wine64)"

    def boot(self) -> None:
        self._plain(["wine", "wineboot", "-i"], timeout=120)
        self._plain(["wineserver", "-w"], timeout=120)
        self._plain(["wineserver", "-p"], timeout=30)

    def kill(self) -> None:
        subprocess.run(
            ["wineserver", "-k"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )

    def drive_c(self, windows_path: str) -> Path:
        """The Linux path of a C:\\ path in this prefix."""
        assert windows_path[:3].upper() == "C:\\", windows_path
        return self.path / "drive_c" / windows_path[3:].replace("\\", "/")

    def run(self, args: list[str], *, timeout: float = 120, debug: str = "-all") -> tuple[int, str]:
        """Run `wine ARGS`; return (exit status, its stdout+stderr read back from a file)."""
        self._count += 1
        out = self.logs / f"run-{self._count}.txt"
        with out.open("wb") as handle:
            done = subprocess.run(
                ["wine", *args],
                env={**self.env, "WINEDEBUG": debug},
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        return done.returncode, out.read_bytes().decode("utf-8", "replace").replace("\r", "")

    def python(self, args: list[str], *, timeout: float = 120) -> int:
        """The installed Windows python.exe with stdio on /dev/null; its exit status."""
        done = subprocess.run(
            ["wine", PYTHON, *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
        return done.returncode

    def msiexec(self, *args: str, log_name: str, debug: str = "-all") -> tuple[int, str, str]:
        """`msiexec ARGS /qn /l*v LOG`; (exit status mod 256, the MSI log, wine's output)."""
        log = self.logs / log_name
        status, output = self.run(
            ["msiexec", *args, "/qn", "/l*v", "Z:" + str(log).replace("/", "\\")], timeout=300, debug=debug
        )
        text = log.read_bytes().decode("utf-8", "replace") if log.exists() else ""
        return status, text.replace("\r", ""), output

    def service_state(self, name: str) -> str | None:
        """The STATE word `sc query` shows (RUNNING...), or None when no such service exists."""
        _, output = self.run(["sc", "query", name])
        for line in output.splitlines():
            if line.strip().startswith("STATE"):
                return line.split()[-1]
        return None

    def wait_for_state(self, name: str, wanted: str | None, seconds: float = 60) -> str | None:
        """Poll `sc query` until `wanted` (a deadline, not a sleep of fixed length)."""
        deadline = time.monotonic() + seconds
        state = self.service_state(name)
        while state != wanted and time.monotonic() < deadline:
            time.sleep(0.5)
            state = self.service_state(name)
        return state

    def processes(self, needle: str) -> list[int]:
        """Linux pids of this prefix's processes whose command line contains `needle`
        (Wine shows a Windows process's command line in /proc/PID/cmdline)."""
        found = []
        prefix = f"WINEPREFIX={self.path}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:  # it exited while we looked
                continue
            if prefix in environ and needle.encode() in command:
                found.append(int(entry.name))
        return found

    def wait_for_no_process(self, needle: str, seconds: float) -> tuple[list[int], float]:
        """Poll until no process matches `needle`; (the pids still there, seconds waited)."""
        start = time.monotonic()
        pids = self.processes(needle)
        while pids and time.monotonic() - start < seconds:
            time.sleep(0.05)
            pids = self.processes(needle)
        return pids, time.monotonic() - start

    def reg_query(self, key: str) -> str:
        _, output = self.run(["reg", "query", key, "/s"])
        return output

    def _plain(self, args: list[str], *, timeout: float) -> None:
        subprocess.run(
            args,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=True,
        )
