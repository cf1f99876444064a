"""Rate math: never negative, None on a first sample or a reset, exact on known deltas."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from tests.support.factories import cpu_times

from argus_telemetry.snapshot.rates import (
    MAX_BYTES_PER_SECOND,
    cpu_busy_seconds,
    cpu_split,
    cpu_total_seconds,
    cpu_usage_percent,
    rate,
    usage_percent,
)

counters = st.integers(min_value=0, max_value=2**64 - 1)
elapsed = st.floats(min_value=-10.0, max_value=1e6) | st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1e-300])
seconds = st.floats(min_value=0.0, max_value=1e7, allow_nan=False, allow_infinity=False)
modes = st.fixed_dictionaries(
    {
        "user": seconds,
        "nice": seconds,
        "system": seconds,
        "idle": seconds,
        "iowait": seconds,
        "irq": seconds,
        "softirq": seconds,
        "steal": seconds,
        "guest": seconds,
        "guest_nice": seconds,
    }
)


@given(counters, counters, elapsed)
def test_rate_is_never_negative(previous: int, current: int, elapsed_seconds: float) -> None:
    """Whatever the counters and elapsed time, a rate is None or a finite value ≥ 0."""
    result = rate(previous, current, elapsed_seconds)
    assert result is None or (math.isfinite(result) and 0.0 <= result <= MAX_BYTES_PER_SECOND)


@given(counters, elapsed)
def test_first_sample_has_no_rate(current: int, elapsed_seconds: float) -> None:
    """Without a previous value (a device seen for the first time) there is no rate."""
    assert rate(None, current, elapsed_seconds) is None


@given(counters, st.integers(min_value=1, max_value=2**64 - 1), st.floats(min_value=0.001, max_value=1e6))
def test_counter_gone_backwards_has_no_rate(current: int, drop: int, elapsed_seconds: float) -> None:
    """A counter lower than before (reset, wrap, hot-plugged device) gives None."""
    assert rate(current + drop, current, elapsed_seconds) is None


@given(counters, counters, st.floats(max_value=0.0, allow_nan=False))
def test_non_positive_elapsed_has_no_rate(previous: int, current: int, elapsed_seconds: float) -> None:
    """Zero or negative elapsed time gives None (no division by zero, no sign flip)."""
    assert rate(previous, current, elapsed_seconds) is None


@given(st.integers(min_value=0, max_value=2**62), st.integers(min_value=0, max_value=10**9))
def test_rate_exact_on_known_deltas(previous: int, delta_per_second: int) -> None:
    """A counter that grew by exactly 2 × d over 2.0 s has rate d, exactly."""
    assert rate(previous, previous + 2 * delta_per_second, 2.0) == float(delta_per_second)


def test_rate_examples() -> None:
    """Hand-checked values: 81920 B over 2 s, over 2.001 s, unchanged, and absurd."""
    assert rate(1000, 1000 + 81920, 2.0) == 40960.0
    assert rate(0, 2001, 2.001) == 1000.0
    assert rate(5, 5, 2.0) == 0.0
    assert rate(0, 3 * 10**12, 2.0) is None  # 1.5 TB/s: a reset that climbed past the old value
    assert rate(0, 2 * 10**12, 2.0) == 1e12  # the limit itself is still believed
    assert rate(0, 10, float("nan")) is None
    assert rate(0, 10, float("inf")) is None


@given(modes, modes)
def test_cpu_usage_is_none_or_between_0_and_100(before: dict[str, float], after: dict[str, float]) -> None:
    """CPU usage from any two cpu_times samples is None or within 0..100, never negative."""
    result = cpu_usage_percent(before, after)
    assert result is None or 0.0 <= result <= 100.0


@given(modes)
def test_cpu_usage_first_sample_and_no_progress(times: dict[str, float]) -> None:
    """No previous sample, or no time passed at all, gives None."""
    assert cpu_usage_percent(None, times) is None
    assert cpu_usage_percent(times, times) is None


def test_cpu_usage_none_on_reset() -> None:
    """Counters that went backwards (total time decreased) give None."""
    before = cpu_times(user=500.0, system=100.0, idle=4000.0)
    after = cpu_times(user=1.0, system=1.0, idle=10.0)
    assert cpu_usage_percent(before, after) is None


def test_cpu_usage_exact() -> None:
    """busy = total − idle − iowait: 1.5 s user + 0.5 s system + 1 s steal (busy) + 1 s
    iowait + 4 s idle = 8 s → 3/8 = 37.5 %; the 1 s of guest is inside user, not added."""
    before = cpu_times(user=100.0, system=50.0, idle=1000.0, iowait=10.0, steal=2.0, guest=40.0)
    after = cpu_times(user=101.5, system=50.5, idle=1004.0, iowait=11.0, steal=3.0, guest=41.0)
    assert cpu_total_seconds(after) - cpu_total_seconds(before) == 8.0
    assert cpu_busy_seconds(after) - cpu_busy_seconds(before) == 3.0
    assert cpu_usage_percent(before, after) == 37.5


def test_cpu_usage_clamped_when_iowait_steps_back() -> None:
    """Linux's per-CPU iowait may step back a little: the result is clamped to 100, not
    above it (the rest of the counters moved forward, so it is not a reset)."""
    before = cpu_times(user=100.0, idle=100.0, iowait=5.0)
    after = cpu_times(user=101.0, idle=100.0, iowait=4.5)
    assert cpu_usage_percent(before, after) == 100.0


def test_usage_from_splits_matches_cpu_times() -> None:
    """usage_percent over (total, busy) splits gives what cpu_usage_percent gives over the
    cpu_times dicts, and the machine-wide figure is the busy share of summed splits."""
    before = [cpu_times(user=1.0, idle=2.0), cpu_times(user=3.0, idle=4.0, iowait=0.5)]
    after = [cpu_times(user=2.0, idle=2.0), cpu_times(user=3.0, idle=6.0, iowait=1.0)]
    assert cpu_split(after[1]) == (10.0, 3.0)
    assert usage_percent(cpu_split(before[0]), cpu_split(after[0])) == cpu_usage_percent(before[0], after[0]) == 100.0
    assert usage_percent(cpu_split(before[1]), cpu_split(after[1])) == 0.0
    assert [cpu_split(t) for t in before] == [(3.0, 1.0), (7.5, 3.0)]
    assert round(usage_percent((3.0 + 7.5, 1.0 + 3.0), (4.0 + 10.0, 2.0 + 3.0)) or -1.0, 3) == 28.571  # 1 s of 3.5
    assert usage_percent(None, (1.0, 1.0)) is None
    assert usage_percent((10.0, 5.0), (10.0, 6.0)) is None
