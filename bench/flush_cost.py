"""CPU cost of one flush cycle: a Pushgateway push (real Debian pushgateway) and a Loki
batch of 5 snapshots (test receiver, in a subprocess), measured in this process.

    .venv/bin/python bench/flush_cost.py [--cycles 200]
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

from tests.support.export_host import ExportHarness, cpu_seconds, loki_receiver_process  # noqa: E402
from tests.support.servers import Pushgateway  # noqa: E402

from argus_telemetry.clock import SystemClock  # noqa: E402
from argus_telemetry.config.model import AgentConfig, Config, LokiConfig, PushgatewayConfig  # noqa: E402
from argus_telemetry.export.delivery import Delivery  # noqa: E402
from argus_telemetry.export.loki import LokiExporter  # noqa: E402
from argus_telemetry.export.pushgateway import PushgatewayExporter  # noqa: E402


async def main(cycles: int, port: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        gateway = Pushgateway(Path(tmp)).start()
        config = Config(
            agent=AgentConfig(hostname="bench-1"),
            pushgateway=PushgatewayConfig(url=gateway.url),
            loki=LokiConfig(url=f"http://127.0.0.1:{port}", tenant="bench"),
        )
        host = await ExportHarness.open(config, SystemClock(), Path(tmp) / "data")  # type: ignore[arg-type]
        push = PushgatewayExporter(host)
        delivery = Delivery(host, LokiExporter(host))
        for part in (push, delivery):
            await part.start()
        tasks = [asyncio.create_task(push.run()), asyncio.create_task(delivery.run())]
        spent = 0.0
        wall = time.time() - cycles * 10.0
        for cycle in range(cycles):
            await host.append(5, wall=wall + cycle * 10.0)
            before = cpu_seconds()
            await host.flush()
            await asyncio.wait_for(asyncio.gather(push.final_flush(), delivery.final_flush()), 10)
            spent += cpu_seconds() - before
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        health = host.health.exporters
        await host.spool.close()
        gateway.stop()
    print(
        f"flush cycle (pushgateway push + Loki batch of 5, spool fsync included): "
        f"{spent / cycles * 1000:.2f} CPU ms over {cycles} cycles; "
        f"pushes ok {health['pushgateway'].success_total}, loki requests ok {health['loki'].success_total}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=200)
    args = parser.parse_args()
    with loki_receiver_process() as port:
        asyncio.run(main(args.cycles, port))
