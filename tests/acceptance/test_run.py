"""`argus run` as a user runs it: a real subprocess, real signals, real spool files."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from argus_telemetry.clock import SystemClock
from argus_telemetry.config.model import SpoolConfig
from argus_telemetry.spool.sqlite import SqliteSpool

STORED = re.compile(r"\bstored\b.*\bseq=(\d+)")
_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _reap_agents() -> Iterator[None]:
    """Kill any agent a failed test left running (a passing test has stopped it)."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


def _start(config: Path | None, env: dict[str, str]) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "argus_telemetry", "run"]
    if config is not None:
        args += ["-c", str(config)]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    _STARTED.append(proc)
    return proc


def _read_until_stored(proc: subprocess.Popen[str], count: int, deadline_seconds: float = 30.0) -> list[str]:
    """Read stderr lines until `count` snapshots were reported stored (or fail at the deadline)."""
    assert proc.stderr is not None
    lines: list[str] = []
    stored = 0
    deadline = time.monotonic() + deadline_seconds
    while stored < count:
        assert time.monotonic() < deadline, "agent did not store snapshots in time:\n" + "".join(lines)
        line = proc.stderr.readline()
        assert line, "agent exited early:\n" + "".join(lines)
        lines.append(line)
        if STORED.search(line):
            stored += 1
    return lines


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str, float]:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=10)
    return proc.returncode, rest, time.monotonic() - started


def _spooled_seqs(data_dir: Path) -> list[int]:
    async def read() -> list[int]:
        spool = await SqliteSpool.open(data_dir / "Logs", SpoolConfig(), SystemClock())
        try:
            spool.register("acceptance-reader")
            records = await spool.read_after("acceptance-reader", 100_000)
            return [r.seq for r in records]
        finally:
            await spool.close()

    return asyncio.run(read())


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "argus.toml"
    path.write_text(
        f'[agent]\ninterval = "200ms"\nflush_interval = "1s"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[stream]\npath = "{tmp_path / "run" / "TelemetryPipe.sock"}"\n'
    )
    return path


def test_sigterm_flushes_and_exits_0_with_consecutive_seqs(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """`argus run` at 200 ms for a few snapshots, SIGTERM: exit 0 within 5 s, the spool holds 1..N consecutively."""
    env = {**clean_env, "ARGUS_LOG_LEVEL": "DEBUG"}
    proc = _start(_config(tmp_path), env)
    lines = _read_until_stored(proc, 8)
    code, rest, took = _stop(proc)
    assert code == 0, rest
    assert took < 5.0
    reported = [int(m.group(1)) for line in lines + rest.splitlines() if (m := STORED.search(line))]
    seqs = _spooled_seqs(tmp_path / "data")
    assert seqs == list(range(1, len(seqs) + 1))
    assert set(reported) <= set(seqs)
    assert "agent stopped" in rest
    assert "Traceback" not in rest


def test_seq_continues_across_restart(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """A second run on the same data dir continues seq after the first run's last one, with no reuse."""
    env = {**clean_env, "ARGUS_LOG_LEVEL": "DEBUG"}
    config = _config(tmp_path)
    first = _start(config, env)
    _read_until_stored(first, 3)
    assert _stop(first)[0] == 0
    after_first = _spooled_seqs(tmp_path / "data")
    second = _start(config, env)
    lines = _read_until_stored(second, 3)
    assert _stop(second)[0] == 0
    first_of_second = min(int(m.group(1)) for line in lines if (m := STORED.search(line)))
    assert first_of_second == after_first[-1] + 1
    seqs = _spooled_seqs(tmp_path / "data")
    assert seqs == list(range(1, len(seqs) + 1))


def test_no_config_uses_user_data_dir(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """With no config anywhere, `argus run` spools under the user's data dir and says where."""
    env = {
        **clean_env,
        "ARGUS_LOG_LEVEL": "DEBUG",
        "HOME": str(tmp_path / "home"),
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
        "XDG_RUNTIME_DIR": str(tmp_path / "xdg-run"),
    }
    os.makedirs(tmp_path / "xdg-run", mode=0o700)
    proc = _start(None, env)
    lines = _read_until_stored(proc, 1, deadline_seconds=30)
    code, rest, _ = _stop(proc)
    assert code == 0, rest
    started = next(line for line in lines if "agent started" in line)
    expected = tmp_path / "xdg-data" / "argus-telemetry" / "Logs"
    assert str(expected) in started
    assert expected.is_dir()
    assert _spooled_seqs(tmp_path / "xdg-data" / "argus-telemetry")[0] == 1


def _mapped_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_agent_without_exporters_does_not_load_openssl(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """With no exporter configured the agent never maps OpenSSL (RSS budget); with one, it does."""
    env = {**clean_env, "ARGUS_LOG_LEVEL": "DEBUG"}
    bare = _start(_config(tmp_path), env)
    _read_until_stored(bare, 2)
    bare_maps = _mapped_libraries(bare.pid)
    assert _stop(bare)[0] == 0
    assert "libssl" not in bare_maps
    assert "_ssl" not in bare_maps

    exporting = tmp_path / "exporting.toml"
    exporting.write_text(_config(tmp_path).read_text() + '[pushgateway]\nurl = "http://127.0.0.1:9"\n')
    proc = _start(exporting, env)
    _read_until_stored(proc, 2)
    maps = _mapped_libraries(proc.pid)
    assert _stop(proc)[0] == 0
    assert "libssl" in maps


def test_metrics_endpoint_alone_answers_scrapes(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """With only `[metrics] listen` set (no exporter), a real `argus run` answers /metrics with the latest snapshot."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "metrics.toml"
    config.write_text(_config(tmp_path).read_text() + f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
    proc = _start(config, {**clean_env, "ARGUS_LOG_LEVEL": "DEBUG"})
    try:
        _read_until_stored(proc, 2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            body = response.read().decode()
            assert response.status == 200
    finally:
        code, rest, _ = _stop(proc)
    assert code == 0, rest
    assert "argus_cpu_usage_ratio " in body
    assert 'argus_spool_dropped_total{reason="max_bytes"} 0.0' in body
