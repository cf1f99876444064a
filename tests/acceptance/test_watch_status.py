"""`argus watch --json` and `argus status --json` against a running `argus run` subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DEADLINE_SECONDS = 30.0


def argus(*args: str, env: dict[str, str], **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "argus_telemetry", *args], text=True, env=env, **kwargs)  # type: ignore[call-overload, no-any-return]


@pytest.fixture
def agent(tmp_path: Path, clean_env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """A running `argus run` (interval 200 ms) whose socket answers; yields (socket path, env)."""
    socket_path = tmp_path / "run" / "argus.sock"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[agent]\ninterval = "200ms"\ndata_dir = "{tmp_path / "data"}"\n[stream]\npath = "{socket_path}"\n'
    )
    env = dict(clean_env)
    proc = argus("run", "-c", str(config), env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not socket_path.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the agent did not create its socket in time"
            time.sleep(0.05)
        yield str(socket_path), env
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
        assert proc.returncode == 0


def test_status_json(agent: tuple[str, dict[str, str]]) -> None:
    """`argus status --json` prints the status payload and exits 0."""
    path, env = agent
    done = subprocess.run(
        [sys.executable, "-m", "argus_telemetry", "status", "--socket", path, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
    )
    assert (done.returncode, done.stderr) == (0, "")
    payload = json.loads(done.stdout)
    assert payload["interval_seconds"] == 0.2
    assert payload["exporters"] == {}
    assert sorted(payload) == [
        "dropped",
        "exporters",
        "flush",
        "host",
        "interval_seconds",
        "last_snapshot_time",
        "snapshots_total",
        "spool",
        "started",
        "uptime_seconds",
        "version",
    ]


def test_watch_json_streams_consecutive_snapshots(agent: tuple[str, dict[str, str]]) -> None:
    """`argus watch --json` prints hello, then snapshots whose seq increases by one."""
    path, env = agent
    proc = argus("watch", "--socket", path, "--json", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        lines = [json.loads(proc.stdout.readline()) for _ in range(6)]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert lines[0]["type"] == "hello" and lines[0]["protocol"] == 1 and lines[0]["interval_seconds"] == 0.2
    seqs = [line["snapshot"]["seq"] for line in lines[1:]]
    assert [line["type"] for line in lines[1:]] == ["snapshot"] * 5
    assert seqs == list(range(seqs[0], seqs[0] + 5))
    assert proc.returncode == 0


def test_status_unreachable_names_the_path(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """No agent: exit 1 and one line naming the socket path tried."""
    path = tmp_path / "nothing.sock"
    done = subprocess.run(
        [sys.executable, "-m", "argus_telemetry", "status", "--socket", str(path)],
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
    )
    assert done.returncode == 1
    assert done.stderr == f"argus: cannot reach the agent at {path}: no such socket (is the agent running?)\n"
    assert done.stdout == ""
    assert os.path.exists(path) is False
