"""Spool records → remote write series and requests (pure; no I/O, no clock).

Every contract gauge and counter (self-metrics excluded), one sample per series per
snapshot at the snapshot's time in ms. Labels: `__name__`, `job`, `instance` (the host
name), `[agent].labels` and the metric's own, sorted bytewise, never repeated, empty
values left out. Counters come from the raw Counters stored beside each snapshot, so a
replay sends exactly what a live push would have. A series present in one snapshot and
missing from the next gets one staleness marker at the next snapshot's time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from argus_telemetry.export import prompb
from argus_telemetry.snapshot.model import Counters, Snapshot, decode_counters, decode_snapshot, time_ns
from argus_telemetry.spool.base import SpoolRecord

METRIC_LABELS = ("cpu", "device", "interface", "mode")
"""Label names the metrics carry themselves; `[agent].labels` may not reuse them."""

RESERVED_LABELS = ("job", "instance", *METRIC_LABELS)

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
"""(metric name, the metric's own labels): one series of one host."""

Point = tuple[SeriesKey, float]

_LABEL_CACHE_LIMIT = 20_000  # churning interfaces (veth*) must not grow memory forever


def snapshot_points(snapshot: Snapshot, counters: Counters) -> list[Point]:
    """Every contract series of one snapshot with its value; rates that could not be
    computed (None) are left out, as in the Prometheus exposition."""
    points: list[Point] = []
    add = points.append
    if snapshot.cpu.usage_percent is not None:
        add((("argus_cpu_usage_ratio", ()), snapshot.cpu.usage_percent / 100.0))
    memory = snapshot.memory
    add((("argus_memory_total_bytes", ()), float(memory.total_bytes)))
    add((("argus_memory_available_bytes", ()), float(memory.available_bytes)))
    add((("argus_memory_used_ratio", ()), memory.used_percent / 100.0))
    for device, disk in snapshot.disk.devices.items():
        labels = (("device", device),)
        if disk.read_bytes_per_second is not None:
            add((("argus_disk_read_bytes_per_second", labels), disk.read_bytes_per_second))
        if disk.write_bytes_per_second is not None:
            add((("argus_disk_write_bytes_per_second", labels), disk.write_bytes_per_second))
    for interface, net in snapshot.network.interfaces.items():
        labels = (("interface", interface),)
        if net.receive_bytes_per_second is not None:
            add((("argus_network_receive_bytes_per_second", labels), net.receive_bytes_per_second))
        if net.transmit_bytes_per_second is not None:
            add((("argus_network_transmit_bytes_per_second", labels), net.transmit_bytes_per_second))
    add((("argus_snapshot_timestamp_seconds", ()), time_ns(snapshot.time) / 1e9))
    for index, modes in enumerate(counters.cpu):
        cpu = str(index)
        for mode, seconds in modes.items():
            add((("argus_cpu_seconds_total", (("cpu", cpu), ("mode", mode))), float(seconds)))
    for device, (read, written) in counters.disk.items():
        labels = (("device", device),)
        add((("argus_disk_read_bytes_total", labels), float(read)))
        add((("argus_disk_written_bytes_total", labels), float(written)))
    for interface, (received, transmitted) in counters.network.items():
        labels = (("interface", interface),)
        add((("argus_network_receive_bytes_total", labels), float(received)))
        add((("argus_network_transmit_bytes_total", labels), float(transmitted)))
    return points


def timestamp_ms(snapshot: Snapshot) -> int:
    """The snapshot's time in whole milliseconds (exact: no float rounding)."""
    return time_ns(snapshot.time) // 1_000_000


@dataclass(frozen=True, slots=True)
class EncodedRequest:
    """One remote write request, ready to send (and to resend byte for byte).

    `body` is the uncompressed WriteRequest; `stale_after` is the set of series the
    last snapshot in it carried (the staleness state once it is delivered)."""

    first_seq: int
    last_seq: int
    snapshots: int
    samples: int
    body: bytes
    stale_after: frozenset[SeriesKey]


class SeriesEncoder:
    """Turns spool records into requests of whole snapshots, at most `max_samples`
    samples each (a single larger snapshot goes alone). Keeps the encoded label set of
    each series, which never changes."""

    def __init__(self, *, job: str, instance: str, labels: Mapping[str, str], max_samples: int) -> None:
        base = {"job": job, "instance": instance, **labels}
        self._base = {name: value for name, value in base.items() if value}
        self.max_samples = max_samples
        self._cache: dict[SeriesKey, bytes] = {}

    def label_set(self, key: SeriesKey) -> list[tuple[str, str]]:
        """The full, sorted label set of a series (what goes on the wire)."""
        name, own = key
        merged = {**self._base, **{k: v for k, v in own if v}, "__name__": name}
        return sorted(merged.items(), key=lambda item: item[0].encode())

    def _encoded_labels(self, key: SeriesKey) -> bytes:
        encoded = self._cache.get(key)
        if encoded is None:
            if len(self._cache) >= _LABEL_CACHE_LIMIT:
                self._cache.clear()
            encoded = self._cache[key] = prompb.encode_labels(self.label_set(key))
        return encoded

    def plan(
        self,
        records: Sequence[SpoolRecord],
        stale_before: frozenset[SeriesKey],
        *,
        oldest_ms: int | None = None,
        first_only: bool = False,
    ) -> Plan:
        """Requests covering `records` in order. `stale_before`: the series of the
        snapshot sent just before them (they get a marker if they are gone). Snapshots
        older than `oldest_ms` are left out and counted in `Plan.too_old`. `first_only`:
        stop once the first request is full (`Plan.consumed` says how far it got)."""
        requests: list[EncodedRequest] = []
        series: dict[SeriesKey, list[prompb.Sample]] = {}
        first_seq = last_seq = snapshots = samples = consumed = too_old = 0
        previous = stale_before
        for record in records:
            snapshot = decode_snapshot(record.snapshot_json)
            stamp = timestamp_ms(snapshot)
            if oldest_ms is not None and stamp < oldest_ms:
                if first_only and snapshots:
                    break  # a too-old snapshot after newer ones (clock step): next request
                too_old += 1
                consumed += 1
                continue
            points = snapshot_points(snapshot, decode_counters(record.counters))
            current = frozenset(key for key, _ in points)
            gone = previous - current
            count = len(points) + len(gone)
            if snapshots and samples + count > self.max_samples:
                requests.append(self._request(first_seq, last_seq, snapshots, samples, series, previous))
                if first_only:
                    return Plan(requests, consumed, too_old)
                series = {}
                snapshots = samples = 0
            if not snapshots:
                first_seq = record.seq
            for key in sorted(gone):
                series.setdefault(key, []).append((prompb.STALE_NAN, stamp))
            for key, value in points:
                series.setdefault(key, []).append((value, stamp))
            last_seq = record.seq
            snapshots += 1
            samples += count
            consumed += 1
            previous = current
        if snapshots:
            requests.append(self._request(first_seq, last_seq, snapshots, samples, series, previous))
        return Plan(requests, consumed, too_old)

    def _request(  # noqa: PLR0917 -- private, called from plan() only, with the loop state
        self,
        first_seq: int,
        last_seq: int,
        snapshots: int,
        samples: int,
        series: dict[SeriesKey, list[prompb.Sample]],
        stale_after: frozenset[SeriesKey],
    ) -> EncodedRequest:
        body = b"".join(prompb.encode_series(self._encoded_labels(key), points) for key, points in series.items())
        return EncodedRequest(first_seq, last_seq, snapshots, samples, body, stale_after)


@dataclass(frozen=True, slots=True)
class Plan:
    """What `SeriesEncoder.plan` made of some records: the requests, how many records
    it went through (`consumed`) and how many of those were too old to send."""

    requests: list[EncodedRequest]
    consumed: int
    too_old: int


def decode_records(records: Iterable[SpoolRecord]) -> list[tuple[Snapshot, Counters]]:
    """The snapshots and counters of `records` (tests and tools)."""
    return [(decode_snapshot(r.snapshot_json), decode_counters(r.counters)) for r in records]
