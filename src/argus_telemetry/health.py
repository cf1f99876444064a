"""The agent's running record: per-exporter success and failure, flushes, uptime.

Exporters call `record_success` / `record_failure`; the status payload (stream
`status` op, `argus status`, panel) and the self-metrics read from here. State changes
(failing → recovered) are logged once, not on every retry.
"""

from __future__ import annotations

import logging

import msgspec

log = logging.getLogger(__name__)

EXPORTERS = ("pushgateway", "loki", "remote_write")


class ExporterHealth(msgspec.Struct):
    """One exporter's record. Times are Unix seconds."""

    name: str
    success_total: int = 0
    failure_total: int = 0
    last_success_wall: float | None = None
    last_error: str | None = None
    last_error_wall: float | None = None
    failing_since_wall: float | None = None
    backlog: int = 0


class Health:
    """Mutable, owned by the event loop thread (no locking needed)."""

    def __init__(self, enabled_exporters: list[str]) -> None:
        self.exporters: dict[str, ExporterHealth] = {name: ExporterHealth(name=name) for name in enabled_exporters}
        self.flush_total = 0
        self.last_flush_wall: float | None = None
        self.snapshots_total = 0
        self.last_snapshot_wall: float | None = None

    def record_success(self, name: str, wall: float) -> None:
        record = self.exporters[name]
        record.success_total += 1
        record.last_success_wall = wall
        if record.failing_since_wall is not None:
            log.info("export recovered", extra={"exporter": name})
        record.failing_since_wall = None

    def record_failure(self, name: str, error: str, wall: float) -> None:
        """Count one failed attempt; log only when the error text changes."""
        record = self.exporters[name]
        record.failure_total += 1
        if record.failing_since_wall is None:
            record.failing_since_wall = wall
        if record.last_error != error or record.failing_since_wall == wall:
            log.warning("export failing", extra={"exporter": name, "error": error})
        record.last_error = error
        record.last_error_wall = wall

    def set_backlog(self, name: str, backlog: int) -> None:
        self.exporters[name].backlog = backlog

    def record_flush(self, wall: float) -> None:
        self.flush_total += 1
        self.last_flush_wall = wall
