"""The local `/metrics` endpoint on `[metrics] listen`: the same families as the
Pushgateway push, built from the latest snapshot at each scrape.

A minimal asyncio HTTP/1.1 server on a Protocol (no stream objects per connection): it
keeps the agent free of a web framework (RSS budget, perf notes) and answers from the
event loop, where the spool stats live. A GET/HEAD over HTTP/1.1 keeps the connection
open for the next scrape (as Prometheus reuses it) until the client closes it, sends
`Connection: close`, or stays idle READ_TIMEOUT_SECONDS; anything else is answered and
closed. The body is the exposition shared with the Pushgateway push (rendered once
per snapshot, see families.Exposition).
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
        self._connections: set[_Connection] = set()
        self.address: tuple[str, int] | None = None  # where it listens, once started

    async def start(self) -> None:
        where = self._host.config_path or "configuration"
        host, port = parse_listen(self._host.config.metrics.listen, where)
        try:
            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(lambda: _Connection(self), host, port)
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
            for connection in list(self._connections):
                connection.close()
            await self._server.wait_closed()

    async def final_flush(self) -> None:
        """Nothing to deliver: scrapers pull."""

    async def answer(self, head: bytes) -> tuple[str, str, bytes]:
        """(status line, content type, body) for one request head."""
        from argus_telemetry.export.pushgateway import exposition

        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return "400 Bad Request", "text/plain", b"bad request\n"
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if target != b"/metrics":
            return "404 Not Found", "text/plain", b"not found: try /metrics\n"
        if method not in (b"GET", b"HEAD"):
            return "405 Method Not Allowed", "text/plain", b"method not allowed\n"
        body = await exposition(self._host)
        return "200 OK", CONTENT_TYPE, b"" if method == b"HEAD" else body


class _Connection(asyncio.Protocol):
    """One client connection: its requests answered in order, one at a time."""

    def __init__(self, endpoint: MetricsEndpoint) -> None:
        self._endpoint = endpoint
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._busy = False
        self._idle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._endpoint._connections.add(self)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._endpoint._connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._next()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _arm(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(READ_TIMEOUT_SECONDS, self.close)

    def _next(self) -> None:
        if self._busy or self._transport is None:
            return
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                self.close()  # a head this long is garbage: nothing more for it
            return
        head = bytes(self._buffer[: end + 4])
        del self._buffer[: end + 4]
        self._busy = True
        self._task = asyncio.get_running_loop().create_task(self._respond(head))

    async def _respond(self, head: bytes) -> None:
        try:
            status, content_type, body = await self._endpoint.answer(head)
        except Exception:
            log.exception("metrics scrape failed")
            status, content_type, body = "500 Internal Server Error", "text/plain", b"internal error\n"
        transport = self._transport
        if transport is None:
            return  # the client hung up meanwhile
        keep = status.startswith("200") and _keeps_alive(head)
        transport.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n".encode()
            + body
        )
        if not keep:
            transport.close()
            return
        self._busy = False
        self._arm()
        self._next()


def _keeps_alive(head: bytes) -> bool:
    """HTTP/1.1 without `Connection: close` and without a request body."""
    lines = head.lower().split(b"\r\n")
    if not lines[0].endswith(b" http/1.1"):
        return False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip()
        if name == b"connection" and b"close" in value:
            return False
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return False
    return True
