"""CPU seconds per hour and RSS of `argus run`, side by side with node_exporter and a bare
Python loop, measured in the same windows of one run (method: the performance notes).

Targets, all at a 2 s cadence, started together and measured over aligned windows:
- `agent`: `argus run -c <config with only data_dir, and the stream off>` (no exporter);
  with `--exporters`, the same agent with Pushgateway (a real Debian
  `prometheus-pushgateway`), Loki (the test receiver, tests/support/loki_receiver.py, in
  this process) and `[metrics] listen` all enabled, its /metrics scraped every 2 s by this
  process like node_exporter's;
- `ne_min`: Debian `prometheus-node-exporter` with only the cpu, meminfo, diskstats and
  netdev collectors, on a free loopback port, scraped every 2 s by this process (the
  scraper's CPU is this process's, not the exporter's);
- `pyfloor`: a bare psutil → JSON → SQLite (WAL) loop in its own interpreter (this file,
  `floor-loop`): roughly the least a Python agent can cost.

CPU: utime + stime from /proc/<pid>/stat over each window (all threads, 10 ms ticks).
Memory: Rss and Pss from /proc/<pid>/smaps_rollup every second; the mean within each
window. Each figure is min / median / max over the windows; compare ratios, not absolute
values from another run. Goal: agent CPU ≤ ne_min's, agent RSS ≤ 25 MiB; with
`--exporters` (issue 3): agent CPU ≤ 1.2 × ne_min's, agent RSS ≤ 32 MiB.

    python bench/agent_vs_node_exporter.py                      # 20 s warm-up, 3 × 120 s
    python bench/agent_vs_node_exporter.py --window 30 --repeat 1   # a quick look
    python bench/agent_vs_node_exporter.py --exporters          # Pushgateway + Loki + /metrics
    python bench/agent_vs_node_exporter.py --exporters --remote-write   # ... + remote_write

Linux only (reads /proc). Installs prometheus-node-exporter with apt-get when missing.
Everything is written to a scratch directory (`--out`), removed unless `--keep`.
"""

from __future__ import annotations

import sys

# Keep the top of this file light: `floor-loop` runs it as the bare Python loop, whose
# memory must not include this script's own imports.


