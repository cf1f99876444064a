r"""The named pipe's client open and its stop/close logic, on Linux: the kernel calls sit
behind `connect_client(create_file=...)` and the `Win32` interface, here a small in-memory
kernel whose events really block threads (the real calls run under Wine in tests/wine)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from argus_telemetry.stream import _windows
from argus_telemetry.stream._windows import (
    CANCEL_WAIT_MS,
    CLIENT_RIGHTS,
    ERROR_OPERATION_ABORTED,
    ERROR_PIPE_BUSY,
    FILE_CREATE_PIPE_INSTANCE,
    INFINITE,
    PipeAbortedError,
    PipeInstance,
    connect_client,
    finish_io,
)

GENERIC_WRITE = 0x40000000
WAIT_SECONDS = 30.0  # a deadline for threads, never a sleep


class WinError(Exception):
    """Like pywintypes.error: not an OSError, with winerror and strerror."""

    def __init__(self, winerror: int, strerror: str) -> None:
        super().__init__(winerror, strerror)
        self.winerror = winerror
        self.strerror = strerror


class Event:
    def __init__(self, name: str) -> None:
        self.name = name
        self.signalled = False

    def __repr__(self) -> str:
        return f"Event({self.name})"


class FakeKernel:
    """Win32 in memory: events, WaitForMultipleObjects, CancelIoEx, CloseHandle, with a log."""

    def __init__(self, *, cancel_completes: bool = True) -> None:
        self.calls: list[tuple[str, object]] = []
        self.pending: dict[object, Event] = {}  # handle -> the event of its pending I/O
        self.cancel_completes = cancel_completes
        self._condition = threading.Condition()

    def create_event(self) -> Any:
        return Event("stop")

    def set_event(self, event: Any) -> None:
        with self._condition:  # logged before any waiter can wake, so the call order is exact
            self.calls.append(("set_event", event.name))
            event.signalled = True
            self._condition.notify_all()

    def wait_any(self, handles: list[Any], timeout_ms: int) -> int | None:
        assert timeout_ms in (INFINITE, CANCEL_WAIT_MS), timeout_ms
        with self._condition:
            ready = self._condition.wait_for(
                lambda: any(h.signalled for h in handles),
                timeout=WAIT_SECONDS if timeout_ms == INFINITE else 0.0,
            )
            if not ready:
                assert timeout_ms != INFINITE, "an infinite wait never ended"
                return None
            return next(i for i, h in enumerate(handles) if h.signalled)

    def cancel_io(self, handle: Any) -> None:
        self.calls.append(("cancel_io", handle))
        event = self.pending.pop(handle, None)
        if event is not None and self.cancel_completes:
            self.set_event(event)

    def close_handle(self, handle: Any) -> None:
        self.calls.append(("close_handle", handle.name if isinstance(handle, Event) else handle))

    def closed(self) -> list[object]:
        return [what for call, what in self.calls if call == "close_handle"]


async def test_client_asks_for_exactly_read_and_write_data_overlapped() -> None:
    """The client handle is opened with FILE_GENERIC_READ | FILE_WRITE_DATA (0x12008b, what
    the DACL grants IU), no GENERIC_WRITE / FILE_CREATE_PIPE_INSTANCE, OPEN_EXISTING, overlapped."""
    calls: list[tuple[str, int, int, int, int]] = []

    def create_file(path: str, access: int, share: int, disposition: int, flags: int) -> int:
        calls.append((path, access, share, disposition, flags))
        return 0x1234

    handle = await connect_client(r"\\.\pipe\TelemetryPipe", create_file=create_file)
    assert handle == 0x1234
    assert calls == [(r"\\.\pipe\TelemetryPipe", 0x0012008B, 0, 3, 0x40000000)]
    assert CLIENT_RIGHTS == 0x0012008B
    assert CLIENT_RIGHTS & (GENERIC_WRITE | FILE_CREATE_PIPE_INSTANCE) == 0


async def test_client_retries_while_every_instance_is_busy() -> None:
    """ERROR_PIPE_BUSY is retried with growing pauses (0.01, 0.02, 0.05, 0.1, 0.1 s) until an instance is free."""
    attempts: list[int] = []
    pauses: list[float] = []

    def create_file(path: str, access: int, share: int, disposition: int, flags: int) -> int:
        attempts.append(access)
        if len(attempts) <= 5:
            raise WinError(ERROR_PIPE_BUSY, "All pipe instances are busy.")
        return 7

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    assert await connect_client("p", create_file=create_file, sleep=sleep) == 7
    assert attempts == [CLIENT_RIGHTS] * 6
    assert pauses == [0.01, 0.02, 0.05, 0.1, 0.1]


@pytest.mark.parametrize(
    ("winerror", "kind"), [(2, FileNotFoundError), (5, PermissionError), (1450, OSError)], ids=["2", "5", "1450"]
)
async def test_client_open_errors_become_the_matching_oserror(winerror: int, kind: type[OSError]) -> None:
    """pywin32's error turns into FileNotFoundError / PermissionError / OSError with winerror,
    which StreamClient.connect maps to its "is the agent running" / "permission denied" reasons."""

    def create_file(path: str, access: int, share: int, disposition: int, flags: int) -> int:
        raise WinError(winerror, "the reason")

    with pytest.raises(OSError, match=r"^the reason$") as caught:
        await connect_client("p", create_file=create_file)
    assert type(caught.value) is kind
    assert getattr(caught.value, "winerror", None) == winerror


def test_shut_idle_instance_sets_stop_and_closes_handle_and_event_once() -> None:
    """An instance nobody waits on is closed at once: stop set, handle and event closed, once."""
    kernel = FakeKernel()
    instance = PipeInstance("h1", kernel)
    instance.shut()
    instance.shut()
    assert kernel.calls == [("set_event", "stop"), ("close_handle", "h1"), ("close_handle", "stop")]
    assert instance.closed
    with pytest.raises(PipeAbortedError), instance.use():
        pass


def test_a_blocked_wait_returns_on_shut_and_the_last_user_closes_the_handle() -> None:
    """A worker thread blocked on pending I/O wakes on shut(), cancels its I/O (CancelIoEx),
    raises PipeAbortedError (winerror 995); the handle is closed only after it left."""
    kernel = FakeKernel()
    instance = PipeInstance("h1", kernel)
    io_done = Event("io")
    kernel.pending["h1"] = io_done
    entered = threading.Event()
    outcome: list[object] = []

    def worker() -> None:
        with instance.use() as handle:
            entered.set()
            try:
                finish_io(kernel, instance, io_done, ("overlapped", "buffer"), lambda: 99)
            except OSError as exc:
                outcome.append((type(exc).__name__, getattr(exc, "winerror", None), handle, kernel.closed()))

    thread = threading.Thread(target=worker)
    thread.start()
    assert entered.wait(WAIT_SECONDS)
    instance.shut()
    thread.join(WAIT_SECONDS)
    assert not thread.is_alive()
    assert outcome == [("PipeAbortedError", ERROR_OPERATION_ABORTED, "h1", [])]
    assert kernel.calls == [
        ("set_event", "stop"),
        ("cancel_io", "h1"),
        ("set_event", "io"),
        ("close_handle", "h1"),
        ("close_handle", "stop"),
    ]


def test_completed_io_returns_its_result_without_cancelling() -> None:
    """I/O that completed returns its byte count; nothing is cancelled or closed."""
    kernel = FakeKernel()
    instance = PipeInstance("h1", kernel)
    io_done = Event("io")
    io_done.signalled = True
    assert finish_io(kernel, instance, io_done, None, lambda: 42) == 42
    assert kernel.calls == []


@pytest.fixture
def abandoned() -> Iterator[list[object]]:
    saved = list(_windows._ABANDONED)
    _windows._ABANDONED.clear()
    yield _windows._ABANDONED
    _windows._ABANDONED[:] = saved


def test_io_whose_cancel_never_completes_keeps_its_buffer(abandoned: list[object]) -> None:
    """If the cancelled I/O does not complete within CANCEL_WAIT_MS the OVERLAPPED and buffer
    are kept for ever (the kernel may still write into them) and the wait still ends."""
    kernel = FakeKernel(cancel_completes=False)
    instance = PipeInstance("h1", kernel)
    io_never = Event("io")
    kernel.pending["h1"] = io_never
    keep = ("overlapped", bytearray(16))
    kernel.set_event(instance.stop)
    with pytest.raises(PipeAbortedError):
        finish_io(kernel, instance, io_never, keep, lambda: 0)
    assert abandoned == [keep]


async def test_listener_close_wakes_waiters_and_joins_its_threads() -> None:
    """PipeListener.close() shuts every instance: a worker thread blocked in a pipe wait
    returns, the executor's threads are joined and every handle is closed."""
    kernel = FakeKernel()
    listener = _windows.PipeListener("p", max_clients=1, api=kernel)
    instance = PipeInstance("h1", kernel)
    listener._instances.add(instance)
    io_done = Event("io")
    kernel.pending["h1"] = io_done
    entered = asyncio.Event()
    loop = asyncio.get_running_loop()

    def blocked_read(inst: PipeInstance) -> int:
        with inst.use():
            loop.call_soon_threadsafe(entered.set)
            return finish_io(kernel, inst, io_done, None, lambda: 1)

    reading = asyncio.ensure_future(listener.call(blocked_read, instance))
    async with asyncio.timeout(WAIT_SECONDS):
        await entered.wait()
        await listener.close()
        with pytest.raises(PipeAbortedError):
            await reading
    assert kernel.closed() == ["h1", "stop"]
    assert [t.name for t in threading.enumerate() if t.name.startswith("argus-pipe")] == []
