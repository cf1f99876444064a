"""The Exporter interface, and what exporters need from the running agent.

A batch exporter (Loki, later remote_write) only turns records into one request and
reports the answer; cursors, retries, backoff, splitting, dead-lettering, pacing and
health live once, in `delivery.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from argus_telemetry.clock import Clock
from argus_telemetry.config.model import Config
from argus_telemetry.health import Health
from argus_telemetry.snapshot.model import Counters, Snapshot
from argus_telemetry.spool.base import Spool, SpoolRecord


class ExportHost(Protocol):
    """The part of `agent.Agent` exporters use (Agent satisfies it structurally)."""

    config: Config
    config_path: str
    clock: Clock
    health: Health
    hostname: str
    version: str
    spool_dir: Path
    latest: tuple[Snapshot, Counters] | None

    @property
    def spool(self) -> Spool: ...

    @property
    def flush_generation(self) -> int: ...

    async def wait_for_flush(self, seen_generation: int) -> int: ...


class Exporter(Protocol):
    """One backend fed from the spool through its own cursor, oldest first."""

    name: str  # also the spool consumer and the health / self-metric label

    max_send_rate: int  # bytes per second while draining; 0 = unlimited

    async def start(self) -> None:
        """Build clients; raise ArgusError (ConfigError) to refuse start-up."""
        ...

    def cut(self, records: Sequence[SpoolRecord]) -> int:
        """How many of `records` (>= 1) the next request carries (its size limit)."""
        ...

    async def export(self, batch: Sequence[SpoolRecord]) -> int:
        """Send `batch` as one request; return the bytes sent (for pacing). Raises
        ExportError: retryable or not, with the HTTP status (None: network)."""
        ...

    async def close(self) -> None:
        """Release clients."""
        ...
