"""Pure rate math over two samples of cumulative counters.

Every function returns None rather than a wrong number: on a first sample (no previous
value), a counter that went backwards (reset, wrap, a device replaced by hot-plug), a
non-positive elapsed time, or a rate too large to be real. Never negative.
"""

from __future__ import annotations

from collections.abc import Mapping

# Above any single disk or NIC today (800 Gbit/s ≈ 1e11 B/s): a larger rate means the
# counter was reset and climbed past its old value within one interval, or the elapsed
# time is nonsense. Dropping one interval beats a spike on every dashboard.
MAX_BYTES_PER_SECOND = 1e12

# psutil (Linux) and node_exporter count guest time inside user/nice already.
_GUEST_MODES = ("guest", "guest_nice")
_IDLE_MODES = ("idle", "iowait")


def rate(
    previous: int | None,
    current: int,
    elapsed_seconds: float,
    *,
    max_per_second: float = MAX_BYTES_PER_SECOND,
) -> float | None:
    """(current - previous) / elapsed_seconds, or None when it cannot be trusted.

    None when `previous` is None (first sample), `current < previous` (reset or wrap),
    `elapsed_seconds <= 0` (or not finite), or the rate exceeds `max_per_second`.
    """
    if previous is None or current < previous:
        return None
    if not 0.0 < elapsed_seconds < float("inf"):
        return None
    per_second = (current - previous) / elapsed_seconds
    if per_second > max_per_second:
        return None
    return per_second


def cpu_total_seconds(times: Mapping[str, float]) -> float:
    """All time of one CPU (or a sum of CPUs), guest time not counted twice."""
    return sum(times.values()) - sum(times.get(mode, 0.0) for mode in _GUEST_MODES)


def cpu_busy_seconds(times: Mapping[str, float]) -> float:
    """Total minus idle and iowait, as psutil's cpu_percent and node_exporter count it."""
    return cpu_total_seconds(times) - sum(times.get(mode, 0.0) for mode in _IDLE_MODES)


def cpu_split(times: Mapping[str, float]) -> tuple[float, float]:
    """(total, busy) seconds of one cpu_times sample: what usage needs, computed once."""
    total = cpu_total_seconds(times)
    return total, total - sum(times.get(mode, 0.0) for mode in _IDLE_MODES)


def usage_percent(previous: tuple[float, float] | None, current: tuple[float, float]) -> float | None:
    """Busy share, 0 to 100, between two (total, busy) splits (see `cpu_usage_percent`)."""
    if previous is None:
        return None
    total = current[0] - previous[0]
    if not total > 0.0:
        return None
    busy = current[1] - previous[1]
    return min(100.0, max(0.0, 100.0 * busy / total))


def cpu_usage_percent(previous: Mapping[str, float] | None, current: Mapping[str, float]) -> float | None:
    """Busy share of the time that passed between two cpu_times samples, 0 to 100.

    None on a first sample or when the total time did not move forward (a counter reset,
    or two reads within one clock tick). Linux's per-CPU iowait can step back a little
    (kernel documentation, Documentation/filesystems/proc.rst: "iowait ... is not
    reliable"), which can push busy time past the total: the result is clamped to 0..100
    rather than dropped.
    """
    return usage_percent(None if previous is None else cpu_split(previous), cpu_split(current))
