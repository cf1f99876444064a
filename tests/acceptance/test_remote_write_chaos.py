"""`argus run` draining a spool backlog into VictoriaMetrics with remote_write is killed
with SIGKILL mid-drain; after a restart every snapshot is there, and duplicates (VM
keeps them) are at most the in-flight batch."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.rw_host import append_snapshots
from tests.support.rw_servers import VictoriaMetrics

from argus_telemetry.clock import SystemClock
from argus_telemetry.config.model import SpoolConfig
from argus_telemetry.spool.sqlite import SqliteSpool

BACKLOG = 200
BATCH_SNAPSHOTS = 10
SERIES_PER_SNAPSHOT = 37  # of the factory snapshots in the backlog


def _start(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "argus_telemetry", "run", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=handle,
            env=env,
        )


async def _backlog(spool_dir: Path, start_wall: float) -> None:
    spool = await SqliteSpool.open(spool_dir, SpoolConfig(), SystemClock())
    try:
        await append_snapshots(spool, 1, BACKLOG, start_wall, host="rw-chaos")
        await spool.flush()
    finally:
        await spool.close()


def _stamps(server: VictoriaMetrics) -> list[int]:
    series = asyncio.run(server.export('argus_snapshot_timestamp_seconds{instance="rw-chaos"}'))
    return sorted(stamp for item in series for stamp in item["timestamps"])


def _wait(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_kill_9_mid_drain_loses_nothing(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """SIGKILL after some backlog batches were delivered; restart: every backlog snapshot
    arrives (its argus_snapshot_timestamp_seconds sample), live ones continue after it,
    and at most one batch (10 snapshots) arrives twice."""
    server = VictoriaMetrics(tmp_path / "vm").start()
    try:
        data = tmp_path / "data"
        start_wall = time.time() - 2.0 * BACKLOG - 10.0
        asyncio.run(_backlog(data / "Logs", start_wall))
        config = tmp_path / "argus.toml"
        config.write_text(
            f'[agent]\ninterval = "500ms"\nhostname = "rw-chaos"\ndata_dir = "{data}"\n'
            f"[stream]\nenabled = false\n"
            f'[remote_write]\nurl = "{server.write_url}"\nbatch_max_samples = {BATCH_SNAPSHOTS * SERIES_PER_SNAPSHOT}\n'
            f'max_send_rate = "4KiB"\n'
        )
        log = tmp_path / "agent.log"
        env = {**clean_env, "ARGUS_LOG_LEVEL": "DEBUG"}
        first = _start(config, env, log)
        try:
            _wait(lambda: len(_stamps(server)) >= 3 * BATCH_SNAPSHOTS, timeout=60)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        before = len(_stamps(server))
        assert before < BACKLOG, "the drain finished before the kill; slow it down"
        second = _start(config, env, log)
        backlog_ms = [int((start_wall + 2.0 * i) * 1000) for i in range(BACKLOG)]
        try:
            _wait(lambda: set(backlog_ms) <= set(_stamps(server)) and max(_stamps(server)) > backlog_ms[-1], timeout=90)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=10) == 0, log.read_text()[-3000:]
        stamps = _stamps(server)
    finally:
        server.stop()
    duplicates = len(stamps) - len(set(stamps))
    print(f"kill -9 after {before} backlog snapshots delivered; duplicates kept by VictoriaMetrics: {duplicates}")
    assert duplicates <= BATCH_SNAPSHOTS
    old = [s for s in sorted(set(stamps)) if s <= backlog_ms[-1]]
    assert old == backlog_ms
