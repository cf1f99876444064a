"""The local `/metrics` endpoint on `[metrics] listen`: the same families as the
Pushgateway push, built from the latest snapshot at each scrape.

A minimal asyncio HTTP/1.1 server (one request per connection, `Connection: close`):
it keeps the agent free of a web framework (RSS budget, perf notes) and answers
from the event loop, where the spool stats live.
"""

from __future__ import annotations

import asyncio
import logging

from argus_telemetry.errors import ConfigError
from argus_telemetry.export.base import ExportHost

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_HEAD_BYTES = 16 * 1024
READ_TIMEOUT_SECONDS = 10.0


def parse_listen(text: str, where: str = "configuration") -> tuple[str, int]:
    """ "HOST:PORT" or "[V6]:PORT" → (host, port); ConfigError naming [metrics] listen."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(where, "[metrics] listen", f'{text!r} is not HOST:PORT (e.g. "127.0.0.1:9464")')
    host = host.removeprefix("[").removesuffix("]")
    return host or "127.0.0.1", int(port)


class MetricsEndpoint:
    """The agent Component serving GET /metrics."""

    name = "metrics"

    def __init__(self, host: ExportHost) -> None:
        self._host = host
        self._server: asyncio.Server | None = None
        self.address: tuple[str, int] | None = None  # where it listens, once started

    async def start(self) -> None:
        where = self._host.config_path or "configuration"
        host, port = parse_listen(self._host.config.metrics.listen, where)
        try:
            self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD_BYTES)
        except OSError as exc:
            raise ConfigError(where, "[metrics] listen", f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        sockname = self._server.sockets[0].getsockname()
        self.address = (str(sockname[0]), int(sockname[1]))
        log.info("metrics endpoint listening", extra={"address": f"{host}:{self.address[1]}"})

    async def run(self) -> None:
        assert self._server is not None, "start() binds the socket"
        try:
            await self._server.serve_forever()
        finally:
            self._server.close()
            await self._server.wait_closed()

    async def final_flush(self) -> None:
        """Nothing to deliver: scrapers pull."""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
            status, content_type, body = await self._answer(head)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that hung up or sent garbage gets nothing more
        finally:
            writer.close()

    async def _answer(self, head: bytes) -> tuple[str, str, bytes]:
        from argus_telemetry.export.families import render
        from argus_telemetry.export.pushgateway import metrics_input

        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return "400 Bad Request", "text/plain", b"bad request\n"
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if target != b"/metrics":
            return "404 Not Found", "text/plain", b"not found: try /metrics\n"
        if method not in (b"GET", b"HEAD"):
            return "405 Method Not Allowed", "text/plain", b"method not allowed\n"
        body = render(await metrics_input(self._host))
        return "200 OK", CONTENT_TYPE, b"" if method == b"HEAD" else body
