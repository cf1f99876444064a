"""`argus status`: one status read over the stream, as text or `--json`."""

from __future__ import annotations

import asyncio
import json
import sys

from argus_telemetry import paths
from argus_telemetry.stream.client import status


def show_status(socket_path: str | None, *, as_json: bool) -> int:
    """Print the running agent's status; 0 on success. An unreachable agent raises
    StreamUnavailableError naming the socket path tried (main.py turns it into exit 1)."""
    path = socket_path or paths.client_stream_path()
    payload = asyncio.run(status(path))
    if as_json:
        json.dump(payload, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_status(payload, path))
    return 0


def render_status(payload: dict[str, object], path: str) -> str:
    """The human form: one fact per line, exporters last."""
    get = payload.get
    spool = _dict(get("spool"))
    flush = _dict(get("flush"))
    lines = [
        f"agent      {get('version')} on {get('host')} (stream {path})",
        f"uptime     {_duration(get('uptime_seconds'))}, interval {get('interval_seconds')} s,"
        f" {get('snapshots_total')} snapshots, last at {get('last_snapshot_time') or 'never'}",
        f"flushes    {flush.get('total')}, last at {flush.get('last_time') or 'never'}",
        f"spool      {spool.get('snapshots')} snapshots, {spool.get('bytes')} bytes,"
        f" seq {spool.get('oldest_seq')}..{spool.get('newest_seq')}, oldest {spool.get('oldest_time')}",
        "dropped    " + (", ".join(f"{reason} {count}" for reason, count in _dict(get("dropped")).items()) or "none"),
    ]
    exporters = _dict(get("exporters"))
    if not exporters:
        lines.append("exporters  none configured")
    for name, record in exporters.items():
        entry = _dict(record)
        state = "ok" if entry.get("ok") else f"FAILING since {entry.get('failing_since')}"
        lines.append(
            f"exporter   {name}: {state}, last success {entry.get('last_success_time')},"
            f" backlog {entry.get('backlog')}"
            + (
                f", last error {entry.get('last_error')!r} at {entry.get('last_error_time')}"
                if entry.get("last_error")
                else ""
            )
        )
    return "\n".join(lines) + "\n"


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "?"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"
