"""Stream protocol v1 codec: message shapes, the 1 MiB cap, garbage and the line splitter."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from argus_telemetry.errors import StreamProtocolError
from argus_telemetry.stream.protocol import (
    MAX_LINE_BYTES,
    LineSplitter,
    LineTooLongError,
    decode_message,
    gap_line,
    hello_line,
    parse_request,
    snapshot_line,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def test_hello_line_has_the_contract_fields_in_one_line() -> None:
    """The hello line is one JSON object with type, protocol 1, version, host, interval."""
    line = hello_line(version="1.2.3", host="client-42", interval_seconds=2)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "type": "hello",
        "protocol": 1,
        "version": "1.2.3",
        "host": "client-42",
        "interval_seconds": 2.0,
    }


def test_snapshot_line_wraps_the_encoded_json_unchanged() -> None:
    """The snapshot JSON from the spool is embedded byte for byte."""
    assert snapshot_line(b'{"seq":7}') == b'{"type":"snapshot","snapshot":{"seq":7}}\n'
    assert json.loads(gap_line(3)) == {"type": "gap", "dropped": 3}


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_decode_round_trips_any_object(message: dict[str, object]) -> None:
    """Any JSON object survives encode → decode."""
    line = json.dumps(message).encode() + b"\n"
    assert decode_message(line) == message


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"hello", "not a JSON line"),
        (b"[1,2]", "expected a JSON object, got list"),
        (b'{"op":1}', 'a request needs a string "op"'),
        (b'{"op":"reboot"}', "unknown op 'reboot' (known: status, flush)"),
        (b"\xff\xfe", "not a JSON line"),
    ],
)
def test_bad_requests_raise_a_named_reason(line: bytes, reason: str) -> None:
    """Garbage, non-objects and unknown ops are rejected with a sentence saying why."""
    with pytest.raises(StreamProtocolError) as caught:
        parse_request(line)
    assert str(caught.value).startswith(reason)


def test_requests_parse_to_their_op() -> None:
    """The two ops of v1 are accepted."""
    assert parse_request(b'{"op":"status"}\n') == "status"
    assert parse_request(b'{"op":"flush"}') == "flush"


def test_splitter_caps_a_line_without_newline() -> None:
    """2 MiB without a newline fails as soon as the pending bytes pass 1 MiB."""
    splitter = LineSplitter()
    assert splitter.feed(b"x" * MAX_LINE_BYTES) == []
    with pytest.raises(LineTooLongError) as caught:
        splitter.feed(b"x")
    assert (
        str(caught.value)
        == f"line exceeds the {MAX_LINE_BYTES}-byte limit ({MAX_LINE_BYTES + 1} bytes without a newline)"
    )


def test_splitter_accepts_exactly_the_cap() -> None:
    """A line of exactly 1 MiB (newline not counted) passes; one byte more fails."""
    assert LineSplitter().feed(b"a" * MAX_LINE_BYTES + b"\n") == [b"a" * MAX_LINE_BYTES]
    with pytest.raises(LineTooLongError):
        LineSplitter().feed(b"a" * (MAX_LINE_BYTES + 1) + b"\n")


@given(st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=20), st.data())
def test_splitter_returns_the_same_lines_whatever_the_chunking(lines: list[bytes], data: st.DataObject) -> None:
    """Cutting the byte stream anywhere yields the same lines, in order."""
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    splitter = LineSplitter(max_line_bytes=64)
    got: list[bytes] = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        got.extend(splitter.feed(stream[previous:cut]))
        previous = cut
    assert got == lines
    assert splitter.pending_bytes == 0
