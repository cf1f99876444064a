"""RawSample pairs → schema-1 Snapshot plus the raw Counters the spool stores beside it.

The sampler keeps the previous RawSample; the persistent `seq` comes from the spool
(the agent passes `spool.next_seq()` to `build`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from argus_telemetry.collect.base import DiskCounters, NetCounters, RawSample
from argus_telemetry.config.model import CollectConfig
from argus_telemetry.snapshot import rates
from argus_telemetry.snapshot.model import (
    SCHEMA,
    Counters,
    Cpu,
    Disk,
    DiskRates,
    Memory,
    NetRates,
    Network,
    Snapshot,
    format_time,
)

RATE_DECIMALS = 1  # bytes per second: a tenth of a byte is already below any meaning
PERCENT_DECIMALS = 1  # as the contract's examples (12.5, 16.7)
INTERVAL_DECIMALS = 3  # milliseconds

# Loopback by name: Linux "lo", BSD/macOS "lo0", Windows "Loopback Pseudo-Interface 1".
_LOOPBACK = re.compile(r"^lo\d*$|^Loopback Pseudo-Interface( \d+)?$")


def is_loopback(interface: str) -> bool:
    """True for the host's loopback interface (listed, but kept out of network totals)."""
    return _LOOPBACK.match(interface) is not None


def _exclusion(pattern: str) -> Callable[[str], bool]:
    """A cached `name → excluded?` test; an empty pattern excludes nothing."""
    if not pattern:
        return lambda _name: False
    regex = re.compile(pattern)
    decided: dict[str, bool] = {}

    def excluded(name: str) -> bool:
        verdict = decided.get(name)
        if verdict is None:
            if len(decided) > 4096:  # names come and go (hot-plug, veth): stay bounded
                decided.clear()
            verdict = decided[name] = regex.search(name) is not None
        return verdict

    return excluded


class Sampler:
    """Turns each new RawSample, with the previous one, into a Snapshot and Counters.

    Rates use the real elapsed monotonic time between the two samples. A disk device or
    interface seen for the first time, or whose counter went backwards (either of its
    two counters: reset, wrap, a different device under the same name), has no rate for
    that interval and is **left out of `devices` / `interfaces`** for that one snapshot
    (its counters are still in Counters); so every listed device has both of its rates.
    Totals sum the listed devices (interfaces, loopback excluded) and are omitted when
    none is listed. CPU usage per core needs the same number of cores in both samples
    (a hot-plugged CPU shifts the indices); otherwise `cores` and the total usage are
    omitted for that interval.
    """

    def __init__(self, *, hostname: str, collect: CollectConfig) -> None:
        self._hostname = hostname
        self._disk_excluded = _exclusion(collect.disk_exclude)
        self._interface_excluded = _exclusion(collect.interface_exclude)
        self._previous: RawSample | None = None
        self._previous_cpu: list[tuple[float, float]] | None = None  # (total, busy) per core

    def prime(self, raw: RawSample) -> None:
        """Remember `raw` as the previous sample (the first read after start)."""
        self._previous = raw
        self._previous_cpu = [rates.cpu_split(core) for core in raw.cpu_cores]

    def build(self, raw: RawSample, seq: int) -> tuple[Snapshot, Counters]:
        """The snapshot numbered `seq` over the interval from the previous sample to
        `raw`; `raw` then becomes the previous sample. Without a previous sample (never
        primed), `interval_seconds` is 0.0 and no rate is given."""
        previous, previous_cpu = self._previous, self._previous_cpu
        current_cpu = [rates.cpu_split(core) for core in raw.cpu_cores]
        self._previous, self._previous_cpu = raw, current_cpu
        elapsed = raw.monotonic - previous.monotonic if previous is not None else 0.0

        disks = {name: counters for name, counters in (raw.disks or {}).items() if not self._disk_excluded(name)}
        network = {
            name: counters for name, counters in (raw.network or {}).items() if not self._interface_excluded(name)
        }
        snapshot = Snapshot(
            schema=SCHEMA,
            seq=seq,
            time=format_time(raw.wall),
            host=self._hostname,
            interval_seconds=round(max(elapsed, 0.0), INTERVAL_DECIMALS),
            cpu=_cpu(previous_cpu, current_cpu),
            memory=_memory(raw.memory_total_bytes, raw.memory_available_bytes),
            disk=_disk(previous.disks if previous is not None else None, disks, elapsed),
            network=_network(previous.network if previous is not None else None, network, elapsed),
        )
        counters = Counters(
            cpu=raw.cpu_cores,
            disk={name: (c.read_bytes, c.written_bytes) for name, c in disks.items()},
            network={name: (c.receive_bytes, c.transmit_bytes) for name, c in network.items()},
        )
        return snapshot, counters


