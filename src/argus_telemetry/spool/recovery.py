"""Opening the spool database, checked: a corrupt or unreadable file is moved to
`quarantine/`, what can still be read is salvaged into a fresh file, and what was lost
is counted as `corrupt` drops (the sidecar state file knows how many rows there were)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from argus_telemetry.clock import Clock
from argus_telemetry.config.model import SpoolConfig
from argus_telemetry.spool import database, retention
from argus_telemetry.spool.counts import Counts
from argus_telemetry.spool.state import read_state
from argus_telemetry.spool.verify import DB_NAME, Salvage, quarantine, salvage

log = logging.getLogger(__name__)


def open_checked(
    directory: Path, config: SpoolConfig, budget: retention.Budget, clock: Clock, counts: Counts
) -> sqlite3.Connection:
    """Open `<directory>/spool.db` and load `counts` from it; a bad file is quarantined
    and replaced by a fresh one holding the salvage. Raises StorageError."""
    path = directory / DB_NAME
    problem = database.check_existing(path)
    if problem is not None:
        return _recover_corrupt(directory, config, budget, clock, counts, problem=problem)
    conn = database.connect(path, config, budget)
    try:
        database.create_schema(conn)
        counts.load(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise database.classify(exc) from exc
    return conn


def _recover_corrupt(
    directory: Path, config: SpoolConfig, budget: retention.Budget, clock: Clock, counts: Counts, *, problem: str
) -> sqlite3.Connection:
    path = directory / DB_NAME
    state = read_state(directory)
    folder = quarantine(directory, problem, clock.wall())
    log.error(
        "spool corrupt, moved to quarantine",
        extra={"path": str(path), "problem": problem, "quarantine": str(folder)},
    )
    found = salvage(folder)
    conn = database.connect(path, config, budget)
    try:
        database.create_schema(conn)
        counts.load(conn)
        lost = _restore(conn, found, state, counts)
    except sqlite3.Error as exc:
        conn.close()
        raise database.classify(exc) from exc
    log.error(
        "spool restarted fresh",
        extra={"salvaged": len(found.rows), "lost": lost, "seq_from": counts.high_water_seq + 1},
    )
    return conn


def _restore(conn: sqlite3.Connection, found: Salvage, state: dict[str, int], counts: Counts) -> int:
    """Write the salvage into the fresh database; return the rows counted as lost."""
    salvaged_max = found.rows[-1][0] if found.rows else 0
    if found.high_water_seq is not None:
        hwm = max(found.high_water_seq, salvaged_max)
    else:
        hwm = max(salvaged_max, int(state.get("reserved_seq", 0)))
    known = found.known_rows if found.known_rows is not None else int(state.get("rows", 0))
    lost = max(known - len(found.rows), found.bad_rows, 0)
    for reason, count in found.dropped.items():
        if reason in counts.dropped:
            counts.pending[reason] += count
    counts.pending["corrupt"] += lost
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(
            "INSERT INTO snapshots (seq, wall, size, crc, snapshot, counters) VALUES (?, ?, ?, ?, ?, ?)",
            [database.row_values(row) for row in found.rows],
        )
        conn.executemany("INSERT OR REPLACE INTO cursors VALUES (?, ?)", list(found.cursors.items()))
        counts.high_water_seq = hwm
        counts.rows = len(found.rows)
        counts.persist(conn)
        conn.execute("COMMIT")
    except BaseException:
        database.rollback(conn)
        raise
    counts.cursors = dict(found.cursors)
    return lost
