"""`argus run` delivering to Loki (the test receiver) is killed with SIGKILL while a
push is in flight; after a restart no seq is lost, and duplicates are limited to the
in-flight batch (the receiver folds them; the count is printed)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.loki_receiver import Fault, LokiReceiver

STORED = re.compile(r"\bstored\b.*\bseq=(\d+)")


def _start(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "argus_telemetry", "run", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=handle,
            env=env,
        )
    finally:
        handle.close()


def _stored(log: Path) -> set[int]:
    return {int(m.group(1)) for m in STORED.finditer(log.read_text(errors="replace"))}


def test_kill_9_during_delivery_loses_no_seq(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """SIGKILL while Loki holds a push it already stored (lost ack); restart: every seq
    the first run stored is delivered, the delivered seqs have no gap, and duplicates
    are at most one batch (flush_max_items)."""
    receiver = LokiReceiver().start()
    config = tmp_path / "argus.toml"
    config.write_text(
        f'[agent]\ninterval = "100ms"\nflush_interval = "10s"\nflush_max_items = 5\nhostname = "chaos-1"\n'
        f'data_dir = "{tmp_path / "data"}"\n'
        f'[stream]\nenabled = false\n[loki]\nurl = "{receiver.url}"\ntenant = "t1"\n'
    )
    env = {**clean_env, "ARGUS_LOG_LEVEL": "DEBUG"}
    log = tmp_path / "agent.log"
    first = _start(config, env, log)
    try:
        receiver.wait_for(lambda r: len(r.entries) >= 10, timeout=30)
        receiver.inject(Fault("hang", after_store=True, count=1))
        receiver.wait_for(lambda r: any(q.status is None for q in r.requests), timeout=30)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    receiver.release_hung()
    stored_first = _stored(log)
    assert stored_first, log.read_text()
    second = _start(config, env, log)
    try:
        receiver.wait_for(lambda r: stored_first <= set(r.seqs()) and max(r.seqs()) > max(stored_first), timeout=30)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0
        receiver.stop()
    delivered = receiver.seqs()
    assert stored_first <= set(delivered)
    assert delivered == list(range(1, max(delivered) + 1))  # in order, no gap, each stored once
    print(f"kill -9: {len(stored_first)} seqs before the kill, duplicates folded by Loki: {receiver.duplicates}")
    assert 1 <= receiver.duplicates <= 5
