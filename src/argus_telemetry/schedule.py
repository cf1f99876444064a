"""Drift-free cadence: pure deadline arithmetic on the monotonic clock."""

from __future__ import annotations

import math


def next_deadline(previous: float, now: float, interval: float) -> float:
    """The next tick after `previous` on the grid `previous + k * interval`.

    Ticks missed because a tick ran late are skipped, not replayed: the result is the
    first grid point strictly after `now` (so no burst of catch-up snapshots), and the
    grid never shifts (so no drift).
    """
    following = previous + interval
    if following > now:
        return following
    missed = math.floor((now - following) / interval) + 1
    return following + missed * interval
