"""The stream over a real Unix socket, served by a real Agent (fake collector and clock,
real SQLite spool): protocol, flush rights by peer uid, hostile clients, permissions."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import stat
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from tests.support.factories import cpu_times, raw_sample
from tests.support.fake_clock import FakeClock

from argus_telemetry.agent import Agent
from argus_telemetry.collect.base import RawSample
from argus_telemetry.config.model import AgentConfig, Config, Seconds, StreamConfig
from argus_telemetry.errors import ArgusError, StreamUnavailableError
from argus_telemetry.stream.client import StreamClient

NOBODY = 65534
DEADLINE = 30.0


class FakeCollector:
    """Counters that grow by fixed steps, stamped with the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.reads = 0

    def read(self) -> RawSample:
        self.reads += 1
        n = self.reads
        return raw_sample(
            monotonic=self.clock.monotonic(),
            wall=self.clock.wall(),
            cores=[cpu_times(user=n, idle=100.0 + n), cpu_times(user=2 * n, idle=100.0 + n)],
            disks={"vda": (4096 * n, 8192 * n)},
            network={"lo": (10 * n, 10 * n), "eth0": (1000 * n, 500 * n)},
        )


class Harness:
    """One running agent and the means to make it tick."""

    def __init__(self, base: Path, *, history: int = 5, max_clients: int = 4, group: str = "") -> None:
        self.clock = FakeClock()
        self.path = str(base / "argus-telemetry" / "TelemetryPipe.sock")
        self.config = Config(
            agent=AgentConfig(
                interval=Seconds(1.0),
                flush_interval=Seconds(3600.0),
                flush_max_items=100000,
                data_dir=str(base / "data"),
            ),
            stream=StreamConfig(path=self.path, history=history, max_clients=max_clients, group=group),
        )
        self.agent = Agent(self.config, clock=self.clock, collector=FakeCollector(self.clock))
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.agent.run(self.stop))
        async with asyncio.timeout(DEADLINE):
            while not self.agent.stream_path:
                if self.task.done():
                    self.task.result()
                await asyncio.sleep(0.01)

    async def tick(self, count: int = 1) -> None:
        """Let `count` snapshots be taken (waits until the tick loop sleeps again)."""
        async with asyncio.timeout(DEADLINE):
            for _ in range(count):
                await self.clock.wait_for_sleepers(1)
                before = self.agent.health.snapshots_total
                self.clock.advance(1.0)
                while self.agent.health.snapshots_total == before:
                    await asyncio.sleep(0.001)

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            async with asyncio.timeout(DEADLINE):
                await self.task


class Reader:
    """A well-behaved client reading in the background."""

    def __init__(self, client: StreamClient) -> None:
        self.client = client
        self.messages: list[dict[str, object]] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for message in self.client.messages():
            self.messages.append(message)

    def seqs(self) -> list[int]:
        return [m["snapshot"]["seq"] for m in self.messages if m["type"] == "snapshot"]  # type: ignore[index]

    async def wait_for(self, kind: str, count: int = 1) -> dict[str, object]:
        async with asyncio.timeout(DEADLINE):
            while sum(1 for m in self.messages if m["type"] == kind) < count:
                await asyncio.sleep(0.001)
        return [m for m in self.messages if m["type"] == kind][count - 1]

    async def wait_seq(self, seq: int) -> None:
        async with asyncio.timeout(DEADLINE):
            while not self.seqs() or self.seqs()[-1] < seq:
                await asyncio.sleep(0.001)

    def assert_consecutive(self) -> None:
        seqs = self.seqs()
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert [m for m in self.messages if m["type"] in ("gap", "error")] == []

    async def close(self) -> None:
        await self.client.close()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
def base() -> AsyncIterator[Path]:
    """A directory others may traverse (0755), so a client running as nobody can reach the socket dir."""
    path = Path(tempfile.mkdtemp(prefix="argus-stream-"))
    path.chmod(0o755)
    yield path  # type: ignore[misc]
    import shutil

    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def harness(base: Path) -> AsyncIterator[Harness]:
    h = Harness(base)
    await h.start()
    yield h
    await h.close()


def raw_connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.setblocking(False)
    return sock


