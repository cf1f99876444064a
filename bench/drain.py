"""Drain rate: a spool holding 43,200 snapshots (24 h at 2 s) delivered to the test Loki
receiver on loopback with no rate limit. Prints snapshots/s and the agent side's CPU s.

    .venv/bin/python bench/drain.py [--snapshots 43200]

The receiver runs in a subprocess, so the CPU figure is the exporter's alone
(reading the spool, building and gzip'ing bodies, HTTP, acks).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import factories  # noqa: E402
from tests.support.export_host import ExportHarness, cpu_seconds, loki_receiver_process  # noqa: E402

from argus_telemetry.clock import SystemClock  # noqa: E402
from argus_telemetry.config.model import AgentConfig, Bytes, Config, LokiConfig  # noqa: E402
from argus_telemetry.export.delivery import Delivery  # noqa: E402
from argus_telemetry.export.loki import LokiExporter  # noqa: E402
from argus_telemetry.snapshot.model import encode_counters, encode_snapshot  # noqa: E402


async def main(count: int, port: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(
            agent=AgentConfig(hostname="bench-1"),
            loki=LokiConfig(url=f"http://127.0.0.1:{port}", tenant="bench", max_send_rate=Bytes(0)),
        )
        host = await ExportHarness.open(config, SystemClock(), Path(tmp))  # type: ignore[arg-type]
        host.spool.register("loki")
        start_wall = time.time() - count * 2.0
        for seq in range(1, count + 1):
            snapshot = factories.snapshot(seq=seq, wall=start_wall + seq * 2.0)
            await host.spool.append(
                seq, start_wall + seq * 2.0, encode_snapshot(snapshot), encode_counters(factories.counters())
            )
        await host.spool.flush()
        stats = await host.spool.stats()
        delivery = Delivery(host, LokiExporter(host))
        await delivery.start()
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        task = asyncio.create_task(delivery.run())
        while (await host.spool.stats()).backlog.get("loki", 0) > 0:  # noqa: ASYNC110 - polling is the measurement
            await asyncio.sleep(0.05)
        wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        success = host.health.exporters["loki"].success_total
        await host.spool.close()
    print(f"spool: {count} snapshots, {stats.bytes / 1024**2:.1f} MiB on disk")
    print(
        f"drain: {wall:.2f} s wall, {count / wall:,.0f} snapshots/s, "
        f"{cpu:.2f} CPU s (exporter side), {success} requests"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--snapshots", type=int, default=43_200)
    args = parser.parse_args()
    with loki_receiver_process(unlimited=True) as port:
        asyncio.run(main(args.snapshots, port))
