"""µs per snapshot on the agent's hot path: collect, build, encode, spool append.

Each step is timed in a hot loop (min / median / max over `--repeats` runs of
`--iterations` calls, wall-clock µs per call), with the agent's own parts: HostCollector,
Sampler, encode_snapshot/encode_counters and the SQLite spool opened as the agent opens
it (`SqliteSpool.open(dir, SpoolConfig(), SystemClock())`, in a scratch directory).
Compare "whole tick" with `whole snapshot` of the performance notes (~0.2 ms): the
goal is ≤ 2× that on the same machine.

    python bench/snapshot_cost.py [--iterations 2000] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from argus_telemetry.clock import SystemClock
from argus_telemetry.collect.host import HostCollector
from argus_telemetry.config.model import CollectConfig, SpoolConfig
from argus_telemetry.snapshot.model import encode_counters, encode_snapshot
from argus_telemetry.snapshot.sampler import Sampler
from argus_telemetry.spool.sqlite import SqliteSpool

Figures = dict[str, tuple[float, float, float]]


def time_sync(function: Callable[[], object], iterations: int, repeats: int) -> tuple[float, float, float]:
    """(min, median, max) µs per call over `repeats` runs of `iterations` calls."""
    per_call = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iterations):
            function()
        per_call.append((time.perf_counter() - start) / iterations * 1e6)
    return min(per_call), statistics.median(per_call), max(per_call)


async def time_async(
    function: Callable[[], Awaitable[object]], iterations: int, repeats: int
) -> tuple[float, float, float]:
    per_call = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iterations):
            await function()
        per_call.append((time.perf_counter() - start) / iterations * 1e6)
    return min(per_call), statistics.median(per_call), max(per_call)


async def measure(iterations: int, repeats: int, scratch: Path) -> Figures:
    collector = HostCollector()
    sampler = Sampler(hostname="bench", collect=CollectConfig())
    earlier = collector.read()
    await asyncio.sleep(0.5)
    later = collector.read()
    sampler.prime(earlier)
    snapshot, counters = sampler.build(later, seq=1)

    def build() -> object:
        sampler.prime(earlier)  # an assignment: keeps every build a real two-sample build
        return sampler.build(later, seq=1)

    figures: Figures = {}
    figures["collect (HostCollector.read)"] = time_sync(collector.read, iterations, repeats)
    figures["collect in a worker thread (to_thread)"] = await time_async(
        lambda: asyncio.to_thread(collector.read), iterations, repeats
    )
    figures["build (Sampler.build)"] = time_sync(build, iterations * 5, repeats)
    figures["encode snapshot JSON"] = time_sync(lambda: encode_snapshot(snapshot), iterations * 20, repeats)
    figures["encode counters (msgpack)"] = time_sync(lambda: encode_counters(counters), iterations * 20, repeats)

    spool = await SqliteSpool.open(scratch, SpoolConfig(), SystemClock())
    try:
        body, packed = encode_snapshot(snapshot), encode_counters(counters)

        async def append() -> object:
            seq = spool.next_seq()
            return await spool.append(seq, time.time(), body, packed)

        figures["spool append (committed)"] = await time_async(append, iterations, repeats)
        figures["spool flush (fsync), per flush"] = await time_async(spool.flush, max(iterations // 20, 10), repeats)

        async def tick() -> None:
            raw = await asyncio.to_thread(collector.read)
            seq = spool.next_seq()
            built, raw_counters = sampler.build(raw, seq)
            await spool.append(seq, raw.wall, encode_snapshot(built), encode_counters(raw_counters))

        figures["whole tick (thread collect + build + encode + append)"] = await time_async(tick, iterations, repeats)
    finally:
        await spool.close()
    figures["snapshot JSON size (bytes)"] = (len(body), len(body), len(body))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=2000, help="calls per repeat (default 2000)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats; min/median/max over them (default 5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="argus-bench-") as scratch:
        figures = asyncio.run(measure(args.iterations, args.repeats, Path(scratch)))
    if args.json:
        print(json.dumps({step: dict(zip(("min", "median", "max"), v, strict=True)) for step, v in figures.items()}))
        return 0
    print(f"µs per call, min / median / max of {args.repeats} repeats (Python {sys.version.split()[0]})")
    print()
    print("| step | µs per call |")
    print("|---|---|")
    for step, (low, mid, high) in figures.items():
        if step.startswith("snapshot JSON size"):
            print(f"| {step} | {low:.0f} |")
        else:
            print(f"| {step} | {low:.1f} / {mid:.1f} / {high:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
