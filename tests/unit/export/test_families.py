"""Snapshot + counters + health + spool stats → the contract's metric families, checked
by parsing our exposition back with prometheus_client's own text parser."""

from __future__ import annotations

import msgspec
from prometheus_client.parser import text_string_to_metric_families
from tests.support import factories

from argus_telemetry.export.families import Exposition, MetricsInput, render
from argus_telemetry.health import Health
from argus_telemetry.snapshot.model import Cpu
from argus_telemetry.spool.base import SpoolStats


def _stats(**dropped: int) -> SpoolStats:
    return SpoolStats(
        path="/x/spool.db",
        rows=7,
        bytes=4096,
        oldest_seq=1,
        newest_seq=7,
        oldest_wall=None,
        newest_wall=None,
        high_water_seq=7,
        backlog={"loki": 3},
        dropped={"max_bytes": 0, "rejected": 2, **dropped},
    )


def _parse(data: MetricsInput) -> dict[str, tuple[str, dict[tuple[tuple[str, str], ...], float]]]:
    families = {}
    for family in text_string_to_metric_families(render(data).decode()):
        samples = {tuple(sorted(s.labels.items())): s.value for s in family.samples}
        families[family.name] = (family.type, samples)
    return families


def test_every_contract_metric_with_type_labels_and_value() -> None:
    """All contract metrics appear with the right type, labels and value."""
    health = Health(["loki", "pushgateway"])
    health.record_success("loki", 1_796_400_010.0)
    health.record_failure("pushgateway", "down", 1_796_400_011.0)
    snapshot = factories.snapshot(
        cpu_percent=25.0, disks={"vda": (10.0, 20.0)}, interfaces={"lo": (1.0, 2.0), "eth0": (3.0, 4.0)}
    )
    counters = factories.counters(
        cores=[{"user": 1.5, "idle": 8.0}], disks={"vda": (100, 200)}, network={"eth0": (300, 400)}
    )
    got = _parse(MetricsInput("1.2.3", snapshot, counters, health, _stats()))
    assert got["argus_cpu_usage_ratio"] == ("gauge", {(): 0.25})
    assert got["argus_memory_total_bytes"] == ("gauge", {(): float(16 * 1024**3)})
    assert got["argus_memory_available_bytes"] == ("gauge", {(): float(12 * 1024**3)})
    assert got["argus_memory_used_ratio"] == ("gauge", {(): 0.25})
    assert got["argus_disk_read_bytes_per_second"] == ("gauge", {(("device", "vda"),): 10.0})
    assert got["argus_disk_write_bytes_per_second"] == ("gauge", {(("device", "vda"),): 20.0})
    assert got["argus_network_receive_bytes_per_second"] == (
        "gauge",
        {(("interface", "eth0"),): 3.0, (("interface", "lo"),): 1.0},
    )
    assert got["argus_network_transmit_bytes_per_second"][1][(("interface", "lo"),)] == 2.0
    assert got["argus_snapshot_timestamp_seconds"] == ("gauge", {(): factories.WALL})
    assert got["argus_cpu_seconds"] == (
        "counter",
        {(("cpu", "0"), ("mode", "idle")): 8.0, (("cpu", "0"), ("mode", "user")): 1.5},
    )
    assert got["argus_disk_read_bytes"] == ("counter", {(("device", "vda"),): 100.0})
    assert got["argus_disk_written_bytes"] == ("counter", {(("device", "vda"),): 200.0})
    assert got["argus_network_receive_bytes"] == ("counter", {(("interface", "eth0"),): 300.0})
    assert got["argus_network_transmit_bytes"] == ("counter", {(("interface", "eth0"),): 400.0})
    assert got["argus_agent_info"] == ("gauge", {(("version", "1.2.3"),): 1.0})
    assert got["argus_spool_snapshots"] == ("gauge", {(): 7.0})
    assert got["argus_spool_bytes"] == ("gauge", {(): 4096.0})
    assert got["argus_spool_dropped"] == (
        "counter",
        {
            (("reason", "max_bytes"),): 0.0,
            (("reason", "max_age"),): 0.0,
            (("reason", "corrupt"),): 0.0,
            (("reason", "disk_full"),): 0.0,
            (("reason", "rejected"),): 2.0,
            (("reason", "too_old"),): 0.0,
        },
    )
    assert got["argus_export_success"] == (
        "counter",
        {(("exporter", "pushgateway"),): 0.0, (("exporter", "loki"),): 1.0, (("exporter", "remote_write"),): 0.0},
    )
    assert got["argus_export_failures"][1] == {
        (("exporter", "pushgateway"),): 1.0,
        (("exporter", "loki"),): 0.0,
        (("exporter", "remote_write"),): 0.0,
    }
    assert got["argus_export_last_success_timestamp_seconds"][1][(("exporter", "loki"),)] == 1_796_400_010.0
    assert got["argus_export_last_success_timestamp_seconds"][1][(("exporter", "pushgateway"),)] == 0.0


