"""Unix socket listener: a private directory, socket mode 0660, peer uid via SO_PEERCRED.

Start-up refuses a symlink at the socket path, anything that is not a socket, a socket a
live agent answers on, and a directory other users can enter; a stale socket left by a
dead agent (connect refused) is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import socket
import stat
import struct
from pathlib import Path
from typing import TYPE_CHECKING

from argus_telemetry import paths
from argus_telemetry.errors import ArgusError

if TYPE_CHECKING:
    from argus_telemetry.stream.server import ConnectionHandler

log = logging.getLogger(__name__)

SOCKET_MODE = 0o660
_PEERCRED = struct.Struct("3i")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}


def peer_credentials(sock: socket.socket) -> tuple[int, int, int] | None:
    """(pid, uid, gid) of the process at the other end, or None where SO_PEERCRED is missing."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    pid, uid, gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, option, _PEERCRED.size))
    return pid, uid, gid


def may_flush(peer_uid: int | None, agent_uid: int) -> bool:
    """`flush` is allowed to root and to the agent's own user only."""
    return peer_uid is not None and peer_uid in (0, agent_uid)


class UnixConnection:
    """An accepted client on the Unix socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        sock = writer.get_extra_info("socket")
        credentials = peer_credentials(sock) if sock is not None else None
        self.peer_uid = credentials[1] if credentials else None
        self.peer = f"uid {credentials[1]} pid {credentials[0]}" if credentials else "unknown peer"

    async def read(self, max_bytes: int) -> bytes:
        return await self._reader.read(max_bytes)

    def write(self, data: bytes) -> None:
        self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    def abort(self) -> None:
        self._writer.transport.abort()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    def may_flush(self) -> bool:
        return may_flush(self.peer_uid, os.geteuid())


class UnixListener:
    """Binds the socket at `path` (see the module docstring for the checks)."""

    def __init__(self, path: str, *, group: str = "") -> None:
        self.path = path
        self.group = group
        self._server: asyncio.Server | None = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of our socket

    async def bind(self) -> None:
        gid = _group_id(self.group, self.path) if self.group else None
        directory = Path(self.path).parent
        _prepare_directory(directory, gid, self.path)
        await _clear_path(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.path)
            os.chmod(self.path, SOCKET_MODE, follow_symlinks=False)
            if gid is not None:
                os.chown(self.path, -1, gid, follow_symlinks=False)
        except OSError as exc:
            sock.close()
            raise ArgusError(f"stream socket {self.path}: cannot bind: {exc.strerror or exc}") from None
        info = os.lstat(self.path)
        self._identity = (info.st_dev, info.st_ino)
        sock.listen(64)
        self._server = await asyncio.start_unix_server(self._accept, sock=sock, start_serving=False)

    async def serve(self, handler: ConnectionHandler) -> None:
        assert self._server is not None, "bind() first"
        self._handler = handler
        await self._server.serve_forever()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handler(UnixConnection(reader, writer))
        except asyncio.CancelledError:
            # This task is a leaf owned by asyncio's stream server, cancelled only when the
            # agent stops. Python 3.11's streams callback calls task.exception() on it,
            # which raises and prints a traceback for a cancelled task (fixed in 3.12), so
            # end normally instead: nothing awaits this task's result.
            return

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            info = os.lstat(self.path)
            if (info.st_dev, info.st_ino) == self._identity:  # never remove another agent's socket
                os.unlink(self.path)


def _group_id(group: str, path: str) -> int:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ArgusError(f"stream socket {path}: [stream] group {group!r} does not exist") from None


def _prepare_directory(directory: Path, gid: int | None, path: str) -> None:
    """Create the socket's directory (0750 with a group, else 0700), or check and tighten ours."""
    mode = 0o750 if gid is not None else 0o700
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        try:
            directory.mkdir(parents=True, mode=mode)
            os.chmod(directory, mode)  # mkdir's mode is filtered by the umask
            if gid is not None:
                os.chown(directory, -1, gid)
        except OSError as exc:
            raise ArgusError(f"stream socket {path}: cannot create {directory}: {exc.strerror or exc}") from None
        return
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise ArgusError(f"stream socket {path}: {directory} is not a plain directory (symbolic links are refused)")
    if info.st_uid != os.geteuid():
        raise ArgusError(
            f"stream socket {path}: {directory} belongs to uid {info.st_uid}, not to the agent (uid {os.geteuid()});"
            " choose a [stream] path in a directory the agent owns"
        )
    if info.st_mode & 0o007:
        if directory.name != paths.APP:
            raise ArgusError(
                f"stream socket {path}: {directory} is accessible to every user (mode {stat.S_IMODE(info.st_mode):o});"
                f" choose a [stream] path in a private directory, e.g. {directory / paths.APP / paths.SOCKET_NAME}"
            )
        os.chmod(directory, stat.S_IMODE(info.st_mode) & ~0o007)
        log.info("stream directory tightened", extra={"path": str(directory)})
    if gid is not None and info.st_gid != gid:
        os.chown(directory, -1, gid)


async def _clear_path(path: str) -> None:
    """Remove a stale socket; refuse a live one, a symlink, or any other file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise ArgusError(f"stream socket {path} is a symbolic link; refusing to follow it (remove it by hand)")
    if not stat.S_ISSOCK(info.st_mode):
        raise ArgusError(f"stream socket {path} exists and is not a socket; refusing to replace it")
    try:
        async with asyncio.timeout(2.0):
            _, writer = await asyncio.open_unix_connection(path)
    except (ConnectionRefusedError, FileNotFoundError):
        log.info("stale stream socket replaced", extra={"path": path})
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except (TimeoutError, OSError) as exc:
        raise ArgusError(f"stream socket {path}: cannot tell whether another agent uses it ({exc})") from None
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    raise ArgusError(f"stream socket {path} is in use by another running agent; stop it or set another [stream] path")
