"""`export.http.build_client`'s ThreadedClient against the test Loki receiver on a real
loopback socket: requests run in one daemon thread per client, awaited from the event
loop; cancelling a hung request returns at once, and closing never waits for it."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from tests.support.loki_receiver import Fault, LokiReceiver

from argus_telemetry.config.model import AuthConfig, TlsConfig
from argus_telemetry.export.http import ThreadedClient, build_client

NOW = 1_796_400_000.0
BODY = b'{"streams":[{"stream":{"job":"argus"},"values":[["1796400000000000000","line-1"]]}]}'
HEADERS = {"Content-Type": "application/json", "X-Scope-OrgID": "t1"}


@pytest.fixture
def receiver() -> Iterator[LokiReceiver]:
    server = LokiReceiver(now=lambda: NOW).start()
    yield server
    server.stop()


def _client(url: str, timeout: float = 5.0) -> ThreadedClient:
    return build_client("loki", tls=TlsConfig(), auth=AuthConfig(), timeout_seconds=timeout, version="9.9.9", url=url)


def _http_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "argus-http-loki" and t.is_alive()]


async def test_requests_run_in_one_daemon_thread_and_answer_the_loop(receiver: LokiReceiver) -> None:
    """Two POSTs through one client: both answered 204 and stored; the client's single
    worker thread is a daemon named after the section; aclose ends it."""
    client = _client(receiver.url)
    threads = _http_threads()
    assert len(threads) == 1
    assert threads[0].daemon is True
    first = await client.post(receiver.push_url, content=BODY, headers=HEADERS)
    second = await client.post(receiver.push_url, content=BODY, headers=HEADERS)
    assert (first.status_code, second.status_code) == (204, 204)
    assert receiver.requests[0].headers["User-Agent"] == "argus-telemetry/9.9.9"
    assert [entry.line for entry in receiver.entries] == ["line-1"]
    assert receiver.duplicates == 1
    await client.aclose()
    threads[0].join(timeout=30)
    assert not threads[0].is_alive()
    with pytest.raises(RuntimeError, match="the HTTP client is closed"):
        await client.post(receiver.push_url, content=BODY, headers=HEADERS)


async def test_cancelling_a_hung_request_and_closing_do_not_wait(receiver: LokiReceiver) -> None:
    """A request the receiver never answers: cancelling the awaiting task returns, and
    aclose returns, while the thread still holds the unanswered request (neither waits
    for it: the request could only end at its 60 s timeout or on release); released,
    the thread drops the answer and exits."""
    receiver.inject(Fault("hang", count=1))
    client = _client(receiver.url, timeout=60.0)
    task = asyncio.create_task(client.post(receiver.push_url, content=BODY, headers=HEADERS))
    await asyncio.to_thread(receiver.wait_for, lambda r: len(r.requests) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await client.aclose()
    (thread,) = _http_threads()
    assert thread.is_alive()
    assert [request.status for request in receiver.requests] == [None]
    receiver.release_hung()
    await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()


async def test_network_errors_are_raised_as_httpx_errors() -> None:
    """A refused connection surfaces in the awaiting task as httpx.ConnectError."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    # closed again: nothing listens there
    async with _client(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(httpx.ConnectError):
            await client.put(f"http://127.0.0.1:{port}/metrics", content=b"x")
