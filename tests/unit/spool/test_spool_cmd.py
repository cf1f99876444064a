"""`argus spool stats` and `argus spool verify` on a real spool folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.support.fake_clock import FakeClock
from tests.unit.spool.helpers import append_n, open_spool

from argus_telemetry.cli.spool_cmd import spool_stats, spool_verify
from argus_telemetry.config.model import AgentConfig, Config


def _config(data_dir: Path) -> Config:
    return Config(agent=AgentConfig(data_dir=str(data_dir)))


async def test_stats_json_reports_rows_seqs_backlog_and_drops(
    tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """stats --json: exact rows, seq range, high-water mark, backlog of each persisted
    cursor and every drop reason."""
    spool = await open_spool(tmp_path / "Logs", clock)
    spool.register("loki")
    await append_n(spool, clock, 5)
    await spool.ack("loki", 2)
    await spool.count_drop("rejected", 4)
    await spool.close()
    assert spool_stats(_config(tmp_path), as_json=True) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["rows"], stats["oldest_seq"], stats["newest_seq"], stats["high_water_seq"]) == (3, 3, 5, 5)
    assert stats["backlog"] == {"loki": 3}
    assert stats["dropped"] == {"max_bytes": 0, "max_age": 0, "corrupt": 0, "disk_full": 0, "rejected": 4, "too_old": 0}
    assert spool_stats(_config(tmp_path), as_json=False) == 0
    assert "next seq: 6" in capsys.readouterr().out


async def test_verify_exit_codes(tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    """verify: 0 and OK on a healthy spool; 1 with the problem named on a damaged one."""
    spool = await open_spool(tmp_path / "Logs", clock)
    await append_n(spool, clock, 50, size=900)
    await spool.close()
    assert spool_verify(_config(tmp_path), as_json=False) == 0
    assert "OK (50 rows)" in capsys.readouterr().out
    db = tmp_path / "Logs" / "spool.db"
    data = bytearray(db.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = b"\xff" * 4096
    db.write_bytes(bytes(data))
    assert spool_verify(_config(tmp_path), as_json=True) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["problems"] != []


def test_no_spool_yet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without a spool file both commands say so and exit 0, creating nothing."""
    assert spool_verify(_config(tmp_path), as_json=False) == 0
    assert spool_stats(_config(tmp_path), as_json=False) == 0
    assert "no spool yet" in capsys.readouterr().out
    assert not (tmp_path / "Logs").exists()