def test_counter_samples_are_named_with_total_suffix() -> None:
    """The exposition's counter samples carry the contract's `_total` names."""
    text = render(MetricsInput("1", factories.snapshot(), factories.counters(), Health([]), _stats())).decode()
    for name in (
        "argus_cpu_seconds_total{",
        "argus_disk_read_bytes_total{",
        "argus_disk_written_bytes_total{",
        "argus_network_receive_bytes_total{",
        "argus_network_transmit_bytes_total{",
        'argus_spool_dropped_total{reason="max_bytes"} 0.0',
        'argus_export_success_total{exporter="remote_write"} 0.0',
    ):
        assert name in text


def test_missing_rates_are_omitted_and_vanished_devices_vanish() -> None:
    """A rate that could not be computed is left out; a device absent from the snapshot
    has no series; before the first snapshot only the self-metrics exist."""
    snapshot = factories.snapshot(cpu_percent=10.0, disks={}, interfaces={"eth0": (1.0, 2.0)})
    snapshot = msgspec.structs.replace(snapshot, cpu=Cpu())
    got = _parse(MetricsInput("1", snapshot, factories.counters(disks={}), Health([]), _stats()))
    assert "argus_cpu_usage_ratio" not in got
    assert got["argus_disk_read_bytes_per_second"] == ("gauge", {})
    assert got["argus_disk_read_bytes"] == ("counter", {})
    empty = _parse(MetricsInput("1", None, None, Health([]), _stats()))
    assert sorted(empty) == [
        "argus_agent_info",
        "argus_export_failures",
        "argus_export_last_success_timestamp_seconds",
        "argus_export_success",
        "argus_spool_bytes",
        "argus_spool_dropped",
        "argus_spool_snapshots",
    ]


def test_exposition_reuses_parts_until_their_input_changes() -> None:
    """`Exposition` gives byte-for-byte the uncached `render` of the same input; it
    re-renders the snapshot part only for a new snapshot and the self-metrics only when
    a value they show changed; a device that vanished from the new snapshot is gone."""
    exposition = Exposition()
    health = Health(["pushgateway"])
    first = factories.snapshot(seq=1, disks={"vda": (1.0, 2.0), "vdb": (3.0, 4.0)})
    counters = factories.counters()
    data = MetricsInput("1", first, counters, health, _stats())
    assert exposition.render(data) == render(data)
    assert b'argus_disk_read_bytes_per_second{device="vdb"} 3.0' in render(data)
    assert exposition.renders == 2
    assert exposition.render(MetricsInput("1", first, counters, health, _stats())) == render(data)
    assert exposition.renders == 2
    health.record_success("pushgateway", 1_800_000_000.0)
    again = MetricsInput("1", first, counters, health, _stats())
    assert exposition.render(again) == render(again)
    assert exposition.renders == 3
    second = factories.snapshot(seq=2, disks={"vda": (5.0, 6.0)})
    later = MetricsInput("1", second, counters, health, _stats(max_age=4))
    text = exposition.render(later)
    assert text == render(later)
    assert exposition.renders == 5
    assert b"vdb" not in text
    assert b'argus_spool_dropped_total{reason="max_age"} 4.0' in text
