"""Remote write series: names, labels, values, timestamps, stale markers and batching."""

from __future__ import annotations

import math
import struct

from prometheus_client.core import Metric
from tests.support import factories
from tests.support.rw_fake import decode

from argus_telemetry.export import prompb
from argus_telemetry.export.families import MetricsInput, build_registry
from argus_telemetry.export.rw_series import SeriesEncoder, snapshot_points, timestamp_ms
from argus_telemetry.health import Health
from argus_telemetry.snapshot.model import encode_counters, encode_snapshot
from argus_telemetry.spool.base import SpoolRecord, SpoolStats

SELF_METRICS = {
    "argus_agent_info",
    "argus_spool_snapshots",
    "argus_spool_bytes",
    "argus_spool_dropped",
    "argus_export_success",
    "argus_export_failures",
    "argus_export_last_success_timestamp_seconds",
}


def record(seq: int, **kwargs: object) -> SpoolRecord:
    """A spool record of factory snapshot `seq`, two seconds apart."""
    wall = factories.WALL + 2.0 * seq
    snap_args = {k: v for k, v in kwargs.items() if k in ("disks", "interfaces", "cpu_percent")}
    counter_args = {k.removeprefix("c_"): v for k, v in kwargs.items() if k.startswith("c_")}
    snap = factories.snapshot(seq=seq, wall=wall, **snap_args)  # type: ignore[arg-type]
    counters = factories.counters(**counter_args)  # type: ignore[arg-type]
    return SpoolRecord(seq=seq, wall=wall, snapshot_json=encode_snapshot(snap), counters=encode_counters(counters))


def encoder(max_samples: int = 2000) -> SeriesEncoder:
    return SeriesEncoder(job="argus", instance="client-42", labels={"region": "eu-west"}, max_samples=max_samples)


def exposition_samples() -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    """(name, labels, value) of the Prometheus exposition of the factory snapshot."""
    data = MetricsInput(
        version="1.0",
        snapshot=factories.snapshot(seq=1, wall=factories.WALL + 2.0),
        counters=factories.counters(),
        health=Health([]),
        stats=SpoolStats("", 0, 0, None, None, None, None, 0, {}, {}),
    )
    out = set()
    family: Metric
    for family in build_registry(data).collect():
        if family.name in SELF_METRICS:
            continue
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            out.add((sample.name, tuple(sorted(sample.labels.items())), float(sample.value)))
    return out


def test_series_match_the_prometheus_exposition() -> None:
    """Remote write carries exactly the series and values of the Pushgateway/metrics
    exposition for the same snapshot, self-metrics excluded (37 series here)."""
    points = snapshot_points(factories.snapshot(seq=1, wall=factories.WALL + 2.0), factories.counters())
    ours = {(name, tuple(sorted(labels)), value) for (name, labels), value in points}
    assert ours == exposition_samples()
    assert len(points) == 37


def test_request_labels_values_and_timestamps() -> None:
    """Each series carries __name__, instance, job, [agent].labels and its own labels,
    sorted bytewise; samples are at the snapshot's time in ms."""
    request = encoder().plan([record(1), record(2)], frozenset()).requests[0]
    series = {tuple(labels): samples for labels, samples in decode(request.body)}
    ms = int((factories.WALL + 2.0) * 1000)
    assert series[
        (
            ("__name__", "argus_cpu_seconds_total"),
            ("cpu", "1"),
            ("instance", "client-42"),
            ("job", "argus"),
            ("mode", "user"),
            ("region", "eu-west"),
        )
    ] == [(20.0, ms), (20.0, ms + 2000)]
    assert series[
        (("__name__", "argus_cpu_usage_ratio"), ("instance", "client-42"), ("job", "argus"), ("region", "eu-west"))
    ] == [(0.125, ms), (0.125, ms + 2000)]
    assert (request.first_seq, request.last_seq, request.snapshots, request.samples) == (1, 2, 2, 74)
    for labels in series:
        names = [name.encode() for name, _ in labels]
        assert names == sorted(names)
        assert len(set(names)) == len(names)


