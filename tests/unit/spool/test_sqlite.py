"""SqliteSpool on real files: append/read/ack/reopen, the persisted high-water mark,
consumers, caps, wipe, row CRCs and stats."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests.support.fake_clock import FakeClock
from tests.unit.spool.helpers import all_seqs, append_n, counters, open_spool, payload, spool_config

from argus_telemetry.spool.base import DROP_REASONS

ZERO_DROPS = dict.fromkeys(DROP_REASONS, 0)


async def test_append_read_ack_reopen(logs_dir: Path, clock: FakeClock) -> None:
    """Rows come back oldest first with their exact content; an ack deletes what every
    registered consumer acked; the cursor and seq survive a reopen."""
    spool = await open_spool(logs_dir, clock)
    assert spool.next_seq() == 1
    first_wall = clock.wall()
    assert await append_n(spool, clock, 10) == list(range(1, 11))
    spool.register("loki")
    records = await spool.read_after("loki", 4)
    assert [r.seq for r in records] == [1, 2, 3, 4]
    assert records[0].wall == first_wall
    assert records[2].snapshot_json == payload(3)
    assert records[2].counters == counters(3)
    await spool.ack("loki", 4)
    assert (await spool.stats()).rows == 6
    assert [r.seq for r in await spool.read_after("loki", 100)] == [5, 6, 7, 8, 9, 10]
    await spool.close()

    spool = await open_spool(logs_dir, clock)
    spool.register("loki")
    assert spool.next_seq() == 11
    assert [r.seq for r in await spool.read_after("loki", 100)] == [5, 6, 7, 8, 9, 10]
    await spool.close()


async def test_high_water_mark_survives_deleting_every_row(logs_dir: Path, clock: FakeClock) -> None:
    """After every row was delivered and deleted, seq continues from the high-water mark."""
    spool = await open_spool(logs_dir, clock)
    spool.register("loki")
    await append_n(spool, clock, 3)
    await spool.ack("loki", 3)
    stats = await spool.stats()
    assert (stats.rows, stats.oldest_seq, stats.high_water_seq) == (0, None, 3)
    await spool.close()
    spool = await open_spool(logs_dir, clock)
    assert spool.next_seq() == 4
    assert await append_n(spool, clock, 1) == [4]
    await spool.close()


async def test_rows_stay_until_every_registered_consumer_acked(logs_dir: Path, clock: FakeClock) -> None:
    """Two consumers: a row goes only when both acked it; a consumer registered in an
    earlier run but not in this one no longer holds rows."""
    spool = await open_spool(logs_dir, clock)
    spool.register("loki")
    spool.register("remote_write")
    await append_n(spool, clock, 10)
    await spool.ack("loki", 5)
    assert await all_seqs(spool) == list(range(1, 11))
    await spool.ack("remote_write", 3)
    assert await all_seqs(spool) == list(range(4, 11))
    stats = await spool.stats()
    assert stats.backlog == {"loki": 5, "remote_write": 7}
    await spool.close()

    spool = await open_spool(logs_dir, clock)
    spool.register("loki")  # remote_write was removed from the config
    await append_n(spool, clock, 1)
    await spool.ack("loki", 11)
    assert await all_seqs(spool) == []
    assert (await spool.stats()).backlog == {"loki": 0}
    await spool.close()


async def test_without_consumers_rows_stay(logs_dir: Path, clock: FakeClock) -> None:
    """With no consumer registered nothing is deleted by acks; rows wait for the caps."""
    spool = await open_spool(logs_dir, clock)
    await append_n(spool, clock, 5)
    await spool.ack("somebody", 5)
    assert await all_seqs(spool) == [1, 2, 3, 4, 5]
    assert [r.seq for r in await spool.read_after("somebody", 10)] == []
    await spool.close()


async def test_max_bytes_drops_oldest_and_bounds_the_files(logs_dir: Path, clock: FakeClock) -> None:
    """Past max_bytes the oldest rows go first, each counted as max_bytes, and the
    database plus its WAL never exceed the cap on disk."""
    cap = 256 * 1024
    spool = await open_spool(logs_dir, clock, spool_config(max_bytes=cap, wipe=False))
    largest = 0
    for _ in range(600):
        seq = spool.next_seq()
        assert await spool.append(seq, clock.wall(), payload(seq, 1500), counters(seq))
        clock.advance(2.0)
        on_disk = sum(f.stat().st_size for f in logs_dir.glob("spool.db*") if not f.name.endswith("-shm"))
        largest = max(largest, on_disk)
    assert largest <= cap
    stats = await spool.stats()
    kept = await all_seqs(spool)
    assert kept == list(range(601 - len(kept), 601))
    assert len(kept) * 1500 >= cap // 3  # the cap is used, not just respected
    assert stats.dropped == {**ZERO_DROPS, "max_bytes": 600 - len(kept)}
    await spool.close()
    spool = await open_spool(logs_dir, clock)
    assert (await spool.stats()).dropped["max_bytes"] == 600 - len(kept)
    await spool.close()


async def test_max_age_drops_old_rows(logs_dir: Path, clock: FakeClock) -> None:
    """Rows older than max_age are dropped and counted as max_age."""
    spool = await open_spool(logs_dir, clock, spool_config(max_age=10.0))
    await append_n(spool, clock, 30)  # walls 0, 2, ..., 58 s after the start
    # the 30th append ran at +58 s: rows stamped before +48 s were dropped (1..24)
    assert await all_seqs(spool) == list(range(25, 31))
    assert (await spool.stats()).dropped == {**ZERO_DROPS, "max_age": 24}
    await spool.close()


async def test_count_drop_is_persisted_and_checked(logs_dir: Path, clock: FakeClock) -> None:
    """Exporters' drops are added to the persisted counters; an unknown reason is refused."""
    spool = await open_spool(logs_dir, clock)
    await spool.count_drop("rejected", 3)
    await spool.count_drop("too_old", 2)
    with pytest.raises(ValueError, match="unknown drop reason 'nope'"):
        await spool.count_drop("nope", 1)
    await spool.close()
    spool = await open_spool(logs_dir, clock)
    assert (await spool.stats()).dropped == {**ZERO_DROPS, "rejected": 3, "too_old": 2}
    await spool.close()


