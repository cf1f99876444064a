"""The Loki exporter against the test receiver, driven in-process with a real SqliteSpool
and a FakeClock that jumps over backoff sleeps (virtual time; nothing sleeps for real)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.export_host import Autojump, ExportHarness, until
from tests.support.fake_clock import FakeClock
from tests.support.loki_receiver import Fault, Limits, LokiReceiver

from argus_telemetry.config.model import AgentConfig, Bytes, Config, LokiConfig
from argus_telemetry.export.delivery import Delivery
from argus_telemetry.export.loki import LokiExporter, compress, encode_body
from argus_telemetry.snapshot.model import time_ns


class Rig:
    def __init__(self, harness: ExportHarness, receiver: LokiReceiver, clock: FakeClock, jump: Autojump) -> None:
        self.jump = jump
        self.harness = harness
        self.receiver = receiver
        self.clock = clock
        self.delivery = Delivery(harness, LokiExporter(harness))
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        await self.delivery.start()
        self.task = asyncio.create_task(self.delivery.run())

    async def delivered(self, seqs: list[int]) -> None:
        await until(lambda: sorted(set(self.receiver.seqs())) == seqs, what=f"seqs {seqs[0]}..{seqs[-1]} delivered")
        await until(lambda: self.harness.health.exporters["loki"].backlog == 0, what="backlog drained")


@pytest.fixture
async def rig(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    batch_max_bytes = getattr(request, "param", 4096)
    clock = FakeClock()
    receiver = LokiReceiver(now=clock.wall, monotonic=clock.monotonic).start()
    config = Config(
        agent=AgentConfig(hostname="client-42", labels={"region": "eu-west", "component": "telemetry"}),
        loki=LokiConfig(url=receiver.url, tenant="team-a", batch_max_bytes=Bytes(batch_max_bytes)),
    )
    harness = await ExportHarness.open(config, clock, tmp_path)
    jump = Autojump(clock)
    jumper = asyncio.create_task(jump.run())
    rig = Rig(harness, receiver, clock, jump)
    try:
        yield rig
    finally:
        for task in (rig.task, jumper):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (rig.task, jumper) if t is not None), return_exceptions=True)
        receiver.stop()
        await harness.spool.close()


def _in_order_once(receiver: LokiReceiver) -> list[int]:
    seqs = receiver.seqs()
    assert seqs == sorted(seqs)
    assert len(seqs) == len(set(seqs))
    return seqs


async def test_every_seq_delivered_in_order_with_time_and_labels(rig: Rig) -> None:
    """Every seq arrives once, in order, with ts = snapshot time in ns, the stream labels
    [loki].labels + host + [agent].labels, the tenant header, and the spool is acked."""
    seqs = await rig.harness.append(30)
    await rig.run()
    await rig.harness.flush()
    await rig.delivered(seqs)
    assert _in_order_once(rig.receiver) == seqs
    for entry in rig.receiver.entries:
        assert entry.ts_ns == time_ns(json.loads(entry.line)["time"])
        assert entry.tenant == "team-a"
        assert entry.labels_sent == {"component": "telemetry", "host": "client-42", "job": "argus", "region": "eu-west"}
    assert len({r.body_bytes for r in rig.receiver.requests}) >= 1
    assert len(rig.receiver.requests) > 1  # 4 KiB batches: several requests
    assert await rig.harness.spool.read_after("loki", 100) == []
    assert rig.harness.health.exporters["loki"].failure_total == 0


async def test_receiver_down_30s_then_everything_once_in_order(rig: Rig) -> None:
    """Receiver down 30 s (virtual): retries back off; afterwards every seq is delivered
    once, in order, and none was rejected."""
    seqs = await rig.harness.append(20)
    rig.receiver.stop()
    start = rig.clock.monotonic()
    rig.jump.limit = start + 30
    await rig.run()
    await rig.harness.flush()
    await until(lambda: rig.jump.held, what="30 s of outage")
    failures = rig.harness.health.exporters["loki"].failure_total
    assert 5 <= failures <= 7  # after 0.5, 1, 2, 4, 8, 16 s (±20 %): backoff, not a tight loop
    rig.receiver.start()
    rig.jump.limit = float("inf")
    await rig.delivered(seqs)
    assert _in_order_once(rig.receiver) == seqs
    assert 400 not in rig.receiver.statuses()
    assert (await rig.harness.spool.stats()).dropped["rejected"] == 0


async def test_5xx_retransmissions_are_byte_identical(rig: Rig) -> None:
    """Two 503s then success: the three request bodies are the same bytes."""
    seqs = await rig.harness.append(3)
    rig.receiver.inject(Fault("status", status=503, count=2))
    await rig.run()
    await rig.harness.flush()
    await rig.delivered(seqs)
    bodies = [r.body for r in rig.receiver.requests]
    assert rig.receiver.statuses() == [503, 503, 204]
    assert bodies[0] == bodies[1] == bodies[2]


async def test_429_retry_after_is_honoured(rig: Rig) -> None:
    """429 with Retry-After: 3 → the next try comes at least 3 s later."""
    seqs = await rig.harness.append(2)
    rig.receiver.inject(Fault("status", status=429, body="slow down", retry_after="3", count=1))
    await rig.run()
    await rig.harness.flush()
    await rig.delivered(seqs)
    first, second = rig.receiver.requests[:2]
    assert (first.status, second.status) == (429, 204)
    assert second.monotonic - first.monotonic >= 3.0


async def test_400_goes_to_dead_letter_and_later_batches_continue(rig: Rig) -> None:
    """A 400 on the first batch: its entries go to the dead-letter file with Loki's text,
    are counted as `rejected`, and the later batches are delivered (no retry of the 400)."""
    seqs = await rig.harness.append(20)
    rig.receiver.inject(Fault("status", status=400, body="entry too far behind", count=1))
    await rig.run()
    await rig.harness.flush()
    await until(lambda: rig.harness.health.exporters["loki"].backlog == 0 and len(rig.receiver.requests) > 1)
    [dead] = sorted((rig.harness.spool_dir / "dead-letter").glob("*.json"))
    document = json.loads(dead.read_text())
    rejected = [e["seq"] for e in document["entries"]]
    assert (document["status"], document["error"]) == (400, "entry too far behind")
    assert rejected == seqs[: len(rejected)]
    assert rig.receiver.seqs() == seqs[len(rejected) :]
    assert (await rig.harness.spool.stats()).dropped["rejected"] == len(rejected)
    assert rig.receiver.statuses().count(400) == 1


@pytest.mark.parametrize("rig", [1024**2], indirect=True)
async def test_413_splits_the_batch(rig: Rig) -> None:
    """A proxy answering 413 above a size makes the exporter split: both halves go
    through, in order, nothing is dropped."""
    seqs = await rig.harness.append(8)
    records = await rig.harness.spool.read_after("x", 100)
    exporter = LokiExporter(rig.harness)
    whole = len(compress(encode_body(records, exporter.labels)))
    rig.receiver.limits = Limits(proxy_max_body_bytes=whole - 1)
    await rig.run()
    await rig.harness.flush()
    await rig.delivered(seqs)
    assert rig.receiver.statuses() == [413, 204, 204]
    assert _in_order_once(rig.receiver) == seqs


@pytest.mark.parametrize("rig", [1024**2], indirect=True)
async def test_401_for_30s_keeps_data_and_delivers_after(rig: Rig) -> None:
    """401 for 30 s: nothing dropped, retried at the longest backoff (≥ 48 s apart),
    reported in health; everything is delivered once the receiver accepts again."""
    seqs = await rig.harness.append(10)
    start = rig.clock.monotonic()
    rig.receiver.inject(Fault("status", status=401, body="no org id", count=None, until=start + 30))
    await rig.run()
    await rig.harness.flush()
    await rig.delivered(seqs)
    statuses = rig.receiver.statuses()
    assert statuses == [401, 204]
    gap = rig.receiver.requests[1].monotonic - rig.receiver.requests[0].monotonic
    assert 48.0 <= gap <= 60.0
    health = rig.harness.health.exporters["loki"]
    assert health.failure_total == 1
    assert health.last_error is not None and "HTTP 401" in health.last_error
    assert sum((await rig.harness.spool.stats()).dropped.values()) == 0
