"""A minimal `export.base.ExportHost` over a real SqliteSpool, for driving one exporter's
delivery loop in-process with a FakeClock (what `agent.Agent` provides in production)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from argus_telemetry.clock import Clock
from argus_telemetry.config.model import AgentConfig, Bytes, Config, RemoteWriteConfig, Seconds, SpoolConfig
from argus_telemetry.export.backoff import Backoff
from argus_telemetry.export.delivery import Delivery
from argus_telemetry.export.remote_write import RemoteWriteExporter
from argus_telemetry.health import ExporterHealth, Health
from argus_telemetry.snapshot.model import Counters, Snapshot, encode_counters, encode_snapshot
from argus_telemetry.spool.base import Spool
from argus_telemetry.spool.sqlite import SqliteSpool
from tests.support import factories
from tests.support.export_host import FlushSignal
from tests.support.fake_clock import FakeClock


class Host(FlushSignal):
    """Config, clock, health and spool of a pretend agent; `flush()` wakes exporters."""

    def __init__(
        self, config: Config, spool: Spool, clock: Clock, spool_dir: Path, hostname: str = "client-42"
    ) -> None:
        super().__init__(spool)
        self.config = config
        self.config_path = "test.toml"
        self.clock = clock
        self.health = Health(["remote_write"])
        self.hostname = hostname
        self.version = "0.0-test"
        self.spool_dir = spool_dir
        self.latest: tuple[Snapshot, Counters] | None = None

    async def flush(self) -> None:
        """Wake the exporters waiting for a flush (the spool is not flushed)."""
        await self.signal_flush()


async def append_snapshots(
    spool: Spool, first_seq: int, count: int, start_wall: float, *, step: float = 2.0, host: str = "client-42"
) -> list[tuple[Snapshot, Counters]]:
    """Append `count` factory snapshots from `start_wall`, `step` seconds apart, with
    counters that grow by seq (so every value is distinct and checkable)."""
    made: list[tuple[Snapshot, Counters]] = []
    for offset in range(count):
        seq = first_seq + offset
        wall = start_wall + step * offset
        snap = factories.snapshot(seq=seq, wall=wall, host=host, cpu_percent=float(seq % 100))
        counters = factories.counters(
            disks={"vda": (4096 * seq, 8192 * seq)}, network={"lo": (seq, seq), "eth0": (100 * seq, 50 * seq)}
        )
        await spool.append(seq, wall, encode_snapshot(snap), encode_counters(counters))
        made.append((snap, counters))
    return made


async def wait_until(predicate: Callable[[], bool], *, timeout: float = 30.0) -> None:
    """Poll `predicate` until it holds; fail with TimeoutError after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


class Rig:
    """A real SqliteSpool, a Host, a remote_write delivery loop and its task."""

    def __init__(self, host: Host, delivery: Delivery, exporter: RemoteWriteExporter, clock: FakeClock) -> None:
        self.host = host
        self.delivery = delivery
        self.exporter = exporter
        self.clock = clock
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.delivery.run())

    @property
    def health(self) -> ExporterHealth:
        return self.host.health.exporters["remote_write"]

    async def backlog(self) -> int:
        return (await self.host.spool.stats()).backlog["remote_write"]

    async def dropped(self) -> dict[str, int]:
        return dict((await self.host.spool.stats()).dropped)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.host.spool.close()


async def build_rig(
    spool_dir: Path, url: str, clock: FakeClock, *, hostname: str = "client-42", **remote_write: object
) -> Rig:
    """A Rig sending to `url`. max_send_rate defaults to 0 (unpaced, below the config
    minimum on purpose): with a fake clock any pacing pause would need an advance().
    Backoff has no jitter, so delays are exact."""
    settings = {"url": url, "timeout": Seconds(5.0), "max_send_rate": Bytes(0), **remote_write}
    config = Config(
        agent=AgentConfig(labels={"region": "eu-west"}),
        remote_write=RemoteWriteConfig(**settings),  # type: ignore[arg-type]
    )
    spool = await SqliteSpool.open(spool_dir, SpoolConfig(), clock)
    host = Host(config, spool, clock, spool_dir, hostname=hostname)
    exporter = RemoteWriteExporter(host)
    delivery = Delivery(host, exporter, backoff=Backoff(uniform=lambda low, high: 1.0))
    await delivery.start()
    return Rig(host, delivery, exporter, clock)
