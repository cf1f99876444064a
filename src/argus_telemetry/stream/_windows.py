r"""Named pipe listener for Windows: `\\.\pipe\TelemetryPipe` with an explicit DACL.

The first instance is created with FILE_FLAG_FIRST_PIPE_INSTANCE, so a pipe squatted by
another process makes start-up fail instead of serving through someone else's pipe. The
DACL grants SYSTEM, Administrators and the agent's own account full control, and
interactive users read + write-data only (enough to read the stream and send `status`,
not FILE_CREATE_PIPE_INSTANCE, so they cannot add instances). `flush` is decided on the
client's token: Administrators or the agent's own user. The client side
(`connect_client`) asks for exactly those rights, so it works for a non-admin user.

pywin32 is imported lazily (only this module needs it, only on Windows); the SDDL building,
the rights arithmetic and the stop/close logic of a pipe instance are tested on every
platform through the small `Win32` interface. Blocking waits on overlapped I/O run in a
thread pool owned by the listener, one pending read per client. Every wait also watches
its instance's stop event: `close()` sets it, the waiter cancels its own I/O (CancelIoEx)
and returns, and the handle is closed by whoever uses it last, so no worker thread outlives
the listener and the service process can exit normally.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from argus_telemetry.errors import ArgusError

if TYPE_CHECKING:
    from argus_telemetry.stream.server import ConnectionHandler

log = logging.getLogger(__name__)

# winnt.h access rights
GENERIC_ALL = 0x10000000
FILE_READ_DATA = 0x0001
FILE_WRITE_DATA = 0x0002
FILE_CREATE_PIPE_INSTANCE = 0x0004  # same bit as FILE_APPEND_DATA
FILE_GENERIC_READ = 0x00120089
CLIENT_RIGHTS = FILE_GENERIC_READ | FILE_WRITE_DATA  # what interactive users get, and what our client asks for
PIPE_BUFFER_BYTES = 64 * 1024
ERROR_BROKEN_PIPE = 109
ERROR_PIPE_CONNECTED = 535
ERROR_IO_PENDING = 997
ERROR_ACCESS_DENIED = 5
ERROR_OPERATION_ABORTED = 995
ERROR_FILE_NOT_FOUND = 2
ERROR_PIPE_BUSY = 231
OPEN_EXISTING = 3
FILE_FLAG_OVERLAPPED = 0x40000000
INFINITE = 0xFFFFFFFF
CANCEL_WAIT_MS = 2000  # how long a stopped waiter waits for its cancelled I/O to complete
CONNECT_RETRY_SECONDS = (0.01, 0.02, 0.05, 0.1)  # then 0.1 s until the caller's timeout: all instances busy


def pipe_sddl(service_sid: str) -> str:
    """The pipe's security descriptor: protected DACL (no inheritance), SYSTEM (SY) and
    Administrators (BA) full control, the service account full control, interactive
    users (IU) read + write-data. `service_sid` is "S-1-5-..." or an SDDL alias."""
    if not service_sid or any(c in service_sid for c in "();"):
        raise ValueError(f"not a SID: {service_sid!r}")
    aces = [
        "(A;;GA;;;SY)",
        "(A;;GA;;;BA)",
        f"(A;;GA;;;{service_sid})",
        f"(A;;0x{CLIENT_RIGHTS:x};;;IU)",
    ]
    if service_sid in ("SY", "S-1-5-18"):
        aces.pop(2)  # LocalSystem is already there
    return "D:P" + "".join(aces)


class PipeAbortedError(OSError):
    """The pipe operation was abandoned because its instance is closing."""

    winerror = ERROR_OPERATION_ABORTED


class Win32(Protocol):
    """The kernel calls the stop/close logic needs (pywin32 on Windows, a fake in tests)."""

    def create_event(self) -> Any:
        """A manual-reset event, not signalled."""
        ...

    def set_event(self, event: Any) -> None: ...

    def wait_any(self, handles: list[Any], timeout_ms: int) -> int | None:
        """Index of a signalled handle (the lowest), None on timeout."""
        ...

    def cancel_io(self, handle: Any) -> None:
        """CancelIoEx(handle, NULL): every pending I/O on the handle, from any thread."""
        ...

    def close_handle(self, handle: Any) -> None: ...


class PipeInstance:
    """One pipe instance handle, shared by the event loop and the worker threads waiting on it.

    `shut()` sets the instance's stop event (every wait on it returns, cancelling its I/O)
    and the handle is closed exactly once, by whoever stops using it last."""

    def __init__(self, handle: Any, api: Win32) -> None:
        self.handle = handle
        self._api = api
        self.stop = api.create_event()
        self._lock = threading.Lock()
        self._users = 0
        self._shut = False
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @contextlib.contextmanager
    def use(self) -> Iterator[Any]:
        """The handle, kept open until the block ends; PipeAbortedError once shut."""
        with self._lock:
            if self._shut:
                raise PipeAbortedError("the pipe instance is closing")
            self._users += 1
        try:
            yield self.handle
        finally:
            with self._lock:
                self._users -= 1
                last = self._shut and self._users == 0
            if last:
                self._close()

    def shut(self) -> None:
        """Wake every wait on this instance and close it (now, or when its last user returns)."""
        with self._lock:
            if self._shut:
                return
            self._shut = True
            idle = self._users == 0
        self._api.set_event(self.stop)
        if idle:
            self._close()

    def _close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._api.close_handle(self.handle)
        self._api.close_handle(self.stop)


_ABANDONED: list[object] = []  # buffers of I/O whose cancellation did not complete in time


def finish_io(api: Win32, instance: PipeInstance, event: Any, keep: object, result: Callable[[], int]) -> int:
    """Wait for one overlapped operation (its `event`) or the instance's stop event.

    On stop: cancel the I/O and wait (bounded) until the kernel is done with it, then raise
    PipeAbortedError. `keep` (the OVERLAPPED and buffer) is kept alive for ever if the
    cancellation does not complete, so the kernel never writes into freed memory."""
    if api.wait_any([event, instance.stop], INFINITE) == 0:
        return result()
    api.cancel_io(instance.handle)
    if api.wait_any([event], CANCEL_WAIT_MS) is None:
        _ABANDONED.append(keep)
        log.warning("pipe I/O not cancelled in time; its buffer is kept", extra={"wait_ms": CANCEL_WAIT_MS})
    raise PipeAbortedError("the pipe instance is closing")


class PipeConnection:
    """One client on one pipe instance; reads and writes are overlapped, waited in threads."""

    def __init__(self, listener: PipeListener, instance: PipeInstance) -> None:
        self._listener = listener
        self._instance = instance
        self._pending_write: list[bytes] = []
        self.peer = "pipe client"
        self._may_flush = False

    async def identify(self) -> None:
        self._may_flush, self.peer = await self._listener.call(_client_identity, self._instance)

    async def read(self, max_bytes: int) -> bytes:
        if self._instance.closed:
            return b""
        try:
            data: bytes = await self._listener.call(_read, self._instance, max_bytes)
            return data
        except OSError as exc:
            if getattr(exc, "winerror", None) in (ERROR_BROKEN_PIPE, ERROR_OPERATION_ABORTED):
                return b""
            raise ConnectionResetError(str(exc)) from None

    def write(self, data: bytes) -> None:
        self._pending_write.append(data)

    async def drain(self) -> None:
        data = b"".join(self._pending_write)
        self._pending_write.clear()
        if data and not self._instance.closed:
            try:
                await self._listener.call(_write, self._instance, data)
            except OSError as exc:
                raise ConnectionResetError(str(exc)) from None

    def abort(self) -> None:
        self._listener.release(self._instance)

    async def close(self) -> None:
        self.abort()

    def may_flush(self) -> bool:
        return self._may_flush


class PipeListener:
    """Creates pipe instances one after another; each connected instance is one client."""

    def __init__(self, path: str, *, max_clients: int = 32, api: Win32 | None = None) -> None:
        self.path = path
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=2 * max_clients + 4, thread_name_prefix="argus-pipe"
        )
        self._api = api
        self._security: Any = None
        self._next: PipeInstance | None = None
        self._instances: set[PipeInstance] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, _win_errors, function, *args)

    def release(self, instance: PipeInstance) -> None:
        """Shut one instance (a client that left or is dropped)."""
        self._instances.discard(instance)
        instance.shut()

    async def bind(self) -> None:
        import pywintypes
        import win32security

        if self._api is None:
            self._api = PyWin32()
        sid = win32security.ConvertSidToStringSid(_own_sid())
        descriptor = win32security.ConvertStringSecurityDescriptorToSecurityDescriptor(
            pipe_sddl(sid), win32security.SDDL_REVISION_1
        )
        self._security = pywintypes.SECURITY_ATTRIBUTES()
        self._security.SECURITY_DESCRIPTOR = descriptor
        try:
            self._next = self._instance(first=True)
        except OSError as exc:
            if getattr(exc, "winerror", None) == ERROR_ACCESS_DENIED:
                raise ArgusError(
                    f"stream pipe {self.path} already exists (another agent or program owns it); refusing to start"
                ) from None
            raise ArgusError(f"stream pipe {self.path}: cannot create it: {exc}") from None

    def _instance(self, *, first: bool) -> PipeInstance:
        assert self._api is not None, "bind() first"
        handle = _win_errors(_create_instance, self.path, self._security, first=first)
        instance = PipeInstance(handle, self._api)
        self._instances.add(instance)
        return instance

    async def serve(self, handler: ConnectionHandler) -> None:
        try:
            while True:
                instance = self._next
                assert instance is not None, "bind() first"
                await self.call(_connect, instance)
                self._next = self._instance(first=False)
                connection = PipeConnection(self, instance)
                task = asyncio.create_task(self._run(handler, connection), name="stream-pipe-client")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, handler: ConnectionHandler, connection: PipeConnection) -> None:
        try:
            await connection.identify()
        except OSError as exc:
            # No identity, no flush: the client still gets the stream (and an error on `flush`).
            log.warning("pipe client identity unknown", extra={"error": str(exc)})
        await handler(connection)

    async def close(self) -> None:
        """Shut every instance (their waits return at once) and wait for the worker threads,
        so none is left blocked when the process exits."""
        for instance in list(self._instances):
            instance.shut()
        self._instances.clear()
        self._next = None
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)


async def connect_client(
    path: str,
    *,
    create_file: Callable[[str, int, int, int, int], int] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> int:
    r"""Open the client end of `path` with exactly CLIENT_RIGHTS (FILE_GENERIC_READ |
    FILE_WRITE_DATA), overlapped, and return the raw handle.

    asyncio's create_pipe_connection asks for GENERIC_READ | GENERIC_WRITE, which includes
    FILE_CREATE_PIPE_INSTANCE: the pipe's DACL withholds that from interactive users, so a
    non-admin would be denied. While every instance is busy (ERROR_PIPE_BUSY) it retries
    until the caller's timeout cancels it. FileNotFoundError when no pipe exists,
    PermissionError when access is denied."""
    create = create_file or _create_file
    attempt = 0
    while True:
        try:
            return int(_win_errors(create, path, CLIENT_RIGHTS, 0, OPEN_EXISTING, FILE_FLAG_OVERLAPPED))
        except OSError as exc:
            if getattr(exc, "winerror", None) != ERROR_PIPE_BUSY:
                raise
        await sleep(CONNECT_RETRY_SECONDS[min(attempt, len(CONNECT_RETRY_SECONDS) - 1)])
        attempt += 1


def _create_file(path: str, access: int, share: int, disposition: int, flags: int) -> int:
    import win32file

    handle = win32file.CreateFile(path, access, share, None, disposition, flags, None)
    return int(handle.Detach())


def _win_errors(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `function`, turning pywin32's error into the matching OSError (with winerror)."""
    try:
        return function(*args, **kwargs)
    except OSError:
        raise
    except Exception as exc:
        winerror = getattr(exc, "winerror", None)
        if not isinstance(winerror, int):
            raise
        raise _os_error(winerror, str(getattr(exc, "strerror", exc))) from None


