"""The spool's worker side: everything here runs on the one thread that owns the SQLite
connection (`sqlite.SqliteSpool` is its async face).

Durability (see docs/spool.md): WAL with `synchronous=NORMAL`, every append committed in
its own `BEGIN IMMEDIATE` transaction (kill -9 loses nothing handed over), and `flush()`
commits a marker with `synchronous=FULL`, whose fsync of the WAL covers every earlier
frame (the power-loss window is one flush interval). After an I/O or fsync error nothing
written since the last good flush is trusted: the connection is reopened and those rows
are written again from memory (PostgreSQL "fsyncgate").
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import msgspec

from argus_telemetry.clock import Clock
from argus_telemetry.config.model import SpoolConfig
from argus_telemetry.errors import SpoolError
from argus_telemetry.spool import database, retention
from argus_telemetry.spool.base import SpoolRecord, SpoolStats
from argus_telemetry.spool.caps import enforce_caps
from argus_telemetry.spool.counts import Counts
from argus_telemetry.spool.database import Row, StorageError, classify, rollback, row_values
from argus_telemetry.spool.recovery import open_checked
from argus_telemetry.spool.state import SEQ_RESERVE, read_state, write_state
from argus_telemetry.spool.stats import collect_stats, empty_stats
from argus_telemetry.spool.verify import DB_NAME, row_crc

log = logging.getLogger(__name__)

UNSYNCED_MAX = 10_000  # rows kept in memory since the last good fsync (to rewrite them)

FaultHook = Callable[[str], None]
"""Test seam: called with "append" or "flush" just before the commit; may raise OSError
(e.g. ENOSPC) or sqlite3.Error to inject a storage fault."""


class Store:
    """The spool on its worker thread: one connection, the counts, the failure episode."""

    def __init__(self, directory: Path, config: SpoolConfig, clock: Clock, faults: FaultHook | None) -> None:
        self.directory = directory
        self.path = directory / DB_NAME
        self.config = config
        self.clock = clock
        self.faults = faults
        self.budget = retention.plan_budget(int(config.max_bytes))
        self.conn: sqlite3.Connection | None = None
        self.counts = Counts()
        self.reserved_seq = 0
        self.unsynced: dict[int, Row] = {}  # appended since the last good fsync
        self.suspect = False  # an I/O error happened: rewrite `unsynced` before trusting
        self.failing: str | None = None  # the kind of the current failure episode
        self.episode_drops = 0

    # -- opening ---------------------------------------------------------------------

    def open(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise SpoolError(f"cannot create the spool folder {self.directory}: {exc.strerror}") from exc
        state = read_state(self.directory)
        self.reserved_seq = int(state.get("reserved_seq", 0))
        fresh = not self.path.exists()
        try:
            self._connect()
        except StorageError as exc:
            if exc.kind == "corrupt":
                raise SpoolError(f"a fresh spool at {self.path} failed its check: {exc.detail}") from exc
            self._fail(exc, drop_reason=None)  # retried on the next append
            return
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot open {self.path}: {exc}") from exc
        if fresh and self.reserved_seq > self.counts.high_water_seq:
            log.warning(
                "spool file missing, starting a fresh one",
                extra={"path": str(self.path), "seq_from": self.reserved_seq + 1},
            )
            self.counts.high_water_seq = self.reserved_seq
            self._write_meta_now()
        try:
            self._write_state(reserve=True)
        except OSError as exc:  # retried before the first append past the old reservation
            log.warning("spool state not written", extra={"error": str(exc)})

    def _connect(self) -> None:
        self.conn = open_checked(self.directory, self.config, self.budget, self.clock, self.counts)

    def _write_state(self, *, reserve: bool) -> None:
        """Persist the seq reservation (moved SEQ_RESERVE ahead when `reserve`) and row count."""
        counts = self.counts
        reserved = max(self.reserved_seq, counts.high_water_seq) + SEQ_RESERVE if reserve else self.reserved_seq
        write_state(self.directory, reserved_seq=reserved, rows=counts.rows)
        self.reserved_seq = reserved

    def _ensure_open(self) -> sqlite3.Connection:
        if self.conn is None:
            try:
                self._connect()
            except sqlite3.Error as exc:
                raise classify(exc) from exc
            if self.suspect:
                self._rewrite_unsynced()
        assert self.conn is not None
        return self.conn

    # -- writing -----------------------------------------------------------------------

    def _write_meta_now(self) -> None:
        if self.conn is None:
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.counts.persist(self.conn)
            self.conn.execute("COMMIT")
        except BaseException:
            rollback(self.conn)
            raise
        self.counts.committed()

    def append(self, row: Row, consumers: frozenset[str]) -> bool:
        seq = row[0]
        counts = self.counts
        try:
            conn = self._ensure_open()
            if seq > self.reserved_seq:
                self._write_state(reserve=True)
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT INTO snapshots (seq, wall, size, crc, snapshot, counters) VALUES (?, ?, ?, ?, ?, ?)",
                    row_values(row),
                )
                rows_before, hwm_before, pending_before = counts.rows, counts.high_water_seq, Counter(counts.pending)
                counts.rows += 1
                counts.high_water_seq = max(counts.high_water_seq, seq)
                try:
                    removed = self._enforce_caps(conn)
                    counts.persist(conn)
                    if self.faults is not None:
                        self.faults("append")
                    conn.execute("COMMIT")
                except BaseException:
                    counts.rows, counts.high_water_seq, counts.pending = rows_before, hwm_before, pending_before
                    raise
            except BaseException:
                rollback(conn)
                raise
        except sqlite3.IntegrityError as exc:
            raise SpoolError(f"seq {seq} is already stored (seq must increase)") from exc
        except (OSError, sqlite3.Error, StorageError) as exc:
            counts.pending["disk_full"] += 1
            self._fail(exc if isinstance(exc, StorageError) else classify(exc), drop_reason="disk_full")
            return False
        counts.committed()
        for gone in removed:
            self.unsynced.pop(gone, None)
        self.unsynced[seq] = row
        if len(self.unsynced) > UNSYNCED_MAX:
            del self.unsynced[next(iter(self.unsynced))]
        self._recovered()
        return True

    def _enforce_caps(self, conn: sqlite3.Connection) -> list[int]:
        """Inside the append transaction: apply the caps and count what they dropped.
        Returns the seqs removed."""
        cutoff = retention.age_cutoff(self.clock.wall(), float(self.config.max_age))
        removed: list[int] = []
        for reason, seqs in enforce_caps(conn, self.budget, cutoff):
            self.counts.rows -= len(seqs)
            self.counts.pending[reason] += len(seqs)
            removed.extend(seqs)
        return removed

    def flush(self) -> None:
        try:
            conn = self._ensure_open()
            if self.suspect:
                self._rewrite_unsynced()
            self._full_commit(conn)
        except (OSError, sqlite3.Error, StorageError) as exc:
            failure = exc if isinstance(exc, StorageError) else classify(exc)
            if failure.kind == "full" and self.conn is not None and not self.suspect:
                # Nothing new fits, but what is in the WAL can still be made durable.
                try:
                    database.fsync_files(self.directory)
                except OSError as fsync_exc:
                    failure = classify(fsync_exc)
                else:
                    self.unsynced.clear()
            self._fail(failure, drop_reason=None)
            return
        self.unsynced.clear()
        if self.config.wipe:
            database.checkpoint_truncate(conn)
        with contextlib.suppress(OSError):
            self._write_state(reserve=False)
        self._recovered()

    def _full_commit(self, conn: sqlite3.Connection) -> None:
        """A commit with synchronous=FULL: its fsync of the WAL covers every earlier frame."""
        with database.synchronous_full(conn):
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'flushes'")
                self.counts.persist(conn)
                if self.faults is not None:
                    self.faults("flush")
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                raise
        self.counts.committed()

    def _rewrite_unsynced(self) -> None:
        """After an I/O error, write every row since the last good fsync again, as new
        frames, and make them durable before trusting the file."""
        conn = self.conn
        assert conn is not None
        with database.synchronous_full(conn):
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT OR REPLACE INTO snapshots (seq, wall, size, crc, snapshot, counters)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [row_values(row) for row in self.unsynced.values()],
                )
                self.counts.rows = int(conn.execute("SELECT count(*) FROM snapshots").fetchone()[0])
                self.counts.persist(conn)
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                raise
        self.counts.committed()
        log.warning("spool rewrote rows after an I/O error", extra={"rows": len(self.unsynced)})
        self.unsynced.clear()
        self.suspect = False

    def _fail(self, failure: StorageError, *, drop_reason: str | None) -> None:
        if drop_reason is not None:
            self.episode_drops += 1
        if self.failing != failure.kind:
            log.error(
                "spool cannot store",
                extra={"problem": failure.kind, "error": failure.detail, "path": str(self.path)},
            )
            self.failing = failure.kind
        if failure.kind in ("io", "corrupt"):
            # fsyncgate: pages since the last good fsync may be gone even if the next fsync
            # succeeds. Drop the connection; the next call reopens, re-checks (quarantining
            # a corrupt file) and rewrites what was appended since from memory.
            self.suspect = True
            if self.conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.close()
                self.conn = None

    def _recovered(self) -> None:
        if self.failing is not None:
            log.warning(
                "spool recovered",
                extra={"problem": self.failing, "not_stored": self.episode_drops, "path": str(self.path)},
            )
            self.failing = None
            self.episode_drops = 0

    # -- reading and acking --------------------------------------------------------------

    def read_after(self, consumer: str, limit: int) -> list[SpoolRecord]:
        after = self.counts.cursors.get(consumer, 0)
        try:
            conn = self._ensure_open()
            fetched = conn.execute(
                "SELECT seq, wall, crc, snapshot, counters FROM snapshots WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        except (OSError, sqlite3.Error, StorageError) as exc:
            self._fail(exc if isinstance(exc, StorageError) else classify(exc), drop_reason=None)
            return []
        records: list[SpoolRecord] = []
        bad: list[int] = []
        for seq, wall, crc, snapshot, counters in fetched:
            if crc != row_crc(seq, wall, snapshot, counters):
                bad.append(int(seq))
                continue
            records.append(SpoolRecord(seq=seq, wall=wall, snapshot_json=snapshot, counters=counters))
        if bad:
            self._remove_bad(conn, bad)
        return records

    def _remove_bad(self, conn: sqlite3.Connection, seqs: list[int]) -> None:
        log.error("spool rows failed their CRC, dropped", extra={"seqs": ",".join(map(str, seqs))})
        counts = self.counts
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("DELETE FROM snapshots WHERE seq = ?", [(s,) for s in seqs])
                counts.rows -= len(seqs)
                counts.pending["corrupt"] += len(seqs)
                counts.persist(conn)
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                raise
        except sqlite3.Error as exc:
            counts.rows += len(seqs)
            counts.pending["corrupt"] -= len(seqs)
            self._fail(classify(exc), drop_reason=None)
            return
        counts.committed()

    def ack(self, consumer: str, seq: int, consumers: frozenset[str]) -> None:
        counts = self.counts
        if seq <= counts.cursors.get(consumer, 0):
            return
        counts.cursors[consumer] = seq  # in memory at once: no re-send within this run
        floor = min((counts.cursors.get(c, 0) for c in consumers), default=0) if consumers else 0
        try:
            conn = self._ensure_open()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?)", (consumer, seq))
                deleted = conn.execute("DELETE FROM snapshots WHERE seq <= ?", (floor,)).rowcount
                rows_before = counts.rows
                counts.rows -= max(0, deleted)
                try:
                    counts.persist(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    counts.rows = rows_before
                    raise
            except BaseException:
                rollback(conn)
                raise
        except (OSError, sqlite3.Error, StorageError) as exc:
            # The cursor stays in memory and is written with the next ack; a restart
            # before that re-delivers (at least once), never skips.
            self._fail(exc if isinstance(exc, StorageError) else classify(exc), drop_reason=None)
            return
        counts.committed()
        for gone in [s for s in self.unsynced if s <= floor]:
            del self.unsynced[gone]

    def count_drop(self, reason: str, count: int) -> None:
        self.counts.pending[reason] += count
        try:
            self._write_meta_now()
        except sqlite3.Error as exc:
            self._fail(classify(exc), drop_reason=None)  # stays pending, persisted later

    def latest(self) -> SpoolRecord | None:
        try:
            conn = self._ensure_open()
            for seq, wall, crc, snapshot, counters in conn.execute(
                "SELECT seq, wall, crc, snapshot, counters FROM snapshots ORDER BY seq DESC LIMIT 8"
            ):
                if crc == row_crc(seq, wall, snapshot, counters):
                    return SpoolRecord(seq=seq, wall=wall, snapshot_json=snapshot, counters=counters)
        except (OSError, sqlite3.Error, StorageError) as exc:
            self._fail(exc if isinstance(exc, StorageError) else classify(exc), drop_reason=None)
        return None

    def stats(self, consumers: frozenset[str]) -> SpoolStats:
        counts = self.counts
        dropped = counts.totals()
        if self.conn is None:
            return empty_stats(self.path, counts.high_water_seq, dropped, consumers)
        try:
            stats = collect_stats(self.conn, self.path, consumers=consumers, cursors=counts.cursors)
        except sqlite3.Error as exc:
            self._fail(classify(exc), drop_reason=None)
            return empty_stats(self.path, counts.high_water_seq, dropped, consumers)
        return msgspec.structs.replace(stats, high_water_seq=counts.high_water_seq, dropped=dropped)

    def close(self) -> None:
        self.flush()
        if self.conn is not None:
            database.checkpoint_truncate(self.conn)
            self.conn.close()
            self.conn = None
