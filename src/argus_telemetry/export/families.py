"""Snapshot + Counters + health + spool stats → Prometheus metric families.

Shared by the Pushgateway push and the /metrics endpoint. Families are built afresh
from the snapshot they show (custom collectors on registries of their own, no global
state), so a device or interface that vanished from the snapshot vanishes from the
exposition too. Names, types and labels are the contract's.

`Exposition` renders in two parts, each with prometheus_client's `generate_latest` on
its own registry: the snapshot's families (rendered once per snapshot, then reused by
every push and scrape of that snapshot) and the self-metrics (re-rendered only when
the spool stats or an exporter's health counters changed). The text is their
concatenation: each family appears once, in the same order as one registry would give.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

from argus_telemetry.health import EXPORTERS, Health
from argus_telemetry.snapshot.model import Counters, Snapshot, parse_time
from argus_telemetry.spool.base import DROP_REASONS, SpoolStats


@dataclass(frozen=True, slots=True)
class MetricsInput:
    """Everything one exposition shows. `snapshot`/`counters` are None before the
    first snapshot (then only the self-metrics are exposed)."""

    version: str
    snapshot: Snapshot | None
    counters: Counters | None
    health: Health
    stats: SpoolStats


class ArgusCollector:
    """A prometheus_client collector over one MetricsInput."""

    def __init__(self, data: MetricsInput) -> None:
        self._data = data

    def collect(self) -> Iterator[Metric]:
        data = self._data
        if data.snapshot is not None:
            yield from _snapshot_families(data.snapshot)
        if data.counters is not None:
            yield from _counter_families(data.counters)
        yield from _self_families(data)


class _PartCollector:
    """A collector whose families come from a settable function (one registry, reused)."""

    def __init__(self) -> None:
        self.families: Callable[[], Iterator[Metric]] = _nothing

    def collect(self) -> Iterator[Metric]:
        return self.families()


class Exposition:
    """Renders MetricsInput to the text exposition (format 0.0.4), caching each part
    while its input is unchanged: the snapshot part by the identity of the snapshot and
    counters objects (the agent replaces them at every tick), the self-metrics part by
    the values it shows. One per agent, shared by the Pushgateway push and /metrics."""

    def __init__(self) -> None:
        self._snapshot_part = _PartCollector()
        self._snapshot_registry = CollectorRegistry(auto_describe=False)
        self._snapshot_registry.register(self._snapshot_part)
        self._self_part = _PartCollector()
        self._self_registry = CollectorRegistry(auto_describe=False)
        self._self_registry.register(self._self_part)
        self._shown: tuple[Snapshot | None, Counters | None] = (None, None)
        self._snapshot_text = b""
        self._self_key: tuple[object, ...] | None = None
        self._self_text = b""
        self.renders = 0  # parts rendered (the bench and tests read it)

    def render(self, data: MetricsInput) -> bytes:
        from prometheus_client.exposition import generate_latest

        shown = self._shown
        if self.renders == 0 or data.snapshot is not shown[0] or data.counters is not shown[1]:
            self._snapshot_part.families = lambda: _data_families(data)
            try:
                self._snapshot_text = generate_latest(self._snapshot_registry)
            finally:
                self._snapshot_part.families = _nothing
            self._shown = (data.snapshot, data.counters)
            self.renders += 1
        key = _self_key(data)
        if key != self._self_key:
            self._self_part.families = lambda: _self_families(data)
            try:
                self._self_text = generate_latest(self._self_registry)
            finally:
                self._self_part.families = _nothing
            self._self_key = key
            self.renders += 1
        return self._snapshot_text + self._self_text


def _nothing() -> Iterator[Metric]:
    return iter(())


def _data_families(data: MetricsInput) -> Iterator[Metric]:
    if data.snapshot is not None:
        yield from _snapshot_families(data.snapshot)
    if data.counters is not None:
        yield from _counter_families(data.counters)


def _self_key(data: MetricsInput) -> tuple[object, ...]:
    """Everything `_self_families` shows, comparable with ==."""
    stats = data.stats
    exporters = tuple(
        (record.success_total, record.failure_total, record.last_success_wall) if record else None
        for record in (data.health.exporters.get(name) for name in EXPORTERS)
    )
    dropped = tuple(stats.dropped.get(reason, 0) for reason in DROP_REASONS)
    return (data.version, stats.rows, stats.bytes, dropped, exporters)


def build_registry(data: MetricsInput) -> CollectorRegistry:
    """A registry holding only the families of `data`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ArgusCollector(data))
    return registry


def render(data: MetricsInput) -> bytes:
    """The text exposition (format 0.0.4) of `data`, from one registry (uncached)."""
    from prometheus_client.exposition import generate_latest

    return generate_latest(build_registry(data))


def _gauge(name: str, documentation: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, documentation, value=value)