def _os_error(winerror: int, strerror: str) -> OSError:
    kind: type[OSError] = OSError
    if winerror == ERROR_FILE_NOT_FOUND:
        kind = FileNotFoundError
    elif winerror == ERROR_ACCESS_DENIED:
        kind = PermissionError
    error = kind(strerror)
    error.winerror = winerror  # type: ignore[attr-defined]  # set on Windows by the OSError constructor only
    return error


class PyWin32:  # pragma: no cover - runs on Windows and under Wine (tests/wine)
    """Win32 through pywin32 (CancelIoEx through ctypes: pywin32 has only CancelIo)."""

    def create_event(self) -> Any:
        import win32event

        return win32event.CreateEvent(None, True, False, None)

    def set_event(self, event: Any) -> None:
        import win32event

        win32event.SetEvent(event)

    def wait_any(self, handles: list[Any], timeout_ms: int) -> int | None:
        import win32event

        result = win32event.WaitForMultipleObjects(handles, False, timeout_ms)
        if result == win32event.WAIT_TIMEOUT:
            return None
        return int(result - win32event.WAIT_OBJECT_0)

    def cancel_io(self, handle: Any) -> None:
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]  # Windows only
        kernel32.CancelIoEx(ctypes.c_void_p(int(handle)), None)  # fails with ERROR_NOT_FOUND when idle: fine

    def close_handle(self, handle: Any) -> None:
        import win32file

        with contextlib.suppress(Exception):
            win32file.CloseHandle(handle)


