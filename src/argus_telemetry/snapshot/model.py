"""Snapshot schema 1 (the Loki line and the stream payload) and the raw counters that
the spool stores beside it. Field order here is the order on the wire.

A rate that cannot be computed (first sample of a device, counter reset) is None and
omitted from the JSON, never negative.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

SCHEMA = 1


class _Part(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    pass


class Cpu(_Part, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    usage_percent: float | None = None
    cores: list[float] | None = None


class Memory(_Part, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    total_bytes: int
    available_bytes: int
    used_bytes: int
    used_percent: float


class DiskRates(_Part, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    read_bytes_per_second: float | None = None
    write_bytes_per_second: float | None = None


class Disk(_Part, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    read_bytes_per_second: float | None = None
    write_bytes_per_second: float | None = None
    devices: dict[str, DiskRates] = msgspec.field(default_factory=dict)


class NetRates(_Part, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    receive_bytes_per_second: float | None = None
    transmit_bytes_per_second: float | None = None


class Network(_Part, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    receive_bytes_per_second: float | None = None
    transmit_bytes_per_second: float | None = None
    interfaces: dict[str, NetRates] = msgspec.field(default_factory=dict)


class Snapshot(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One snapshot of the host, schema 1 of the contract."""

    schema: int
    seq: int
    time: str
    host: str
    interval_seconds: float
    cpu: Cpu
    memory: Memory
    disk: Disk
    network: Network


class Counters(msgspec.Struct, frozen=True):
    """The OS's cumulative counters behind one snapshot, stored in the spool beside the
    schema-1 JSON so exporters that replay history (remote_write) send exact counters.

    `cpu[core][mode]` in seconds; `disk[device]` = (read, written) bytes for the devices
    the snapshot covers; `network[interface]` = (received, transmitted) bytes.
    """

    cpu: list[dict[str, float]]
    disk: dict[str, tuple[int, int]]
    network: dict[str, tuple[int, int]]


_encoder = msgspec.json.Encoder()
_snapshot_decoder = msgspec.json.Decoder(Snapshot)
_counters_encoder = msgspec.msgpack.Encoder()
_counters_decoder = msgspec.msgpack.Decoder(Counters)


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """Schema-1 JSON, compact, UTF-8."""
    return _encoder.encode(snapshot)


def decode_snapshot(data: bytes | str) -> Snapshot:
    """A Snapshot from schema-1 JSON; raises msgspec.ValidationError/DecodeError."""
    return _snapshot_decoder.decode(data)


def encode_counters(counters: Counters) -> bytes:
    """The compact (msgpack) form stored in the spool."""
    return _counters_encoder.encode(counters)


def decode_counters(data: bytes) -> Counters:
    return _counters_decoder.decode(data)


def format_time(wall: float) -> str:
    """Unix seconds → "2026-12-04T10:00:00.123456Z" (UTC, microseconds)."""
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> float:
    """The inverse of format_time: Unix seconds (microsecond precision)."""
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return moment.timestamp()


def time_ns(text: str) -> int:
    """Snapshot time in integer nanoseconds, exact (no float rounding): Loki timestamps."""
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    whole = int(moment.replace(microsecond=0).timestamp())
    return whole * 1_000_000_000 + moment.microsecond * 1000
