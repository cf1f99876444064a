"""The spool's running counts, kept in memory and mirrored into the `meta`, `drops` and
`cursors` tables inside each write transaction.

A drop is first counted as pending; it joins the persisted totals only once the
transaction that wrote it has committed (`committed()`), so a rolled-back append never
counts twice.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field

from argus_telemetry.spool.base import DROP_REASONS


@dataclass
class Counts:
    """High-water mark, row count, cursors and drops of one open spool."""

    high_water_seq: int = 0
    rows: int = 0
    cursors: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))  # persisted
    pending: Counter[str] = field(default_factory=Counter)  # counted, not yet persisted

    def load(self, conn: sqlite3.Connection) -> None:
        """Read the persisted counts; the high-water mark never goes down."""
        meta = {str(k): int(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        self.high_water_seq = max(self.high_water_seq, meta["high_water_seq"])
        self.rows = int(conn.execute("SELECT count(*) FROM snapshots").fetchone()[0])
        self.cursors = {str(c): int(s) for c, s in conn.execute("SELECT consumer, acked_seq FROM cursors")}
        for reason, count in conn.execute("SELECT reason, count FROM drops"):
            self.dropped[str(reason)] = int(count)

    def persist(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: high-water mark, row count and pending drops."""
        conn.execute(
            "UPDATE meta SET value = CASE key WHEN 'high_water_seq' THEN ? ELSE ? END"
            " WHERE key IN ('high_water_seq', 'rows')",
            (self.high_water_seq, self.rows),
        )
        for reason, count in self.pending.items():
            if count:
                conn.execute("UPDATE drops SET count = count + ? WHERE reason = ?", (count, reason))

    def committed(self) -> None:
        """The transaction that persisted the pending drops has committed."""
        for reason, count in self.pending.items():
            self.dropped[reason] += count
        self.pending.clear()

    def totals(self) -> dict[str, int]:
        """Drops by reason, persisted plus pending, every reason present."""
        return {reason: self.dropped[reason] + self.pending[reason] for reason in DROP_REASONS}
