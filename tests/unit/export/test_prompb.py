"""The hand-written remote write encoder against the real protobuf runtime, byte for byte."""

from __future__ import annotations

import math
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.rw_fake import decode, reference_encode

from argus_telemetry.export import prompb

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_labels = st.lists(st.tuples(_text, _text), max_size=6)
_int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_double = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, prompb.STALE_NAN])
_samples = st.lists(st.tuples(_double, _int64), max_size=5)
_request = st.lists(st.tuples(_labels, _samples), max_size=5)


@settings(max_examples=400, deadline=None)
@given(_request)
def test_write_request_bytes_equal_the_protobuf_runtime(
    series: list[tuple[list[tuple[str, str]], list[tuple[float, int]]]],
) -> None:
    """Any WriteRequest (empty strings, zero and negative-zero values, NaNs, negative and
    64-bit timestamps) encodes to exactly the bytes protobuf serialises."""
    assert prompb.encode_write_request(series) == reference_encode(series)


def test_known_request_bytes() -> None:
    """A small request has the exact wire bytes worked out by hand from the .proto."""
    body = prompb.encode_write_request([([("__name__", "up")], [(1.0, 1000)])])
    label = b"\x0a\x08__name__\x12\x02up"
    sample = b"\x09" + struct.pack("<d", 1.0) + b"\x10\xe8\x07"
    series = b"\x0a" + bytes([len(label)]) + label + b"\x12" + bytes([len(sample)]) + sample
    assert body == b"\x0a" + bytes([len(series)]) + series
    assert body == reference_encode([([("__name__", "up")], [(1.0, 1000)])])


def test_defaults_are_left_out_as_proto3_requires() -> None:
    """A zero value, a zero timestamp and an empty label value produce no field at all."""
    assert prompb.encode_sample(0.0, 0) == b"\x12\x00"
    assert prompb.encode_labels([("a", "")]) == b"\x0a\x03\x0a\x01a"
    assert prompb.encode_sample(-0.0, 0) == b"\x12\x09\x09" + struct.pack("<d", -0.0)


def test_stale_nan_keeps_its_bit_pattern() -> None:
    """The staleness marker survives encoding with the exact bits 0x7ff0000000000002."""
    body = prompb.encode_write_request([([("__name__", "x")], [(prompb.STALE_NAN, 5)])])
    assert prompb.STALE_NAN_BITS in body
    value = decode(body)[0][1][0][0]
    assert math.isnan(value)
    assert struct.pack("<d", value) == prompb.STALE_NAN_BITS


def test_varint_of_negative_and_large_numbers() -> None:
    """Negative int64 takes ten bytes (two's complement); 2**63-1 takes nine."""
    assert prompb.varint(-1) == b"\xff" * 9 + b"\x01"
    assert prompb.varint(2**63 - 1) == b"\xff" * 8 + b"\x7f"
    assert prompb.varint(300) == b"\xac\x02"
