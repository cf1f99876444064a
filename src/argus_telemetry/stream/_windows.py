r"""Named pipe listener for Windows: `\\.\pipe\TelemetryPipe` with an explicit DACL.

The first instance is created with FILE_FLAG_FIRST_PIPE_INSTANCE, so a pipe squatted by
another process makes start-up fail instead of serving through someone else's pipe. The
DACL grants SYSTEM, Administrators and the agent's own account full control, and
interactive users read + write-data only (enough to read the stream and send `status`,
not FILE_CREATE_PIPE_INSTANCE, so they cannot add instances). `flush` is decided on the
client's token: Administrators or the agent's own user.

pywin32 is imported lazily (only this module needs it, only on Windows); the SDDL building
and the rights arithmetic are plain functions tested on every platform. Blocking waits on
overlapped I/O run in a thread pool owned by the listener, one pending read per client.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from typing import TYPE_CHECKING, Any

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


class PipeConnection:
    """One client on one pipe instance; reads and writes are overlapped, waited in threads."""

    def __init__(self, listener: PipeListener, handle: Any) -> None:
        self._listener = listener
        self._handle = handle
        self._pending_write: list[bytes] = []
        self._closed = False
        self.peer = "pipe client"
        self._may_flush = False

    async def identify(self) -> None:
        self._may_flush, self.peer = await self._listener.call(_client_identity, self._handle)

    async def read(self, max_bytes: int) -> bytes:
        if self._closed:
            return b""
        try:
            data: bytes = await self._listener.call(_read, self._handle, max_bytes)
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
        if data and not self._closed:
            try:
                await self._listener.call(_write, self._handle, data)
            except OSError as exc:
                raise ConnectionResetError(str(exc)) from None

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        import win32file
        import win32pipe

        try:
            win32file.CancelIo(self._handle)
            win32pipe.DisconnectNamedPipe(self._handle)
        except OSError:
            pass
        win32file.CloseHandle(self._handle)

    async def close(self) -> None:
        self.abort()

    def may_flush(self) -> bool:
        return self._may_flush


class PipeListener:
    """Creates pipe instances one after another; each connected instance is one client."""

    def __init__(self, path: str, *, max_clients: int = 32) -> None:
        self.path = path
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=2 * max_clients + 4, thread_name_prefix="argus-pipe"
        )
        self._security: Any = None
        self._next: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def call(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def bind(self) -> None:
        import pywintypes
        import win32security

        sid = win32security.ConvertSidToStringSid(_own_sid())
        descriptor = win32security.ConvertStringSecurityDescriptorToSecurityDescriptor(
            pipe_sddl(sid), win32security.SDDL_REVISION_1
        )
        self._security = pywintypes.SECURITY_ATTRIBUTES()
        self._security.SECURITY_DESCRIPTOR = descriptor
        try:
            self._next = _create_instance(self.path, self._security, first=True)
        except OSError as exc:
            if getattr(exc, "winerror", None) == ERROR_ACCESS_DENIED:
                raise ArgusError(
                    f"stream pipe {self.path} already exists (another agent or program owns it); refusing to start"
                ) from None
            raise ArgusError(f"stream pipe {self.path}: cannot create it: {exc}") from None

    async def serve(self, handler: ConnectionHandler) -> None:
        try:
            while True:
                handle = self._next
                await self.call(_connect, handle)
                self._next = _create_instance(self.path, self._security, first=False)
                connection = PipeConnection(self, handle)
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
        if self._next is not None:
            import win32file

            win32file.CloseHandle(self._next)
            self._next = None
        self._executor.shutdown(wait=False, cancel_futures=True)


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


def _connect(handle: Any) -> None:
    import win32file
    import win32pipe

    overlapped = _overlapped()
    result = win32pipe.ConnectNamedPipe(handle, overlapped)
    if result == ERROR_PIPE_CONNECTED:
        return
    win32file.GetOverlappedResult(handle, overlapped, True)


def _read(handle: Any, max_bytes: int) -> bytes:
    import win32file

    overlapped = _overlapped()
    buffer = win32file.AllocateReadBuffer(max_bytes)
    win32file.ReadFile(handle, buffer, overlapped)
    count = win32file.GetOverlappedResult(handle, overlapped, True)
    return bytes(buffer[:count])


def _write(handle: Any, data: bytes) -> None:
    import win32file

    overlapped = _overlapped()
    win32file.WriteFile(handle, data, overlapped)
    win32file.GetOverlappedResult(handle, overlapped, True)


def _client_identity(handle: Any) -> tuple[bool, str]:
    """(may flush, account name) from the client's token, read while impersonating it."""
    import win32api
    import win32security

    admins = win32security.CreateWellKnownSid(win32security.WinBuiltinAdministratorsSid, None)
    win32security.ImpersonateNamedPipeClient(handle)  # pywin32 has it in win32security, not win32pipe
    try:
        token = win32security.OpenThreadToken(win32api.GetCurrentThread(), win32security.TOKEN_QUERY, True)
        user = win32security.GetTokenInformation(token, win32security.TokenUser)[0]
        is_admin = bool(win32security.CheckTokenMembership(None, admins))
    finally:
        win32security.RevertToSelf()
    name, domain, _ = win32security.LookupAccountSid(None, user)
    return is_admin or user == _own_sid(), f"{domain}\\{name}"
