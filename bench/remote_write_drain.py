"""Drain of a 24 h backlog (43,200 snapshots at 2 s) from the spool into VictoriaMetrics
by a real `argus run` with remote_write, on loopback. Prints wall seconds, samples/s,
the agent's CPU seconds and RSS (sampled every 0.2 s from /proc), and whether the 2 s
cadence held during the drain (snapshots stored by the agent meanwhile).

    .venv/bin/python bench/remote_write_drain.py [--snapshots 43200] [--rate 2MiB]

Linux only (reads /proc). Needs Debian's victoria-metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.rw_host import append_snapshots  # noqa: E402
from tests.support.rw_servers import VictoriaMetrics  # noqa: E402

from argus_telemetry.clock import SystemClock  # noqa: E402
from argus_telemetry.config.model import SpoolConfig  # noqa: E402
from argus_telemetry.spool.sqlite import SqliteSpool  # noqa: E402

SERIES = 37  # per backlog snapshot (factory snapshot)
TICKS = os.sysconf("SC_CLK_TCK")
STORED = re.compile(r"\bstored\b.*\bseq=(\d+)")


async def build_spool(directory: Path, count: int) -> float:
    spool = await SqliteSpool.open(directory, SpoolConfig(max_bytes=2 * 1024**3), SystemClock())  # type: ignore[arg-type]
    start = time.time() - 2.0 * count - 5.0
    try:
        for first in range(1, count + 1, 1000):
            await append_snapshots(
                spool, first, min(1000, count - first + 1), start + 2.0 * (first - 1), host="bench-rw"
            )
        await spool.flush()
    finally:
        await spool.close()
    return start


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=43_200)
    parser.add_argument("--rate", default="2MiB", help="[remote_write] max_send_rate")
    parser.add_argument(
        "--read-limit",
        type=int,
        default=0,
        help="override delivery.READ_LIMIT (records read at once) to see its RSS cost",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        server = VictoriaMetrics(tmp / "vm").start()
        try:
            t0 = time.monotonic()
            asyncio.run(build_spool(tmp / "data" / "Logs", args.snapshots))
            print(f"spool of {args.snapshots} snapshots built in {time.monotonic() - t0:.1f} s")
            config = tmp / "argus.toml"
            config.write_text(
                f'[agent]\nhostname = "bench-rw"\ndata_dir = "{tmp / "data"}"\n[stream]\nenabled = false\n'
                f'[spool]\nmax_bytes = "2GiB"\n'
                f'[remote_write]\nurl = "{server.write_url}"\nmax_send_rate = "{args.rate}"\n'
            )
            log = tmp / "agent.log"
            env = {**os.environ, "ARGUS_LOG_LEVEL": "DEBUG"}
            with log.open("wb") as handle:
                command = [sys.executable, "-m", "argus_telemetry", "run", "-c", str(config)]
                if args.read_limit:
                    patch = (
                        "import sys, argus_telemetry.export.delivery as d; "
                        f"d.READ_LIMIT = {args.read_limit}; "
                        "from argus_telemetry.cli.main import main; sys.exit(main())"
                    )
                    command = [sys.executable, "-c", patch, "run", "-c", str(config)]
                agent = subprocess.Popen(
                    command,
                    stderr=handle,
                    stdout=subprocess.DEVNULL,
                    env=env,
                )
            started = time.monotonic()
            peak_rss = 0
            rss_samples: list[int] = []
            target = args.snapshots
            done_at = None
            last_check = 0.0
            while done_at is None:
                time.sleep(0.2)
                if agent.poll() is not None:
                    raise SystemExit(f"agent exited {agent.returncode}: {log.read_text()[-2000:]}")
                rss = rss_kib(agent.pid)
                rss_samples.append(rss)
                peak_rss = max(peak_rss, rss)
                if time.monotonic() - last_check > 1.0:
                    last_check = time.monotonic()
                    stamps = asyncio.run(server.export('argus_snapshot_timestamp_seconds{instance="bench-rw"}'))
                    got = sum(len(item["timestamps"]) for item in stamps)
                    if got >= target:
                        done_at = time.monotonic()
                if time.monotonic() - started > 900:
                    raise SystemExit("drain did not finish in 15 min")
            cpu = cpu_seconds(agent.pid)
            agent.terminate()
            agent.wait(timeout=10)
            wall = done_at - started
            stored = len(set(STORED.findall(log.read_text(errors="replace"))))
            samples = target * SERIES
            print(f"drained {target} snapshots ({samples} samples) in {wall:.1f} s wall (incl. agent start-up)")
            median_rss = sorted(rss_samples)[len(rss_samples) // 2]
            print(
                f"  {samples / wall:,.0f} samples/s; agent CPU {cpu:.1f} s (whole run); "
                f"RSS peak {peak_rss / 1024:.1f} MiB, median {median_rss / 1024:.1f} MiB"
            )
            print(f"  cadence: {stored} live snapshots stored in {wall:.1f} s (2 s interval: expect ~{wall / 2:.0f})")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
