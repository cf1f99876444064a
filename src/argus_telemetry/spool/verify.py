"""Integrity of the spool file: the checks run at open and by `argus spool verify`, moving
a bad file to `Logs/quarantine/<time>/`, and salvaging the rows that can still be read.

Nothing here deletes a spool file: a bad one is moved aside with a note saying why.
"""

from __future__ import annotations

import contextlib
import sqlite3
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

DB_NAME = "spool.db"
SIDE_FILES = ("-wal", "-shm")  # SQLite's companions of DB_NAME, moved with it
QUARANTINE = "quarantine"
SCHEMA_VERSION = 1
TABLES = ("snapshots", "meta", "cursors", "drops")


def row_crc(seq: int, wall: float, snapshot_json: bytes, counters: bytes) -> int:
    """CRC-32 of one row: SQLite checks its pages, not the bytes inside a row, so a
    flipped bit in a payload would otherwise be delivered."""
    crc = zlib.crc32(struct.pack("<qd", seq, wall))
    crc = zlib.crc32(snapshot_json, crc)
    return zlib.crc32(counters, crc)


def check_connection(conn: sqlite3.Connection, *, thorough: bool = False) -> list[str]:
    """Problems found in an open spool database: `quick_check` (or the slower
    `integrity_check` when `thorough`), then the schema version and tables. An empty
    list means healthy; a database without tables and version 0 is healthy too (new)."""
    pragma = "integrity_check" if thorough else "quick_check"
    lines = [str(row[0]) for row in conn.execute(f"PRAGMA {pragma}(20)")]
    if lines != ["ok"]:
        return [f"{pragma}: {line}" for line in lines]
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    names = {str(row[0]) for row in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    if version == 0 and not names:
        return []
    if version != SCHEMA_VERSION:
        return [f"schema version {version} is not {SCHEMA_VERSION}"]
    return [f"table {name} is missing" for name in TABLES if name not in names]


def bad_rows(conn: sqlite3.Connection) -> list[int]:
    """Seqs whose stored CRC does not match their content (whole table scan)."""
    found: list[int] = []
    for seq, wall, crc, snapshot, counters in conn.execute(
        "SELECT seq, wall, crc, snapshot, counters FROM snapshots ORDER BY seq"
    ):
        if not _row_ok(seq, wall, crc, snapshot, counters):
            found.append(int(seq))
    return found


def _row_ok(seq: object, wall: object, crc: object, snapshot: object, counters: object) -> bool:
    return (
        isinstance(seq, int)
        and isinstance(wall, float)
        and isinstance(snapshot, bytes)
        and isinstance(counters, bytes)
        and crc == row_crc(seq, wall, snapshot, counters)
    )


@dataclass
class VerifyReport:
    """What `argus spool verify` found."""

    path: str
    exists: bool
    problems: list[str] = field(default_factory=list)
    rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_spool(directory: Path) -> VerifyReport:
    """Run `integrity_check`, the schema check and a CRC scan of every row on the spool in
    `directory`, read-only (safe while the agent runs)."""
    path = directory / DB_NAME
    report = VerifyReport(path=str(path), exists=path.exists())
    if not report.exists:
        return report
    if path.stat().st_size == 0:
        report.problems.append("the file is empty (zero length)")
        return report
    try:
        conn = open_read_only(path)
    except sqlite3.Error as exc:
        report.problems.append(f"cannot open: {exc}")
        return report
    try:
        report.problems.extend(check_connection(conn, thorough=True))
        if not report.problems and "snapshots" in _tables(conn):
            report.rows = int(conn.execute("SELECT count(*) FROM snapshots").fetchone()[0])
            report.problems.extend(f"row seq={seq}: content does not match its CRC" for seq in bad_rows(conn))
    except sqlite3.Error as exc:
        report.problems.append(f"read failed: {exc}")
    finally:
        conn.close()
    return report


def open_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection that never creates, checkpoints or deletes a file."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=5.0)
    conn.execute("PRAGMA query_only = ON")
    return conn


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {str(row[0]) for row in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}


def quarantine(directory: Path, reason: str, wall: float) -> Path:
    """Move the spool file and its -wal/-shm to `quarantine/<UTC time>/` beside them,
    with `REASON.txt`; return that folder."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(wall))
    root = directory / QUARANTINE
    target = root / stamp
    suffix = 1
    while target.exists():
        target = root / f"{stamp}-{suffix}"
        suffix += 1
    target.mkdir(parents=True, mode=0o700)
    for name in (DB_NAME, *(DB_NAME + side for side in SIDE_FILES)):
        source = directory / name
        if source.exists():
            source.replace(target / name)
    (target / "REASON.txt").write_text(f"{reason}\n", encoding="utf-8")
    return target


@dataclass
class Salvage:
    """What could be read back from a quarantined spool."""

    rows: list[tuple[int, float, bytes, bytes]] = field(default_factory=list)
    high_water_seq: int | None = None
    known_rows: int | None = None  # the row count the file itself recorded, if readable
    cursors: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    bad_rows: int = 0  # rows read back whose CRC or types were wrong


def salvage(quarantined: Path) -> Salvage:
    """Read what can be read from a quarantined spool folder. Works on a scratch copy (so
    SQLite's WAL recovery never changes the evidence); never raises for bad content."""
    result = Salvage()
    db = quarantined / DB_NAME
    if not db.exists() or db.stat().st_size == 0:
        return result
    # shutil and tempfile pull in bz2, lzma and random (~1 MiB RSS): import them only here,
    # on the rare recovery path, not in every agent.
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(dir=quarantined, prefix="salvage-") as scratch:
        copy = Path(scratch) / DB_NAME
        shutil.copyfile(db, copy)
        wal = quarantined / (DB_NAME + "-wal")
        if wal.exists():
            shutil.copyfile(wal, Path(scratch) / (DB_NAME + "-wal"))
        try:
            conn = sqlite3.connect(copy, isolation_level=None)
        except sqlite3.Error:
            return result
        try:
            _salvage_from(conn, result)
        finally:
            conn.close()
    return result


def _salvage_from(conn: sqlite3.Connection, result: Salvage) -> None:
    with contextlib.suppress(sqlite3.Error):
        for key, value in conn.execute("SELECT key, value FROM meta"):
            if key == "high_water_seq" and isinstance(value, int):
                result.high_water_seq = value
            elif key == "rows" and isinstance(value, int):
                result.known_rows = value
    with contextlib.suppress(sqlite3.Error):
        for consumer, acked in conn.execute("SELECT consumer, acked_seq FROM cursors"):
            if isinstance(consumer, str) and isinstance(acked, int):
                result.cursors[consumer] = acked
    with contextlib.suppress(sqlite3.Error):
        for reason, count in conn.execute("SELECT reason, count FROM drops"):
            if isinstance(reason, str) and isinstance(count, int) and count >= 0:
                result.dropped[reason] = count
    found: dict[int, tuple[int, float, bytes, bytes]] = {}
    # Forward from the start until the first unreadable page, then backward from the end
    # until we meet it: a single bad page costs only the rows on it.
    last_forward = _scan(conn, found, result, where="seq > ? ORDER BY seq", start=-(2**63))
    _scan(conn, found, result, where="seq < ? ORDER BY seq DESC", start=2**63 - 1, stop_at=last_forward)
    result.rows = [found[seq] for seq in sorted(found)]


def _scan(
    conn: sqlite3.Connection,
    found: dict[int, tuple[int, float, bytes, bytes]],
    result: Salvage,
    *,
    where: str,
    start: int,
    stop_at: int | None = None,
) -> int | None:
    """Read rows one by one in the given direction until the first unreadable page (or
    `stop_at`); return the last seq reached."""
    last: int | None = None
    query = f"SELECT seq, wall, crc, snapshot, counters FROM snapshots WHERE {where}"  # noqa: S608 (fixed text)
    try:
        for seq, wall, crc, snapshot, counters in conn.execute(query, (start,)):
            if stop_at is not None and seq <= stop_at:
                break
            last = seq
            if seq in found:
                continue
            if _row_ok(seq, wall, crc, snapshot, counters):
                found[seq] = (seq, wall, snapshot, counters)
            else:
                result.bad_rows += 1
    except sqlite3.Error:
        pass
    return last
