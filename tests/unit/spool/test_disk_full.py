"""Disk full and I/O errors: appends fail softly, each lost snapshot is counted as
disk_full, the episode is logged once, and the spool recovers by itself."""

from __future__ import annotations

import errno
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.fake_clock import FakeClock
from tests.unit.spool.helpers import all_seqs, append_n, counters, open_spool, payload, spool_config


class Faults:
    """Raise the given OSError at the named point for the next `times` calls."""

    def __init__(self) -> None:
        self.point = ""
        self.times = 0
        self.error = errno.ENOSPC

    def __call__(self, point: str) -> None:
        if point == self.point and self.times > 0:
            self.times -= 1
            raise OSError(self.error, f"injected {errno.errorcode[self.error]}")


def _messages(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(1 for record in caplog.records if record.getMessage() == text)


async def test_injected_enospc_counts_exactly_and_recovers(
    logs_dir: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Seven appends hit ENOSPC: each returns False, disk_full counts 7 (persisted once
    space returns), one error line and one recovery line are logged, and the seqs that
    were stored are exactly the ones reported stored."""
    faults = Faults()
    spool = await open_spool(logs_dir, clock, faults=faults)
    assert await append_n(spool, clock, 3) == [1, 2, 3]
    faults.point, faults.times = "append", 7
    with caplog.at_level(logging.INFO, logger="argus_telemetry.spool"):
        assert await append_n(spool, clock, 7) == []
        assert (await spool.stats()).dropped["disk_full"] == 7
        assert await append_n(spool, clock, 2) == [11, 12]
    assert _messages(caplog, "spool cannot store") == 1
    assert _messages(caplog, "spool recovered") == 1
    await spool.close()
    spool = await open_spool(logs_dir, clock)
    assert (await spool.stats()).dropped["disk_full"] == 7
    assert await all_seqs(spool) == [1, 2, 3, 11, 12]
    assert spool.next_seq() == 13
    await spool.close()


async def test_fsync_error_rewrites_rows_since_the_last_good_flush(
    logs_dir: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An I/O error at flush: the connection is dropped and the 4 rows appended since the
    last good flush are written again and fsynced before the spool is trusted; nothing
    is counted as dropped and every row is there once."""
    faults = Faults()
    spool = await open_spool(logs_dir, clock, faults=faults)
    await append_n(spool, clock, 3)
    await spool.flush()
    await append_n(spool, clock, 4)
    faults.point, faults.times, faults.error = "flush", 1, errno.EIO
    with caplog.at_level(logging.INFO, logger="argus_telemetry.spool"):
        await spool.flush()
        assert _messages(caplog, "spool cannot store") == 1
        assert await append_n(spool, clock, 1) == [8]
    rewrites = [r for r in caplog.records if r.getMessage() == "spool rewrote rows after an I/O error"]
    assert [r.__dict__["rows"] for r in rewrites] == [4]
    await spool.flush()
    assert await all_seqs(spool) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert (await spool.stats()).dropped["disk_full"] == 0
    await spool.close()


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB tmpfs (we run as root); unmounted afterwards."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def _fill(directory: Path) -> Path:
    """Write a filler file until the file system answers ENOSPC."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


async def test_real_disk_full_on_tmpfs(small_tmpfs: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """On a full 2 MiB tmpfs appends fail without a crash; every False is counted once as
    disk_full, the episode is logged once, and once the filler is removed appends succeed
    and the count is persisted. Stored and reported seqs agree exactly."""
    logs_dir = small_tmpfs / "Logs"
    spool = await open_spool(logs_dir, clock, spool_config(wipe=False))
    stored = await append_n(spool, clock, 20, size=1500)
    assert stored == list(range(1, 21))
    filler = _fill(small_tmpfs)
    failed: list[int] = []
    with caplog.at_level(logging.INFO, logger="argus_telemetry.spool"):
        for _ in range(2000):  # the WAL's free space takes a few more rows first
            seq = spool.next_seq()
            if await spool.append(seq, clock.wall(), payload(seq, 1500), counters(seq)):
                stored.append(seq)
            else:
                failed.append(seq)
            clock.advance(2.0)
            if len(failed) == 10:
                break
        assert len(failed) == 10
        await spool.flush()  # must not raise while full
        assert (await spool.stats()).dropped["disk_full"] == 10
        filler.unlink()
        stored += await append_n(spool, clock, 3, size=1500)
        await spool.flush()
    assert _messages(caplog, "spool cannot store") == 1
    assert _messages(caplog, "spool recovered") == 1
    assert stored[-3:] == [failed[-1] + 1, failed[-1] + 2, failed[-1] + 3]
    assert await all_seqs(spool) == stored
    await spool.close()
    spool = await open_spool(logs_dir, clock)
    assert (await spool.stats()).dropped["disk_full"] == 10
    assert await all_seqs(spool) == stored
    await spool.close()