def _files_contain(directory: Path, needle: bytes) -> list[str]:
    return [f.name for f in sorted(directory.glob("spool.db*")) if needle in f.read_bytes()]


@pytest.mark.parametrize("wipe", [True, False])
async def test_wipe_removes_delivered_content_from_the_files(logs_dir: Path, clock: FakeClock, wipe: bool) -> None:
    """With wipe, delivered rows leave no plaintext in the database or WAL after a flush;
    without wipe they do (which shows the check can see them)."""
    spool = await open_spool(logs_dir, clock, spool_config(wipe=wipe))
    spool.register("loki")
    await append_n(spool, clock, 40)
    await spool.flush()
    assert _files_contain(logs_dir, b"CANARY-7-") != []
    await spool.ack("loki", 40)
    await spool.flush()
    found = _files_contain(logs_dir, b"CANARY-")
    if wipe:
        assert found == []
        assert (logs_dir / "spool.db-wal").stat().st_size == 0
    else:
        assert found != []
    await spool.close()


async def test_row_with_bad_crc_is_dropped_and_counted(logs_dir: Path, clock: FakeClock) -> None:
    """A row whose content no longer matches its CRC (a flipped byte SQLite cannot see)
    is never handed out; it is deleted and counted as corrupt."""
    spool = await open_spool(logs_dir, clock)
    spool.register("loki")
    await append_n(spool, clock, 5)
    await spool.flush()
    other = sqlite3.connect(logs_dir / "spool.db", isolation_level=None)
    other.execute("UPDATE snapshots SET snapshot = ? WHERE seq = 3", (payload(3).replace(b"x", b"y", 1),))
    other.close()
    assert [r.seq for r in await spool.read_after("loki", 10)] == [1, 2, 4, 5]
    stats = await spool.stats()
    assert (stats.rows, stats.dropped["corrupt"]) == (4, 1)
    await spool.close()


async def test_latest_and_stats(logs_dir: Path, clock: FakeClock) -> None:
    """latest() is the newest row; stats() reports rows, oldest/newest seq and time,
    high-water mark, backlog per registered consumer and every drop reason."""
    spool = await open_spool(logs_dir, clock)
    assert await spool.latest() is None
    start = clock.wall()
    await append_n(spool, clock, 4)
    spool.register("loki")
    await spool.ack("loki", 1)
    latest = await spool.latest()
    assert latest is not None
    assert (latest.seq, latest.snapshot_json) == (4, payload(4))
    stats = await spool.stats()
    assert stats.path == str(logs_dir / "spool.db")
    assert (stats.rows, stats.oldest_seq, stats.newest_seq) == (3, 2, 4)
    assert (stats.oldest_wall, stats.newest_wall) == (start + 2.0, start + 6.0)
    assert stats.high_water_seq == 4
    assert stats.backlog == {"loki": 3}
    assert stats.dropped == ZERO_DROPS
    assert stats.bytes > 0
    await spool.close()
