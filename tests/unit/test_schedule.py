"""The drift-free cadence: schedule.next_deadline driven by a FakeClock, as agent.py's
tick loop uses it (sleep until the deadline, tick, compute the next deadline)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from tests.support.fake_clock import FakeClock

from argus_telemetry.schedule import next_deadline

START = 1000.0


class Ticker:
    """The agent's tick loop in miniature; records the monotonic and wall time of each tick."""

    def __init__(self, clock: FakeClock, interval: float, on_tick: Callable[[int], None] | None = None) -> None:
        self.clock = clock
        self.interval = interval
        self.on_tick = on_tick
        self.monotonic: list[float] = []
        self.wall: list[float] = []

    async def run(self) -> None:
        deadline = self.clock.monotonic() + self.interval
        while True:
            await self.clock.sleep_until(deadline)
            self.monotonic.append(self.clock.monotonic())
            self.wall.append(self.clock.wall())
            if self.on_tick is not None:
                self.on_tick(len(self.monotonic))  # may advance the clock: a slow tick
            deadline = next_deadline(deadline, self.clock.monotonic(), self.interval)


@asynccontextmanager
async def running(ticker: Ticker) -> AsyncIterator[None]:
    task = asyncio.create_task(ticker.run())
    try:
        async with asyncio.timeout(60):
            await ticker.clock.wait_for_sleepers()
        yield
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def step(clock: FakeClock, *, late_by: float = 0.0) -> None:
    """Wake the ticker at its deadline (+ `late_by`) and wait until it sleeps again."""
    wakeup = clock.next_wakeup
    assert wakeup is not None
    clock.advance_to(wakeup + late_by)
    async with asyncio.timeout(60):
        await clock.wait_for_sleepers()


def test_next_deadline_on_time_and_late() -> None:
    """On time, the next deadline is one interval on; late, it is the first grid point
    strictly after now (missed points are skipped, the grid never shifts)."""
    assert next_deadline(10.0, 10.4, 2.0) == 12.0
    assert next_deadline(10.0, 11.999, 2.0) == 12.0
    assert next_deadline(10.0, 12.0, 2.0) == 14.0
    assert next_deadline(10.0, 17.5, 2.0) == 18.0
    assert next_deadline(10.0, 1010.1, 2.0) == 1012.0


async def test_ten_thousand_ticks_do_not_drift() -> None:
    """10,000 ticks woken up to 0.3 s late each still land on start + k × 2 s exactly:
    lateness is never carried into the next deadline."""
    clock = FakeClock(monotonic=START)
    ticker = Ticker(clock, 2.0)
    async with running(ticker):
        for k in range(10_000):
            deadline = START + (k + 1) * 2.0
            assert clock.next_wakeup == deadline
            await step(clock, late_by=(k % 4) * 0.1)
        assert clock.next_wakeup == START + 10_001 * 2.0
    assert len(ticker.monotonic) == 10_000
    expected = [START + (k + 1) * 2.0 + (k % 4) * 0.1 for k in range(10_000)]
    assert ticker.monotonic == expected


async def test_fractional_interval_does_not_drift() -> None:
    """With a 0.2 s interval (not exact in binary), tick 10,000 is still within 1 µs of
    start + 10,000 × 0.2: rounding error does not accumulate into drift."""
    clock = FakeClock(monotonic=START)
    ticker = Ticker(clock, 0.2)
    async with running(ticker):
        for _ in range(10_000):
            await step(clock)
    assert len(ticker.monotonic) == 10_000
    worst = max(abs(t - (START + (k + 1) * 0.2)) for k, t in enumerate(ticker.monotonic))
    assert worst < 1e-6


