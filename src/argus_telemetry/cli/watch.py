"""`argus watch`: a live terminal view of the stream (rich), or the raw lines with `--json`."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING

import msgspec

from argus_telemetry import paths
from argus_telemetry.stream.client import StreamClient

if TYPE_CHECKING:
    from rich.console import Group

STATUS_EVERY_SNAPSHOTS = 5  # refresh exporter health and spool backlog this often

_encoder = msgspec.json.Encoder()


def watch(socket_path: str | None, *, as_json: bool) -> int:
    """Follow the stream until the agent stops (exit 0) or Ctrl-C (exit 0). An unreachable
    agent raises StreamUnavailableError naming the path tried."""
    path = socket_path or paths.client_stream_path()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_print_json(path) if as_json else _live(path))
    return 0


async def _print_json(path: str) -> None:
    client = await StreamClient.connect(path)
    try:
        _write_line(client.hello)
        async for message in client.messages():
            _write_line(message)
    finally:
        await client.close()


def _write_line(message: dict[str, object]) -> None:
    sys.stdout.buffer.write(_encoder.encode(message) + b"\n")
    sys.stdout.buffer.flush()


async def _live(path: str) -> None:
    from rich.console import Console
    from rich.live import Live

    client = await StreamClient.connect(path)
    view = View(client.hello, path)
    try:
        with Live(view.render(), console=Console(), auto_refresh=False) as live:
            await client.request("status")
            seen = 0
            async for message in client.messages():
                view.update(message)
                if message.get("type") == "snapshot":
                    seen += 1
                    if seen % STATUS_EVERY_SNAPSHOTS == 0:
                        await client.request("status")
                live.update(view.render(), refresh=True)
    finally:
        await client.close()


class View:
    """The latest snapshot and status, rendered as rich tables."""

    def __init__(self, hello: dict[str, object], path: str) -> None:
        self.hello = hello
        self.path = path
        self.snapshot: dict[str, object] = {}
        self.status: dict[str, object] = {}
        self.gaps = 0
        self.last_error = ""

    def update(self, message: dict[str, object]) -> None:
        kind = message.get("type")
        if kind == "snapshot":
            self.snapshot = _dict(message.get("snapshot"))
        elif kind == "status":
            self.status = _dict(message.get("status"))
        elif kind == "gap":
            dropped = message.get("dropped")
            self.gaps += dropped if isinstance(dropped, int) else 0
        elif kind == "error":
            self.last_error = str(message.get("error"))

    def render(self) -> Group:
        from rich.console import Group
        from rich.table import Table

        s = self.snapshot
        header = (
            f"[bold]{self.hello.get('host')}[/] argus {self.hello.get('version')}  seq {s.get('seq', '-')}"
            f"  {s.get('time', 'waiting for the first snapshot')}  ({self.path})"
        )
        if self.gaps:
            header += f"  [yellow]{self.gaps} snapshots skipped (slow terminal)[/]"
        cpu = _dict(s.get("cpu"))
        memory = _dict(s.get("memory"))
        system = Table(title="Host", show_header=False)
        system.add_row("CPU", _percent(cpu.get("usage_percent")))
        cores = cpu.get("cores")
        if isinstance(cores, list):
            system.add_row("cores", "  ".join(f"{i}:{_percent(v)}" for i, v in enumerate(cores)))
        system.add_row(
            "memory",
            f"{_percent(memory.get('used_percent'))} used, {_bytes(memory.get('used_bytes'))}"
            f" of {_bytes(memory.get('total_bytes'))}",
        )
        rates = Table(title="Rates")
        for column in ("device", "read / receive", "write / transmit"):
            rates.add_column(column)
        disk = _dict(s.get("disk"))
        rates.add_row("disk total", _rate(disk.get("read_bytes_per_second")), _rate(disk.get("write_bytes_per_second")))
        for name, entry in sorted(_dict(disk.get("devices")).items()):
            d = _dict(entry)
            rates.add_row(f"  {name}", _rate(d.get("read_bytes_per_second")), _rate(d.get("write_bytes_per_second")))
        network = _dict(s.get("network"))
        rates.add_row(
            "network total",
            _rate(network.get("receive_bytes_per_second")),
            _rate(network.get("transmit_bytes_per_second")),
        )
        for name, entry in sorted(_dict(network.get("interfaces")).items()):
            n = _dict(entry)
            rates.add_row(
                f"  {name}", _rate(n.get("receive_bytes_per_second")), _rate(n.get("transmit_bytes_per_second"))
            )
        agent = Table(title="Agent")
        for column in ("exporter", "state", "last success", "backlog", "last error"):
            agent.add_column(column)
        for name, entry in _dict(self.status.get("exporters")).items():
            e = _dict(entry)
            agent.add_row(
                name,
                "[green]ok[/]" if e.get("ok") else "[red]failing[/]",
                str(e.get("last_success_time") or "-"),
                str(e.get("backlog")),
                str(e.get("last_error") or ""),
            )
        spool = _dict(self.status.get("spool"))
        footer = (
            f"spool backlog: {spool.get('snapshots', '-')} snapshots, {_bytes(spool.get('bytes'))}"
            f"   dropped: {_dict(self.status.get('dropped')) or '-'}"
        )
        if self.last_error:
            footer += f"\n[red]agent said: {self.last_error}[/]"
        return Group(header, system, rates, agent, footer)


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _percent(value: object) -> str:
    return f"{value:5.1f} %" if isinstance(value, int | float) else "-"


def _bytes(value: object) -> str:
    if not isinstance(value, int | float):
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.1f} {unit}"
        amount /= 1024
    return "-"


def _rate(value: object) -> str:
    return f"{_bytes(value)}/s" if isinstance(value, int | float) else "-"
