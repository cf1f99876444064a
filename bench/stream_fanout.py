"""Cost of stream fan-out: agent CPU s/h with 0, 1 and 32 clients; tick jitter p99 with 32
clients of which one never reads. Runs `argus run` as a subprocess; prints figures.

    .venv/bin/python bench/stream_fanout.py [--interval 0.2] [--window 30]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from argus_telemetry.snapshot.model import parse_time
from argus_telemetry.stream.client import StreamClient


async def measure(
    path: str, proc: psutil.Process, clients: int, never_reading: int, window: float
) -> tuple[float, list[float]]:
    """(CPU seconds per hour of the agent, snapshot times seen by the first client)."""
    readers = [await StreamClient.connect(path) for _ in range(clients)]
    stuck = []
    for _ in range(never_reading):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        stuck.append(sock)
    times: list[float] = []

    async def consume(index: int, client: StreamClient) -> None:
        async for message in client.messages():
            if index == 0 and message.get("type") == "snapshot":
                snapshot = message["snapshot"]
                assert isinstance(snapshot, dict)
                times.append(parse_time(str(snapshot["time"])))

    tasks = [asyncio.create_task(consume(i, c)) for i, c in enumerate(readers)]
    await asyncio.sleep(2.0)  # history replay settles
    times.clear()
    before = proc.cpu_times()
    start = time.monotonic()
    await asyncio.sleep(window)
    after = proc.cpu_times()
    elapsed = time.monotonic() - start
    for task in tasks:
        task.cancel()
    for client in readers:
        await client.close()
    for sock in stuck:
        sock.close()
    cpu = (after.user + after.system) - (before.user + before.system)
    return cpu / elapsed * 3600.0, times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--window", type=float, default=30.0)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="argus-bench-"))
    path = str(base / "run" / "argus.sock")
    config = base / "config.toml"
    config.write_text(
        f'[agent]\ninterval = {args.interval}\ndata_dir = "{base / "data"}"\n'
        f'[stream]\npath = "{path}"\nmax_clients = 40\n'
    )
    agent = subprocess.Popen(
        [sys.executable, "-m", "argus_telemetry", "run", "-c", str(config)],
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not Path(path).exists():
            assert time.monotonic() < deadline and agent.poll() is None, "agent did not start"
            time.sleep(0.05)
        proc = psutil.Process(agent.pid)
        scale = 2.0 / args.interval  # figures are scaled to the default 2 s interval
        results = {}
        for label, clients, stuck in (("0 clients", 0, 0), ("1 client", 1, 0), ("32 clients (1 never reads)", 31, 1)):
            if clients == 0:
                # no reader: measure CPU only
                before = proc.cpu_times()
                t0 = time.monotonic()
                time.sleep(args.window)
                after = proc.cpu_times()
                cpu_h = ((after.user + after.system) - (before.user + before.system)) / (time.monotonic() - t0) * 3600
                jitter: list[float] = []
            else:
                cpu_h, times = asyncio.run(measure(path, proc, clients, stuck, args.window))
                jitter = [abs((b - a) - args.interval) * 1000 for a, b in itertools.pairwise(times)]
            results[label] = (cpu_h, jitter)
        base_cpu = results["0 clients"][0]
        print(f"interval {args.interval} s, window {args.window} s per case; CPU s/h also scaled to a 2 s interval")
        for label, (cpu_h, jitter) in results.items():
            p99 = statistics.quantiles(jitter, n=100)[98] if len(jitter) >= 2 else float("nan")
            print(
                f"{label:28s} CPU {cpu_h:7.1f} s/h (at 2 s: {cpu_h / scale:6.1f} s/h,"
                f" +{100 * (cpu_h / base_cpu - 1):5.1f} %)"
                f"  tick jitter p99 {p99:6.1f} ms over {len(jitter)} intervals"
            )
        print(json.dumps({k: round(v[0], 1) for k, v in results.items()}))
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)


if __name__ == "__main__":
    main()