def _cpu(previous: list[tuple[float, float]] | None, current: list[tuple[float, float]]) -> Cpu:
    if previous is None or len(previous) != len(current):
        return Cpu()
    cores: list[float] = []
    for before, now in zip(previous, current, strict=True):
        usage = rates.usage_percent(before, now)
        if usage is None:
            return Cpu()  # one core reset: the indices of the others cannot be trusted
        cores.append(round(usage, PERCENT_DECIMALS))
    total = rates.usage_percent(_sum_splits(previous), _sum_splits(current))
    return Cpu(
        usage_percent=None if total is None else round(total, PERCENT_DECIMALS),
        cores=cores,
    )


def _sum_splits(splits: list[tuple[float, float]]) -> tuple[float, float]:
    return sum(total for total, _ in splits), sum(busy for _, busy in splits)


def _memory(total: int, available: int) -> Memory:
    used = max(total - available, 0)
    percent = round(100.0 * used / total, PERCENT_DECIMALS) if total > 0 else 0.0
    return Memory(total_bytes=total, available_bytes=available, used_bytes=used, used_percent=percent)


def _pair_rates(
    previous: tuple[int, int] | None,
    current: tuple[int, int],
    elapsed: float,
) -> tuple[float, float] | None:
    if previous is None:
        return None
    first = rates.rate(previous[0], current[0], elapsed)
    second = rates.rate(previous[1], current[1], elapsed)
    if first is None or second is None:
        return None
    return round(first, RATE_DECIMALS), round(second, RATE_DECIMALS)


def _disk(previous: Mapping[str, DiskCounters] | None, current: Mapping[str, DiskCounters], elapsed: float) -> Disk:
    devices: dict[str, DiskRates] = {}
    for name, now in current.items():
        before = previous.get(name) if previous is not None else None
        pair = _pair_rates(
            (before.read_bytes, before.written_bytes) if before is not None else None,
            (now.read_bytes, now.written_bytes),
            elapsed,
        )
        if pair is not None:
            devices[name] = DiskRates(read_bytes_per_second=pair[0], write_bytes_per_second=pair[1])
    if not devices:
        return Disk()
    return Disk(
        read_bytes_per_second=_total(d.read_bytes_per_second for d in devices.values()),
        write_bytes_per_second=_total(d.write_bytes_per_second for d in devices.values()),
        devices=devices,
    )


def _network(previous: Mapping[str, NetCounters] | None, current: Mapping[str, NetCounters], elapsed: float) -> Network:
    interfaces: dict[str, NetRates] = {}
    for name, now in current.items():
        before = previous.get(name) if previous is not None else None
        pair = _pair_rates(
            (before.receive_bytes, before.transmit_bytes) if before is not None else None,
            (now.receive_bytes, now.transmit_bytes),
            elapsed,
        )
        if pair is not None:
            interfaces[name] = NetRates(receive_bytes_per_second=pair[0], transmit_bytes_per_second=pair[1])
    counted = [rates_ for name, rates_ in interfaces.items() if not is_loopback(name)]
    if not counted:
        return Network(interfaces=interfaces)
    return Network(
        receive_bytes_per_second=_total(i.receive_bytes_per_second for i in counted),
        transmit_bytes_per_second=_total(i.transmit_bytes_per_second for i in counted),
        interfaces=interfaces,
    )


def _total(values: Iterable[float | None]) -> float:
    """The sum of already rounded rates, rounded again so float addition leaves no tail
    (a total then equals the sum of the listed values to the shown precision)."""
    return round(sum(v for v in values if v is not None), RATE_DECIMALS)
