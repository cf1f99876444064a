"""The retry schedule: exponential, capped, jittered, Retry-After as a floor."""

from __future__ import annotations

import pytest

from argus_telemetry.export.backoff import Backoff


def _fixed(factor: float) -> Backoff:
    return Backoff(uniform=lambda low, high: factor)


def test_delays_double_from_half_a_second_up_to_the_cap() -> None:
    """Without jitter the delays are 0.5, 1, 2, ... and never exceed 60 s."""
    backoff = _fixed(1.0)
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


def test_jitter_scales_within_bounds_and_never_passes_the_cap() -> None:
    """The jitter factor is drawn from [0.8, 1.2]; a jittered delay stays ≤ the cap."""
    seen: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        seen.append((low, high))
        return high

    backoff = Backoff(uniform=uniform)
    assert backoff.next_delay() == pytest.approx(0.6)
    for _ in range(10):
        last = backoff.next_delay()
    assert last == 60.0
    assert set(seen) == {(0.8, 1.2)}


def test_retry_after_is_a_floor_even_above_the_cap() -> None:
    """A server's Retry-After wins over a shorter delay, and over the cap too."""
    backoff = _fixed(1.0)
    assert backoff.next_delay(3.0) == 3.0
    assert backoff.next_delay(0.1) == 1.0
    assert backoff.next_delay(120.0) == 120.0


def test_longest_and_reset() -> None:
    """`longest` gives the cap at once; `reset` starts over at 0.5 s."""
    backoff = _fixed(1.0)
    assert backoff.next_delay(longest=True) == 60.0
    backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_rejects_nonsense_parameters() -> None:
    """A zero start or a jitter of 1 is refused with a message naming the value."""
    with pytest.raises(ValueError, match=r"initial \(0"):
        Backoff(initial_seconds=0)
    with pytest.raises(ValueError, match=r"jitter 1\.0"):
        Backoff(jitter=1.0)
