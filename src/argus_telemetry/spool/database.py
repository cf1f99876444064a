"""The spool database itself: its schema and pragmas, the check of an existing file, the
transaction helpers, and sorting SQLite and OS failures into full, io or corrupt.

Everything here is stateless and runs on the spool's worker thread (see `store.py`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from argus_telemetry.config.model import SpoolConfig
from argus_telemetry.spool import retention
from argus_telemetry.spool.base import DROP_REASONS
from argus_telemetry.spool.verify import DB_NAME, SCHEMA_VERSION, check_connection, row_crc

log = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY, wall REAL NOT NULL,"
    " size INTEGER NOT NULL, crc INTEGER NOT NULL, snapshot BLOB NOT NULL, counters BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS snapshots_wall ON snapshots (wall)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cursors (consumer TEXT PRIMARY KEY, acked_seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS drops (reason TEXT PRIMARY KEY, count INTEGER NOT NULL)",
)

Row = tuple[int, float, bytes, bytes]
"""One snapshot as handed to the spool: seq, wall, snapshot JSON, counters."""


class StorageError(Exception):
    """A classified storage failure inside the worker: kind is full, io or corrupt."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(kind, detail)
        self.kind = kind
        self.detail = detail


def classify(exc: BaseException) -> StorageError:
    """`exc` (an OSError or sqlite3.Error) as a StorageError: ENOSPC/EDQUOT/SQLITE_FULL
    are full, SQLITE_CORRUPT/NOTADB corrupt, anything else io."""
    if isinstance(exc, OSError):
        kind = "full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "io"
        return StorageError(kind, str(exc))
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return StorageError("full", str(exc))
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StorageError("corrupt", str(exc))
    return StorageError("io", f"{getattr(exc, 'sqlite_errorname', type(exc).__name__)}: {exc}")


def check_existing(path: Path) -> str | None:
    """What is wrong with the database at `path`, or None when it is healthy or absent."""
    if not path.exists():
        return None
    try:
        if path.stat().st_size == 0:
            return "the file is empty (zero length)"
        conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    except (OSError, sqlite3.Error) as exc:
        return f"cannot open: {exc}"
    try:
        problems = check_connection(conn)
    except sqlite3.Error as exc:
        problems = [str(exc)]
    finally:
        conn.close()
    return "; ".join(problems) if problems else None


def connect(path: Path, config: SpoolConfig, budget: retention.Budget) -> sqlite3.Connection:
    """A connection in WAL mode with the spool's pragmas; raises StorageError."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    except sqlite3.Error as exc:
        raise classify(exc) from exc
    try:
        conn.execute(f"PRAGMA page_size = {retention.PAGE_SIZE}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StorageError("io", f"journal_mode is {mode}, not wal")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA secure_delete = {'ON' if config.wipe else 'OFF'}")
        # With wipe the WAL is cut to zero whenever it restarts, not just kept below the budget.
        conn.execute(f"PRAGMA journal_size_limit = {0 if config.wipe else budget.wal_bytes}")
        conn.execute(f"PRAGMA wal_autocheckpoint = {budget.autocheckpoint_pages}")
    except sqlite3.Error as exc:
        conn.close()
        raise classify(exc) from exc
    except StorageError:
        conn.close()
        raise
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the tables and their first rows when missing (one transaction)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('high_water_seq', 0), ('rows', 0), ('flushes', 0)")
        conn.executemany("INSERT OR IGNORE INTO drops VALUES (?, 0)", [(r,) for r in DROP_REASONS])
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any; errors are moot (the caller raises)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


@contextlib.contextmanager
def synchronous_full(conn: sqlite3.Connection) -> Iterator[None]:
    """Commits inside are made with synchronous=FULL: the fsync of the WAL covers every
    earlier frame. NORMAL is restored after, whatever happened."""
    conn.execute("PRAGMA synchronous = FULL")
    try:
        yield
    finally:
        conn.execute("PRAGMA synchronous = NORMAL")


def row_values(row: Row) -> tuple[int, float, int, int, bytes, bytes]:
    """The columns of the snapshots table for `row`: seq, wall, size, crc, snapshot, counters."""
    seq, wall, snapshot, counters = row
    return (
        seq,
        wall,
        retention.row_bytes(snapshot, counters),
        row_crc(seq, wall, snapshot, counters),
        snapshot,
        counters,
    )


def fsync_files(directory: Path) -> None:
    """fsync the WAL and the database file in `directory` (those that exist)."""
    for name in (DB_NAME + "-wal", DB_NAME):
        path = directory / name
        if path.exists():
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)


def checkpoint_truncate(conn: sqlite3.Connection) -> None:
    """Checkpoint and cut the WAL to zero; a failure or a busy reader is logged, not raised."""
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        log.warning("spool checkpoint failed", extra={"error": str(exc)})
        return
    if busy:
        log.info("spool checkpoint deferred: a reader holds the WAL")
