"""Builders of RawSample, Snapshot and Counters with sensible defaults for tests.

Counters are given as plain tuples: `raw_sample(disks={"vda": (read, written)})`.
"""

from __future__ import annotations

from argus_telemetry.collect.base import DiskCounters, NetCounters, RawSample
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

WALL = 1_796_400_000.0  # 2026-12-04T16:00:00Z
MONOTONIC = 1000.0
GIB = 1024**3

LINUX_CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")


def cpu_times(
    *, user: float = 0.0, system: float = 0.0, idle: float = 0.0, iowait: float = 0.0, **others: float
) -> dict[str, float]:
    """One core's cumulative cpu_times as psutil reports them on Linux (every mode
    present, 0.0 unless given)."""
    times = dict.fromkeys(LINUX_CPU_MODES, 0.0)
    times.update(user=user, system=system, idle=idle, iowait=iowait, **others)
    return times


def raw_sample(
    *,
    monotonic: float = MONOTONIC,
    wall: float = WALL,
    cores: list[dict[str, float]] | None = None,
    memory_total_bytes: int = 16 * GIB,
    memory_available_bytes: int = 12 * GIB,
    disks: dict[str, tuple[int, int]] | None = None,
    network: dict[str, tuple[int, int]] | None = None,
    no_disks: bool = False,
    no_network: bool = False,
) -> RawSample:
    """A RawSample; `cores` defaults to two idle cores, `disks` to {"vda": (0, 0)},
    `network` to {"lo": (0, 0), "eth0": (0, 0)}. `no_disks`/`no_network` give None (a
    platform that cannot read them, e.g. disks under Wine)."""
    if cores is None:
        cores = [cpu_times(idle=100.0), cpu_times(idle=100.0)]
    if disks is None:
        disks = {"vda": (0, 0)}
    if network is None:
        network = {"lo": (0, 0), "eth0": (0, 0)}
    return RawSample(
        monotonic=monotonic,
        wall=wall,
        cpu_cores=cores,
        memory_total_bytes=memory_total_bytes,
        memory_available_bytes=memory_available_bytes,
        disks=None if no_disks else {name: DiskCounters(*pair) for name, pair in disks.items()},
        network=None if no_network else {name: NetCounters(*pair) for name, pair in network.items()},
    )


def snapshot(
    *,
    seq: int = 1,
    wall: float = WALL,
    host: str = "client-42",
    interval_seconds: float = 2.0,
    cpu_percent: float = 12.5,
    disks: dict[str, tuple[float, float]] | None = None,
    interfaces: dict[str, tuple[float, float]] | None = None,
) -> Snapshot:
    """A schema-1 Snapshot as the sampler would build it: `disks` maps a device to
    (read, write) bytes/s (default {"vda": (0.0, 40960.0)}), `interfaces` an interface
    to (receive, transmit) bytes/s (default lo and eth0); totals are the sums (loopback
    excluded), as in the contract."""
    if disks is None:
        disks = {"vda": (0.0, 40960.0)}
    if interfaces is None:
        interfaces = {"lo": (50.0, 50.0), "eth0": (1200.0, 800.0)}
    counted = {name: pair for name, pair in interfaces.items() if name != "lo"}
    total = 16 * GIB
    available = 12 * GIB
    return Snapshot(
        schema=SCHEMA,
        seq=seq,
        time=format_time(wall),
        host=host,
        interval_seconds=interval_seconds,
        cpu=Cpu(usage_percent=cpu_percent, cores=[cpu_percent, cpu_percent]),
        memory=Memory(
            total_bytes=total,
            available_bytes=available,
            used_bytes=total - available,
            used_percent=round(100.0 * (total - available) / total, 1),
        ),
        disk=Disk(
            read_bytes_per_second=sum(r for r, _ in disks.values()) if disks else None,
            write_bytes_per_second=sum(w for _, w in disks.values()) if disks else None,
            devices={
                name: DiskRates(read_bytes_per_second=r, write_bytes_per_second=w) for name, (r, w) in disks.items()
            },
        ),
        network=Network(
            receive_bytes_per_second=sum(r for r, _ in counted.values()) if counted else None,
            transmit_bytes_per_second=sum(t for _, t in counted.values()) if counted else None,
            interfaces={
                name: NetRates(receive_bytes_per_second=r, transmit_bytes_per_second=t)
                for name, (r, t) in interfaces.items()
            },
        ),
    )


def counters(
    *,
    cores: list[dict[str, float]] | None = None,
    disks: dict[str, tuple[int, int]] | None = None,
    network: dict[str, tuple[int, int]] | None = None,
) -> Counters:
    """Raw cumulative Counters: two cores, vda, lo and eth0 unless given."""
    return Counters(
        cpu=cores if cores is not None else [cpu_times(user=10.0, idle=90.0), cpu_times(user=20.0, idle=80.0)],
        disk=disks if disks is not None else {"vda": (4096, 81920)},
        network=network if network is not None else {"lo": (100, 100), "eth0": (2400, 1600)},
    )
