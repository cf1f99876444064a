"""Wiring: builds the parts from Config, runs them in one TaskGroup, stops them in order.

Order of a tick: collect (worker thread) → snapshot → spool append (committed) →
listeners (stream hub) → flush when due (fsync, then exporters are woken).
Order of a stop: stop ticking → flush + fsync → exporters get one last bounded try →
components cancelled → spool closed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from argus_telemetry import __version__, paths
from argus_telemetry.clock import Clock, SystemClock
from argus_telemetry.collect.base import Collector
from argus_telemetry.config.model import Config
from argus_telemetry.health import Health
from argus_telemetry.schedule import next_deadline
from argus_telemetry.snapshot.model import Counters, Snapshot, encode_counters, encode_snapshot
from argus_telemetry.snapshot.sampler import Sampler
from argus_telemetry.spool.base import Spool

log = logging.getLogger(__name__)

STOP_BUDGET_SECONDS = 4.0  # SIGTERM → exit 0 within 5 s (contract), with margin
FINAL_EXPORT_SECONDS = 2.0  # of which exporters may spend this on a last delivery

SnapshotListener = Callable[[Snapshot, bytes], None]


class Component(Protocol):
    """A long-running part of the agent (exporter, stream server, /metrics endpoint)."""

    name: str

    async def start(self) -> None:
        """Acquire what the part needs (bind sockets...); raise ArgusError to refuse start-up."""
        ...

    async def run(self) -> None:
        """Work until cancelled; clean up in `finally`."""
        ...

    async def final_flush(self) -> None:
        """One last delivery attempt at shutdown (the agent bounds its time)."""
        ...


class Agent:
    """The running agent. Parts reach shared state through this object."""

    def __init__(
        self,
        config: Config,
        *,
        config_path: str = "",
        clock: Clock | None = None,
        collector: Collector | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.clock: Clock = clock or SystemClock()
        self.data_dir = Path(config.agent.data_dir) if config.agent.data_dir else paths.default_data_dir()
        self.spool_dir = paths.spool_dir(self.data_dir)
        self.hostname = config.agent.hostname or socket.gethostname()
        self.version = __version__
        self.health = Health(_enabled_exporters(config))
        self.started_wall = self.clock.wall()
        self.started_monotonic = self.clock.monotonic()
        self.latest: tuple[Snapshot, Counters] | None = None
        self.stream_path = ""  # set by the stream server when it listens
        self._collector = collector
        self._spool: Spool | None = None
        self._listeners: list[SnapshotListener] = []
        self._flush_generation = 0
        self._flush_changed = asyncio.Condition()
        self._pending = 0
        self._last_flush_monotonic = 0.0
        self._flush_lock = asyncio.Lock()
        self._collect_failing = False

    # -- shared state for the parts ------------------------------------------------

    @property
    def spool(self) -> Spool:
        if self._spool is None:
            raise RuntimeError("the spool is opened by Agent.run()")
        return self._spool

    def add_listener(self, listener: SnapshotListener) -> None:
        """Call `listener(snapshot, json)` on the event loop for every new snapshot.
        Listeners must not block (the stream hub only enqueues)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: SnapshotListener) -> None:
        self._listeners.remove(listener)

    async def wait_for_flush(self, seen_generation: int) -> int:
        """Wait until a flush newer than `seen_generation` happened; return its number."""
        async with self._flush_changed:
            await self._flush_changed.wait_for(lambda: self._flush_generation > seen_generation)
            return self._flush_generation

    @property
    def flush_generation(self) -> int:
        return self._flush_generation

    async def flush_now(self) -> None:
        """Flush the spool to disk (fsync) and wake the exporters; used at every flush
        interval, by the stream's `flush` op and at shutdown."""
        async with self._flush_lock:
            await self.spool.flush()
            self._pending = 0
            self._last_flush_monotonic = self.clock.monotonic()
            self.health.record_flush(self.clock.wall())
        async with self._flush_changed:
            self._flush_generation += 1
            self._flush_changed.notify_all()
        stats = await self.spool.stats()
        log.info(
            "flushed",
            extra={
                "seq": stats.newest_seq,
                "spool_snapshots": stats.rows,
                "spool_bytes": stats.bytes,
            },
        )

    async def status(self) -> dict[str, object]:
        """The status payload of the stream's `status` op (and `argus status`)."""
        from argus_telemetry.status import build_status

        return await build_status(self)

    # -- running -------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then stop in order within the contract's 5 s."""
        from argus_telemetry.spool.sqlite import SqliteSpool

        self.spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._spool = await SqliteSpool.open(self.spool_dir, self.config.spool, self.clock)
        components = self._build_components()
        try:
            for component in components:
                await component.start()
            log.info(
                "agent started",
                extra={
                    "version": self.version,
                    "host": self.hostname,
                    "interval": self.config.agent.interval,
                    "spool": str(self.spool_dir),
                    "stream": self.stream_path or "off",
                    "config": self.config_path or "defaults",
                },
            )
            async with asyncio.TaskGroup() as group:
                ticking = group.create_task(self._tick_loop(), name="tick")
                tasks = [group.create_task(c.run(), name=c.name) for c in components]
                stopping = group.create_task(stop.wait(), name="stop")
                await asyncio.wait([ticking, stopping], return_when=asyncio.FIRST_COMPLETED)
                ticking.cancel()
                await asyncio.gather(ticking, return_exceptions=True)
                await self._shutdown(components)
                for task in tasks:
                    task.cancel()
                stopping.cancel()
        finally:
            await self.spool.close()
            log.info("agent stopped", extra={"seq": self.spool.next_seq() - 1})

    def _build_components(self) -> list[Component]:
        components: list[Component] = []
        if self.config.stream.enabled:
            from argus_telemetry.stream.server import build_stream_server

            components.append(build_stream_server(self))
        from argus_telemetry.export.setup import build_exporters

        components.extend(build_exporters(self))
        return components

    async def _shutdown(self, components: list[Component]) -> None:
        try:
            async with asyncio.timeout(STOP_BUDGET_SECONDS - FINAL_EXPORT_SECONDS):
                await self.flush_now()
        except TimeoutError:
            log.error("final flush timed out")
        if components:
            try:
                async with asyncio.timeout(FINAL_EXPORT_SECONDS):
                    await asyncio.gather(*(c.final_flush() for c in components))
            except TimeoutError:
                log.warning("final export cut short", extra={"budget_seconds": FINAL_EXPORT_SECONDS})

    async def _tick_loop(self) -> None:
        collector = self._collector or _host_collector()
        sampler = Sampler(
            hostname=self.hostname,
            collect=self.config.collect,
        )
        sampler.prime(await asyncio.to_thread(collector.read))
        interval = self.config.agent.interval
        self._last_flush_monotonic = self.clock.monotonic()
        deadline = self.clock.monotonic() + interval
        while True:
            await self.clock.sleep_until(deadline)
            await self._tick(collector, sampler)
            deadline = next_deadline(deadline, self.clock.monotonic(), interval)

    async def _tick(self, collector: Collector, sampler: Sampler) -> None:
        try:
            raw = await asyncio.to_thread(collector.read)
        except OSError as exc:
            if not self._collect_failing:
                log.error("collection failed", extra={"error": str(exc)})
            self._collect_failing = True
            return
        if self._collect_failing:
            log.info("collection recovered")
            self._collect_failing = False
        seq = self.spool.next_seq()
        snapshot, counters = sampler.build(raw, seq)
        body = encode_snapshot(snapshot)
        stored = await self.spool.append(seq, raw.wall, body, encode_counters(counters))
        if stored:
            # The kill -9 tests read this line: a seq logged here must survive a crash.
            log.debug("stored", extra={"seq": seq})
        self.latest = (snapshot, counters)
        self.health.snapshots_total += 1
        self.health.last_snapshot_wall = raw.wall
        for listener in list(self._listeners):
            listener(snapshot, body)
        self._pending += 1
        due = self.clock.monotonic() - self._last_flush_monotonic >= self.config.agent.flush_interval
        if due or self._pending >= self.config.agent.flush_max_items:
            await self.flush_now()


def _host_collector() -> Collector:
    from argus_telemetry.collect.host import HostCollector

    return HostCollector()


def _enabled_exporters(config: Config) -> list[str]:
    return [name for name in ("pushgateway", "loki", "remote_write") if getattr(config, name).url]
