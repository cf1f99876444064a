"""The Spool interface and the records it hands out.

Every snapshot is appended (committed at once: kill -9 loses nothing handed over);
`flush()` makes everything so far durable against power loss (fsync). Each consumer
(an exporter that replays history: loki, remote_write) reads through its own cursor
with `read_after` and moves it with `ack`; a row is deleted once every registered
consumer acked it. Drops are counted by reason and persisted.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

DROP_REASONS = ("max_bytes", "max_age", "corrupt", "disk_full", "rejected", "too_old")


class SpoolRecord(msgspec.Struct, frozen=True):
    """One stored snapshot: its seq, its time (Unix seconds), the schema-1 JSON and the
    raw counters (see snapshot.model.decode_counters)."""

    seq: int
    wall: float
    snapshot_json: bytes
    counters: bytes


class SpoolStats(msgspec.Struct, frozen=True):
    """What `argus spool stats` and the status payload show."""

    path: str
    rows: int
    bytes: int
    oldest_seq: int | None
    newest_seq: int | None
    oldest_wall: float | None
    newest_wall: float | None
    high_water_seq: int
    backlog: dict[str, int]  # consumer → rows not yet acked
    dropped: dict[str, int]  # reason → count, every reason of DROP_REASONS present


class Spool(Protocol):
    """The durable spool. Async methods never block the event loop."""

    def next_seq(self) -> int:
        """The seq the next snapshot must carry: one past the persisted high-water mark."""
        ...

    async def append(self, seq: int, wall: float, snapshot_json: bytes, counters: bytes) -> bool:
        """Store one snapshot, committed before returning. False when it could not be
        stored (disk full, I/O error): the drop is counted, logged once per episode,
        and the spool keeps working and recovers by itself."""
        ...

    async def flush(self) -> None:
        """fsync everything appended so far (the power-loss window ends here)."""
        ...

    def register(self, consumer: str) -> None:
        """Declare a consumer for this run; its cursor persists across restarts."""
        ...

    async def read_after(self, consumer: str, limit: int) -> list[SpoolRecord]:
        """Up to `limit` records after the consumer's acked cursor, oldest first."""
        ...

    async def ack(self, consumer: str, seq: int) -> None:
        """The consumer has delivered everything up to `seq`; rows every consumer acked
        are deleted (securely when `[spool] wipe`)."""
        ...

    async def count_drop(self, reason: str, count: int) -> None:
        """Add `count` to the persisted drop counter `reason` (one of DROP_REASONS)."""
        ...

    async def latest(self) -> SpoolRecord | None:
        """The newest stored record, if any."""
        ...

    async def stats(self) -> SpoolStats: ...

    async def close(self) -> None:
        """Flush, checkpoint, and release the file."""
        ...
