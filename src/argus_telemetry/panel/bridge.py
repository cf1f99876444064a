"""Stream client → browsers: one connection to the agent, fanned out as server-sent events.

The bridge keeps the last 10 minutes of snapshots (seeded from the stream's history on
every connect, deduplicated by `seq`), the latest status, and whether the agent is
reachable. It reconnects by itself; nothing the agent does (absent, restarted, garbage)
ends it. Each browser gets a bounded queue; one too slow to keep up is dropped, and its
EventSource reconnects and reloads the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import msgspec

from argus_telemetry.errors import ArgusError, StreamUnavailableError

log = logging.getLogger(__name__)

WINDOW_SECONDS = 600.0  # the charts show the last 10 minutes
MAX_HISTORY = 4000  # bounds memory whatever the interval (10 min at 150 ms)
STATUS_POLL_SECONDS = 2.0
FLUSH_TIMEOUT_SECONDS = 5.0
RECONNECT_MIN_SECONDS = 0.25
RECONNECT_MAX_SECONDS = 2.0  # a local socket is cheap to retry; the page comes back fast
SUBSCRIBER_QUEUE = 256


class Upstream(Protocol):
    """What the bridge needs from `stream.client.StreamClient`."""

    hello: dict[str, object]

    def messages(self) -> AsyncIterator[dict[str, object]]: ...

    async def request(self, op: str) -> None: ...

    async def close(self) -> None: ...


Connect = Callable[[str], Awaitable[Upstream]]


class FlushError(ArgusError):
    """The agent did not confirm a flush."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


@dataclass
class Event:
    """One server-sent event: its name and its JSON data."""

    name: str
    data: bytes

    def encode(self) -> bytes:
        return b"event: " + self.name.encode() + b"\ndata: " + self.data + b"\n\n"


