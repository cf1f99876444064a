"""The status payload: what the stream's `status` op, `argus status` and the panel show."""

from __future__ import annotations

from typing import TYPE_CHECKING

from argus_telemetry.snapshot.model import format_time

if TYPE_CHECKING:
    from argus_telemetry.agent import Agent


def _iso(wall: float | None) -> str | None:
    return format_time(wall) if wall is not None else None


async def build_status(agent: Agent) -> dict[str, object]:
    """Version, uptime, host, interval, spool counts/bytes/oldest, drops by reason, and
    per exporter: ok, last success, last error text and time, backlog."""
    stats = await agent.spool.stats()
    exporters: dict[str, object] = {}
    for name, record in agent.health.exporters.items():
        exporters[name] = {
            "ok": record.failing_since_wall is None,
            "last_success_time": _iso(record.last_success_wall),
            "last_error": record.last_error,
            "last_error_time": _iso(record.last_error_wall),
            "failing_since": _iso(record.failing_since_wall),
            "backlog": stats.backlog.get(name, record.backlog),
            "success_total": record.success_total,
            "failure_total": record.failure_total,
        }
    return {
        "version": agent.version,
        "host": agent.hostname,
        "started": _iso(agent.started_wall),
        "uptime_seconds": round(max(0.0, agent.clock.monotonic() - agent.started_monotonic), 3),
        "interval_seconds": float(agent.config.agent.interval),
        "snapshots_total": agent.health.snapshots_total,
        "last_snapshot_time": _iso(agent.health.last_snapshot_wall),
        "flush": {
            "total": agent.health.flush_total,
            "last_time": _iso(agent.health.last_flush_wall),
        },
        "spool": {
            "path": stats.path,
            "snapshots": stats.rows,
            "bytes": stats.bytes,
            "oldest_seq": stats.oldest_seq,
            "newest_seq": stats.newest_seq,
            "oldest_time": _iso(stats.oldest_wall),
            "newest_time": _iso(stats.newest_wall),
            "high_water_seq": stats.high_water_seq,
        },
        "dropped": dict(stats.dropped),
        "exporters": exporters,
    }
