r"""A stream client run by the installed Windows python.exe under Wine, through the agent's
own `StreamClient` (argus_telemetry.stream.client, the code `argus watch` runs).

    python.exe pipe_client.py RESULT_JSON [SNAPSHOTS]

Connects to `\\.\pipe\TelemetryPipe` (retrying until the service has created it), reads the
hello and at least SNAPSHOTS (default 3) snapshot messages, sends `status` and reads the
answer, and writes {"hello", "seqs", "types", "access", "status_type", "error"} to
RESULT_JSON. `access` is the access mask the kernel granted the client's handle
(NtQueryObject), so the test sees exactly what was asked for. Under Wine, Windows CPython
dies when stdout is a regular file, so results go to a file and the exit status says
whether it worked (0 ok, 1 error, written to RESULT_JSON too).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import sys
import time

from argus_telemetry.errors import StreamUnavailableError
from argus_telemetry.stream.client import StreamClient

PIPE = r"\\.\pipe\TelemetryPipe"
OBJECT_BASIC_INFORMATION = 0  # ObjectBasicInformation: Attributes, GrantedAccess, ... (56 bytes)


def granted_access(handle: int) -> int:
    """The GrantedAccess of `handle`, from NtQueryObject(ObjectBasicInformation)."""
    info = (ctypes.c_ulong * 14)()
    ntdll = ctypes.WinDLL("ntdll")  # type: ignore[attr-defined]
    status = ntdll.NtQueryObject(
        ctypes.c_void_p(handle), OBJECT_BASIC_INFORMATION, ctypes.byref(info), ctypes.sizeof(info), None
    )
    if status != 0:
        raise OSError(f"NtQueryObject failed with NTSTATUS {status & 0xFFFFFFFF:#x}")
    return int(info[1])


async def read(result: dict[str, object], wanted: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            client = await StreamClient.connect(PIPE, timeout=10)
            break
        except StreamUnavailableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    try:
        result["hello"] = client.hello
        result["access"] = granted_access(client._writer.get_extra_info("pipe").handle)  # the transport's own handle
        seqs: list[int] = []
        types: list[str] = ["hello"]
        async with asyncio.timeout(60):
            async for message in client.messages():
                types.append(str(message["type"]))
                if message["type"] == "snapshot" and len(seqs) < wanted:
                    snapshot = message["snapshot"]
                    assert isinstance(snapshot, dict)
                    seqs.append(int(snapshot["seq"]))
                    if len(seqs) == wanted:
                        await client.request("status")
                elif message["type"] == "status":
                    result["status_type"] = type(message["status"]).__name__
                    break
        result["seqs"] = seqs
        result["types"] = types
    finally:
        await client.close()


def main() -> int:
    result_path = sys.argv[1]
    wanted = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    result: dict[str, object] = {"hello": None, "seqs": [], "types": [], "access": None, "error": ""}
    try:
        asyncio.run(read(result, wanted))
        status = 0
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        status = 1
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    return status


if __name__ == "__main__":
    sys.exit(main())
