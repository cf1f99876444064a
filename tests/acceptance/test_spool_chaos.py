"""kill -9 at random moments, then restart: every seq reported stored is in the spool
exactly once, and seq continues without reuse. Real subprocesses, real SIGKILL: the
real agent (`python -m argus_telemetry run`), and a tight append loop that puts many
more kills in the middle of a commit or a flush."""

from __future__ import annotations

import os
import queue
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from argus_telemetry.snapshot.model import decode_snapshot

STORED = re.compile(rb"stored seq=(\d+)")
ROUNDS = 20
LINE_DEADLINE_SECONDS = 30.0

APPEND_LOOP = """
import asyncio, sys, time
from pathlib import Path
from argus_telemetry.clock import SystemClock
from argus_telemetry.config.model import SpoolConfig
from argus_telemetry.spool.sqlite import SqliteSpool

async def main() -> None:
    spool = await SqliteSpool.open(Path(sys.argv[1]), SpoolConfig(), SystemClock())
    count = 0
    while True:
        seq = spool.next_seq()
        body = b'{"schema":1,"seq":%d}' % seq
        if await spool.append(seq, time.time(), body, b"counters"):
            sys.stdout.write(f"stored seq={seq}\\n")
            sys.stdout.flush()
        count += 1
        if count % 7 == 0:
            await spool.flush()

asyncio.run(main())
"""


class Reader:
    """Collects `stored seq=N` lines from a pipe on a thread (so waits have deadlines)."""

    def __init__(self, stream: object) -> None:
        self.lines: queue.Queue[int] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in iter(stream.readline, b""):  # type: ignore[attr-defined]
            match = STORED.search(line)
            if match:
                self.lines.put(int(match.group(1)))

    def take(self, count: int) -> list[int]:
        """The first `count` stored seqs, waiting up to the deadline for them."""
        deadline = time.monotonic() + LINE_DEADLINE_SECONDS
        seqs = []
        while len(seqs) < count:
            seqs.append(self.lines.get(timeout=max(0.0, deadline - time.monotonic())))
        return seqs

    def rest(self) -> list[int]:
        """Every line left once the process is dead and its pipe closed."""
        self._thread.join(timeout=LINE_DEADLINE_SECONDS)
        assert not self._thread.is_alive()
        seqs = []
        while not self.lines.empty():
            seqs.append(self.lines.get_nowait())
        return seqs


def _spool_seqs(db: Path) -> list[int]:
    """All seqs in the spool, after SQLite's recovery of the dead process's WAL; checks
    each row's JSON carries its own seq."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        rows = conn.execute("SELECT seq, snapshot FROM snapshots ORDER BY seq").fetchall()
    finally:
        conn.close()
    for seq, body in rows:
        assert f'"seq":{seq}'.encode() in body
    return [int(seq) for seq, _ in rows]


def _kill_storm(command: Sequence[str], logs_dir: Path, env: dict[str, str], seed: int, stdout: bool) -> None:
    rng = random.Random(seed)
    reported: list[int] = []
    high_water = 0
    for _ in range(ROUNDS):
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL if stdout else subprocess.PIPE,
            env=env,
        )
        reader = Reader(process.stdout if stdout else process.stderr)
        try:
            seqs = reader.take(rng.randint(1, 12))
            time.sleep(rng.uniform(0.0, 0.08))  # the random moment of the kill
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=LINE_DEADLINE_SECONDS)
        seqs += reader.rest()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        assert process.returncode == -signal.SIGKILL
        # seq continues right after everything the previous run committed: no reuse
        assert seqs[0] == high_water + 1
        assert seqs == list(range(seqs[0], seqs[-1] + 1))
        reported += seqs
        stored = _spool_seqs(logs_dir / "spool.db")
        assert set(reported) <= set(stored)
        assert len(stored) == len(set(stored))
        high_water = stored[-1]
    assert not (logs_dir / "quarantine").exists()
    assert len(reported) >= ROUNDS


def test_kill_9_storm_real_agent(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """20 SIGKILLs of `argus run` (100 ms interval) at random moments: every seq it logged
    as stored survives, exactly once, and the next run continues at the next seq."""
    data_dir = tmp_path / "data"
    config = tmp_path / "cfg.toml"
    config.write_text(
        f'[agent]\ninterval = "100ms"\nflush_max_items = 5\ndata_dir = "{data_dir}"\n\n[stream]\nenabled = false\n'
    )
    env = {**clean_env, "ARGUS_LOG_LEVEL": "DEBUG"}
    _kill_storm(
        [sys.executable, "-m", "argus_telemetry", "run", "-c", str(config)],
        data_dir / "Logs",
        env,
        seed=2,
        stdout=False,
    )
    records = _spool_seqs(data_dir / "Logs" / "spool.db")
    conn = sqlite3.connect(data_dir / "Logs" / "spool.db")
    body = conn.execute("SELECT snapshot FROM snapshots WHERE seq = ?", (records[-1],)).fetchone()[0]
    conn.close()
    assert decode_snapshot(body).seq == records[-1]


def test_kill_9_storm_append_loop(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """20 SIGKILLs of a process appending as fast as it can (flush every 7 appends), so
    kills land inside commits and fsyncs: nothing reported stored is lost or doubled."""
    logs_dir = tmp_path / "Logs"
    env = {**clean_env, "PYTHONPATH": os.pathsep.join(sys.path)}
    _kill_storm([sys.executable, "-c", APPEND_LOOP, str(logs_dir)], logs_dir, env, seed=1, stdout=True)
