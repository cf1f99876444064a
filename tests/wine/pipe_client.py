r"""A stream client run by the embedded Windows python.exe under Wine (stdlib only).

    python.exe pipe_client.py RESULT_JSON [SNAPSHOTS]

Opens `\\.\pipe\TelemetryPipe`, reads the hello line and at least SNAPSHOTS (default 3)
snapshot messages, and writes {"hello": ..., "seqs": [...], "types": [...]} to RESULT_JSON.
Under Wine, Windows CPython dies when stdout is a regular file, so results go to a file
and the exit status says whether it worked (0 ok, 1 error, written to RESULT_JSON too).
"""

from __future__ import annotations

import json
import sys
import time

PIPE = r"\\.\pipe\TelemetryPipe"


def main() -> int:
    result_path = sys.argv[1]
    wanted = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    result: dict[str, object] = {"hello": None, "seqs": [], "types": [], "error": ""}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                pipe = open(PIPE, "rb", buffering=0)  # noqa: SIM115 (closed below)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        buffer = b""
        seqs: list[int] = []
        types: list[str] = []
        while len(seqs) < wanted:
            chunk = pipe.read(65536)
            if not chunk:
                raise ConnectionError("the agent closed the pipe")
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                message = json.loads(line)
                types.append(message["type"])
                if message["type"] == "hello":
                    result["hello"] = message
                elif message["type"] == "snapshot":
                    seqs.append(message["snapshot"]["seq"])
        pipe.close()
        result["seqs"] = seqs
        result["types"] = types
        status = 0
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        status = 1
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    return status


if __name__ == "__main__":
    sys.exit(main())
