"""ExportHarness: the part of the Agent exporters use (export.base.ExportHost), around
a real SqliteSpool, for driving exporters in-process without the collection loop; and
`autojump`, which moves a FakeClock to the next sleeper's deadline whenever the code
under test is asleep (backoff in virtual time, no real waiting). For the benches:
`loki_receiver_process`, the test Loki in a child process (so its CPU is not counted
in the exporter's), and `cpu_seconds`."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from argus_telemetry import __version__
from argus_telemetry.config.model import Config
from argus_telemetry.health import Health
from argus_telemetry.snapshot.model import Counters, Snapshot, encode_counters, encode_snapshot
from argus_telemetry.spool.base import Spool
from argus_telemetry.spool.sqlite import SqliteSpool
from tests.support import factories
from tests.support.fake_clock import FakeClock


class FlushSignal:
    """The spool and the flush generation of a pretend agent: what exporters wait on
    (`ExportHost.spool`, `flush_generation`, `wait_for_flush`); `signal_flush()` wakes them."""

    def __init__(self, spool: Spool) -> None:
        self._spool = spool
        self._generation = 0
        self._changed = asyncio.Condition()

    @property
    def spool(self) -> Spool:
        return self._spool

    @property
    def flush_generation(self) -> int:
        return self._generation

    async def wait_for_flush(self, seen_generation: int) -> int:
        async with self._changed:
            await self._changed.wait_for(lambda: self._generation > seen_generation)
            return self._generation

    async def signal_flush(self) -> None:
        """Start the next flush generation (the spool itself is not flushed here)."""
        async with self._changed:
            self._generation += 1
            self._changed.notify_all()


class ExportHarness(FlushSignal):
    """Satisfies export.base.ExportHost."""

    def __init__(self, config: Config, clock: FakeClock, spool: Spool, data_dir: Path) -> None:
        super().__init__(spool)
        self.config = config
        self.config_path = "test.toml"
        self.clock = clock
        self.health = Health([n for n in ("pushgateway", "loki", "remote_write") if getattr(config, n).url])
        self.hostname = config.agent.hostname or "client-42"
        self.version = __version__
        self.spool_dir = data_dir / "Logs"
        self.latest: tuple[Snapshot, Counters] | None = None

    @classmethod
    async def open(cls, config: Config, clock: FakeClock, data_dir: Path) -> ExportHarness:
        spool = await SqliteSpool.open(data_dir / "Logs", config.spool, clock)
        return cls(config, clock, spool, data_dir)

    async def flush(self) -> None:
        """Flush the spool, then wake the exporters waiting for a flush."""
        await self._spool.flush()
        await self.signal_flush()

    async def append(self, count: int, *, wall: float = factories.WALL, interval: float = 2.0) -> list[int]:
        """Append `count` snapshots `interval` s apart from `wall`; returns their seqs."""
        seqs = []
        for index in range(count):
            seq = self._spool.next_seq()
            snapshot = factories.snapshot(seq=seq, wall=wall + index * interval)
            counters = factories.counters()
            await self._spool.append(seq, wall + index * interval, encode_snapshot(snapshot), encode_counters(counters))
            self.latest = (snapshot, counters)
            seqs.append(seq)
        return seqs


class Autojump:
    """Run `run()` as a task: whenever something sleeps on `clock`, jump to its
    deadline, but never past `limit` (a test holds virtual time there while it changes
    the world, then raises the limit)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.limit = float("inf")
        self.held = False  # True while a sleeper waits beyond the limit

    async def run(self) -> None:
        clock = self.clock
        while True:
            await clock.wait_for_sleepers(1)
            wakeup = clock.next_wakeup
            if wakeup is not None and wakeup > self.limit:
                self.held = True
                await asyncio.sleep(0.005)
                continue
            self.held = False
            if wakeup is not None:
                clock.advance_to(max(wakeup, clock.monotonic()))
            await asyncio.sleep(0)


async def until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Wait (real time, bounded) until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.005)


_RECEIVER = """
import sys
sys.path.insert(0, {repo!r})
from tests.support.loki_receiver import Limits, LokiReceiver
limits = Limits(ingestion_rate_bytes=None, per_stream_rate_bytes=None,
                reject_old_samples_max_age_seconds=None, creation_grace_period_seconds=1e12) if {unlimited!r} else None
print(LokiReceiver(limits).start().port, flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def loki_receiver_process(*, unlimited: bool = False) -> Iterator[int]:
    """Run the test Loki in a child process and yield its loopback port; it stops when
    the block ends (its stdin is closed). `unlimited`: no rate limits and no age limits
    (a drain of old snapshots); else Loki's default limits."""
    repo = str(Path(__file__).resolve().parents[2])
    receiver = subprocess.Popen(
        [sys.executable, "-c", _RECEIVER.format(repo=repo, unlimited=unlimited)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert receiver.stdout is not None
    try:
        yield int(receiver.stdout.readline())
    finally:
        receiver.communicate("")


def cpu_seconds() -> float:
    """User plus system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