async def read_until_eof(sock: socket.socket) -> list[dict[str, object]]:
    """Every line the server sends until it closes the connection."""
    loop = asyncio.get_running_loop()
    data = b""
    async with asyncio.timeout(DEADLINE):
        while True:
            try:
                chunk = await loop.sock_recv(sock, 65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    sock.close()
    return [json.loads(line) for line in data.split(b"\n") if line]


async def test_hello_history_then_live_with_consecutive_seq(harness: Harness) -> None:
    """hello first; at most `history` (5) snapshots replayed oldest first; then live, consecutive."""
    await harness.tick(8)
    client = await StreamClient.connect(harness.path)
    assert client.hello == {
        "type": "hello",
        "protocol": 1,
        "version": harness.agent.version,
        "host": harness.agent.hostname,
        "interval_seconds": 1.0,
    }
    reader = Reader(client)
    await reader.wait_seq(8)
    assert reader.seqs() == [4, 5, 6, 7, 8]
    await harness.tick(3)
    await reader.wait_seq(11)
    assert reader.seqs() == list(range(4, 12))
    snapshot = reader.messages[-1]["snapshot"]
    assert snapshot["host"] == harness.agent.hostname  # type: ignore[index]
    await reader.close()


async def test_status_and_flush_from_an_allowed_peer(harness: Harness) -> None:
    """status answers with the payload; flush from root flushes (flush.total + 1) and answers status."""
    await harness.tick(2)
    reader = Reader(await StreamClient.connect(harness.path))
    await reader.client.request("status")
    status = (await reader.wait_for("status"))["status"]
    assert status["snapshots_total"] == 2  # type: ignore[index]
    flushes = status["flush"]["total"]  # type: ignore[index]
    await reader.client.request("flush")
    after = (await reader.wait_for("status", 2))["status"]
    assert after["flush"]["total"] == flushes + 1  # type: ignore[index]
    assert harness.agent.health.flush_total == flushes + 1
    await reader.close()


NOBODY_CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b'{"op":"flush"}\n')
f = s.makefile("rb")
for line in f:
    m = json.loads(line)
    if m["type"] in ("error", "status"):
        print(json.dumps(m))
        break
"""


async def test_flush_is_denied_to_another_uid(base: Path) -> None:
    """A client running as nobody (socket group nogroup) gets an error for flush, and no flush happens."""
    h = Harness(base, group="nogroup")
    await h.start()
    try:
        flushes = h.agent.health.flush_total
        process = await asyncio.create_subprocess_exec(
            "/usr/bin/python3",
            "-c",
            NOBODY_CLIENT,
            h.path,
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(DEADLINE):
            out, err = await process.communicate()
        assert process.returncode == 0, err
        pid = process.pid
        assert json.loads(out) == {
            "type": "error",
            "error": f"flush denied: allowed only to root or the agent's own user (you are uid {NOBODY} pid {pid})",
        }
        assert h.agent.health.flush_total == flushes
    finally:
        await h.close()


async def test_client_that_never_reads_is_dropped_others_unaffected(harness: Harness) -> None:
    """A never-reading client fills its queue, is cut off after 10 s full; the good client sees no gap."""
    good = Reader(await StreamClient.connect(harness.path))
    stuck = raw_connect(harness.path)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    before = harness.agent.health.snapshots_total
    ticks = 0
    while harness.agent.health.snapshots_total - before < 2000:
        await harness.tick(10)
        ticks += 10
        await good.wait_seq(harness.agent.health.snapshots_total)
        try:
            stuck.getpeername()
            if stuck.recv(1, socket.MSG_PEEK) == b"":
                break
        except BlockingIOError:
            continue
        except OSError:
            break
    received = await read_until_eof(stuck)
    seqs = [m["snapshot"]["seq"] for m in received if m["type"] == "snapshot"]  # type: ignore[index]
    assert received[0]["type"] == "hello"
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) < harness.agent.health.snapshots_total
    good.assert_consecutive()
    assert good.seqs()[-1] == harness.agent.health.snapshots_total
    await good.close()


async def test_two_mib_without_newline_is_rejected(harness: Harness) -> None:
    """A line over 1 MiB gets an error line and the connection is closed; the good client sees no gap."""
    good = Reader(await StreamClient.connect(harness.path))
    hostile = raw_connect(harness.path)
    loop = asyncio.get_running_loop()
    with pytest.raises(OSError):  # the server hangs up before the whole 2 MiB is taken
        async with asyncio.timeout(DEADLINE):
            await loop.sock_sendall(hostile, b"x" * (2 * 1024 * 1024))
            await loop.sock_sendall(hostile, b"x" * (2 * 1024 * 1024))
    await harness.tick(3)
    received = await read_until_eof(hostile)
    assert received[-1]["type"] == "error"
    # the count is what had arrived when the cap was passed: 1 MiB plus at most one 64 KiB read
    assert re.fullmatch(
        r"line exceeds the 1048576-byte limit \((\d+) bytes without a newline\); disconnecting",
        str(received[-1]["error"]),
    )
    await good.wait_seq(3)
    good.assert_consecutive()
    await good.close()


async def test_repeated_garbage_disconnects(harness: Harness) -> None:
    """Each garbage line gets an error; the fifth disconnects; the good client sees no gap."""
    good = Reader(await StreamClient.connect(harness.path))
    hostile = raw_connect(harness.path)
    await asyncio.get_running_loop().sock_sendall(hostile, b"garbage\n" * 4 + b"[1]\n" + b'{"op":"status"}\n')
    await harness.tick(2)
    errors = [m["error"] for m in await read_until_eof(hostile) if m["type"] == "error"]
    assert len(errors) == 5
    assert all(e.startswith("not a JSON line") for e in errors[:4])
    assert errors[4] == "expected a JSON object, got list; 5 bad requests, disconnecting"
    await good.wait_seq(2)
    good.assert_consecutive()
    await good.close()


async def test_rapid_connect_disconnect_and_max_clients(harness: Harness) -> None:
    """200 rapid connect/disconnects leave no session behind; max_clients (4) + 1 is refused with an error."""
    good = Reader(await StreamClient.connect(harness.path))
    for i in range(200):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(harness.path)
        if i % 2:
            sock.sendall(b'{"op":"status"}\n')
        sock.close()
        if i % 50 == 0:
            await harness.tick(1)
    others = []
    async with asyncio.timeout(DEADLINE):
        while len(others) < 3:
            try:
                others.append(await StreamClient.connect(harness.path))
            except StreamUnavailableError:
                await asyncio.sleep(0.01)  # sessions of the rapid clients still closing
    with pytest.raises(StreamUnavailableError) as caught:
        await StreamClient.connect(harness.path)
    assert str(caught.value) == (
        f"cannot reach the agent at {harness.path}: the agent refused the connection:"
        " too many clients (max_clients = 4); try again later"
    )
    await harness.tick(2)
    await good.wait_seq(6)
    good.assert_consecutive()
    for other in others:
        await other.close()
    await good.close()


async def test_socket_mode_and_ownership(base: Path) -> None:
    """Socket 0660 owned by the agent's uid and the [stream] group; its directory 0750, same group."""
    h = Harness(base, group="nogroup")
    await h.start()
    try:
        sock_info = os.lstat(h.path)
        dir_info = os.lstat(Path(h.path).parent)
        assert (stat.S_ISSOCK(sock_info.st_mode), stat.S_IMODE(sock_info.st_mode)) == (True, 0o660)
        assert (sock_info.st_uid, sock_info.st_gid) == (os.geteuid(), NOBODY)
        assert (stat.S_IMODE(dir_info.st_mode), dir_info.st_uid, dir_info.st_gid) == (0o750, os.geteuid(), NOBODY)
    finally:
        await h.close()
    assert not os.path.exists(h.path)


