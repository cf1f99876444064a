"""Stream client: connect to the agent's endpoint, read hello, iterate messages, send ops.

Used by `argus watch`, `argus status` and the panel. Works with a Unix socket path and,
on Windows, with the named pipe (`\\\\.\\pipe\\TelemetryPipe`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from argus_telemetry.errors import StreamProtocolError, StreamUnavailableError
from argus_telemetry.stream.protocol import LineSplitter, decode_message, request_line

READ_CHUNK_BYTES = 64 * 1024


class StreamClient:
    """One connection to the agent's stream. `hello` is the first message, read by connect()."""

    def __init__(
        self,
        path: str,
        *,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        hello: dict[str, object],
        splitter: LineSplitter,
        pending: list[bytes],
    ) -> None:
        self.path = path
        self.hello = hello
        self._reader = reader
        self._writer = writer
        self._splitter = splitter
        self._pending = pending  # lines read together with hello, not yet handed out

    @classmethod
    async def connect(cls, path: str, *, timeout: float = 5.0) -> StreamClient:  # noqa: ASYNC109 (the timeout covers connect + hello)
        """Connect and read the hello line.

        Raises StreamUnavailableError(path, reason) when nothing listens there, access is
        denied, the agent refuses the connection (too many clients: its error text is the
        reason) or no hello arrives within `timeout` seconds.
        """
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await _open(path)
        except TimeoutError:
            raise StreamUnavailableError(path, f"no answer within {timeout:g} s") from None
        except FileNotFoundError:
            raise StreamUnavailableError(path, "no such socket (is the agent running?)") from None
        except ConnectionRefusedError:
            raise StreamUnavailableError(path, "connection refused (the agent is not running)") from None
        except PermissionError:
            raise StreamUnavailableError(
                path, "permission denied (run as the agent's user, root, or a member of the [stream] group)"
            ) from None
        except OSError as exc:
            raise StreamUnavailableError(path, exc.strerror or str(exc)) from None
        splitter = LineSplitter()
        lines: list[bytes] = []
        try:
            async with asyncio.timeout(timeout):
                while not lines:
                    data = await reader.read(READ_CHUNK_BYTES)
                    if not data:
                        raise StreamUnavailableError(path, "the agent closed the connection before saying hello")
                    lines = splitter.feed(data)
            first = decode_message(lines[0])
        except TimeoutError:
            writer.close()
            raise StreamUnavailableError(path, f"no hello within {timeout:g} s") from None
        except StreamUnavailableError:
            writer.close()
            raise
        except (StreamProtocolError, OSError) as exc:
            writer.close()
            raise StreamUnavailableError(path, f"bad hello: {exc}") from None
        if first.get("type") == "error":
            writer.close()
            raise StreamUnavailableError(path, f"the agent refused the connection: {first.get('error')}")
        if first.get("type") != "hello":
            writer.close()
            raise StreamUnavailableError(path, f"expected a hello message first, got {first.get('type')!r}")
        return cls(path, reader=reader, writer=writer, hello=first, splitter=splitter, pending=lines[1:])

    async def messages(self) -> AsyncIterator[dict[str, object]]:
        """Every message after hello (snapshot, gap, status, error) until the agent closes.

        Raises StreamProtocolError on a line that is not a JSON object.
        """
        while True:
            while self._pending:
                yield decode_message(self._pending.pop(0))
            try:
                data = await self._reader.read(READ_CHUNK_BYTES)
            except ConnectionResetError:
                return
            if not data:
                return
            self._pending = self._splitter.feed(data)

    async def request(self, op: str) -> None:
        """Send `{"op": op}` (the agent answers with a status or an error message)."""
        self._writer.write(request_line(op))
        await self._writer.drain()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    async def __aenter__(self) -> StreamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def status(path: str, *, timeout: float = 5.0) -> dict[str, object]:  # noqa: ASYNC109 (covers the whole exchange)
    """One-shot status read: connect, send `status`, return the status payload.

    Raises StreamUnavailableError when the agent is unreachable or does not answer in time.
    """
    client = await StreamClient.connect(path, timeout=timeout)
    try:
        await client.request("status")
        async with asyncio.timeout(timeout):
            async for message in client.messages():
                if message.get("type") == "status":
                    payload = message.get("status")
                    if not isinstance(payload, dict):
                        raise StreamUnavailableError(path, "the status message has no status object")
                    return payload
                if message.get("type") == "error":
                    raise StreamUnavailableError(path, f"the agent answered: {message.get('error')}")
    except TimeoutError:
        raise StreamUnavailableError(path, f"no status answer within {timeout:g} s") from None
    finally:
        await client.close()
    raise StreamUnavailableError(path, "the agent closed the connection before answering")


async def _open(path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if sys.platform == "win32":
        return await _open_pipe(path)
    return await asyncio.open_unix_connection(path)


async def _open_pipe(path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A named pipe client on the Proactor loop (Windows' default event loop).

    The handle is opened with exactly FILE_GENERIC_READ | FILE_WRITE_DATA (what the pipe's
    DACL gives interactive users; asyncio's create_pipe_connection would ask for
    GENERIC_WRITE and be denied), then handed to the loop as a duplex pipe transport, as
    create_pipe_connection itself does once it has its handle."""
    import importlib

    from argus_telemetry.stream._windows import connect_client

    loop = asyncio.get_running_loop()
    make_transport = getattr(loop, "_make_duplex_pipe_transport", None)
    if make_transport is None:
        raise OSError("this event loop cannot open named pipes (use the Proactor event loop)")
    pipe = importlib.import_module("asyncio.windows_utils").PipeHandle(await connect_client(path))
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    try:
        transport = make_transport(pipe, protocol, extra={"addr": path})
    except BaseException:
        pipe.close()
        raise
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer
