"""The SQLite spool: one worker thread owns the connection; `SqliteSpool` is its async face.

Durability (see docs/spool.md): WAL with `synchronous=NORMAL`, every append committed in
its own `BEGIN IMMEDIATE` transaction (kill -9 loses nothing handed over), and `flush()`
commits a marker with `synchronous=FULL`, whose fsync of the WAL covers every earlier
frame (the power-loss window is one flush interval). After an I/O or fsync error nothing
written since the last good flush is trusted: the connection is reopened and those rows
are written again from memory (PostgreSQL "fsyncgate").
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import sqlite3
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import msgspec

from argus_telemetry.clock import Clock
from argus_telemetry.config.model import SpoolConfig
from argus_telemetry.errors import SpoolError
from argus_telemetry.spool import retention
from argus_telemetry.spool.base import DROP_REASONS, SpoolRecord, SpoolStats
from argus_telemetry.spool.verify import (
    DB_NAME,
    SCHEMA_VERSION,
    Salvage,
    check_connection,
    open_read_only,
    quarantine,
    row_crc,
    salvage,
)

log = logging.getLogger(__name__)

STATE_NAME = "spool.state"  # sidecar: seq reservation and row count, for a lost database
SEQ_RESERVE = 1000  # seqs reserved ahead in the sidecar, so a lost database never reuses one
UNSYNCED_MAX = 10_000  # rows kept in memory since the last good fsync (to rewrite them)
CAP_BATCH = 64

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY, wall REAL NOT NULL,"
    " size INTEGER NOT NULL, crc INTEGER NOT NULL, snapshot BLOB NOT NULL, counters BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS snapshots_wall ON snapshots (wall)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cursors (consumer TEXT PRIMARY KEY, acked_seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS drops (reason TEXT PRIMARY KEY, count INTEGER NOT NULL)",
)

FaultHook = Callable[[str], None]
"""Test seam: called with "append" or "flush" just before the commit; may raise OSError
(e.g. ENOSPC) or sqlite3.Error to inject a storage fault."""

_T = TypeVar("_T")
Row = tuple[int, float, bytes, bytes]


class SqliteSpool:
    """The durable spool of the agent (the `Spool` protocol). Create with `open()`."""

    def __init__(self, store: _Store, executor: ThreadPoolExecutor) -> None:
        self._store = store
        self._executor = executor
        self._next_seq = store.high_water_seq + 1
        self._consumers: frozenset[str] = frozenset()
        self._closed = False

    @classmethod
    async def open(
        cls, directory: Path, config: SpoolConfig, clock: Clock, *, faults: FaultHook | None = None
    ) -> SqliteSpool:
        """Open (or create) `<directory>/spool.db`. A corrupt or unreadable file is moved
        to `quarantine/`, salvaged and counted; only an unusable directory raises SpoolError."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argus-spool")
        store = _Store(directory, config, clock, faults)
        try:
            await asyncio.get_running_loop().run_in_executor(executor, store.open)
        except BaseException:
            executor.shutdown(wait=True)
            raise
        return cls(store, executor)

    async def _call(self, function: Callable[[], _T]) -> _T:
        if self._closed:
            raise SpoolError("the spool is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    def next_seq(self) -> int:
        return self._next_seq

    async def append(self, seq: int, wall: float, snapshot_json: bytes, counters: bytes) -> bool:
        # The seq is spent even if the row cannot be stored: listeners saw it.
        self._next_seq = max(self._next_seq, seq + 1)
        return await self._call(partial(self._store.append, (seq, wall, snapshot_json, counters), self._consumers))

    async def flush(self) -> None:
        await self._call(self._store.flush)

    def register(self, consumer: str) -> None:
        self._consumers = self._consumers | {consumer}

    async def read_after(self, consumer: str, limit: int) -> list[SpoolRecord]:
        return await self._call(partial(self._store.read_after, consumer, limit))

    async def ack(self, consumer: str, seq: int) -> None:
        await self._call(partial(self._store.ack, consumer, seq, self._consumers))

    async def count_drop(self, reason: str, count: int) -> None:
        if reason not in DROP_REASONS:
            raise ValueError(f"unknown drop reason {reason!r}; expected one of {', '.join(DROP_REASONS)}")
        await self._call(partial(self._store.count_drop, reason, count))

    async def latest(self) -> SpoolRecord | None:
        return await self._call(self._store.latest)

    async def stats(self) -> SpoolStats:
        return await self._call(partial(self._store.stats, self._consumers))

    async def close(self) -> None:
        if self._closed:
            return
        try:
            await self._call(self._store.close)
        finally:
            self._closed = True
            self._executor.shutdown(wait=True)


class _StorageError(Exception):
    """A classified storage failure inside the worker: kind is full, io or corrupt."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(kind, detail)
        self.kind = kind
        self.detail = detail


def _classify(exc: BaseException) -> _StorageError:
    if isinstance(exc, OSError):
        kind = "full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "io"
        return _StorageError(kind, str(exc))
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return _StorageError("full", str(exc))
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return _StorageError("corrupt", str(exc))
    return _StorageError("io", f"{getattr(exc, 'sqlite_errorname', type(exc).__name__)}: {exc}")


class _Store:
    """Everything below runs on the spool's one worker thread."""

    def __init__(self, directory: Path, config: SpoolConfig, clock: Clock, faults: FaultHook | None) -> None:
        self.directory = directory
        self.path = directory / DB_NAME
        self.config = config
        self.clock = clock
        self.faults = faults
        self.budget = retention.plan_budget(int(config.max_bytes))
        self.conn: sqlite3.Connection | None = None
        self.high_water_seq = 0
        self.rows = 0
        self.reserved_seq = 0
        self.cursors: dict[str, int] = {}
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)  # persisted
        self.pending: Counter[str] = Counter()  # counted, not yet persisted
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
        state = self._read_state()
        self.reserved_seq = int(state.get("reserved_seq", 0))
        fresh = not self.path.exists()
        try:
            self._connect()
        except _StorageError as exc:
            if exc.kind == "corrupt":
                raise SpoolError(f"a fresh spool at {self.path} failed its check: {exc.detail}") from exc
            self._fail(exc, drop_reason=None)  # retried on the next append
            return
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot open {self.path}: {exc}") from exc
        if fresh and self.reserved_seq > self.high_water_seq:
            log.warning(
                "spool file missing, starting a fresh one",
                extra={"path": str(self.path), "seq_from": self.reserved_seq + 1},
            )
            self.high_water_seq = self.reserved_seq
            self._write_meta_now()
        try:
            self._write_state(reserve=True)
        except OSError as exc:  # retried before the first append past the old reservation
            log.warning("spool state not written", extra={"error": str(exc)})

    def _connect(self) -> None:
        """Open the database, checked; a bad one is quarantined and replaced."""
        problem = self._check_existing()
        if problem is not None:
            self._recover_corrupt(problem, self._read_state())
            return
        conn = self._new_connection()
        try:
            self._create_schema(conn)
            self._load(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise _classify(exc) from exc
        self.conn = conn

    def _check_existing(self) -> str | None:
        if not self.path.exists():
            return None
        try:
            if self.path.stat().st_size == 0:
                return "the file is empty (zero length)"
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        except (OSError, sqlite3.Error) as exc:
            return f"cannot open: {exc}"
        try:
            problems = check_connection(conn)
        except sqlite3.Error as exc:
            problems = [str(exc)]
        finally:
            conn.close()
        return "; ".join(problems) if problems else None

    def _new_connection(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        except sqlite3.Error as exc:
            raise _classify(exc) from exc
        try:
            conn.execute(f"PRAGMA page_size = {retention.PAGE_SIZE}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise _StorageError("io", f"journal_mode is {mode}, not wal")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA secure_delete = {'ON' if self.config.wipe else 'OFF'}")
            # With wipe the WAL is cut to zero whenever it restarts, not just kept below the budget.
            conn.execute(f"PRAGMA journal_size_limit = {0 if self.config.wipe else self.budget.wal_bytes}")
            conn.execute(f"PRAGMA wal_autocheckpoint = {self.budget.autocheckpoint_pages}")
        except sqlite3.Error as exc:
            conn.close()
            raise _classify(exc) from exc
        except _StorageError:
            conn.close()
            raise
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('high_water_seq', 0), ('rows', 0), ('flushes', 0)")
            conn.executemany("INSERT OR IGNORE INTO drops VALUES (?, 0)", [(r,) for r in DROP_REASONS])
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def _load(self, conn: sqlite3.Connection) -> None:
        meta = {str(k): int(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        self.high_water_seq = max(self.high_water_seq, meta["high_water_seq"])
        self.rows = int(conn.execute("SELECT count(*) FROM snapshots").fetchone()[0])
        self.cursors = {str(c): int(s) for c, s in conn.execute("SELECT consumer, acked_seq FROM cursors")}
        for reason, count in conn.execute("SELECT reason, count FROM drops"):
            self.dropped[str(reason)] = int(count)

    def _recover_corrupt(self, problem: str, state: dict[str, int]) -> None:
        folder = quarantine(self.directory, problem, self.clock.wall())
        log.error(
            "spool corrupt, moved to quarantine",
            extra={"path": str(self.path), "problem": problem, "quarantine": str(folder)},
        )
        found = salvage(folder)
        conn = self._new_connection()
        try:
            self._create_schema(conn)
            self._load(conn)
            lost = self._restore(conn, found, state)
        except sqlite3.Error as exc:
            conn.close()
            raise _classify(exc) from exc
        self.conn = conn
        log.error(
            "spool restarted fresh",
            extra={"salvaged": len(found.rows), "lost": lost, "seq_from": self.high_water_seq + 1},
        )

    def _restore(self, conn: sqlite3.Connection, found: Salvage, state: dict[str, int]) -> int:
        """Write the salvage into the fresh database; return the rows counted as lost."""
        salvaged_max = found.rows[-1][0] if found.rows else 0
        if found.high_water_seq is not None:
            hwm = max(found.high_water_seq, salvaged_max)
        else:
            hwm = max(salvaged_max, int(state.get("reserved_seq", 0)))
        known = found.known_rows if found.known_rows is not None else int(state.get("rows", 0))
        lost = max(known - len(found.rows), found.bad_rows, 0)
        for reason, count in found.dropped.items():
            if reason in self.dropped:
                self.pending[reason] += count
        self.pending["corrupt"] += lost
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO snapshots (seq, wall, size, crc, snapshot, counters) VALUES (?, ?, ?, ?, ?, ?)",
                [_row_values(row) for row in found.rows],
            )
            conn.executemany("INSERT OR REPLACE INTO cursors VALUES (?, ?)", list(found.cursors.items()))
            self.high_water_seq = hwm
            self.rows = len(found.rows)
            self._persist_counts(conn)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        self.cursors = dict(found.cursors)
        return lost

    # -- the sidecar state file --------------------------------------------------------

    def _read_state(self) -> dict[str, int]:
        try:
            data = json.loads((self.directory / STATE_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool)}

    def _write_state(self, *, reserve: bool) -> None:
        """Persist the seq reservation and row count (tmp file, fsync, rename)."""
        reserved = max(self.reserved_seq, self.high_water_seq) + SEQ_RESERVE if reserve else self.reserved_seq
        body = json.dumps({"reserved_seq": reserved, "rows": self.rows}).encode()
        target = self.directory / STATE_NAME
        temporary = target.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(target)
        self.reserved_seq = reserved

    # -- writing -----------------------------------------------------------------------

    def _persist_counts(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: high-water mark, row count and pending drops."""
        conn.execute(
            "UPDATE meta SET value = CASE key WHEN 'high_water_seq' THEN ? ELSE ? END"
            " WHERE key IN ('high_water_seq', 'rows')",
            (self.high_water_seq, self.rows),
        )
        for reason, count in self.pending.items():
            if count:
                conn.execute("UPDATE drops SET count = count + ? WHERE reason = ?", (count, reason))

    def _committed(self) -> None:
        for reason, count in self.pending.items():
            self.dropped[reason] += count
        self.pending.clear()

    def _write_meta_now(self) -> None:
        if self.conn is None:
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self._persist_counts(self.conn)
            self.conn.execute("COMMIT")
        except BaseException:
            _rollback(self.conn)
            raise
        self._committed()

    def _ensure_open(self) -> sqlite3.Connection:
        if self.conn is None:
            try:
                self._connect()
            except sqlite3.Error as exc:
                raise _classify(exc) from exc
            if self.suspect:
                self._rewrite_unsynced()
        assert self.conn is not None
        return self.conn

    def append(self, row: Row, consumers: frozenset[str]) -> bool:
        seq = row[0]
        try:
            conn = self._ensure_open()
            if seq > self.reserved_seq:
                self._write_state(reserve=True)
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT INTO snapshots (seq, wall, size, crc, snapshot, counters) VALUES (?, ?, ?, ?, ?, ?)",
                    _row_values(row),
                )
                rows_before, hwm_before, pending_before = self.rows, self.high_water_seq, Counter(self.pending)
                self.rows += 1
                self.high_water_seq = max(self.high_water_seq, seq)
                try:
                    removed = self._enforce_caps(conn)
                    self._persist_counts(conn)
                    if self.faults is not None:
                        self.faults("append")
                    conn.execute("COMMIT")
                except BaseException:
                    self.rows, self.high_water_seq, self.pending = rows_before, hwm_before, pending_before
                    raise
            except BaseException:
                _rollback(conn)
                raise
        except sqlite3.IntegrityError as exc:
            raise SpoolError(f"seq {seq} is already stored (seq must increase)") from exc
        except (OSError, sqlite3.Error, _StorageError) as exc:
            self.pending["disk_full"] += 1
            self._fail(exc if isinstance(exc, _StorageError) else _classify(exc), drop_reason="disk_full")
            return False
        self._committed()
        for gone in removed:
            self.unsynced.pop(gone, None)
        self.unsynced[seq] = row
        if len(self.unsynced) > UNSYNCED_MAX:
            del self.unsynced[next(iter(self.unsynced))]
        self._recovered()
        return True

    def _enforce_caps(self, conn: sqlite3.Connection) -> list[int]:
        """Inside the append transaction: drop rows past max_age, then the oldest rows
        while the pages in use exceed the byte budget. Returns the seqs removed."""
        removed: list[int] = []
        cutoff = retention.age_cutoff(self.clock.wall(), float(self.config.max_age))
        if cutoff is not None:
            old = [int(s) for (s,) in conn.execute("SELECT seq FROM snapshots WHERE wall < ?", (cutoff,))]
            if old:
                conn.execute("DELETE FROM snapshots WHERE wall < ?", (cutoff,))
                self._dropped_rows(old, "max_age", removed)
        while True:
            page_count = int(conn.execute("PRAGMA page_count").fetchone()[0])
            free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
            excess = retention.excess_bytes(page_count - free, self.budget)
            if excess == 0:
                return removed
            oldest = conn.execute("SELECT seq, size FROM snapshots ORDER BY seq LIMIT ?", (CAP_BATCH,)).fetchall()
            count = retention.rows_to_free(excess, [int(size) for _, size in oldest])
            if count == 0:
                return removed
            last = int(oldest[count - 1][0])
            conn.execute("DELETE FROM snapshots WHERE seq <= ?", (last,))
            self._dropped_rows([int(s) for s, _ in oldest[:count]], "max_bytes", removed)

    def _dropped_rows(self, seqs: list[int], reason: str, removed: list[int]) -> None:
        self.rows -= len(seqs)
        self.pending[reason] += len(seqs)
        removed.extend(seqs)

    def flush(self) -> None:
        try:
            conn = self._ensure_open()
            if self.suspect:
                self._rewrite_unsynced()
            self._full_commit(conn)
        except (OSError, sqlite3.Error, _StorageError) as exc:
            failure = exc if isinstance(exc, _StorageError) else _classify(exc)
            if failure.kind == "full" and self.conn is not None and not self.suspect:
                # Nothing new fits, but what is in the WAL can still be made durable.
                try:
                    self._fsync_files()
                except OSError as fsync_exc:
                    failure = _classify(fsync_exc)
                else:
                    self.unsynced.clear()
            self._fail(failure, drop_reason=None)
            return
        self.unsynced.clear()
        if self.config.wipe:
            self._checkpoint_truncate(conn)
        with contextlib.suppress(OSError):
            self._write_state(reserve=False)
        self._recovered()

    def _full_commit(self, conn: sqlite3.Connection) -> None:
        """A commit with synchronous=FULL: its fsync of the WAL covers every earlier frame."""
        conn.execute("PRAGMA synchronous = FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'flushes'")
                self._persist_counts(conn)
                if self.faults is not None:
                    self.faults("flush")
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        finally:
            conn.execute("PRAGMA synchronous = NORMAL")
        self._committed()

    def _fsync_files(self) -> None:
        for name in (DB_NAME + "-wal", DB_NAME):
            path = self.directory / name
            if path.exists():
                descriptor = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)

    def _checkpoint_truncate(self, conn: sqlite3.Connection) -> None:
        try:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            log.warning("spool checkpoint failed", extra={"error": str(exc)})
            return
        if busy:
            log.info("spool checkpoint deferred: a reader holds the WAL")

    def _rewrite_unsynced(self) -> None:
        """After an I/O error, write every row since the last good fsync again, as new
        frames, and make them durable before trusting the file."""
        conn = self.conn
        assert conn is not None
        conn.execute("PRAGMA synchronous = FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT OR REPLACE INTO snapshots (seq, wall, size, crc, snapshot, counters)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [_row_values(row) for row in self.unsynced.values()],
                )
                self.rows = int(conn.execute("SELECT count(*) FROM snapshots").fetchone()[0])
                self._persist_counts(conn)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        finally:
            conn.execute("PRAGMA synchronous = NORMAL")
        self._committed()
        log.warning("spool rewrote rows after an I/O error", extra={"rows": len(self.unsynced)})
        self.unsynced.clear()
        self.suspect = False

    def _fail(self, failure: _StorageError, *, drop_reason: str | None) -> None:
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
        after = self.cursors.get(consumer, 0)
        try:
            conn = self._ensure_open()
            fetched = conn.execute(
                "SELECT seq, wall, crc, snapshot, counters FROM snapshots WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        except (OSError, sqlite3.Error, _StorageError) as exc:
            self._fail(exc if isinstance(exc, _StorageError) else _classify(exc), drop_reason=None)
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
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("DELETE FROM snapshots WHERE seq = ?", [(s,) for s in seqs])
                self.rows -= len(seqs)
                self.pending["corrupt"] += len(seqs)
                self._persist_counts(conn)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        except sqlite3.Error as exc:
            self.rows += len(seqs)
            self.pending["corrupt"] -= len(seqs)
            self._fail(_classify(exc), drop_reason=None)
            return
        self._committed()

    def ack(self, consumer: str, seq: int, consumers: frozenset[str]) -> None:
        if seq <= self.cursors.get(consumer, 0):
            return
        self.cursors[consumer] = seq  # in memory at once: no re-send within this run
        floor = min((self.cursors.get(c, 0) for c in consumers), default=0) if consumers else 0
        try:
            conn = self._ensure_open()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?)", (consumer, seq))
                deleted = conn.execute("DELETE FROM snapshots WHERE seq <= ?", (floor,)).rowcount
                rows_before = self.rows
                self.rows -= max(0, deleted)
                try:
                    self._persist_counts(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    self.rows = rows_before
                    raise
            except BaseException:
                _rollback(conn)
                raise
        except (OSError, sqlite3.Error, _StorageError) as exc:
            # The cursor stays in memory and is written with the next ack; a restart
            # before that re-delivers (at least once), never skips.
            self._fail(exc if isinstance(exc, _StorageError) else _classify(exc), drop_reason=None)
            return
        self._committed()
        for gone in [s for s in self.unsynced if s <= floor]:
            del self.unsynced[gone]

    def count_drop(self, reason: str, count: int) -> None:
        self.pending[reason] += count
        try:
            self._write_meta_now()
        except sqlite3.Error as exc:
            self._fail(_classify(exc), drop_reason=None)  # stays pending, persisted later

    def latest(self) -> SpoolRecord | None:
        try:
            conn = self._ensure_open()
            for seq, wall, crc, snapshot, counters in conn.execute(
                "SELECT seq, wall, crc, snapshot, counters FROM snapshots ORDER BY seq DESC LIMIT 8"
            ):
                if crc == row_crc(seq, wall, snapshot, counters):
                    return SpoolRecord(seq=seq, wall=wall, snapshot_json=snapshot, counters=counters)
        except (OSError, sqlite3.Error, _StorageError) as exc:
            self._fail(exc if isinstance(exc, _StorageError) else _classify(exc), drop_reason=None)
        return None

    def stats(self, consumers: frozenset[str]) -> SpoolStats:
        dropped = {reason: self.dropped[reason] + self.pending[reason] for reason in DROP_REASONS}
        if self.conn is None:
            return _empty_stats(self.path, self.high_water_seq, dropped, consumers)
        try:
            stats = collect_stats(self.conn, self.path, consumers=consumers, cursors=self.cursors)
        except sqlite3.Error as exc:
            self._fail(_classify(exc), drop_reason=None)
            return _empty_stats(self.path, self.high_water_seq, dropped, consumers)
        return msgspec.structs.replace(stats, high_water_seq=self.high_water_seq, dropped=dropped)

    def close(self) -> None:
        self.flush()
        if self.conn is not None:
            self._checkpoint_truncate(self.conn)
            self.conn.close()
            self.conn = None


def _row_values(row: Row) -> tuple[int, float, int, int, bytes, bytes]:
    seq, wall, snapshot, counters = row
    return (
        seq,
        wall,
        retention.row_bytes(snapshot, counters),
        row_crc(seq, wall, snapshot, counters),
        snapshot,
        counters,
    )


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _on_disk_bytes(path: Path) -> int:
    total = 0
    for name in (path.name, path.name + "-wal"):
        with contextlib.suppress(OSError):
            total += (path.parent / name).stat().st_size
    return total


def _empty_stats(path: Path, hwm: int, dropped: dict[str, int], consumers: frozenset[str]) -> SpoolStats:
    return SpoolStats(
        path=str(path),
        rows=0,
        bytes=_on_disk_bytes(path),
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
        bytes=_on_disk_bytes(path),
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