def test_timestamp_is_exact_milliseconds() -> None:
    """The sample time is the snapshot time truncated to ms, without float rounding."""
    snap = factories.snapshot(wall=1_796_400_000.123456)
    assert timestamp_ms(snap) == 1_796_400_000_123


def test_vanished_interface_gets_one_stale_marker() -> None:
    """An interface missing from the next snapshot gets StaleNaN once, at that snapshot's
    time, in every one of its series; later snapshots send nothing for it."""
    small = {"interfaces": {"lo": (1.0, 1.0)}, "c_network": {"lo": (5, 5)}}
    records = [record(1), record(2, **small), record(3, **small)]
    series = {
        tuple(labels): samples for labels, samples in decode(encoder().plan(records, frozenset()).requests[0].body)
    }
    key = (
        ("__name__", "argus_network_receive_bytes_total"),
        ("instance", "client-42"),
        ("interface", "eth0"),
        ("job", "argus"),
        ("region", "eu-west"),
    )
    ms = int((factories.WALL + 2.0) * 1000)
    assert series[key][0] == (2400.0, ms)
    assert len(series[key]) == 2
    stale_value, stale_ms = series[key][1]
    assert stale_ms == ms + 2000
    assert struct.pack("<d", stale_value) == prompb.STALE_NAN_BITS
    stale = [k for k, samples in series.items() if any(math.isnan(v) for v, _ in samples)]
    assert len(stale) == 4  # eth0: two rates, two counters


def test_stale_state_crosses_requests() -> None:
    """A series gone at the start of the next request gets its marker there."""
    enc = encoder()
    first = enc.plan([record(1)], frozenset()).requests[0]
    second = enc.plan([record(2, interfaces={}, c_network={})], first.stale_after).requests[0]
    stale = [labels for labels, samples in decode(second.body) if math.isnan(samples[0][0])]
    assert len(stale) == 8  # lo and eth0: two rates and two counters each
    assert second.samples == 37 - 8 + 8


def test_batches_hold_whole_snapshots_up_to_the_limit() -> None:
    """With 100 samples per request and 37 per snapshot, 5 snapshots go as 2+2+1;
    a limit below one snapshot still sends each snapshot alone."""
    records = [record(seq) for seq in range(1, 6)]
    plan = encoder(100).plan(records, frozenset()).requests
    assert [(r.first_seq, r.last_seq, r.samples) for r in plan] == [(1, 2, 74), (3, 4, 74), (5, 5, 37)]
    tiny = encoder(1).plan(records, frozenset()).requests
    assert [(r.first_seq, r.last_seq) for r in tiny] == [(s, s) for s in range(1, 6)]


def test_same_records_encode_to_identical_bytes() -> None:
    """Encoding is deterministic, so a re-planned batch is byte-identical."""
    records = [record(seq) for seq in range(1, 4)]
    assert encoder().plan(records, frozenset()) == encoder().plan(records, frozenset())


def test_too_old_snapshots_are_left_out_and_counted() -> None:
    """Snapshots older than the cut-off are not sent; they count as consumed and too old."""
    records = [record(seq) for seq in range(1, 6)]
    oldest_ms = int((factories.WALL + 2.0 * 3) * 1000)
    plan = encoder().plan(records, frozenset(), oldest_ms=oldest_ms)
    assert (plan.consumed, plan.too_old) == (5, 2)
    assert [(r.first_seq, r.last_seq, r.snapshots) for r in plan.requests] == [(3, 5, 3)]
    everything_old = encoder().plan(records, frozenset(), oldest_ms=oldest_ms * 2)
    assert (everything_old.requests, everything_old.consumed, everything_old.too_old) == ([], 5, 5)


def test_first_only_stops_after_the_first_request() -> None:
    """`first_only` plans one request and says how many records it consumed."""
    records = [record(seq) for seq in range(1, 6)]
    plan = encoder(100).plan(records, frozenset(), first_only=True)
    assert [(r.first_seq, r.last_seq) for r in plan.requests] == [(1, 2)]
    assert (plan.consumed, plan.too_old) == (2, 0)
