"""Stream protocol v1: message shapes and the line codec (one JSON object per line, 1 MiB cap).

Server to client: hello, snapshot, gap, status, error. Client to server: `{"op": ...}`
with the ops in `OPS`. Every encoder returns one complete line, newline included.
"""

from __future__ import annotations

import msgspec

from argus_telemetry.errors import StreamProtocolError

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 1024 * 1024  # the contract's cap, newline not counted, both ways
OPS = ("status", "flush")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def encode_message(message: dict[str, object]) -> bytes:
    """Any message as one compact JSON line."""
    return _encoder.encode(message) + b"\n"


def hello_line(*, version: str, host: str, interval_seconds: float) -> bytes:
    """The first line every client receives."""
    return encode_message(
        {
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "version": version,
            "host": host,
            "interval_seconds": float(interval_seconds),
        }
    )


def snapshot_line(snapshot_json: bytes) -> bytes:
    """Wrap schema-1 snapshot JSON (already encoded once for the spool) without re-encoding it."""
    return b'{"type":"snapshot","snapshot":' + snapshot_json + b"}\n"


def gap_line(dropped: int) -> bytes:
    """`dropped` snapshots were not sent to this client because it read too slowly."""
    return encode_message({"type": "gap", "dropped": dropped})


def status_line(status: dict[str, object]) -> bytes:
    return encode_message({"type": "status", "status": status})


def error_line(error: str) -> bytes:
    return encode_message({"type": "error", "error": error})


def request_line(op: str) -> bytes:
    return encode_message({"op": op})


def decode_message(line: bytes) -> dict[str, object]:
    """One line (with or without its newline) → a JSON object.

    Raises StreamProtocolError naming what is wrong: too long, not UTF-8 JSON, not an object.
    """
    body = line.rstrip(b"\r\n")
    if len(body) > MAX_LINE_BYTES:
        raise StreamProtocolError(f"line of {len(body)} bytes exceeds the {MAX_LINE_BYTES}-byte limit")
    try:
        value = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise StreamProtocolError(f"not a JSON line: {exc}") from None
    if not isinstance(value, dict):
        raise StreamProtocolError(f"expected a JSON object, got {type(value).__name__}")
    return value


def parse_request(line: bytes) -> str:
    """A client line → its op (one of OPS); raises StreamProtocolError for anything else."""
    message = decode_message(line)
    op = message.get("op")
    if not isinstance(op, str):
        raise StreamProtocolError('a request needs a string "op", e.g. {"op":"status"}')
    if op not in OPS:
        raise StreamProtocolError(f"unknown op {op!r} (known: {', '.join(OPS)})")
    return op


class LineTooLongError(StreamProtocolError):
    """A peer sent more than MAX_LINE_BYTES without a newline."""


class LineSplitter:
    """Cuts a byte stream into lines, holding at most `max_line_bytes` + one chunk.

    `feed(data)` returns the complete lines (without newline) found so far and raises
    LineTooLongError as soon as the pending partial line passes the cap, so a peer that
    never sends a newline cannot make us buffer without bound.
    """

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        self._pending = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._pending += data
        lines: list[bytes] = []
        start = 0
        while True:
            end = self._pending.find(b"\n", start)
            if end < 0:
                break
            if end - start > self.max_line_bytes:
                raise LineTooLongError(f"line of {end - start} bytes exceeds the {self.max_line_bytes}-byte limit")
            lines.append(bytes(self._pending[start:end]))
            start = end + 1
        del self._pending[:start]
        if len(self._pending) > self.max_line_bytes:
            raise LineTooLongError(
                f"line exceeds the {self.max_line_bytes}-byte limit ({len(self._pending)} bytes without a newline)"
            )
        return lines

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete line held back (a truncated last line at EOF)."""
        return len(self._pending)
