"""The stream server component: one session per client over a platform listener.

A session sends hello, the history and live snapshots (through its hub queue), answers
`status` and `flush`, and drops a client that sends an over-long line or repeated garbage.
The listener (`_unix.py`, `_windows.py`) only accepts connections and reports the peer's
right to `flush`; everything here is shared by both platforms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from argus_telemetry import paths
from argus_telemetry.errors import StreamProtocolError
from argus_telemetry.stream.hub import Hub, Subscriber
from argus_telemetry.stream.protocol import (
    LineSplitter,
    LineTooLongError,
    error_line,
    hello_line,
    parse_request,
    status_line,
)

if TYPE_CHECKING:
    from argus_telemetry.agent import Agent, Component

log = logging.getLogger(__name__)

MAX_BAD_REQUESTS = 5  # garbage lines before a client is disconnected
READ_CHUNK_BYTES = 64 * 1024
CLOSE_GRACE_SECONDS = 1.0  # time to hand a last error line to a client being dropped


class Connection(Protocol):
    """One accepted client, whatever the transport."""

    peer: str  # for logs: "uid 1000 pid 42" or the pipe client's account

    async def read(self, max_bytes: int) -> bytes:
        """Up to `max_bytes`; b"" at EOF. Raises ConnectionError when the peer vanished."""
        ...

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None:
        """Wait until the transport's buffer is below its high-water mark."""
        ...

    def abort(self) -> None:
        """Close now, dropping unsent data (a stuck client)."""
        ...

    async def close(self) -> None: ...

    def may_flush(self) -> bool:
        """Root / Administrators or the agent's own user."""
        ...


ConnectionHandler = Callable[[Connection], Awaitable[None]]


class Listener(Protocol):
    path: str

    async def bind(self) -> None:
        """Claim the endpoint; raise ArgusError with a clear sentence when it cannot."""
        ...

    async def serve(self, handler: ConnectionHandler) -> None:
        """Accept clients until cancelled, each handled by `handler`."""
        ...

    async def close(self) -> None:
        """Stop accepting and release the endpoint (remove our socket file)."""
        ...


class StreamServer:
    """The `[stream]` component of the agent."""

    name = "stream"

    def __init__(self, agent: Agent, listener: Listener) -> None:
        self.agent = agent
        self.listener = listener
        self.hub = Hub(history=agent.config.stream.history, clock=agent.clock)
        self.max_clients = agent.config.stream.max_clients
        self.refused_total = 0
        self.bad_requests_total = 0
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.listener.bind()
        self.agent.stream_path = self.listener.path
        self.agent.add_listener(self.hub.publish)

    async def run(self) -> None:
        try:
            await self.listener.serve(self.handle)
        finally:
            with contextlib.suppress(ValueError):
                self.agent.remove_listener(self.hub.publish)
            for subscriber in list(self.hub.subscribers):
                subscriber.kick("the agent is stopping")
            for task in list(self._sessions):
                task.cancel()
            if self._sessions:
                await asyncio.gather(*self._sessions, return_exceptions=True)
            await self.listener.close()

    async def final_flush(self) -> None:
        """Nothing to deliver: the stream is live only."""

    async def handle(self, connection: Connection) -> None:
        """Serve one client until it leaves, is dropped, or the agent stops."""
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await self._session(connection)
        except ConnectionError:
            pass
        finally:
            self._sessions.discard(task)
            connection.abort()

    async def _session(self, connection: Connection) -> None:
        if self.hub.client_count >= self.max_clients:
            self.refused_total += 1
            log.warning("stream client refused", extra={"peer": connection.peer, "max_clients": self.max_clients})
            connection.write(error_line(f"too many clients (max_clients = {self.max_clients}); try again later"))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_GRACE_SECONDS):
                    await connection.drain()
            return
        config = self.agent.config
        hello = hello_line(version=self.agent.version, host=self.agent.hostname, interval_seconds=config.agent.interval)
        subscriber = self.hub.subscribe(hello)
        subscriber.on_kick = lambda reason: connection.abort()
        writing = asyncio.create_task(self._write_loop(connection, subscriber), name="stream-writer")
        try:
            reading = asyncio.create_task(self._read_loop(connection, subscriber), name="stream-reader")
            done, _ = await asyncio.wait([reading, writing], return_when=asyncio.FIRST_COMPLETED)
            if reading in done and reading.exception() is None and not writing.done():
                # The reader ended the session (bad client) or saw EOF: let the writer hand
                # over the last replies, then stop.
                subscriber.finish()
                with contextlib.suppress(TimeoutError, ConnectionError):
                    async with asyncio.timeout(CLOSE_GRACE_SECONDS):
                        await writing
            for task in (reading, writing):
                task.cancel()
            await asyncio.gather(reading, writing, return_exceptions=True)
        finally:
            writing.cancel()
            self.hub.unsubscribe(subscriber)

    async def _write_loop(self, connection: Connection, subscriber: Subscriber) -> None:
        while True:
            lines = await subscriber.take()
            if not lines:
                return
            connection.write(b"".join(lines))
            await connection.drain()

    async def _read_loop(self, connection: Connection, subscriber: Subscriber) -> None:
        splitter = LineSplitter()
        bad = 0
        while True:
            data = await connection.read(READ_CHUNK_BYTES)
            if not data:
                return
            try:
                lines = splitter.feed(data)
            except LineTooLongError as exc:
                self.bad_requests_total += 1
                log.warning("stream client dropped", extra={"peer": connection.peer, "reason": str(exc)})
                subscriber.send_control(error_line(f"{exc}; disconnecting"))
                return
            for line in lines:
                if not line.strip():
                    continue
                try:
                    op = parse_request(line)
                except StreamProtocolError as exc:
                    bad += 1
                    self.bad_requests_total += 1
                    if bad >= MAX_BAD_REQUESTS:
                        log.warning(
                            "stream client dropped", extra={"peer": connection.peer, "reason": "repeated bad requests"}
                        )
                        subscriber.send_control(error_line(f"{exc}; {bad} bad requests, disconnecting"))
                        return
                    subscriber.send_control(error_line(str(exc)))
                    continue
                await self._answer(op, connection, subscriber)
            await subscriber.wait_control_room()

    async def _answer(self, op: str, connection: Connection, subscriber: Subscriber) -> None:
        if op == "flush":
            if not connection.may_flush():
                log.info("stream flush denied", extra={"peer": connection.peer})
                subscriber.send_control(
                    error_line(
                        f"flush denied: allowed only to root or the agent's own user (you are {connection.peer})"
                    )
                )
                return
            await self.agent.flush_now()
        subscriber.send_control(status_line(await self.agent.status()))


def resolve_path(agent: Agent) -> str:
    """The endpoint: `[stream] path`, else the platform default for this data dir."""
    return agent.config.stream.path or paths.default_stream_path(agent.data_dir)


def build_stream_server(agent: Agent) -> Component:
    """The stream server for this platform (Unix socket, or the named pipe on Windows)."""
    path = resolve_path(agent)
    listener: Listener
    if paths.is_windows():
        from argus_telemetry.stream._windows import PipeListener

        listener = PipeListener(path, max_clients=agent.config.stream.max_clients)
    else:
        from argus_telemetry.stream._unix import UnixListener

        listener = UnixListener(path, group=agent.config.stream.group)
    return StreamServer(agent, listener)
