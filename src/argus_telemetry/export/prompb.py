"""A hand-written encoder of the few Prometheus remote write 1.0 protobuf messages.

    message WriteRequest { repeated TimeSeries timeseries = 1; }
    message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    message Label        { string name = 1; string value = 2; }
    message Sample       { double value = 1; int64 timestamp = 2; }

proto3 rules: fields equal to their default (0, 0.0 with all bits zero, "") are left
out; int64 is a plain varint (a negative takes 10 bytes). The output is byte for byte
what the `protobuf` package serialises (checked in tests/unit/export/test_prompb.py);
this module saves ~5 MiB of RSS over loading the protobuf runtime
(../shared/notes/remote-write.md, section 5).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
"""Prometheus' staleness marker: a NaN with this exact bit pattern ends a series."""

STALE_NAN_BITS = b"\x02\x00\x00\x00\x00\x00\xf0\x7f"

_TAG_LABEL_NAME = b"\x0a"  # field 1, length-delimited
_TAG_LABEL_VALUE = b"\x12"  # field 2, length-delimited
_TAG_SERIES_LABEL = b"\x0a"
_TAG_SERIES_SAMPLE = b"\x12"
_TAG_REQUEST_SERIES = b"\x0a"
_TAG_SAMPLE_VALUE = b"\x09"  # field 1, fixed64
_TAG_SAMPLE_TIMESTAMP = 0x10  # field 2, varint
_ZERO_DOUBLE = b"\x00" * 8
_pack_double = struct.Struct("<d").pack

Labels = Sequence[tuple[str, str]]
Sample = tuple[float, int]  # (value, timestamp in ms)


def varint(value: int) -> bytes:
    """The protobuf varint of `value`; negatives as 64-bit two's complement (10 bytes)."""
    if value < 0:
        value += 1 << 64
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


def encode_labels(labels: Labels) -> bytes:
    """The `labels` fields of a TimeSeries (tags included), in the order given.

    Callers cache this per series: the label set of a series never changes.
    """
    out = bytearray()
    for name, value in labels:
        body = bytearray()
        raw_name = name.encode()
        raw_value = value.encode()
        if raw_name:
            body += _TAG_LABEL_NAME + varint(len(raw_name)) + raw_name
        if raw_value:
            body += _TAG_LABEL_VALUE + varint(len(raw_value)) + raw_value
        out += _TAG_SERIES_LABEL + varint(len(body)) + body
    return bytes(out)


def encode_sample(value: float, timestamp_ms: int) -> bytes:
    """One `samples` field of a TimeSeries (tag included)."""
    raw = _pack_double(value)
    body = b"" if raw == _ZERO_DOUBLE else _TAG_SAMPLE_VALUE + raw
    if timestamp_ms:
        body += bytes((_TAG_SAMPLE_TIMESTAMP,)) + varint(timestamp_ms)
    return _TAG_SERIES_SAMPLE + varint(len(body)) + body


def encode_series(encoded_labels: bytes, samples: Iterable[Sample]) -> bytes:
    """One `timeseries` field of a WriteRequest (tag included)."""
    body = encoded_labels + b"".join(encode_sample(value, ts) for value, ts in samples)
    return _length_delimited(_TAG_REQUEST_SERIES, body)


def encode_write_request(series: Iterable[tuple[Labels, Sequence[Sample]]]) -> bytes:
    """A whole WriteRequest from (labels, samples) pairs, each series in the order given."""
    return b"".join(encode_series(encode_labels(labels), samples) for labels, samples in series)
