"""The Collector interface: one read() → RawSample of cumulative counters and gauges.

A RawSample is what the OS said at one instant, with no arithmetic done on it; rates
are computed in `snapshot/rates.py` from two samples.
"""

from __future__ import annotations

from typing import Protocol

import msgspec


class DiskCounters(msgspec.Struct, frozen=True, array_like=True):
    """Cumulative bytes read and written by one block device since boot."""

    read_bytes: int
    written_bytes: int


class NetCounters(msgspec.Struct, frozen=True, array_like=True):
    """Cumulative bytes received and transmitted by one interface since boot."""

    receive_bytes: int
    transmit_bytes: int


class RawSample(msgspec.Struct, frozen=True):
    """Everything one collection read, at `monotonic` (seconds) / `wall` (Unix seconds).

    `cpu_cores[i]` maps a mode ("user", "system", "idle", ...) to cumulative seconds of
    core i. `disks` and `network` hold every device/interface the OS reported (None when
    the platform cannot read them at all, e.g. disks under Wine); filtering happens in
    the sampler.
    """

    monotonic: float
    wall: float
    cpu_cores: list[dict[str, float]]
    memory_total_bytes: int
    memory_available_bytes: int
    disks: dict[str, DiskCounters] | None
    network: dict[str, NetCounters] | None


class Collector(Protocol):
    """Reads the host. Blocking: call it from a worker thread."""

    def read(self) -> RawSample:
        """One sample of every counter; raises OSError only if nothing can be read."""
        ...
