"""`argus spool stats` and `argus spool verify`: what is buffered, and an integrity check.

Both open the spool read-only, so they are safe while the agent runs.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import msgspec

from argus_telemetry import paths
from argus_telemetry.config.model import Config
from argus_telemetry.errors import SpoolError
from argus_telemetry.snapshot.model import format_time
from argus_telemetry.spool.base import SpoolStats
from argus_telemetry.spool.sqlite import read_stats
from argus_telemetry.spool.verify import verify_spool


def _spool_dir(config: Config) -> Path:
    data_dir = Path(config.agent.data_dir) if config.agent.data_dir else paths.default_data_dir()
    return paths.spool_dir(data_dir)


def spool_stats(config: Config, *, as_json: bool) -> int:
    """Print rows, bytes, oldest/newest seq and time, per-consumer backlog and drops.
    Exit 0; a spool that cannot be read raises SpoolError (exit 1)."""
    directory = _spool_dir(config)
    try:
        stats = read_stats(directory)
    except sqlite3.Error as exc:
        raise SpoolError(f"cannot read {directory}: {exc} (run `argus spool verify`)") from exc
    if as_json:
        payload = msgspec.to_builtins(stats) if stats is not None else {"path": str(directory), "rows": 0}
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(payload)).decode() + "\n")
        return 0
    if stats is None:
        print(f"no spool yet in {directory}")
        return 0
    print(_render_stats(stats))
    return 0


def _render_stats(stats: SpoolStats) -> str:
    def moment(seq: int | None, wall: float | None) -> str:
        if seq is None or wall is None:
            return "-"
        return f"seq {seq} at {format_time(wall)}"

    backlog = ", ".join(f"{name}={count}" for name, count in stats.backlog.items()) or "no consumers"
    dropped = ", ".join(f"{reason}={count}" for reason, count in stats.dropped.items())
    return "\n".join(
        (
            f"spool:    {stats.path}",
            f"rows:     {stats.rows}",
            f"bytes:    {stats.bytes}",
            f"oldest:   {moment(stats.oldest_seq, stats.oldest_wall)}",
            f"newest:   {moment(stats.newest_seq, stats.newest_wall)}",
            f"next seq: {stats.high_water_seq + 1}",
            f"backlog:  {backlog}",
            f"dropped:  {dropped}",
        )
    )


def spool_verify(config: Config, *, as_json: bool) -> int:
    """Run integrity_check, the schema check and a CRC scan of every row. Exit 0 when
    healthy (or when there is no spool yet), 1 on corruption, with the details."""
    report = verify_spool(_spool_dir(config))
    if as_json:
        payload = {"path": report.path, "exists": report.exists, "ok": report.ok, "rows": report.rows}
        payload["problems"] = report.problems
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(payload)).decode() + "\n")
    elif not report.exists:
        print(f"{report.path}: no spool yet, nothing to verify")
    elif report.ok:
        print(f"{report.path}: OK ({report.rows} rows)")
    else:
        print(f"{report.path}: CORRUPT", file=sys.stderr)
        for problem in report.problems:
            print(f"  {problem}", file=sys.stderr)
    return 0 if report.ok else 1
