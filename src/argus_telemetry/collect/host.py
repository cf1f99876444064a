"""The host collector: the only module that imports psutil. Reads counters, no arithmetic.

What a platform lacks is tolerated, not fatal: under Wine `disk_io_counters()` gives
nothing, so `RawSample.disks` is None and that is logged once. Counters are read with
`nowrap=False` (psutil must not patch wraps behind our back: `snapshot/rates.py` sees a
counter that went backwards and omits that rate) and psutil's per-thread `cpu_percent`
state is not used (the sampler keeps the previous sample itself).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import psutil

from argus_telemetry.collect.base import DiskCounters, NetCounters, RawSample

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# Errors psutil raises when a platform cannot read a kind of counter at all (Wine, a
# container without /proc/diskstats, an old kernel): the part is reported as missing.
_UNAVAILABLE = (OSError, RuntimeError, NotImplementedError, psutil.Error)


class HostCollector:
    """Reads this host through psutil. Blocking (≈0.1 ms): call it from a worker thread.

    `read()` raises OSError only when CPU or memory cannot be read; disks or network
    that cannot be read become None in the sample (logged once per kind, and again
    when they come back).
    """

    def __init__(self) -> None:
        self._missing: set[str] = set()

    def read(self) -> RawSample:
        """One sample of every counter; `monotonic` and `wall` are taken together, just
        before the counters (the reads themselves take ~0.1 ms)."""
        monotonic = time.monotonic()
        wall = time.time()
        try:
            cores = [times._asdict() for times in psutil.cpu_times(percpu=True)]
            memory = psutil.virtual_memory()
        except _UNAVAILABLE as exc:
            raise OSError(f"cannot read CPU times or memory: {exc}") from exc
        disks = self._optional("disks", _read_disks)
        network = self._optional("network", _read_network)
        return RawSample(
            monotonic=monotonic,
            wall=wall,
            cpu_cores=cores,
            memory_total_bytes=int(memory.total),
            memory_available_bytes=int(memory.available),
            disks=disks,
            network=network,
        )

    def _optional(self, kind: str, reader: Callable[[], _T | None]) -> _T | None:
        try:
            value = reader()
        except _UNAVAILABLE as exc:
            value = None
            reason = f"{type(exc).__name__}: {exc}"
        else:
            reason = "the platform reports none"
        if value is None:
            if kind not in self._missing:
                log.warning("counters unavailable", extra={"kind": kind, "reason": reason})
                self._missing.add(kind)
        elif kind in self._missing:
            log.info("counters available again", extra={"kind": kind})
            self._missing.discard(kind)
        return value


def _read_disks() -> dict[str, DiskCounters] | None:
    # psutil documents None here on platforms without disk counters (the stubs omit it).
    found = psutil.disk_io_counters(perdisk=True, nowrap=False)
    if found is None:
        return None
    if not found and sys.platform == "win32":
        # psutil turns "nothing" into {}; every Windows host has a disk, so an empty
        # answer means the counters are not readable here (Wine, disabled diskperf).
        return None
    return {name: DiskCounters(int(io.read_bytes), int(io.write_bytes)) for name, io in found.items()}


def _read_network() -> dict[str, NetCounters] | None:
    found = psutil.net_io_counters(pernic=True, nowrap=False)
    if found is None:
        return None
    return {name: NetCounters(int(io.bytes_recv), int(io.bytes_sent)) for name, io in found.items()}
