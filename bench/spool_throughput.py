"""Spool throughput: appends/s, acks/s, flush latency and bytes per snapshot on disk.

Prints figures; not a test. Usage: `python bench/spool_throughput.py [--rows N] [--size BYTES]`.
Runs on a temp folder (put TMPDIR on the disk you care about: tmpfs hides fsync cost).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from argus_telemetry.clock import SystemClock
from argus_telemetry.config.model import SpoolConfig
from argus_telemetry.spool.sqlite import SqliteSpool


def _body(seq: int, size: int) -> bytes:
    head = b'{"schema":1,"seq":%d,"pad":"' % seq
    return head + b"x" * max(0, size - len(head) - 2) + b'"}'


async def run(rows: int, size: int, counters_size: int, wipe: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="argus-bench-") as folder:
        directory = Path(folder) / "Logs"
        spool = await SqliteSpool.open(directory, SpoolConfig(wipe=wipe), SystemClock())
        spool.register("bench")
        counters = b"c" * counters_size
        append_us: list[float] = []
        started = time.perf_counter()
        for _ in range(rows):
            seq = spool.next_seq()
            t0 = time.perf_counter()
            stored = await spool.append(seq, time.time(), _body(seq, size), counters)
            append_us.append((time.perf_counter() - t0) * 1e6)
            assert stored
        append_seconds = time.perf_counter() - started
        flush_us: list[float] = []
        for _ in range(5):
            t0 = time.perf_counter()
            await spool.flush()
            flush_us.append((time.perf_counter() - t0) * 1e6)
        stats = await spool.stats()
        per_row = stats.bytes / max(1, stats.rows)
        started = time.perf_counter()
        acked = 0
        while True:
            batch = await spool.read_after("bench", 100)
            if not batch:
                break
            for record in batch:
                await spool.ack("bench", record.seq)
                acked += 1
        ack_seconds = time.perf_counter() - started
        await spool.close()
    print(f"rows={rows} snapshot_bytes={size} counters_bytes={counters_size} wipe={wipe}")
    print(f"  appends/s        {rows / append_seconds:10.0f}")
    print(f"  append µs        median {statistics.median(append_us):8.0f}  max {max(append_us):8.0f}")
    print(f"  flush µs         median {statistics.median(flush_us):8.0f}  max {max(flush_us):8.0f}")
    print(f"  acks/s (1 each)  {acked / ack_seconds:10.0f}")
    print(f"  bytes on disk per snapshot {per_row:8.0f}  (file + WAL / rows, after flush)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--size", type=int, default=1200, help="snapshot JSON bytes (a 4-core host is ~1 KB)")
    parser.add_argument("--counters", type=int, default=600, help="raw counters bytes (msgpack)")
    args = parser.parse_args()
    for wipe in (False, True):
        asyncio.run(run(args.rows, args.size, args.counters, wipe))


if __name__ == "__main__":
    main()