async def test_default_group_gives_a_private_directory(harness: Harness) -> None:
    """Without a group the socket's directory is 0700."""
    assert stat.S_IMODE(os.lstat(Path(harness.path).parent).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(harness.path).st_mode) == 0o660


async def test_stale_socket_is_replaced(base: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A socket file nobody listens on (a dead agent's) is replaced at start-up."""
    caplog.set_level("INFO", logger="argus_telemetry.stream")
    h = Harness(base)
    Path(h.path).parent.mkdir(mode=0o700)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(h.path)
    dead.close()
    await h.start()
    try:
        assert [r.getMessage() for r in caplog.records if r.name == "argus_telemetry.stream._unix"] == [
            "stale stream socket replaced"
        ]
        client = await StreamClient.connect(h.path)
        assert client.hello["type"] == "hello"
        await client.close()
    finally:
        await h.close()


async def test_second_agent_on_the_same_path_is_refused(harness: Harness, base: Path) -> None:
    """A second agent fails to start with a clear sentence; the first keeps serving."""
    second = Agent(
        msgspec.structs.replace(
            harness.config, agent=msgspec.structs.replace(harness.config.agent, data_dir=str(base / "data2"))
        ),
        clock=FakeClock(),
        collector=FakeCollector(harness.clock),
    )
    with pytest.raises(ArgusError) as caught:
        await second.run(asyncio.Event())
    assert str(caught.value) == (
        f"stream socket {harness.path} is in use by another running agent; stop it or set another [stream] path"
    )
    client = await StreamClient.connect(harness.path)
    assert client.hello["type"] == "hello"
    await client.close()


async def test_symlink_at_the_path_is_never_followed(base: Path) -> None:
    """A symlink in place of the socket makes start-up fail, and its target is untouched."""
    h = Harness(base)
    Path(h.path).parent.mkdir(mode=0o700)
    target = base / "target"
    target.write_text("keep")
    os.symlink(target, h.path)
    with pytest.raises(ArgusError) as caught:
        await h.agent.run(h.stop)
    assert str(caught.value) == (
        f"stream socket {h.path} is a symbolic link; refusing to follow it (remove it by hand)"
    )
    assert target.read_text() == "keep"
