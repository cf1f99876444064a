"""A corrupt or unreadable spool at start: moved to quarantine (never deleted), what can be
read is salvaged, the loss is counted as corrupt, and a fresh spool works."""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.fake_clock import FakeClock
from tests.unit.spool.helpers import all_seqs, append_n, open_spool, payload

from argus_telemetry.spool.verify import DB_NAME, verify_spool

ROWS = 200
PAGE = 4096


def zero_length(path: Path) -> None:
    path.write_bytes(b"")


def garbage(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(64 * 1024))


def truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 123])


def flipped_header(path: Path) -> None:
    """Flip bytes in the 100-byte SQLite file header (magic string)."""
    data = bytearray(path.read_bytes())
    for offset in (0, 5, 11):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def flipped_pages(path: Path) -> None:
    """Flip the first bytes (the B-tree page header) of three pages in the middle."""
    data = bytearray(path.read_bytes())
    pages = len(data) // PAGE
    for page in (pages // 2, pages // 2 + 1, pages // 2 + 2):
        for offset in range(page * PAGE, page * PAGE + 8):
            data[offset] ^= 0xA5
    path.write_bytes(bytes(data))


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "zero_length": zero_length,
    "garbage": garbage,
    "truncated": truncated,
    "flipped_header": flipped_header,
    "flipped_pages": flipped_pages,
}


async def _filled_spool(logs_dir: Path, clock: FakeClock) -> None:
    spool = await open_spool(logs_dir, clock)
    assert len(await append_n(spool, clock, ROWS, size=900)) == ROWS
    await spool.close()
    assert not (logs_dir / (DB_NAME + "-wal")).exists()


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
async def test_corrupt_spool_is_quarantined_salvaged_and_counted(
    logs_dir: Path, clock: FakeClock, corrupt: Callable[[Path], None], caplog: pytest.LogCaptureFixture
) -> None:
    """Each kind of damage: the exact bad file lands in quarantine/<time>/ with a reason,
    every row is either salvaged intact or counted as corrupt, seq never goes back, and
    the fresh spool stores again."""
    await _filled_spool(logs_dir, clock)
    db = logs_dir / DB_NAME
    corrupt(db)
    damaged = hashlib.sha256(db.read_bytes()).hexdigest()
    assert not verify_spool(logs_dir).ok

    with caplog.at_level(logging.ERROR, logger="argus_telemetry.spool"):
        spool = await open_spool(logs_dir, clock)
    folders = list((logs_dir / "quarantine").iterdir())
    assert len(folders) == 1
    assert hashlib.sha256((folders[0] / DB_NAME).read_bytes()).hexdigest() == damaged
    assert (folders[0] / "REASON.txt").read_text() != ""
    assert "spool corrupt, moved to quarantine" in caplog.messages

    salvaged = await all_seqs(spool)
    stats = await spool.stats()
    assert len(salvaged) + stats.dropped["corrupt"] == ROWS
    assert set(salvaged) <= set(range(1, ROWS + 1))
    for record in await spool.read_after("check", ROWS):
        assert record.snapshot_json == payload(record.seq, 900)
    next_seq = spool.next_seq()
    assert next_seq > ROWS
    assert await append_n(spool, clock, 3) == [next_seq, next_seq + 1, next_seq + 2]
    await spool.close()
    assert verify_spool(logs_dir).ok


async def test_loss_is_exact_when_nothing_is_readable(logs_dir: Path, clock: FakeClock) -> None:
    """Zero-length file: all 200 rows recorded at the last flush are counted lost, and
    seq resumes past the reservation kept beside the database (1000 ahead)."""
    await _filled_spool(logs_dir, clock)
    zero_length(logs_dir / DB_NAME)
    spool = await open_spool(logs_dir, clock)
    assert (await spool.stats()).dropped["corrupt"] == ROWS
    assert await all_seqs(spool) == []
    assert spool.next_seq() == 1001
    await spool.close()


async def test_salvage_keeps_rows_around_a_bad_page(logs_dir: Path, clock: FakeClock) -> None:
    """Flipped page headers in the middle cost only the rows near them: rows from both
    ends are salvaged and the high-water mark is read back (seq continues at 201)."""
    await _filled_spool(logs_dir, clock)
    flipped_pages(logs_dir / DB_NAME)
    spool = await open_spool(logs_dir, clock)
    salvaged = await all_seqs(spool)
    assert salvaged[0] == 1
    assert salvaged[-1] == ROWS
    assert len(salvaged) >= ROWS // 2
    assert spool.next_seq() == ROWS + 1
    await spool.close()


async def test_repeated_corruption_never_reuses_a_quarantine_folder(logs_dir: Path, clock: FakeClock) -> None:
    """Two corrupt starts within the same second get two quarantine folders; nothing is
    overwritten or deleted."""
    for _ in range(2):
        await _filled_spool(logs_dir, clock)
        garbage(logs_dir / DB_NAME)
        spool = await open_spool(logs_dir, FakeClock())  # both opens at the same wall time
        await spool.close()
    folders = sorted(p.name for p in (logs_dir / "quarantine").iterdir())
    assert len(folders) == 2
    assert folders[1] == folders[0] + "-1"
    assert all(os.path.getsize(logs_dir / "quarantine" / f / DB_NAME) == 64 * 1024 for f in folders)
