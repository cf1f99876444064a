"""Spool statistics: from the running spool's connection, or read-only from the file
(`argus spool stats`, safe while the agent runs)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from argus_telemetry.spool.base import DROP_REASONS, SpoolStats
from argus_telemetry.spool.verify import DB_NAME, open_read_only


def on_disk_bytes(path: Path) -> int:
    """The size of the database file plus its WAL (0 for what is missing)."""
    total = 0
    for name in (path.name, path.name + "-wal"):
        with contextlib.suppress(OSError):
            total += (path.parent / name).stat().st_size
    return total


def empty_stats(path: Path, hwm: int, dropped: dict[str, int], consumers: frozenset[str]) -> SpoolStats:
    """Stats for a spool whose database cannot be read right now: no rows, no backlog."""
    return SpoolStats(
        path=str(path),
        rows=0,
        bytes=on_disk_bytes(path),
        oldest_seq=None,
        newest_seq=None,
        oldest_wall=None,
        newest_wall=None,
        high_water_seq=hwm,
        backlog=dict.fromkeys(sorted(consumers), 0),
        dropped=dropped,
    )


def collect_stats(
    conn: sqlite3.Connection,
    path: Path,
    *,
    consumers: frozenset[str] | None = None,
    cursors: dict[str, int] | None = None,
) -> SpoolStats:
    """Stats from a spool connection. `consumers` None: every persisted cursor (the CLI,
    which cannot know who registered); `cursors` None: read them from the file."""
    if cursors is None:
        cursors = {str(c): int(s) for c, s in conn.execute("SELECT consumer, acked_seq FROM cursors")}
    names = sorted(cursors) if consumers is None else sorted(consumers)
    rows = int(conn.execute("SELECT count(*) FROM snapshots").fetchone()[0])
    oldest = conn.execute("SELECT seq, wall FROM snapshots ORDER BY seq LIMIT 1").fetchone()
    newest = conn.execute("SELECT seq, wall FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
    backlog = {
        name: int(conn.execute("SELECT count(*) FROM snapshots WHERE seq > ?", (cursors.get(name, 0),)).fetchone()[0])
        for name in names
    }
    meta = {str(k): int(v) for k, v in conn.execute("SELECT key, value FROM meta")}
    dropped = dict.fromkeys(DROP_REASONS, 0)
    for reason, count in conn.execute("SELECT reason, count FROM drops"):
        dropped[str(reason)] = int(count)
    return SpoolStats(
        path=str(path),
        rows=rows,
        bytes=on_disk_bytes(path),
        oldest_seq=int(oldest[0]) if oldest else None,
        newest_seq=int(newest[0]) if newest else None,
        oldest_wall=float(oldest[1]) if oldest else None,
        newest_wall=float(newest[1]) if newest else None,
        high_water_seq=meta.get("high_water_seq", 0),
        backlog=backlog,
        dropped=dropped,
    )


def read_stats(directory: Path) -> SpoolStats | None:
    """Stats of the spool in `directory`, read-only (safe while the agent runs); None when
    there is no spool file yet. Raises sqlite3.Error when the file cannot be read."""
    path = directory / DB_NAME
    if not path.exists():
        return None
    conn = open_read_only(path)
    try:
        return collect_stats(conn, path)
    finally:
        conn.close()
