"""remote_write against real receivers from Debian: VictoriaMetrics 1.79 and Prometheus
2.42 (--web.enable-remote-write-receiver), started on free loopback ports.

The exporter runs in-process through the shared delivery loop on a FakeClock whose wall
time is the real time (the receivers judge sample age by their own clocks and data)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.fake_clock import FakeClock
from tests.support.rw_host import Rig, append_snapshots, build_rig, wait_until
from tests.support.rw_servers import Prometheus, VictoriaMetrics

from argus_telemetry.export.rw_series import SeriesEncoder, snapshot_points, timestamp_ms
from argus_telemetry.snapshot.model import Counters, Snapshot

SERIES_PER_SNAPSHOT = 37
HOUR = 3600.0
THREE_HOURS = 3 * 3600 // 2  # snapshots at 2 s


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    """One VictoriaMetrics for the session; tests use distinct `instance` labels."""
    server = VictoriaMetrics(tmp_path_factory.mktemp("victoria"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    """A fresh Prometheus per test: its out-of-bounds window follows its newest sample."""
    server = Prometheus(tmp_path / "prometheus")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def rigs() -> AsyncIterator[list[Rig]]:
    made: list[Rig] = []
    yield made
    for rig in made:
        await rig.close()


def expected(
    made: list[tuple[Snapshot, Counters]], instance: str
) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
    """Full label set → [(timestamp ms, value)] of what `made` must produce."""
    encoder = SeriesEncoder(job="argus", instance=instance, labels={"region": "eu-west"}, max_samples=1)
    out: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
    for snapshot, counters in made:
        for key, value in snapshot_points(snapshot, counters):
            out.setdefault(tuple(encoder.label_set(key)), []).append((timestamp_ms(snapshot), value))
    return out


async def advance_until(rig: Rig, predicate: Callable[[], bool], *, timeout: float = 30.0) -> None:
    """Move the fake clock to each backoff deadline until `predicate` holds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            wakeup = rig.clock.next_wakeup
            if wakeup is not None:
                rig.clock.advance_to(wakeup)
            await asyncio.sleep(0.005)


async def vm_settled(
    server: VictoriaMetrics, match: str, samples: int, *, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """The export of `match` once it holds `samples` samples (VictoriaMetrics answers 204
    slightly before rows are searchable, even after force_flush)."""
    async with asyncio.timeout(timeout):
        while True:
            exported = await server.export(match)
            if sum(len(item["timestamps"]) for item in exported) >= samples:
                return exported
            await asyncio.sleep(0.05)


def approx(series: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]) -> object:
    """VictoriaMetrics stores a float as a decimal mantissa and exponent: equal to 1e-12."""
    return {
        key: [(stamp, pytest.approx(value, rel=1e-12)) for stamp, value in points] for key, points in series.items()
    }


def vm_series(exported: list[dict[str, object]]) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
    out = {}
    for item in exported:
        metric = item["metric"]
        assert isinstance(metric, dict)
        labels = tuple(sorted(metric.items(), key=lambda kv: kv[0].encode()))
        out[labels] = list(zip(item["timestamps"], item["values"], strict=True))  # type: ignore[call-overload]
    return out


async def test_victoria_metrics_round_trip(victoria: VictoriaMetrics, tmp_path: Path, rigs: list[Rig]) -> None:
    """Every contract series arrives in VictoriaMetrics with the right full label set,
    timestamps and values of the five snapshots sent."""
    clock = FakeClock(wall=time.time())
    rig = await build_rig(tmp_path / "spool", victoria.write_url, clock, hostname="vm-round-trip")
    rigs.append(rig)
    made = await append_snapshots(rig.host.spool, 1, 5, clock.wall() - 10.0, host="vm-round-trip")
    rig.start()
    await wait_until(lambda: rig.health.success_total == 1)
    got = vm_series(await vm_settled(victoria, '{instance="vm-round-trip"}', 5 * SERIES_PER_SNAPSHOT))
    assert got == approx(expected(made, "vm-round-trip"))
    assert len(got) == SERIES_PER_SNAPSHOT