def _own_sid() -> Any:
    import win32api
    import win32security

    token = win32security.OpenProcessToken(win32api.GetCurrentProcess(), win32security.TOKEN_QUERY)
    return win32security.GetTokenInformation(token, win32security.TokenUser)[0]


def _create_instance(path: str, security: Any, *, first: bool) -> Any:
    import win32file
    import win32pipe

    flags = win32pipe.PIPE_ACCESS_DUPLEX | win32file.FILE_FLAG_OVERLAPPED
    if first:
        flags |= win32pipe.FILE_FLAG_FIRST_PIPE_INSTANCE
    return win32pipe.CreateNamedPipe(
        path,
        flags,
        win32pipe.PIPE_TYPE_BYTE
        | win32pipe.PIPE_READMODE_BYTE
        | win32pipe.PIPE_WAIT
        | win32pipe.PIPE_REJECT_REMOTE_CLIENTS,
        win32pipe.PIPE_UNLIMITED_INSTANCES,
        PIPE_BUFFER_BYTES,
        PIPE_BUFFER_BYTES,
        0,
        security,
    )


def _overlapped() -> Any:
    import pywintypes
    import win32event

    overlapped = pywintypes.OVERLAPPED()
    overlapped.hEvent = win32event.CreateEvent(None, True, False, None)
    return overlapped


