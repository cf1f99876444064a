"""Pure retention rules: how `[spool] max_bytes` splits between the database file and its
WAL, how many bytes must be freed, which oldest rows go, and the age cut-off.

The SQLite spool applies these inside the append transaction, so a drop and the row
that caused it commit together (or not at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PAGE_SIZE = 4096
WAL_FRAME_BYTES = PAGE_SIZE + 24  # a WAL frame is one page plus a 24-byte header
WAL_HEADER_BYTES = 32
MIN_WAL_BYTES = 64 * 1024
MAX_WAL_BYTES = 4 * 1024 * 1024
# Frames one append (or one cap-enforcing append) may add on top of the auto-checkpoint
# threshold before the next checkpoint resets the WAL: leaf, interior, index, meta,
# counters, freelist trunk and page 1, with margin.
TRANSACTION_FRAMES = 24
# The main file may run a few pages past the budget between an insert that allocates a
# page and the delete that frees the oldest (a B-tree split touches up to three).
DB_SLACK_PAGES = 8
MIN_DB_PAGES = 16


@dataclass(frozen=True)
class Budget:
    """How `max_bytes` is spent. The on-disk size (file + WAL) stays within
    `db_bytes + DB_SLACK_PAGES pages + wal_bytes` ≤ max_bytes (for max_bytes ≥ 256 KiB;
    below that the minimum of 16 data pages wins)."""

    max_bytes: int
    wal_bytes: int  # the WAL never grows past this (journal_size_limit, auto-checkpoint)
    autocheckpoint_pages: int
    db_bytes: int  # pages in use in the main file are kept at or below this


def plan_budget(max_bytes: int) -> Budget:
    """Split `max_bytes`: an eighth (64 KiB .. 4 MiB) for the WAL, the rest for data."""
    wal_bytes = min(MAX_WAL_BYTES, max(MIN_WAL_BYTES, max_bytes // 8))
    frames = (wal_bytes - WAL_HEADER_BYTES) // WAL_FRAME_BYTES
    autocheckpoint_pages = max(1, frames - TRANSACTION_FRAMES)
    db_bytes = max(MIN_DB_PAGES * PAGE_SIZE, max_bytes - wal_bytes - DB_SLACK_PAGES * PAGE_SIZE)
    return Budget(
        max_bytes=max_bytes,
        wal_bytes=wal_bytes,
        autocheckpoint_pages=autocheckpoint_pages,
        db_bytes=db_bytes,
    )


def excess_bytes(used_pages: int, budget: Budget) -> int:
    """Bytes of data pages over the budget (0 when within it)."""
    return max(0, used_pages * PAGE_SIZE - budget.db_bytes)


def rows_to_free(excess: int, oldest: Sequence[int]) -> int:
    """How many of the oldest rows (their stored sizes, oldest first) must go to free at
    least `excess` bytes; at least one when anything is over, never more than given."""
    if excess <= 0 or not oldest:
        return 0
    freed = 0
    for count, size in enumerate(oldest, start=1):
        freed += size
        if freed >= excess:
            return count
    return len(oldest)


def age_cutoff(now_wall: float, max_age_seconds: float) -> float | None:
    """Rows stamped before this wall time are too old; None when `max_age` is off (0)."""
    if max_age_seconds <= 0:
        return None
    return now_wall - max_age_seconds


def row_bytes(snapshot_json: bytes, counters: bytes) -> int:
    """The stored size of one row as counted for the cap: payloads plus ~40 bytes of
    record header, seq, wall, crc and index entry."""
    return len(snapshot_json) + len(counters) + 40