async def test_victoria_metrics_down_then_up(tmp_path: Path, rigs: list[Rig]) -> None:
    """With VictoriaMetrics down, batches are retried; once it is back, every sample
    arrives, in order, counters exact, and the spool backlog is 0."""
    server = VictoriaMetrics(tmp_path / "vm")
    server.start()
    server.stop()
    try:
        clock = FakeClock(wall=time.time())
        rig = await build_rig(tmp_path / "spool", server.write_url, clock, hostname="vm-outage")
        rigs.append(rig)
        made = await append_snapshots(rig.host.spool, 1, 20, clock.wall() - 60.0, host="vm-outage")
        rig.start()
        await advance_until(rig, lambda: rig.health.failure_total >= 3)  # backoff 0.5 s, 1 s, 2 s
        assert await rig.backlog() == 20
        assert rig.health.success_total == 0
        server.start()
        await advance_until(rig, lambda: rig.health.success_total == 1)
        assert vm_series(await vm_settled(server, '{instance="vm-outage"}', 20 * SERIES_PER_SNAPSHOT)) == approx(
            expected(made, "vm-outage")
        )
        assert await rig.backlog() == 0
    finally:
        server.stop()


async def test_victoria_metrics_three_hour_backlog(victoria: VictoriaMetrics, tmp_path: Path, rigs: list[Rig]) -> None:
    """A 3 h backlog (5400 snapshots with old timestamps) arrives whole: every sample of
    every series, in order, counters exact."""
    clock = FakeClock(wall=time.time())
    rig = await build_rig(tmp_path / "spool", victoria.write_url, clock, hostname="vm-backlog")
    rigs.append(rig)
    made = await append_snapshots(rig.host.spool, 1, THREE_HOURS, clock.wall() - 3 * HOUR, host="vm-backlog")
    rig.start()
    await wait_until(lambda: rig.exporter.samples_sent == THREE_HOURS * SERIES_PER_SNAPSHOT, timeout=90)
    got = vm_series(await vm_settled(victoria, '{instance="vm-backlog"}', THREE_HOURS * SERIES_PER_SNAPSHOT))
    assert got == approx(expected(made, "vm-backlog"))
    assert await rig.backlog() == 0
    assert rig.health.failure_total == 0


async def _prometheus_values(server: Prometheus, instance: str, at: float) -> list[tuple[int, float]]:
    result = await server.samples(f'argus_disk_written_bytes_total{{instance="{instance}"}}', "4h", at)
    if not result:
        return []
    assert len(result) == 1
    return [(round(float(t) * 1000), float(v)) for t, v in result[0]["values"]]


async def test_prometheus_live(prometheus: Prometheus, tmp_path: Path, rigs: list[Rig]) -> None:
    """Live snapshots arrive in Prometheus with their values and timestamps."""
    clock = FakeClock(wall=time.time())
    rig = await build_rig(tmp_path / "spool", prometheus.write_url, clock, hostname="prom-live")
    rigs.append(rig)
    start = clock.wall() - 6.0
    await append_snapshots(rig.host.spool, 1, 3, start, host="prom-live")
    rig.start()
    await wait_until(lambda: rig.health.success_total == 1)
    ms = int(start * 1000)
    assert await _prometheus_values(prometheus, "prom-live", clock.wall()) == [
        (ms, 8192.0),
        (ms + 2000, 16384.0),
        (ms + 4000, 24576.0),
    ]


async def _head_at_now(server: Prometheus, tmp_path: Path, rigs: list[Rig], now: float) -> None:
    """Another host writes one current snapshot: Prometheus' head now ends at `now`."""
    clock = FakeClock(wall=now)
    other = await build_rig(tmp_path / "other", server.write_url, clock, hostname="other-host")
    rigs.append(other)
    await append_snapshots(other.host.spool, 1, 1, now, host="other-host")
    other.start()
    await wait_until(lambda: other.health.success_total == 1)


