"""Fan-out of snapshots to stream clients: history ring, one bounded queue per client.

`Hub.publish` is the agent's snapshot listener: it runs on the event loop for every
snapshot and never blocks or awaits. A client whose queue is full loses snapshots (counted,
and reported to it as one `gap` line before the next snapshot it gets); a client that stays
full for `stuck_seconds` on the agent's clock is kicked. Queued lines are the very bytes
objects of the ring, so a client costs pointers, not copies.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from argus_telemetry.stream.protocol import gap_line, snapshot_line

if TYPE_CHECKING:
    from argus_telemetry.clock import Clock
    from argus_telemetry.snapshot.model import Snapshot

log = logging.getLogger(__name__)

LIVE_QUEUE_LIMIT = 64  # snapshots a client may fall behind beyond the history replay
STUCK_SECONDS = 10.0  # a client full for this long is disconnected
CONTROL_QUEUE_LIMIT = 16  # replies (status/error) waiting; the session stops reading past it


class Subscriber:
    """One client's outgoing queue. The session's writer drains it with `take()`."""

    def __init__(self, *, clock: Clock, limit: int, stuck_seconds: float) -> None:
        self._clock = clock
        self.limit = limit
        self.stuck_seconds = stuck_seconds
        self._snapshots: deque[bytes] = deque()
        self._control: deque[bytes] = deque()
        self._wakeup = asyncio.Event()
        self._control_room = asyncio.Event()
        self._control_room.set()
        self.dropped_unreported = 0  # to report in the next gap line
        self.dropped_total = 0
        self.full_since: float | None = None
        self.closed = False
        self.close_reason = ""
        self._finishing = False
        self.on_kick: Callable[[str], None] | None = None

    @property
    def queued(self) -> int:
        return len(self._snapshots)

    def offer(self, line: bytes) -> bool:
        """Queue one snapshot line; False when it was dropped for this client."""
        if self.closed or self._finishing:
            return False
        if len(self._snapshots) >= self.limit:
            self.dropped_unreported += 1
            self.dropped_total += 1
            now = self._clock.monotonic()
            if self.full_since is None:
                self.full_since = now
            elif now - self.full_since >= self.stuck_seconds:
                self.kick(f"queue full for {now - self.full_since:.1f} s ({self.dropped_total} snapshots dropped)")
            return False
        self.full_since = None
        if self.dropped_unreported:
            self._snapshots.append(gap_line(self.dropped_unreported))
            self.dropped_unreported = 0
        self._snapshots.append(line)
        self._wakeup.set()
        return True

    def send_control(self, line: bytes) -> None:
        """Queue a reply (status, error); replies are never dropped, the reader waits instead."""
        if self.closed:
            return
        self._control.append(line)
        if len(self._control) >= CONTROL_QUEUE_LIMIT:
            self._control_room.clear()
        self._wakeup.set()

    async def wait_control_room(self) -> None:
        """Backpressure for a client that sends requests but does not read the replies."""
        await self._control_room.wait()

    async def take(self) -> list[bytes]:
        """Wait for lines to send and return all of them, replies first; [] once closed."""
        while not (self._control or self._snapshots):
            if self.closed or self._finishing:
                return []
            self._wakeup.clear()
            await self._wakeup.wait()
        if self.closed:
            return []
        lines = list(self._control)
        self._control.clear()
        self._control_room.set()
        if not self._finishing:
            lines.extend(self._snapshots)
        self._snapshots.clear()
        return lines

    def finish(self) -> None:
        """Send the pending replies (e.g. the last error), then end: no more snapshots."""
        self._finishing = True
        self._wakeup.set()

    def kick(self, reason: str) -> None:
        """Disconnect now: the queue is dropped and `on_kick` aborts the connection."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._snapshots.clear()
        self._control.clear()
        self._wakeup.set()
        self._control_room.set()
        if self.on_kick is not None:
            self.on_kick(reason)


class Hub:
    """History ring plus the set of subscribers; `publish` is the agent's listener."""

    def __init__(
        self,
        *,
        history: int,
        clock: Clock,
        live_queue_limit: int = LIVE_QUEUE_LIMIT,
        stuck_seconds: float = STUCK_SECONDS,
    ) -> None:
        self.clock = clock
        self.ring: deque[bytes] = deque(maxlen=max(0, history))
        self.live_queue_limit = live_queue_limit
        self.stuck_seconds = stuck_seconds
        self.subscribers: set[Subscriber] = set()
        self.published_total = 0
        self.dropped_total = 0  # snapshots not delivered to some client, summed over clients
        self.kicked_total = 0

    @property
    def client_count(self) -> int:
        return len(self.subscribers)

    def publish(self, snapshot: Snapshot, snapshot_json: bytes) -> None:
        """Add one snapshot to the ring and to every client's queue. Never blocks."""
        del snapshot  # the encoded JSON is all the stream needs
        self.publish_line(snapshot_line(snapshot_json))

    def publish_line(self, line: bytes) -> None:
        self.ring.append(line)
        self.published_total += 1
        for subscriber in list(self.subscribers):
            if not subscriber.offer(line):
                self.dropped_total += 1
            if subscriber.closed:
                self.kicked_total += 1
                self.subscribers.discard(subscriber)
                log.warning("stream client disconnected", extra={"reason": subscriber.close_reason})

    def subscribe(self, hello: bytes) -> Subscriber:
        """A new client: its queue starts with `hello`, then the ring oldest first."""
        subscriber = Subscriber(
            clock=self.clock,
            limit=(self.ring.maxlen or 0) + self.live_queue_limit,
            stuck_seconds=self.stuck_seconds,
        )
        subscriber.send_control(hello)
        subscriber._snapshots.extend(self.ring)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