def floor_loop(directory: str, interval: float) -> None:
    """The bare loop: psutil reads → rates → schema-1-like dict → json → SQLite commit,
    fsync every 10 s, on absolute deadlines. Runs until killed."""
    import json
    import os
    import re
    import sqlite3
    import time

    import psutil

    exclude = re.compile(
        r"^(ram|loop|fd|sr|zram|dm-)\d*$|^(sd[a-z]+|vd[a-z]+|xvd[a-z]+|hd[a-z]+)\d+$|^nvme\d+n\d+p\d+$|^mmcblk\d+p\d+$"
    )
    path = os.path.join(directory, "floor.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY, wall REAL, body BLOB)")

    def read() -> tuple[float, dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
        disks = psutil.disk_io_counters(perdisk=True, nowrap=False) or {}
        nets = psutil.net_io_counters(pernic=True, nowrap=False) or {}
        return (
            time.monotonic(),
            {n: (d.read_bytes, d.write_bytes) for n, d in disks.items() if not exclude.search(n)},
            {n: (i.bytes_recv, i.bytes_sent) for n, i in nets.items()},
        )

    def rates(
        before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], elapsed: float, keys: tuple[str, str]
    ) -> dict[str, dict[str, float]]:
        out = {}
        for name, (a, b) in after.items():
            old = before.get(name)
            if old is None or a < old[0] or b < old[1] or elapsed <= 0:
                continue
            out[name] = {keys[0]: round((a - old[0]) / elapsed, 1), keys[1]: round((b - old[1]) / elapsed, 1)}
        return out

    psutil.cpu_percent(percpu=True)
    previous = read()
    seq = 0
    last_sync = time.monotonic()
    deadline = time.monotonic() + interval
    while True:
        time.sleep(max(0.0, deadline - time.monotonic()))
        cores = psutil.cpu_percent(percpu=True)
        memory = psutil.virtual_memory()
        current = read()
        elapsed = current[0] - previous[0]
        devices = rates(previous[1], current[1], elapsed, ("read_bytes_per_second", "write_bytes_per_second"))
        interfaces = rates(previous[2], current[2], elapsed, ("receive_bytes_per_second", "transmit_bytes_per_second"))
        counted = [v for k, v in interfaces.items() if k != "lo"]
        seq += 1
        wall = time.time()
        snapshot = {
            "schema": 1,
            "seq": seq,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{int(wall % 1 * 1e6):06d}Z",
            "host": "floor",
            "interval_seconds": round(elapsed, 3),
            "cpu": {"usage_percent": round(sum(cores) / len(cores), 1), "cores": cores},
            "memory": {
                "total_bytes": memory.total,
                "available_bytes": memory.available,
                "used_bytes": memory.total - memory.available,
                "used_percent": round(100 * (memory.total - memory.available) / memory.total, 1),
            },
            "disk": {
                "read_bytes_per_second": round(sum(d["read_bytes_per_second"] for d in devices.values()), 1),
                "write_bytes_per_second": round(sum(d["write_bytes_per_second"] for d in devices.values()), 1),
                "devices": devices,
            },
            "network": {
                "receive_bytes_per_second": round(sum(i["receive_bytes_per_second"] for i in counted), 1),
                "transmit_bytes_per_second": round(sum(i["transmit_bytes_per_second"] for i in counted), 1),
                "interfaces": interfaces,
            },
        }
        body = json.dumps(snapshot, separators=(",", ":"))
        db.execute("BEGIN")
        db.execute("INSERT INTO snapshots VALUES (?, ?, ?)", (seq, wall, body))
        db.execute("COMMIT")
        previous = current
        now = time.monotonic()
        if now - last_sync >= 10.0:
            for name in (path + "-wal", path):
                fd = os.open(name, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            last_sync = now
        deadline += interval
        if deadline <= now:  # late: skip to the next grid point, no burst
            deadline += ((now - deadline) // interval + 1) * interval


if __name__ == "__main__" and sys.argv[1:2] == ["floor-loop"]:
    floor_loop(sys.argv[2], float(sys.argv[3]))
    sys.exit(0)


import argparse  # noqa: E402  (below the floor loop on purpose, see the top)
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

NODE_EXPORTER = "prometheus-node-exporter"
REPO = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
MIB = 1024 * 1024


@dataclass
class Target:
    """One measured process and what was seen of it."""

    name: str
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    memory: list[tuple[float, int, int]] = field(default_factory=list)  # (monotonic, rss, pss) bytes
    cpu_per_hour: list[float] = field(default_factory=list)
    schedstat_per_hour: list[float] = field(default_factory=list)
    rss_mean: list[float] = field(default_factory=list)
    pss_mean: list[float] = field(default_factory=list)
    rss_max: int = 0
    threads: int = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


def cpu_seconds(pid: int) -> tuple[float, int]:
    """utime + stime of every thread of `pid` (seconds), and its thread count."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, int(fields[17])


def schedstat_seconds(pid: int) -> float:
    """Run time of the live threads of `pid` in seconds (ns resolution; threads that
    exited during a window are missing, so this is a cross-check, not the figure)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def memory_bytes(pid: int) -> tuple[int, int]:
    """(Rss, Pss) of `pid` in bytes, from /proc/<pid>/smaps_rollup."""
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
    return rss, pss


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ensure_node_exporter() -> str:
    found = shutil.which(NODE_EXPORTER)
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit(f"{NODE_EXPORTER} is not installed; run: sudo apt-get install -y {NODE_EXPORTER}")
    print(f"installing {NODE_EXPORTER} with apt-get ...", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-q", NODE_EXPORTER], check=True)
    found = shutil.which(NODE_EXPORTER)
    if not found:
        raise SystemExit(f"apt-get installed {NODE_EXPORTER} but it is not on PATH")
    return found


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            response.read()
            return bool(response.status == 200)
    except OSError:
        return False


def scraper(url: str, interval: float, stop: threading.Event, counts: dict[str, int], keep_alive: bool = False) -> None:
    """GET `url` every `interval` seconds on absolute deadlines (as Prometheus would);
    a new connection per scrape, or with `keep_alive` one reused connection (as
    Prometheus does), opened again after an error."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection: http.client.HTTPConnection | None = None
    deadline = time.monotonic()
    while not stop.is_set():
        if keep_alive:
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=2)
                connection.request("GET", parts.path)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
            if not ok and connection is not None:
                connection.close()
                connection = None
        else:
            ok = http_ok(url)
        counts["ok" if ok else "failed"] += 1
        deadline += interval
        stop.wait(max(0.0, deadline - time.monotonic()))
    if connection is not None:
        connection.close()


def sampler(targets: list[Target], stop: threading.Event) -> None:
    """Rss/Pss of every target once a second."""
    while not stop.wait(1.0):
        now = time.monotonic()
        for target in targets:
            try:
                rss, pss = memory_bytes(target.pid)
            except OSError:
                continue
            target.memory.append((now, rss, pss))


def stop_process(target: Target) -> int | None:
    """SIGTERM, then SIGKILL after 10 s; the exit status."""
    process = target.process
    if process is None or process.poll() is not None:
        return None if process is None else process.returncode
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def summary(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    return f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f} / {max(values):.{digits}f}"


class Exporters:
    """The receivers of `--exporters` (a real pushgateway and the test Loki receiver) and
    of `--remote-write` (a real victoria-metrics), from tests/support of the repository
    this script lives in."""

    def __init__(self, scratch: Path, *, exporters: bool, remote_write: bool) -> None:
        sys.path.insert(0, str(REPO))
        from tests.support.loki_receiver import LokiReceiver
        from tests.support.rw_servers import VictoriaMetrics
        from tests.support.servers import Pushgateway

        self.pushgateway: Pushgateway | None = None
        self.loki: LokiReceiver | None = None
        self.victoria: VictoriaMetrics | None = None
        self.metrics_port = 0
        if exporters:
            (scratch / "pushgateway").mkdir()
            self.pushgateway = Pushgateway(scratch / "pushgateway")
            self.loki = LokiReceiver()
            self.metrics_port = free_port()
        if remote_write:
            self.victoria = VictoriaMetrics(scratch / "victoria-metrics")

    def start(self) -> None:
        if self.pushgateway is not None:
            self.pushgateway.start()
        if self.loki is not None:
            self.loki.start()
        if self.victoria is not None:
            self.victoria.start()

    def stop(self) -> None:
        if self.loki is not None:
            self.loki.stop()
        if self.pushgateway is not None:
            self.pushgateway.stop()
        if self.victoria is not None:
            self.victoria.stop()

    def config(self) -> str:
        text = ""
        if self.pushgateway is not None and self.loki is not None:
            text += (
                f'\n[pushgateway]\nurl = "{self.pushgateway.url}"\njob = "argus"\n'
                f'\n[loki]\nurl = "{self.loki.url}"\ntenant = "bench"\n'
                f'\n[metrics]\nlisten = "127.0.0.1:{self.metrics_port}"\n'
            )
        if self.victoria is not None:
            text += f'\n[remote_write]\nurl = "{self.victoria.write_url}"\n'
        return text

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics" if self.metrics_port else ""

    def report(self, scrapes: dict[str, int]) -> None:
        """What reached the receivers, so a run where an exporter did not work is visible."""
        parts = []
        if self.pushgateway is not None and self.loki is not None:
            seqs = self.loki.seqs()
            statuses = self.loki.statuses()
            groups = len(self.pushgateway.groups()) if self.pushgateway.process is not None else 0
            parts.append(
                f"agent /metrics scrapes: {scrapes['ok']} ok, {scrapes['failed']} failed; "
                f"Loki: {len(seqs)} entries (seq {min(seqs, default=0)}..{max(seqs, default=0)}) in "
                f"{len(statuses)} pushes, {sum(1 for s in statuses if s != 204)} not 204; "
                f"Pushgateway: {groups} group(s)"
            )
        if self.victoria is not None and self.victoria.process is not None:
            import asyncio

            series = asyncio.run(self.victoria.export('{__name__=~"argus_.+"}'))
            stamps = {
                t for s in series if s["metric"].get("__name__") == "argus_memory_total_bytes" for t in s["timestamps"]
            }
            parts.append(
                f"victoria-metrics: {len(series)} argus_ series, "
                f"{sum(len(s['values']) for s in series)} samples, {len(stamps)} snapshots"
            )
        print("; ".join(parts), file=sys.stderr)


def measure(args: argparse.Namespace, scratch: Path) -> list[Target]:
    binary = ensure_node_exporter()
    port = free_port()
    agent_data = scratch / "agent-data"
    config = scratch / "agent.toml"
    exporters = (
        Exporters(scratch, exporters=args.exporters, remote_write=args.remote_write)
        if args.exporters or args.remote_write
        else None
    )
    text = f'[agent]\ndata_dir = "{agent_data}"\n\n[stream]\nenabled = false\n'
    (scratch / "floor").mkdir()
    argus = args.argus.split() if args.argus else [sys.executable, "-m", "argus_telemetry"]
    targets = [
        Target("agent", [*argus, "run", "-c", str(config)], scratch / "agent.log"),
        Target(
            "ne_min",
            [
                binary,
                f"--web.listen-address=127.0.0.1:{port}",
                "--collector.disable-defaults",
                "--collector.cpu",
                "--collector.meminfo",
                "--collector.diskstats",
                "--collector.netdev",
            ],
            scratch / "ne_min.log",
        ),
        Target(
            "pyfloor",
            [sys.executable, str(Path(__file__).resolve()), "floor-loop", str(scratch / "floor"), str(args.interval)],
            scratch / "pyfloor.log",
        ),
    ]
    stop = threading.Event()
    counts = {"ok": 0, "failed": 0}
    agent_scrapes = {"ok": 0, "failed": 0}
    threads: list[threading.Thread] = []
    env = {**os.environ, "ARGUS_LOG_LEVEL": "INFO"}
    try:
        if exporters is not None:
            exporters.start()  # first: the config names their ports
        config.write_text(text + (exporters.config() if exporters else ""))
        for target in targets:
            with target.log.open("wb") as log:
                target.process = subprocess.Popen(target.argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}/metrics"
        wait_until(lambda: http_ok(url), f"node_exporter on {url}")
        wait_until(lambda: "agent started" in targets[0].log.read_text(errors="replace"), "the agent to start")
        wait_until((scratch / "floor" / "floor.db-wal").exists, "the Python floor loop")
        threads = [
            threading.Thread(target=scraper, args=(url, args.interval, stop, counts, args.keep_alive), daemon=True),
            threading.Thread(target=sampler, args=(targets, stop), daemon=True),
        ]
        if exporters is not None and exporters.metrics_url:
            wait_until(lambda: http_ok(exporters.metrics_url), f"the agent's /metrics on {exporters.metrics_url}")
            threads.append(
                threading.Thread(
                    target=scraper,
                    args=(exporters.metrics_url, args.interval, stop, agent_scrapes, args.keep_alive),
                    daemon=True,
                )
            )
        for thread in threads:
            thread.start()
        print(f"warm-up {args.warmup:.0f} s, then {args.repeat} × {args.window:.0f} s windows", file=sys.stderr)
        time.sleep(args.warmup)
        for number in range(1, args.repeat + 1):
            start = time.monotonic()
            before = {t.name: cpu_seconds(t.pid)[0] for t in targets}
            before_ns = {t.name: schedstat_seconds(t.pid) for t in targets}
            time.sleep(args.window)
            end = time.monotonic()
            for target in targets:
                if target.process is not None and target.process.poll() is not None:
                    raise SystemExit(f"{target.name} exited ({target.process.returncode}):\n{tail(target.log)}")
                used, target.threads = cpu_seconds(target.pid)
                target.cpu_per_hour.append((used - before[target.name]) / (end - start) * 3600)
                ran = schedstat_seconds(target.pid) - before_ns[target.name]
                target.schedstat_per_hour.append(ran / (end - start) * 3600)
                inside = [(rss, pss) for when, rss, pss in target.memory if start <= when <= end]
                if inside:
                    target.rss_mean.append(statistics.fmean(r for r, _ in inside) / MIB)
                    target.pss_mean.append(statistics.fmean(p for _, p in inside) / MIB)
                    target.rss_max = max(target.rss_max, *(r for r, _ in inside))
            print(
                f"window {number}: "
                + ", ".join(f"{t.name} {t.cpu_per_hour[-1]:.2f} CPU s/h {t.rss_mean[-1]:.1f} MiB" for t in targets),
                file=sys.stderr,
            )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        codes = {target.name: stop_process(target) for target in targets}
        if exporters is not None:
            exporters.report(agent_scrapes)
            exporters.stop()
    if codes["agent"] != 0:
        print(f"warning: the agent exited {codes['agent']} on SIGTERM:\n{tail(targets[0].log)}", file=sys.stderr)
    flushed = [line for line in targets[0].log.read_text(errors="replace").splitlines() if " flushed " in line]
    print(f"node_exporter scrapes: {counts['ok']} ok, {counts['failed']} failed", file=sys.stderr)
    if flushed:
        print(f"agent, last flush: {flushed[-1]}", file=sys.stderr)
    return targets


def report(targets: list[Target], args: argparse.Namespace) -> None:
    reference = next(t for t in targets if t.name == "ne_min")
    ref_cpu = statistics.median(reference.cpu_per_hour) if reference.cpu_per_hour else 0.0
    print(
        f"{args.repeat} window(s) × {args.window:.0f} s after {args.warmup:.0f} s warm-up, "
        f"{args.interval:g} s cadence, all targets side by side; min / median / max"
    )
    print()
    print(
        "| target | CPU s/h | × ne_min (median) | CPU s/h (schedstat) | RSS MiB (window mean) | RSS max MiB "
        "| PSS MiB | threads |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for target in targets:
        ratio = statistics.median(target.cpu_per_hour) / ref_cpu if ref_cpu and target.cpu_per_hour else float("nan")
        print(
            f"| {target.name} | {summary(target.cpu_per_hour, 2)} | {ratio:.2f} "
            f"| {summary(target.schedstat_per_hour, 2)} | {summary(target.rss_mean)} "
            f"| {target.rss_max / MIB:.1f} | {summary(target.pss_mean)} | {target.threads} |"
        )
    agent = targets[0]
    if agent.cpu_per_hour and agent.rss_mean:
        cpu_factor, rss_goal = (1.2, 32.0) if args.exporters or args.remote_write else (1.0, 25.0)
        cpu_ok = statistics.median(agent.cpu_per_hour) <= cpu_factor * ref_cpu
        rss_ok = statistics.median(agent.rss_mean) <= rss_goal
        print()
        verdict = {True: "met", False: "NOT met"}
        what = (
            " + ".join(
                (["Pushgateway + Loki + /metrics"] if args.exporters else [])
                + (["remote_write"] if args.remote_write else [])
            )
            or "no exporter"
        )
        print(
            f"agent with {what}: goal CPU s/h ≤ {cpu_factor:g} × ne_min: {verdict[cpu_ok]}; "
            f"goal RSS ≤ {rss_goal:g} MiB: {verdict[rss_ok]}"
        )
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(
                {
                    t.name: {
                        "cpu_seconds_per_hour": t.cpu_per_hour,
                        "schedstat_cpu_seconds_per_hour": t.schedstat_per_hour,
                        "rss_mib": t.rss_mean,
                        "pss_mib": t.pss_mean,
                        "rss_max_mib": t.rss_max / MIB,
                        "threads": t.threads,
                    }
                    for t in targets
                },
                indent=2,
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window", type=float, default=120.0, help="seconds per window (default 120)")
    parser.add_argument("--repeat", type=int, default=3, help="windows in a row (default 3)")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds before the first window (default 20)")
    parser.add_argument("--interval", type=float, default=2.0, help="scrape / floor cadence in seconds (default 2)")
    parser.add_argument("--argus", default="", help='the agent command (default: "<this python> -m argus_telemetry")')
    parser.add_argument("--out", default="", help="scratch directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, spools)")
    parser.add_argument(
        "--exporters",
        action="store_true",
        help="enable Pushgateway (a real pushgateway), Loki (the test receiver) and /metrics (scraped every 2 s)",
    )
    parser.add_argument(
        "--remote-write",
        action="store_true",
        help="enable [remote_write] into a real victoria-metrics (issue 8); combine with --exporters",
    )
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="scrape node_exporter and the agent over one kept-alive connection each (as Prometheus does)",
    )
    parser.add_argument("--json-out", default="", help="also write the raw figures as JSON to this file")
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        parser.error("Linux only: the figures come from /proc")
    scratch = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="argus-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        targets = measure(args, scratch)
    finally:
        if args.keep or args.out:
            print(f"scratch kept in {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    report(targets, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