async def test_slow_tick_causes_no_burst() -> None:
    """A tick that takes 7.5 s (tick 5 at 1010 ends at 1017.5) is followed by the next
    grid point, 1018: the missed 1012, 1014, 1016 are skipped, not replayed."""

    def slow_fifth(number: int) -> None:
        if number == 5:
            clock.advance(7.5)

    clock = FakeClock(monotonic=START)
    ticker = Ticker(clock, 2.0, on_tick=slow_fifth)
    async with running(ticker):
        for _ in range(8):
            await step(clock)
        assert clock.next_wakeup == 1024.0
    assert ticker.monotonic == [1002.0, 1004.0, 1006.0, 1008.0, 1010.0, 1018.0, 1020.0, 1022.0]


async def test_monotonic_jump_causes_one_tick_not_a_burst() -> None:
    """The monotonic clock jumping 100.3 s while the loop sleeps (a suspended VM) gives
    one late tick, then the grid resumes: 50 missed ticks are not replayed."""
    clock = FakeClock(monotonic=START)
    ticker = Ticker(clock, 2.0)
    async with running(ticker):
        await step(clock)
        await step(clock)
        clock.advance(100.3)  # from 1004.0 while sleeping until 1006.0
        async with asyncio.timeout(60):
            await clock.wait_for_sleepers()
        await step(clock)
        await step(clock)
    assert ticker.monotonic == [1002.0, 1004.0, 1104.3, 1106.0, 1108.0]
    assert clock.sleep_calls == 6  # the first sleep, then one after each of the 5 ticks


async def test_wall_clock_jump_changes_nothing() -> None:
    """Stepping the wall clock back an hour and forward a day between ticks leaves the
    cadence untouched: ticks stay at start + k × 2 s on the monotonic clock."""
    clock = FakeClock(monotonic=START, wall=1_796_400_000.0)
    ticker = Ticker(clock, 2.0)
    async with running(ticker):
        await step(clock)
        clock.jump_wall(-3600.0)
        await step(clock)
        clock.jump_wall(86_400.0)
        await step(clock)
        await step(clock)
        assert clock.next_wakeup == 1010.0
    assert ticker.monotonic == [1002.0, 1004.0, 1006.0, 1008.0]
    assert ticker.wall == [1_796_400_002.0, 1_796_396_404.0, 1_796_482_806.0, 1_796_482_808.0]


async def test_fake_clock_wakes_only_due_sleepers() -> None:
    """FakeClock.advance wakes the sleepers whose deadline has passed and no others."""
    clock = FakeClock(monotonic=0.0)
    woken: list[float] = []

    async def sleeper(deadline: float) -> None:
        await clock.sleep_until(deadline)
        woken.append(deadline)

    async with asyncio.TaskGroup() as group:
        for deadline in (3.0, 1.0, 2.0):
            group.create_task(sleeper(deadline))
        async with asyncio.timeout(60):
            await clock.wait_for_sleepers(3)
        clock.advance(2.0)
        async with asyncio.timeout(60):
            while len(woken) < 2:
                await asyncio.sleep(0)
        assert woken == [1.0, 2.0]
        assert clock.sleepers == 1
        assert clock.next_wakeup == 3.0
        clock.advance(1.0)
    assert woken == [1.0, 2.0, 3.0]
    assert clock.monotonic() == 3.0


async def test_fake_clock_serves_several_waiters() -> None:
    """Two tasks waiting for sleepers at once are both released when enough sleep."""
    clock = FakeClock(monotonic=0.0)
    released: list[str] = []

    async def waiter(name: str, count: int) -> None:
        await clock.wait_for_sleepers(count)
        released.append(name)

    async with asyncio.timeout(60):
        async with asyncio.TaskGroup() as group:
            group.create_task(waiter("one", 1))
            group.create_task(waiter("two", 2))
            await asyncio.sleep(0)
            group.create_task(clock.sleep_until(5.0))
            group.create_task(clock.sleep_until(6.0))
            await clock.wait_for_sleepers(2)
            while len(released) < 2:
                await asyncio.sleep(0)
            assert sorted(released) == ["one", "two"]
            clock.advance(6.0)
