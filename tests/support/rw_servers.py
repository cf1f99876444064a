"""Real remote write receivers for tests: Debian's `victoria-metrics` and `prometheus`
(with `--web.enable-remote-write-receiver`) on free loopback ports, in tmp dirs.

A missing binary fails the test (`apt-get install -y victoria-metrics prometheus`).
`start()` waits for readiness with a deadline; `stop()` ends the process by its PID
(SIGKILL: the data dirs are throwaway; `start()` again reuses the port and the data).
Queries are async (httpx) so they never stall the event loop the exporter runs on.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    binary = ""
    ready_path = ""
    package = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.binary}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def write_url(self) -> str:
        return f"{self.base_url}/api/v1/write"

    def args(self, binary: str) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> _Server:
        binary = shutil.which(self.binary)
        if binary is None:
            raise AssertionError(f"{self.binary} is not installed (apt-get install -y {self.package})")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.args(binary), stdout=log, stderr=log, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.base_url + self.ready_path, timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise AssertionError(f"{self.binary} exited {self.process.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.binary} not ready after {timeout} s: {self.log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]


class VictoriaMetrics(_Server):
    """victoria-metrics single node; `export()` reads back raw samples."""

    binary = "victoria-metrics"
    ready_path = "/health"
    package = "victoria-metrics"

    def args(self, binary: str) -> list[str]:
        return [
            binary,
            f"-storageDataPath={self.workdir / 'data'}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-retentionPeriod=1",
            "-search.latencyOffset=0s",
            "-loggerLevel=WARN",
        ]

    async def export(self, match: str) -> list[dict[str, Any]]:
        """Every series matching `match` as {"metric", "values", "timestamps"} (raw
        samples, duplicates kept), after forcing in-memory data to be searchable."""
        async with httpx.AsyncClient(timeout=60.0) as client:
            (await client.get(self.base_url + "/internal/force_flush")).raise_for_status()
            response = await client.get(self.base_url + "/api/v1/export", params={"match[]": match})
            response.raise_for_status()
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]


class Prometheus(_Server):
    """prometheus 2.42 as a remote write receiver; `out_of_order_window` sets
    storage.tsdb.out_of_order_time_window (e.g. "4h")."""

    binary = "prometheus"
    ready_path = "/-/ready"
    package = "prometheus"

    def __init__(self, workdir: Path, *, out_of_order_window: str = "") -> None:
        super().__init__(workdir)
        config = "scrape_configs: []\n"
        if out_of_order_window:
            config += f"storage:\n  tsdb:\n    out_of_order_time_window: {out_of_order_window}\n"
        (workdir / "prometheus.yml").write_text(config)

    def args(self, binary: str) -> list[str]:
        return [
            binary,
            f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            "--web.enable-remote-write-receiver",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]

    async def samples(self, selector: str, window: str, at: float) -> list[dict[str, Any]]:
        """The raw samples of `selector` over `window` before `at` (Unix seconds):
        [{"metric": {...}, "values": [[t, "v"], ...]}]."""
        async with httpx.AsyncClient(timeout=60.0) as client:
            response = await client.get(
                self.base_url + "/api/v1/query", params={"query": f"{selector}[{window}]", "time": f"{at:.3f}"}
            )
            response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result
