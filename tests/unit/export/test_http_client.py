"""`export.http.build_client`'s ThreadedClient (stdlib http.client) against the test Loki
receiver and a raw HTTP server on real loopback sockets: requests run in one daemon
thread per client, awaited from the event loop; cancelling a hung request returns at
once, and closing never waits for it; kept-alive connections are reused, and a request
on one the server closed is resent once on a new connection, never twice."""

from __future__ import annotations

import asyncio
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest
from tests.support.loki_receiver import Fault, LokiReceiver

from argus_telemetry.config.model import AuthConfig, Secret, TlsConfig
from argus_telemetry.export.http import ThreadedClient, build_client, error_for_exception

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


async def test_network_errors_are_raised_as_os_errors() -> None:
    """A refused connection surfaces in the awaiting task as ConnectionRefusedError and
    maps to a retryable "network error"."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    # closed again: nothing listens there
    async with _client(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(ConnectionRefusedError) as raised:
            await client.put(f"http://127.0.0.1:{port}/metrics", content=b"x")
    error = error_for_exception("loki", raised.value)
    assert str(error).startswith("loki: network error: [Errno 111]")
    assert (error.status, error.retryable) == (None, True)


class _RawServer(socketserver.ThreadingTCPServer):
    """Answers requests 204 on kept-alive connections, logging (connection number,
    request head) for each; `drop(n)` says whether to close the connection without an
    answer instead, given the request's overall number n (from 1)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, drop: set[int]) -> None:
        super().__init__(("127.0.0.1", 0), _RawHandler)
        self.drop = drop
        self.seen: list[tuple[int, bytes]] = []
        self.connections = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _RawHandler(socketserver.StreamRequestHandler):
    server: _RawServer

    def handle(self) -> None:
        with self.server.lock:
            self.server.connections += 1
            number = self.server.connections
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = self.rfile.readline()
                if not line:
                    return
                head += line
            length = next(
                (int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")), 0
            )
            self.rfile.read(length)
            with self.server.lock:
                self.server.seen.append((number, head))
                dropped = len(self.server.seen) in self.server.drop
            if dropped:
                return
            self.wfile.write(b"HTTP/1.1 204 No Content\r\nServer: raw\r\n\r\n")


@pytest.fixture
def raw_server() -> Iterator[_RawServer]:
    server = _RawServer(drop=set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=30)


async def test_kept_alive_connection_is_reused_with_auth_and_user_agent(raw_server: _RawServer) -> None:
    """Three requests (POST, PUT, DELETE) over one connection, each carrying the basic
    auth header, the user agent and the Host header, and no proxy or redirect business."""
    auth = AuthConfig(username="ops", password=Secret("hunter2"))
    client = build_client("loki", tls=TlsConfig(), auth=auth, timeout_seconds=30, version="9.9.9", url=raw_server.url)
    async with client:
        statuses = [
            (await client.post(raw_server.url + "/a", content=b"x")).status_code,
            (await client.put(raw_server.url + "/b", content=b"yy")).status_code,
            (await client.delete(raw_server.url + "/c")).status_code,
        ]
    assert statuses == [204, 204, 204]
    assert [number for number, _ in raw_server.seen] == [1, 1, 1]
    port = raw_server.server_address[1]
    assert (
        raw_server.seen[0][1]
        == (
            f"POST /a HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept-Encoding: identity\r\nContent-Length: 1\r\n"
            "User-Agent: argus-telemetry/9.9.9\r\nAuthorization: Basic b3BzOmh1bnRlcjI=\r\n\r\n"
        ).encode()
    )
    assert raw_server.seen[2][1].startswith(b"DELETE /c HTTP/1.1\r\n")


async def test_a_closed_kept_alive_connection_is_resent_once(raw_server: _RawServer) -> None:
    """The server drops the kept-alive connection on the 2nd request: the request is sent
    again on a new connection and answered (3 requests seen over 2 connections)."""
    raw_server.drop = {2}
    async with _client(raw_server.url, timeout=30.0) as client:
        first = await client.post(raw_server.url + "/push", content=b"1")
        second = await client.post(raw_server.url + "/push", content=b"2")
    assert (first.status_code, second.status_code) == (204, 204)
    assert [number for number, _ in raw_server.seen] == [1, 1, 2]


async def test_a_request_is_never_resent_twice(raw_server: _RawServer) -> None:
    """The server drops the 2nd request and its resend: the error reaches the caller
    after exactly one resend (3 requests seen), as a network error."""
    raw_server.drop = {2, 3}
    async with _client(raw_server.url, timeout=30.0) as client:
        await client.put(raw_server.url + "/m", content=b"1")
        with pytest.raises(ConnectionError) as raised:
            await client.put(raw_server.url + "/m", content=b"2")
    assert [number for number, _ in raw_server.seen] == [1, 1, 2]
    assert str(error_for_exception("pushgateway", raised.value)) == (
        "pushgateway: network error: Remote end closed connection without response"
    )


async def test_a_fresh_connection_dropped_is_not_resent(raw_server: _RawServer) -> None:
    """The first request of a new connection dropped is not resent (1 request seen)."""
    raw_server.drop = {1}
    async with _client(raw_server.url, timeout=30.0) as client:
        with pytest.raises(ConnectionError):
            await client.post(raw_server.url + "/push", content=b"1")
    assert [number for number, _ in raw_server.seen] == [1]


async def test_a_silent_endpoint_times_out() -> None:
    """A server that accepts but never answers: the request fails after the configured
    timeout with TimeoutError, mapped to a retryable "timeout" error."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        async with _client(url, timeout=0.2) as client:
            with pytest.raises(TimeoutError) as raised:
                await client.post(url + "/push", content=b"1")
    error = error_for_exception("loki", raised.value)
    assert str(error) == "loki: timeout: timed out"
    assert (error.status, error.retryable) == (None, True)
