"""FakeClock: a `clock.Clock` that only moves when a test says so.

`advance(seconds)` moves both clocks and wakes every sleeper whose deadline has passed;
`jump_wall(seconds)` moves only the wall clock (an NTP step, a user changing the time);
`wait_for_sleepers(n)` returns once n tasks are asleep in `sleep_until`, which is how a
test knows the code under test has finished reacting, without real sleeps.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class FakeClock:
    """Monotonic and wall time under test control. Use from one event loop."""

    def __init__(self, monotonic: float = 1000.0, wall: float = 1_796_400_000.0) -> None:
        self._monotonic = monotonic
        self._wall = wall
        self._order = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._waiters: list[asyncio.Event] = []
        self.sleep_calls = 0

    # -- clock.Clock -------------------------------------------------------------

    def monotonic(self) -> float:
        return self._monotonic

    def wall(self) -> float:
        return self._wall

    async def sleep_until(self, deadline: float) -> None:
        """Return once `advance` has moved monotonic time to `deadline` (at once if it
        already has)."""
        self.sleep_calls += 1
        if deadline <= self._monotonic:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._order), future))
        self._notify()
        try:
            await future
        finally:
            if not future.done():  # cancelled while asleep
                future.cancel()
            self._sleepers = [s for s in self._sleepers if s[2] is not future]
            heapq.heapify(self._sleepers)

    # -- test control ------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by `seconds` and wake the sleepers now due."""
        if seconds < 0:
            raise ValueError(f"a monotonic clock never goes back (advance by {seconds})")
        self._monotonic += seconds
        self._wall += seconds
        self._wake()

    def advance_to(self, monotonic: float) -> None:
        """Move both clocks so that `monotonic()` == `monotonic` exactly (not before now)."""
        if monotonic < self._monotonic:
            raise ValueError(f"cannot go back from {self._monotonic} to {monotonic}")
        self._wall += monotonic - self._monotonic
        self._monotonic = monotonic
        self._wake()

    def jump_wall(self, seconds: float) -> None:
        """Step the wall clock alone, by `seconds` (negative: back in time)."""
        self._wall += seconds

    @property
    def sleepers(self) -> int:
        """How many tasks are asleep in `sleep_until`."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    @property
    def next_wakeup(self) -> float | None:
        """The earliest deadline anyone sleeps until, or None."""
        pending = [deadline for deadline, _, future in self._sleepers if not future.done()]
        return min(pending, default=None)

    async def wait_for_sleepers(self, count: int = 1) -> None:
        """Return once at least `count` tasks are asleep (the code under test is idle).
        Bound it with `asyncio.timeout` in the test."""
        while self.sleepers < count:
            event = asyncio.Event()
            self._waiters.append(event)
            try:
                await event.wait()
            finally:
                self._waiters.remove(event)

    def _wake(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._monotonic:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def _notify(self) -> None:
        for event in self._waiters:
            event.set()
