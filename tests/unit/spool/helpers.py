"""Builders for the spool tests: open a real SqliteSpool on a temp folder with a FakeClock,
and build rows whose payload names their seq (so a test can find or miss them on disk)."""

from __future__ import annotations

from pathlib import Path

from tests.support.fake_clock import FakeClock

from argus_telemetry.config.model import Bytes, Seconds, SpoolConfig
from argus_telemetry.spool.sqlite import FaultHook, SqliteSpool


def payload(seq: int, size: int = 200) -> bytes:
    """A snapshot-like JSON body of exactly `size` bytes that contains `CANARY-<seq>-`."""
    head = b'{"seq":%d,"canary":"CANARY-%d-' % (seq, seq)
    return head + b"x" * (size - len(head) - 2) + b'"}'


def counters(seq: int) -> bytes:
    return b"counters-%d" % seq


def spool_config(*, max_bytes: int = 256 * 1024**2, max_age: float = 7 * 86400.0, wipe: bool = True) -> SpoolConfig:
    return SpoolConfig(max_bytes=Bytes(max_bytes), max_age=Seconds(max_age), wipe=wipe)


async def open_spool(
    directory: Path, clock: FakeClock, config: SpoolConfig | None = None, *, faults: FaultHook | None = None
) -> SqliteSpool:
    return await SqliteSpool.open(directory, config or spool_config(), clock, faults=faults)


async def append_n(spool: SqliteSpool, clock: FakeClock, count: int, size: int = 200) -> list[int]:
    """Append `count` rows at the spool's next seqs, 2 s apart; return the seqs stored."""
    stored = []
    for _ in range(count):
        seq = spool.next_seq()
        if await spool.append(seq, clock.wall(), payload(seq, size), counters(seq)):
            stored.append(seq)
        clock.advance(2.0)
    return stored


async def all_seqs(spool: SqliteSpool, consumer: str = "inspect") -> list[int]:
    """Every seq in the spool, oldest first (read through a consumer that never acks)."""
    records = await spool.read_after(consumer, 1_000_000)
    return [record.seq for record in records]