def _snapshot_families(snapshot: Snapshot) -> Iterator[Metric]:
    usage = snapshot.cpu.usage_percent
    yield from _gauge("argus_cpu_usage_ratio", "CPU busy ratio over the last interval (0-1).", _ratio(usage))
    memory = snapshot.memory
    yield GaugeMetricFamily("argus_memory_total_bytes", "Physical memory.", value=memory.total_bytes)
    yield GaugeMetricFamily(
        "argus_memory_available_bytes", "Memory the OS can still give programs.", value=memory.available_bytes
    )
    yield GaugeMetricFamily(
        "argus_memory_used_ratio", "Used memory ratio, (total - available) / total.", value=memory.used_percent / 100.0
    )
    read = GaugeMetricFamily(
        "argus_disk_read_bytes_per_second", "Bytes read per second over the last interval.", labels=["device"]
    )
    write = GaugeMetricFamily(
        "argus_disk_write_bytes_per_second", "Bytes written per second over the last interval.", labels=["device"]
    )
    for device, rates in sorted(snapshot.disk.devices.items()):
        if rates.read_bytes_per_second is not None:
            read.add_metric([device], rates.read_bytes_per_second)
        if rates.write_bytes_per_second is not None:
            write.add_metric([device], rates.write_bytes_per_second)
    receive = GaugeMetricFamily(
        "argus_network_receive_bytes_per_second",
        "Bytes received per second over the last interval.",
        labels=["interface"],
    )
    transmit = GaugeMetricFamily(
        "argus_network_transmit_bytes_per_second",
        "Bytes transmitted per second over the last interval.",
        labels=["interface"],
    )
    for interface, net in sorted(snapshot.network.interfaces.items()):
        if net.receive_bytes_per_second is not None:
            receive.add_metric([interface], net.receive_bytes_per_second)
        if net.transmit_bytes_per_second is not None:
            transmit.add_metric([interface], net.transmit_bytes_per_second)
    yield from (read, write, receive, transmit)
    yield GaugeMetricFamily(
        "argus_snapshot_timestamp_seconds",
        "Time of the latest snapshot (Unix seconds).",
        value=parse_time(snapshot.time),
    )


def _counter_families(counters: Counters) -> Iterator[Metric]:
    cpu = CounterMetricFamily(
        "argus_cpu_seconds", "Seconds the CPUs spent in each mode (as node_exporter).", labels=["cpu", "mode"]
    )
    for index, modes in enumerate(counters.cpu):
        for mode, seconds in sorted(modes.items()):
            cpu.add_metric([str(index), mode], seconds)
    read = CounterMetricFamily("argus_disk_read_bytes", "Bytes read from the device since boot.", labels=["device"])
    written = CounterMetricFamily(
        "argus_disk_written_bytes", "Bytes written to the device since boot.", labels=["device"]
    )
    for device, (read_bytes, written_bytes) in sorted(counters.disk.items()):
        read.add_metric([device], read_bytes)
        written.add_metric([device], written_bytes)
    receive = CounterMetricFamily(
        "argus_network_receive_bytes", "Bytes received by the interface since boot.", labels=["interface"]
    )
    transmit = CounterMetricFamily(
        "argus_network_transmit_bytes", "Bytes transmitted by the interface since boot.", labels=["interface"]
    )
    for interface, (received, transmitted) in sorted(counters.network.items()):
        receive.add_metric([interface], received)
        transmit.add_metric([interface], transmitted)
    yield from (cpu, read, written, receive, transmit)


def _self_families(data: MetricsInput) -> Iterator[Metric]:
    info = GaugeMetricFamily("argus_agent_info", "Argus agent version (always 1).", labels=["version"])
    info.add_metric([data.version], 1.0)
    yield info
    yield GaugeMetricFamily("argus_spool_snapshots", "Snapshots held in the spool.", value=data.stats.rows)
    yield GaugeMetricFamily("argus_spool_bytes", "Bytes held in the spool.", value=data.stats.bytes)
    dropped = CounterMetricFamily(
        "argus_spool_dropped", "Snapshots dropped before delivery, by reason.", labels=["reason"]
    )
    for reason in DROP_REASONS:
        dropped.add_metric([reason], data.stats.dropped.get(reason, 0))
    yield dropped
    success = CounterMetricFamily("argus_export_success", "Successful export requests.", labels=["exporter"])
    failures = CounterMetricFamily("argus_export_failures", "Failed export requests.", labels=["exporter"])
    last = GaugeMetricFamily(
        "argus_export_last_success_timestamp_seconds",
        "Time of the last successful export (Unix seconds; 0 = never).",
        labels=["exporter"],
    )
    for name in EXPORTERS:
        record = data.health.exporters.get(name)
        success.add_metric([name], record.success_total if record else 0)
        failures.add_metric([name], record.failure_total if record else 0)
        last.add_metric([name], (record.last_success_wall or 0.0) if record else 0.0)
    yield from (success, failures, last)


def _ratio(percent: float | None) -> float | None:
    return None if percent is None else percent / 100.0
