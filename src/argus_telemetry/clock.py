"""Time as the agent sees it: a monotonic clock for cadence, a wall clock for stamps.

Tests inject a fake clock (tests/support/fake_clock.py) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """What the agent needs to know about time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (cadence, rates, backoff)."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch, UTC (snapshot stamps)."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once `monotonic()` has reached `deadline` (at once if it has)."""
        ...


class SystemClock:
    """The real clocks of the machine."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
