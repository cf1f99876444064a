"""Hub fan-out: history replay, per-client bounded queues, gaps and stuck-client kicks."""

from __future__ import annotations

import json

from tests.support.fake_clock import FakeClock

from argus_telemetry.stream.hub import Hub

HELLO = b'{"type":"hello"}\n'


def line(seq: int) -> bytes:
    return b'{"type":"snapshot","snapshot":{"seq":%d}}\n' % seq


def kinds(lines: list[bytes]) -> list[object]:
    """Each line as its seq (snapshot) or ("gap", N) / "hello"."""
    out: list[object] = []
    for raw in lines:
        message = json.loads(raw)
        if message["type"] == "snapshot":
            out.append(message["snapshot"]["seq"])
        elif message["type"] == "gap":
            out.append(("gap", message["dropped"]))
        else:
            out.append(message["type"])
    return out


async def test_new_client_gets_hello_then_history_oldest_first_then_live() -> None:
    """History holds the last `history` snapshots; a new client gets hello, them, then live ones."""
    hub = Hub(history=3, clock=FakeClock())
    for seq in range(1, 6):
        hub.publish_line(line(seq))
    subscriber = hub.subscribe(HELLO)
    hub.publish_line(line(6))
    assert kinds(await subscriber.take()) == ["hello", 3, 4, 5, 6]


async def test_slow_client_gets_a_gap_and_the_others_are_untouched() -> None:
    """A full queue drops snapshots for that client only, reported as one gap line."""
    hub = Hub(history=2, clock=FakeClock(), live_queue_limit=2)
    slow = hub.subscribe(HELLO)
    fast = hub.subscribe(HELLO)
    assert slow.limit == 4
    for seq in range(1, 8):
        hub.publish_line(line(seq))
        if seq <= 6:
            assert kinds(await fast.take())[-1] == seq
    assert kinds(await slow.take()) == ["hello", 1, 2, 3, 4]
    hub.publish_line(line(8))
    assert kinds(await slow.take()) == [("gap", 3), 8]
    assert kinds(await fast.take()) == [7, 8]
    assert (slow.dropped_total, fast.dropped_total, hub.dropped_total) == (3, 0, 3)


async def test_client_full_for_ten_seconds_is_kicked() -> None:
    """A client whose queue stays full for 10 s on the agent's clock is disconnected."""
    clock = FakeClock()
    hub = Hub(history=0, clock=clock, live_queue_limit=1)
    stuck = hub.subscribe(HELLO)
    reasons: list[str] = []
    stuck.on_kick = reasons.append
    hub.publish_line(line(1))  # fills the queue
    hub.publish_line(line(2))  # dropped: full since now
    clock.advance(9.9)
    hub.publish_line(line(3))
    assert (stuck.closed, hub.client_count) == (False, 1)
    clock.advance(0.1)
    hub.publish_line(line(4))
    assert reasons == ["queue full for 10.0 s (3 snapshots dropped)"]
    assert (stuck.closed, hub.client_count, hub.kicked_total) == (True, 0, 1)
    assert await stuck.take() == []


async def test_room_again_resets_the_stuck_timer() -> None:
    """A client that catches up, even briefly, starts a new 10 s allowance."""
    clock = FakeClock()
    hub = Hub(history=0, clock=clock, live_queue_limit=1)
    client = hub.subscribe(HELLO)
    await client.take()
    hub.publish_line(line(1))
    hub.publish_line(line(2))  # dropped
    clock.advance(8)
    assert kinds(await client.take()) == [1]
    hub.publish_line(line(3))  # gap + 3: queue has room again
    clock.advance(8)
    hub.publish_line(line(4))  # dropped, new full episode
    assert client.closed is False
    assert kinds(await client.take()) == [("gap", 1), 3]


async def test_finish_sends_pending_replies_but_no_more_snapshots() -> None:
    """After finish() the writer gets the queued replies once, then an empty list."""
    hub = Hub(history=5, clock=FakeClock())
    hub.publish_line(line(1))
    client = hub.subscribe(HELLO)
    client.send_control(b'{"type":"error","error":"bye"}\n')
    client.finish()
    assert kinds(await client.take()) == ["hello", "error"]
    assert await client.take() == []
