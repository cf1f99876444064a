"""One delivery loop per spool-fed exporter: spool cursor → export → ack.

Retry, backoff, pacing, 413 splitting, dead-lettering and health live here once; an
exporter only builds a request and classifies the answer (see `base.Exporter`).

Error classes (contract, "Remote write"):
- network errors, timeouts, 5xx, 429: retry the same batch, byte-identical, with
  exponential backoff and jitter, forever (a `Retry-After` is a floor);
- 413: split the batch and send the halves, oldest first (a single entry that is still
  too large is refused for good, below);
- 401/403/404/405/415: misconfiguration: the data stays, retried at the longest backoff,
  logged at ERROR once per state change and shown in `status`;
- any other 4xx: refused for good: the batch goes to the dead-letter folder, counted as
  `rejected`, acked, and later data goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from argus_telemetry.errors import ExportError
from argus_telemetry.export.backoff import Backoff
from argus_telemetry.export.base import Exporter, ExportHost
from argus_telemetry.export.deadletter import DeadLetter
from argus_telemetry.export.http import MISCONFIGURED
from argus_telemetry.spool.base import SpoolRecord

log = logging.getLogger(__name__)

READ_LIMIT = 500  # records read from the spool at once (then cut into requests); 5000 cost +11 MiB peak RSS in a drain


class Delivery:
    """The agent Component that drives one Exporter from its spool cursor."""

    def __init__(self, host: ExportHost, exporter: Exporter, *, backoff: Backoff | None = None) -> None:
        self.name = exporter.name
        self._host = host
        self._exporter = exporter
        self._backoff = backoff or Backoff()
        self._dead_letter = DeadLetter(host.spool_dir / "dead-letter")
        self._next_send_monotonic = 0.0
        self._misconfigured = False
        self._drained_generation = -1
        self._drained = asyncio.Condition()

    async def start(self) -> None:
        self._host.spool.register(self.name)
        await self._exporter.start()

    async def run(self) -> None:
        """Drain the cursor, then wait for the next flush; forever."""
        try:
            generation = -1
            while True:
                generation = self._host.flush_generation
                await self._drain()
                async with self._drained:
                    self._drained_generation = generation
                    self._drained.notify_all()
                await self._host.wait_for_flush(generation)
        finally:
            await self._exporter.close()

    async def final_flush(self) -> None:
        """Wait until the run loop has delivered everything up to the final flush (the
        agent bounds this wait; what is left stays in the spool for the next start)."""
        target = self._host.flush_generation
        async with self._drained:
            await self._drained.wait_for(lambda: self._drained_generation >= target)

    async def _drain(self) -> None:
        spool = self._host.spool
        while True:
            records = await spool.read_after(self.name, READ_LIMIT)
            if not records:
                self._host.health.set_backlog(self.name, 0)
                return
            pending: Sequence[SpoolRecord] = records
            while pending:
                self._host.health.set_backlog(self.name, len(pending))
                count = max(1, min(len(pending), self._exporter.cut(pending)))
                await self._deliver(pending[:count])
                pending = pending[count:]
            if len(records) < READ_LIMIT and self._host.spool.next_seq() == records[-1].seq + 1:
                # Everything stored was just delivered: spare the spool an empty read.
                self._host.health.set_backlog(self.name, 0)
                return

    async def _deliver(self, batch: Sequence[SpoolRecord]) -> None:
        """Deliver `batch` (split on 413) until each part is acked or dead-lettered."""
        parts: list[Sequence[SpoolRecord]] = [batch]
        while parts:
            part = parts.pop()
            halves = await self._deliver_part(part)
            if halves:
                parts.extend(reversed(halves))  # the older half is popped first

    async def _deliver_part(self, part: Sequence[SpoolRecord]) -> list[Sequence[SpoolRecord]]:
        """Send `part` until it is acked or set aside; a non-empty result is its two
        halves after a 413."""
        host = self._host
        while True:
            await host.clock.sleep_until(self._next_send_monotonic)
            started = host.clock.monotonic()
            try:
                sent_bytes = await self._exporter.export(part)
            except ExportError as error:
                if error.status == 413 and len(part) > 1:
                    middle = len(part) // 2
                    log.warning(
                        "export batch too large, splitting",
                        extra={"exporter": self.name, "entries": len(part)},
                    )
                    return [part[:middle], part[middle:]]
                if not error.retryable or error.status == 413:
                    await self._set_aside(part, error)
                    return []
                await self._wait_after(error)
                continue
            self._pace(started, sent_bytes)
            await host.spool.ack(self.name, part[-1].seq)
            host.health.record_success(self.name, host.clock.wall())
            self._backoff.reset()
            if self._misconfigured:
                log.info("export configuration accepted again", extra={"exporter": self.name})
                self._misconfigured = False
            return []

    def _pace(self, started: float, sent_bytes: int) -> None:
        rate = self._exporter.max_send_rate
        if rate > 0:
            self._next_send_monotonic = max(self._next_send_monotonic, started) + sent_bytes / rate

    async def _wait_after(self, error: ExportError) -> None:
        host = self._host
        host.health.record_failure(self.name, str(error), host.clock.wall())
        misconfigured = error.status in MISCONFIGURED
        if misconfigured and not self._misconfigured:
            log.error(
                "export misconfigured, data kept and retried slowly",
                extra={"exporter": self.name, "status": error.status, "error": error.reason},
            )
        self._misconfigured = misconfigured
        delay = self._backoff.next_delay(error.retry_after_seconds, longest=misconfigured)
        await host.clock.sleep_until(host.clock.monotonic() + delay)

    async def _set_aside(self, part: Sequence[SpoolRecord], error: ExportError) -> None:
        host = self._host
        wall = host.clock.wall()
        path = await self._dead_letter.write(self.name, part, error.status, error.reason, wall)
        await host.spool.count_drop("rejected", len(part))
        await host.spool.ack(self.name, part[-1].seq)
        host.health.record_failure(self.name, str(error), wall)
        log.error(
            "export refused for good, batch set aside",
            extra={
                "exporter": self.name,
                "status": error.status,
                "first_seq": part[0].seq,
                "last_seq": part[-1].seq,
                "entries": len(part),
                "file": str(path),
                "error": error.reason,
            },
        )
