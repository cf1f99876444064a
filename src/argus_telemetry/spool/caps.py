"""Applying `[spool] max_age` and `max_bytes` inside the append transaction, so a drop
and the row that caused it commit together (or not at all). The rules themselves are
the pure functions of `retention.py`."""

from __future__ import annotations

import sqlite3

from argus_telemetry.spool import retention

CAP_BATCH = 64  # oldest rows looked at per round while over the byte budget


def enforce_caps(
    conn: sqlite3.Connection, budget: retention.Budget, cutoff: float | None
) -> list[tuple[str, list[int]]]:
    """Delete the rows stamped before `cutoff` (None: no age cap), then the oldest rows
    while the pages in use exceed the byte budget. Returns what went, as (reason, seqs)
    in deletion order; the caller counts them."""
    removed: list[tuple[str, list[int]]] = []
    if cutoff is not None:
        old = [int(s) for (s,) in conn.execute("SELECT seq FROM snapshots WHERE wall < ?", (cutoff,))]
        if old:
            conn.execute("DELETE FROM snapshots WHERE wall < ?", (cutoff,))
            removed.append(("max_age", old))
    while True:
        page_count = int(conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        excess = retention.excess_bytes(page_count - free, budget)
        if excess == 0:
            return removed
        oldest = conn.execute("SELECT seq, size FROM snapshots ORDER BY seq LIMIT ?", (CAP_BATCH,)).fetchall()
        count = retention.rows_to_free(excess, [int(size) for _, size in oldest])
        if count == 0:
            return removed
        last = int(oldest[count - 1][0])
        conn.execute("DELETE FROM snapshots WHERE seq <= ?", (last,))
        removed.append(("max_bytes", [int(s) for s, _ in oldest[:count]]))