@dataclass
class _Waiter:
    """A flush waiting for the status that shows it, or for an error line."""

    flush_total_before: int
    future: asyncio.Future[dict[str, object]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _default_connect(path: str) -> Awaitable[Upstream]:
    from argus_telemetry.stream.client import StreamClient

    return StreamClient.connect(path)


def _snapshot_time(snapshot: dict[str, object]) -> float:
    """Unix seconds of a snapshot's `time`; 0.0 when it is missing or malformed."""
    text = snapshot.get("time")
    if not isinstance(text, str):
        return 0.0
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def _flush_total(status: dict[str, object] | None) -> int:
    flush = status.get("flush") if status else None
    total = flush.get("total") if isinstance(flush, dict) else None
    return total if isinstance(total, int) else -1


class Bridge:
    """The panel's one stream client and its fan-out to browsers."""

    def __init__(self, socket_path: str, *, connect: Connect | None = None) -> None:
        self.socket_path = socket_path
        self._connect = connect or _default_connect
        self._history: deque[tuple[int, float, dict[str, object]]] = deque(maxlen=MAX_HISTORY)
        self._subscribers: set[asyncio.Queue[Event | None]] = set()
        self._client: Upstream | None = None
        self._op_lock = asyncio.Lock()
        self._flush_waiters: list[_Waiter] = []
        self.hello: dict[str, object] | None = None
        self.status: dict[str, object] | None = None
        self.down_reason: str | None = "connecting to the agent"
        self.last_gap: dict[str, object] | None = None  # {"dropped": N, "at": unix seconds}
        self.connections = 0

    # -- what browsers read --------------------------------------------------------

    def state(self) -> dict[str, object]:
        """The first event of every browser connection: reachability, hello, latest status."""
        return {
            "connected": self.down_reason is None,
            "reason": self.down_reason,
            "socket": self.socket_path,
            "hello": self.hello,
            "status": self.status,
            "gap": self.last_gap,
            "window_seconds": WINDOW_SECONDS,
        }

    def history(self) -> list[dict[str, object]]:
        """The snapshots of the last 10 minutes, oldest first."""
        return [snapshot for _, _, snapshot in self._history]

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[Event | None]]:
        """A queue of events for one browser; None in it means "you fell behind, reconnect"."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def _publish(self, name: str, payload: object) -> None:
        event = Event(name, msgspec.json.encode(payload))
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # Drop this browser rather than block the others; it reconnects and reloads.
                self._subscribers.discard(queue)
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(None)

    # -- actions -------------------------------------------------------------------

    async def flush(self) -> dict[str, object]:
        """Ask the agent to flush; return the status that shows the flush counted.

        Raises FlushError when the agent is unreachable, refuses (an `error` line), or
        does not confirm within FLUSH_TIMEOUT_SECONDS.
        """
        client = self._client
        if client is None:
            raise FlushError(f"the agent is not reachable ({self.down_reason})")
        waiter = _Waiter(flush_total_before=_flush_total(self.status))
        self._flush_waiters.append(waiter)
        try:
            async with asyncio.timeout(FLUSH_TIMEOUT_SECONDS):
                async with self._op_lock:
                    await client.request("flush")
                    await client.request("status")
                return await waiter.future
        except TimeoutError:
            raise FlushError(f"the agent did not confirm the flush within {FLUSH_TIMEOUT_SECONDS:g} s") from None
        except (OSError, ArgusError) as exc:
            if isinstance(exc, FlushError):
                raise
            raise FlushError(f"the flush request failed: {exc}") from exc
        finally:
            with contextlib.suppress(ValueError):
                self._flush_waiters.remove(waiter)

    # -- running -------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected to the agent until cancelled; never raises on agent trouble."""
        delay = RECONNECT_MIN_SECONDS
        while True:
            try:
                client = await self._connect(self.socket_path)
            except StreamUnavailableError as exc:
                self._set_down(str(exc))
            except (OSError, ArgusError) as exc:
                self._set_down(f"cannot reach the agent at {self.socket_path}: {exc}")
            else:
                delay = RECONNECT_MIN_SECONDS
                await self._serve(client)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _serve(self, client: Upstream) -> None:
        self._client = client
        self.connections += 1
        self._on_hello(client.hello)
        reason = "the agent closed the stream"
        try:
            async with asyncio.TaskGroup() as group:
                poller = group.create_task(self._poll_status(client))
                try:
                    async for message in client.messages():
                        self._on_message(message)
                finally:
                    poller.cancel()
        except* (OSError, ArgusError) as group_error:
            reason = f"lost the agent's stream: {group_error.exceptions[0]}"
        except* Exception as group_error:
            # A bug of ours or a message shape we did not expect must not end the panel.
            log.exception("stream relay failed", exc_info=group_error)
            reason = f"the panel could not relay the stream: {group_error.exceptions[0]!r}"
        finally:
            self._client = None
            with contextlib.suppress(OSError, ArgusError):
                await client.close()
        self._set_down(reason)

    async def _poll_status(self, client: Upstream) -> None:
        while True:
            async with self._op_lock:
                await client.request("status")
            await asyncio.sleep(STATUS_POLL_SECONDS)

    def _on_hello(self, hello: dict[str, object]) -> None:
        if self.hello is not None and hello.get("host") != self.hello.get("host"):
            self._history.clear()  # another agent: its seq numbers are not ours
        self.hello = hello
        self.down_reason = None
        log.info("agent connected", extra={"socket": self.socket_path, "version": hello.get("version")})
        self._publish("state", self.state())

    def _on_message(self, message: dict[str, object]) -> None:
        kind = message.get("type")
        if kind == "snapshot":
            snapshot = message.get("snapshot")
            if isinstance(snapshot, dict):
                self._on_snapshot(snapshot)
        elif kind == "status":
            status = message.get("status")
            if isinstance(status, dict):
                self._on_status(status)
        elif kind == "gap":
            # Kept for browsers that connect later: the history they load has this hole too.
            self.last_gap = {"dropped": message.get("dropped"), "at": time.time()}
            self._publish("gap", self.last_gap)
        elif kind == "error":
            error = str(message.get("error"))
            log.warning("agent refused a request", extra={"error": error})
            if self._flush_waiters:
                waiter = self._flush_waiters.pop(0)
                if not waiter.future.done():
                    waiter.future.set_exception(FlushError(f"the agent refused: {error}"))
            self._publish("agent_error", {"error": error})

    def _on_snapshot(self, snapshot: dict[str, object]) -> None:
        seq = snapshot.get("seq")
        if not isinstance(seq, int):
            return
        if self._history and seq <= self._history[-1][0]:
            if seq >= self._history[0][0]:
                return  # history replayed after a reconnect: already shown
            self._history.clear()  # seq went back: a new data dir, start over
        wall = _snapshot_time(snapshot)
        self._history.append((seq, wall, snapshot))
        while self._history and self._history[0][1] < wall - WINDOW_SECONDS:
            self._history.popleft()
        self._publish("snapshot", snapshot)

    def _on_status(self, status: dict[str, object]) -> None:
        self.status = status
        total = _flush_total(status)
        for waiter in list(self._flush_waiters):
            if total > waiter.flush_total_before and not waiter.future.done():
                waiter.future.set_result(status)
        self._publish("status", status)

    def _set_down(self, reason: str) -> None:
        for waiter in self._flush_waiters:
            if not waiter.future.done():
                waiter.future.set_exception(FlushError(reason))
        if self.down_reason == reason:
            return
        log.warning("agent unreachable", extra={"socket": self.socket_path, "reason": reason})
        self.down_reason = reason
        self._publish("state", self.state())