def _result(handle: Any, overlapped: Any) -> Callable[[], int]:
    import win32file

    return lambda: int(win32file.GetOverlappedResult(handle, overlapped, False))


def _connect(instance: PipeInstance) -> None:
    import win32pipe

    with instance.use() as handle:
        overlapped = _overlapped()
        if win32pipe.ConnectNamedPipe(handle, overlapped) == ERROR_PIPE_CONNECTED:
            return
        finish_io(PyWin32(), instance, overlapped.hEvent, overlapped, _result(handle, overlapped))


def _read(instance: PipeInstance, max_bytes: int) -> bytes:
    import win32file

    with instance.use() as handle:
        overlapped = _overlapped()
        buffer = win32file.AllocateReadBuffer(max_bytes)
        win32file.ReadFile(handle, buffer, overlapped)
        count = finish_io(PyWin32(), instance, overlapped.hEvent, (overlapped, buffer), _result(handle, overlapped))
        return bytes(buffer[:count])


def _write(instance: PipeInstance, data: bytes) -> None:
    import win32file

    with instance.use() as handle:
        overlapped = _overlapped()
        win32file.WriteFile(handle, data, overlapped)
        finish_io(PyWin32(), instance, overlapped.hEvent, (overlapped, data), _result(handle, overlapped))


def _client_identity(instance: PipeInstance) -> tuple[bool, str]:
    """(may flush, account name) from the client's token, read while impersonating it."""
    import win32api
    import win32security

    admins = win32security.CreateWellKnownSid(win32security.WinBuiltinAdministratorsSid, None)
    with instance.use() as handle:
        win32security.ImpersonateNamedPipeClient(handle)  # pywin32 has it in win32security, not win32pipe
    try:
        token = win32security.OpenThreadToken(win32api.GetCurrentThread(), win32security.TOKEN_QUERY, True)
        user = win32security.GetTokenInformation(token, win32security.TokenUser)[0]
        is_admin = bool(win32security.CheckTokenMembership(None, admins))
    finally:
        win32security.RevertToSelf()
    name, domain, _ = win32security.LookupAccountSid(None, user)
    return is_admin or user == _own_sid(), f"{domain}\\{name}"
