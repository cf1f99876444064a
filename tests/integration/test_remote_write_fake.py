"""remote_write through the shared delivery loop against the strict fake receiver: the
answers no real server gives on demand (429 + Retry-After, 500, 413, 401, 400, hangs)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import cramjam
import pytest
from tests.support import factories
from tests.support.fake_clock import FakeClock
from tests.support.rw_fake import FakeReceiver, Scripted, decode
from tests.support.rw_host import Rig, append_snapshots, build_rig, wait_until

from argus_telemetry.config.model import Bytes, Seconds

SERIES_PER_SNAPSHOT = 37
MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeReceiver]:
    receiver = FakeReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
async def make_rig(tmp_path: Path, fake: FakeReceiver) -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    rigs: list[Rig] = []

    async def build(**remote_write: object) -> Rig:
        rig = await build_rig(tmp_path / "spool", fake.url, FakeClock(wall=factories.WALL + 3600.0), **remote_write)
        rigs.append(rig)
        return rig

    yield build
    for rig in rigs:
        await rig.close()


async def test_delivers_every_series_and_acks(make_rig: MakeRig, fake: FakeReceiver) -> None:
    """Three snapshots arrive as one valid request with 37 series x 3 samples, labels
    sorted; the cursor moves past them (backlog 0) and health records one success."""
    rig = await make_rig()
    await append_snapshots(rig.host.spool, 1, 3, factories.WALL)
    rig.start()
    await wait_until(lambda: len(fake.requests) == 1)
    await wait_until(lambda: rig.health.success_total == 1)
    assert fake.requests[0].status == 204
    assert len(fake.series) == SERIES_PER_SNAPSHOT
    assert fake.samples() == 3 * SERIES_PER_SNAPSHOT
    key = (
        ("__name__", "argus_disk_written_bytes_total"),
        ("device", "vda"),
        ("instance", "client-42"),
        ("job", "argus"),
        ("region", "eu-west"),
    )
    ms = int(factories.WALL * 1000)
    assert fake.series[key] == [(8192.0, ms), (16384.0, ms + 2000), (24576.0, ms + 4000)]
    assert await rig.backlog() == 0


async def test_429_honours_retry_after_and_resends_identical_bytes(make_rig: MakeRig, fake: FakeReceiver) -> None:
    """A 429 with Retry-After: 30 makes the loop wait exactly 30 s, then send the very
    same bytes, which are stored."""
    rig = await make_rig()
    fake.script(Scripted(429, {"Retry-After": "30"}, "slow down"))
    await append_snapshots(rig.host.spool, 1, 2, factories.WALL)
    rig.start()
    await wait_until(lambda: rig.clock.sleepers == 1)
    assert rig.clock.next_wakeup == rig.clock.monotonic() + 30.0
    assert fake.samples() == 0
    rig.clock.advance(30.0)
    await wait_until(lambda: len(fake.requests) == 2)
    assert [r.status for r in fake.requests] == [429, 204]
    assert fake.requests[0].body == fake.requests[1].body
    assert fake.samples() == 2 * SERIES_PER_SNAPSHOT
    health = rig.health
    assert (health.failure_total, health.last_error) == (1, "remote_write: HTTP 429: slow down")


async def test_500_is_retried_with_backoff_until_stored(make_rig: MakeRig, fake: FakeReceiver) -> None:
    """Two 500s are retried after 0.5 s then 1 s (backoff), with byte-identical bodies."""
    rig = await make_rig()
    fake.script(Scripted(500, body="boom"), Scripted(500, body="boom"))
    await append_snapshots(rig.host.spool, 1, 1, factories.WALL)
    rig.start()
    for delay in (0.5, 1.0):
        await wait_until(lambda: rig.clock.sleepers == 1)
        assert rig.clock.next_wakeup == rig.clock.monotonic() + delay
        rig.clock.advance(delay)
    await wait_until(lambda: len(fake.requests) == 3)
    assert [r.status for r in fake.requests] == [500, 500, 204]
    assert len({r.body for r in fake.requests}) == 1
    await wait_until(lambda: rig.health.success_total == 1)
    assert await rig.backlog() == 0


async def test_413_splits_the_batch_oldest_half_first(make_rig: MakeRig, fake: FakeReceiver) -> None:
    """A 413 on four snapshots sends them again as 2 + 2, oldest first, all stored."""
    rig = await make_rig()
    fake.script(Scripted(413, body="too big"))
    await append_snapshots(rig.host.spool, 1, 4, factories.WALL)
    rig.start()
    await wait_until(lambda: len(fake.requests) == 3)
    stamps = [
        sorted({s[1] for _, samples in decode(bytes(cramjam.snappy.decompress_raw(r.body))) for s in samples})
        for r in fake.requests
    ]
    ms = int(factories.WALL * 1000)
    assert stamps == [[ms, ms + 2000, ms + 4000, ms + 6000], [ms, ms + 2000], [ms + 4000, ms + 6000]]
    assert fake.samples() == 4 * SERIES_PER_SNAPSHOT
    await wait_until(lambda: rig.health.success_total == 2)
    assert await rig.backlog() == 0


async def test_401_keeps_data_reports_and_delivers_after(make_rig: MakeRig, fake: FakeReceiver) -> None:
    """A 401 keeps the batch in the spool, shows in health, retries at the longest
    backoff (60 s), and the data arrives once the receiver accepts it."""
    rig = await make_rig()
    fake.script(Scripted(401, body="no token"))
    await append_snapshots(rig.host.spool, 1, 2, factories.WALL)
    rig.start()
    await wait_until(lambda: rig.clock.sleepers == 1)
    assert rig.clock.next_wakeup == rig.clock.monotonic() + 60.0
    health = rig.health
    assert health.last_error == "remote_write: HTTP 401: no token (check the URL, tenant and credentials)"
    assert health.failing_since_wall == rig.clock.wall()
    assert await rig.backlog() == 2
    rig.clock.advance(60.0)
    await wait_until(lambda: health.success_total == 1)
    assert fake.samples() == 2 * SERIES_PER_SNAPSHOT
    assert health.failing_since_wall is None
    assert await rig.backlog() == 0


async def test_timeout_is_retried(make_rig: MakeRig, fake: FakeReceiver) -> None:
    """A receiver that never answers makes the request time out; the same bytes are
    sent again after the backoff and stored."""
    rig = await make_rig(timeout=Seconds(0.3))
    fake.script(Scripted(204, hang=True))
    await append_snapshots(rig.host.spool, 1, 1, factories.WALL)
    rig.start()
    await wait_until(lambda: rig.clock.sleepers == 1)
    health = rig.health
    assert health.last_error is not None and health.last_error.startswith("remote_write: timeout")
    fake.release.set()
    rig.clock.advance(0.5)
    await wait_until(lambda: health.success_total == 1)
    assert fake.samples() == SERIES_PER_SNAPSHOT
    assert fake.requests[0].body == fake.requests[-1].body


async def test_400_sets_the_batch_aside_counted_rejected(make_rig: MakeRig, fake: FakeReceiver, tmp_path: Path) -> None:
    """A 400 refuses the batch for good: counted as rejected, written to dead-letter,
    acked; the next batch goes through."""
    rig = await make_rig(batch_max_samples=2 * SERIES_PER_SNAPSHOT)
    fake.script(Scripted(400, body="out of bounds"))
    await append_snapshots(rig.host.spool, 1, 4, factories.WALL)
    rig.start()
    await wait_until(lambda: len(fake.requests) == 2)
    await wait_until(lambda: rig.health.success_total == 1)
    assert (await rig.dropped())["rejected"] == 2
    assert fake.samples() == 2 * SERIES_PER_SNAPSHOT
    letters = list((tmp_path / "spool" / "dead-letter").iterdir())
    assert len(letters) == 1
    assert "out of bounds" in letters[0].read_text()
    assert await rig.backlog() == 0


async def test_max_sample_age_drops_and_counts_too_old(make_rig: MakeRig, fake: FakeReceiver) -> None:
    """With max_sample_age 55m, snapshots from 2 h ago are not sent and are counted as
    too_old; the recent ones arrive."""
    rig = await make_rig(max_sample_age=Seconds(55 * 60.0))
    now = rig.clock.wall()
    await append_snapshots(rig.host.spool, 1, 3, now - 7200.0)
    await append_snapshots(rig.host.spool, 4, 2, now - 60.0)
    rig.start()
    await wait_until(lambda: rig.health.success_total == 1)
    assert (await rig.dropped())["too_old"] == 3
    stamps = sorted({stamp for points in fake.series.values() for _, stamp in points})
    assert stamps == [int((now - 60.0) * 1000), int((now - 58.0) * 1000)]
    assert await rig.backlog() == 0


async def test_pacing_by_max_send_rate(make_rig: MakeRig, fake: FakeReceiver) -> None:
    """While draining, the next request waits for the bytes of the previous one at
    max_send_rate (1 KiB/s here)."""
    rig = await make_rig(max_send_rate=Bytes(1024), batch_max_samples=SERIES_PER_SNAPSHOT)
    await append_snapshots(rig.host.spool, 1, 2, factories.WALL)
    rig.start()
    await wait_until(lambda: rig.clock.sleepers == 1)
    assert len(fake.requests) == 1
    assert rig.clock.next_wakeup == pytest.approx(rig.clock.monotonic() + len(fake.requests[0].body) / 1024)
    rig.clock.advance(len(fake.requests[0].body) / 1024)
    await wait_until(lambda: len(fake.requests) == 2)
    assert fake.samples() == 2 * SERIES_PER_SNAPSHOT