async def test_prometheus_three_hour_backlog_with_max_sample_age(
    prometheus: Prometheus, tmp_path: Path, rigs: list[Rig]
) -> None:
    """With max_sample_age 55m, the snapshots older than 55 min are counted too_old and
    never sent; the last 55 min arrive whole; a live snapshot after it arrives too."""
    now = time.time()
    await _head_at_now(prometheus, tmp_path, rigs, now)
    clock = FakeClock(wall=now)
    rig = await build_rig(
        tmp_path / "spool", prometheus.write_url, clock, hostname="prom-backlog", max_sample_age=55 * 60.0
    )
    rigs.append(rig)
    start = now - 3 * HOUR + 2.0
    made = await append_snapshots(rig.host.spool, 1, THREE_HOURS, start, host="prom-backlog")
    too_old = sum(1 for snap, _ in made if timestamp_ms(snap) < int((now - 55 * 60) * 1000))
    rig.start()
    await wait_until(lambda: rig.exporter.samples_sent == (THREE_HOURS - too_old) * SERIES_PER_SNAPSHOT, timeout=90)
    await wait_until(lambda: rig.health.success_total > 0)
    assert (await rig.dropped())["too_old"] == too_old
    assert (await rig.dropped())["rejected"] == 0
    values = await _prometheus_values(prometheus, "prom-backlog", now + 1)
    assert values == [(timestamp_ms(s), float(c.disk["vda"][1])) for s, c in made[too_old:]]
    assert await rig.backlog() == 0
    # not wedged: a new snapshot goes through
    await append_snapshots(rig.host.spool, THREE_HOURS + 1, 1, now + 2.0, host="prom-backlog")
    clock.advance(2.0)
    await rig.host.flush()
    await wait_until(lambda: rig.exporter.samples_sent == (THREE_HOURS - too_old + 1) * SERIES_PER_SNAPSHOT)
    assert len(await _prometheus_values(prometheus, "prom-backlog", now + 3)) == THREE_HOURS - too_old + 1


async def test_prometheus_three_hour_backlog_rejected_never_wedges(
    prometheus: Prometheus, tmp_path: Path, rigs: list[Rig]
) -> None:
    """Without max_sample_age, Prometheus refuses (400 out of bounds) every batch that
    reaches back more than 1 h behind its newest sample: those are counted as rejected,
    and the rest (the last hour) arrives; every snapshot is accounted for once."""
    now = time.time()
    await _head_at_now(prometheus, tmp_path, rigs, now)
    clock = FakeClock(wall=now)
    rig = await build_rig(tmp_path / "spool", prometheus.write_url, clock, hostname="prom-refused")
    rigs.append(rig)
    made = await append_snapshots(rig.host.spool, 1, THREE_HOURS, now - 3 * HOUR + 2.0, host="prom-refused")
    rig.start()
    await wait_until(lambda: rig.health.last_success_wall is not None, timeout=90)
    async with asyncio.timeout(90):
        while await rig.backlog() != 0:
            await asyncio.sleep(0.05)
    rejected = (await rig.dropped())["rejected"]
    values = await _prometheus_values(prometheus, "prom-refused", now + 1)
    assert rejected + len(values) == THREE_HOURS
    assert values == [(timestamp_ms(s), float(c.disk["vda"][1])) for s, c in made[rejected:]]
    assert values[0][0] >= int((now - HOUR) * 1000)
    assert len(values) > (HOUR - 300) / 2  # the last hour, less at most one batch


async def test_prometheus_out_of_order_window(tmp_path: Path, rigs: list[Rig]) -> None:
    """With out_of_order_time_window 4h, a 3 h backlog behind a newer head arrives whole."""
    server = Prometheus(tmp_path / "prometheus-ooo", out_of_order_window="4h")
    server.start()
    try:
        now = time.time()
        await _head_at_now(server, tmp_path, rigs, now)
        clock = FakeClock(wall=now)
        rig = await build_rig(tmp_path / "spool", server.write_url, clock, hostname="prom-ooo")
        rigs.append(rig)
        made = await append_snapshots(rig.host.spool, 1, THREE_HOURS, now - 3 * HOUR + 2.0, host="prom-ooo")
        rig.start()
        await wait_until(lambda: rig.exporter.samples_sent == THREE_HOURS * SERIES_PER_SNAPSHOT, timeout=90)
        values = await _prometheus_values(server, "prom-ooo", now + 1)
        assert values == [(timestamp_ms(s), float(c.disk["vda"][1])) for s, c in made]
        assert (await rig.dropped())["rejected"] == 0
    finally:
        server.stop()
