"""The test Loki receiver itself: it must refuse what real Loki refuses, with Loki's
status codes and messages (/work/shared/loki-push-api.md), and inject faults."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator

import cramjam
import httpx
import pytest
from tests.support.loki_receiver import Fault, Limits, LokiReceiver, go_time_string

NOW = 1_796_400_000.0
NOW_NS = int(NOW) * 1_000_000_000
HOUR_NS = 3600 * 1_000_000_000
JSON = {"Content-Type": "application/json", "X-Scope-OrgID": "t1"}


@pytest.fixture
def receiver() -> Iterator[LokiReceiver]:
    server = LokiReceiver(now=lambda: NOW).start()
    yield server
    server.stop()


def _body(values: list[list[object]], labels: dict[str, str] | None = None) -> bytes:
    stream = {"stream": labels if labels is not None else {"job": "argus", "host": "h1"}, "values": values}
    return json.dumps({"streams": [stream]}).encode()


def _post(receiver: LokiReceiver, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(receiver.push_url, content=body, headers=JSON if headers is None else headers, timeout=30)


def test_valid_push_is_stored_with_service_name(receiver: LokiReceiver) -> None:
    """A valid JSON push → 204 with no body; the entry is stored with service_name
    discovered from `job` (no `component`)."""
    response = _post(receiver, _body([[str(NOW_NS), "line-1"]]))
    assert (response.status_code, response.content) == (204, b"")
    [entry] = receiver.entries
    assert entry.labels == {"host": "h1", "job": "argus", "service_name": "argus"}
    assert entry.stream == '{host="h1", job="argus", service_name="argus"}'
    assert (entry.tenant, entry.ts_ns, entry.line) == ("t1", NOW_NS, "line-1")


def test_component_label_wins_service_name_and_empty_labels_drop(receiver: LokiReceiver) -> None:
    """`component` comes before `job` in discovery; a label with value "" is dropped."""
    _post(receiver, _body([[str(NOW_NS), "x"]], {"job": "argus", "component": "telemetry", "region": ""}))
    assert receiver.entries[0].labels == {"component": "telemetry", "job": "argus", "service_name": "telemetry"}


def test_method_tenant_and_header_rules(receiver: LokiReceiver) -> None:
    """Other methods 405; no tenant 401 `no org id`; bad tenants 400 with Loki's text;
    unknown encodings and missing content type 400."""
    assert httpx.get(receiver.push_url).status_code == 405
    body = _body([[str(NOW_NS), "x"]])
    cases = [
        ({"Content-Type": "application/json"}, 401, "no org id\n"),
        ({**JSON, "X-Scope-OrgID": "a/b"}, 400, "tenant ID 'a/b' contains unsupported character '/'\n"),
        ({**JSON, "X-Scope-OrgID": "a|b"}, 400, "multiple org IDs present\n"),
        ({**JSON, "X-Scope-OrgID": ".."}, 400, "tenant ID is '.' or '..'\n"),
        ({**JSON, "X-Scope-OrgID": "x" * 151}, 400, "tenant ID is too long: max 150 characters\n"),
        ({**JSON, "Content-Encoding": "br"}, 400, 'Content-Encoding "br" not supported\n'),
        ({"X-Scope-OrgID": "t1"}, 400, "mime: no media type\n"),
    ]
    for headers, status, text in cases:
        response = _post(receiver, body, headers)
        assert (response.status_code, response.text) == (status, text), headers
    assert receiver.entries == []


def test_encodings_gzip_raw_deflate_accepted_zlib_wrapped_refused(receiver: LokiReceiver) -> None:
    """gzip and raw DEFLATE bodies are accepted; a zlib-wrapped `deflate` body is 400."""
    body = _body([[str(NOW_NS), "g"]])
    assert _post(receiver, gzip.compress(body), {**JSON, "Content-Encoding": "gzip"}).status_code == 204
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = packer.compress(_body([[str(NOW_NS), "d"]])) + packer.flush()
    assert _post(receiver, raw, {**JSON, "Content-Encoding": "deflate"}).status_code == 204
    wrapped = zlib.compress(_body([[str(NOW_NS), "z"]]))
    assert _post(receiver, wrapped, {**JSON, "Content-Encoding": "deflate"}).status_code == 400
    assert [e.line for e in receiver.entries] == ["g", "d"]


def test_json_rules(receiver: LokiReceiver) -> None:
    """Timestamps must be decimal strings; a bad label name refuses the whole request with
    the PromQL parse error; no streams is 422; all-empty streams are 204, nothing stored."""
    for ts in (NOW_NS, "1.5", "0123", str(2**63)):
        assert _post(receiver, _body([[ts, "x"]])).status_code == 400
    good = {"stream": {"job": "a"}, "values": [[str(NOW_NS), "x"]]}
    bad = {"stream": {"1abc": "v"}, "values": [[str(NOW_NS), "y"]]}
    response = _post(receiver, json.dumps({"streams": [good, bad]}).encode())
    assert (response.status_code, response.text) == (
        400,
        "couldn't parse labels: 1:2: parse error: unexpected character inside braces: '1'\n",
    )
    response = _post(receiver, b'{"streams":[]}')
    assert (response.status_code, response.text) == (422, "error at least one valid stream is required for ingestion\n")
    assert _post(receiver, _body([])).status_code == 204
    assert receiver.entries == []


def test_entry_checks_drop_entries_and_keep_the_rest(receiver: LokiReceiver) -> None:
    """Too old, too new and too long entries are refused (grouped 400); the valid entry
    of the same request is stored (partial acceptance)."""
    old = NOW_NS - 169 * HOUR_NS
    values = [
        [str(old), "old"],
        [str(NOW_NS + 11 * 60 * 10**9), "new"],
        [str(NOW_NS), "a" * 262145],
        [str(NOW_NS), "ok"],
        [str(old), "old2"],
    ]
    response = _post(receiver, _body(values))
    stream = '{host="h1", job="argus", service_name="argus"}'
    assert response.status_code == 400
    parts = response.text.rstrip("\n").split("; ")
    assert sorted(parts) == sorted(
        [
            f"2 errors like: entry for stream '{stream}' has timestamp too old: 2026-11-27T15:00:00Z, "
            "oldest acceptable timestamp is: 2026-11-27T16:00:00Z",
            f"entry for stream '{stream}' has timestamp too new: 2026-12-04T16:11:00Z",
            f"max entry size '262144' bytes exceeded for stream '{stream}' while adding an entry with length "
            "'262145' bytes",
        ]
    )
    assert [e.line for e in receiver.entries] == ["ok"]


def test_window_cutoff_inclusive_and_duplicates_folded(receiver: LokiReceiver) -> None:
    """An entry exactly 1 h behind the stream's newest is accepted, 1 ns more is refused
    in the ingester's format; an identical re-send is stored once with a 204."""
    newest = NOW_NS
    assert _post(receiver, _body([[str(newest), "n"]])).status_code == 204
    assert _post(receiver, _body([[str(newest - HOUR_NS), "edge"]])).status_code == 204
    response = _post(receiver, _body([[str(newest - HOUR_NS - 1), "late"]]))
    assert response.status_code == 400
    assert response.text == (
        f"entry with timestamp {go_time_string(newest - HOUR_NS - 1)} ignored, reason: 'entry too far behind, "
        "entry timestamp is: 2026-12-04T14:59:59Z, oldest acceptable timestamp is: 2026-12-04T15:00:00Z',\n"
        'user \'t1\', total ignored: 1 out of 1 for stream: {host="h1", job="argus", service_name="argus"}\n'
    )
    assert _post(receiver, _body([[str(newest), "n"]])).status_code == 204
    assert [e.line for e in receiver.entries] == ["n", "edge"]
    assert receiver.duplicates == 1
    assert go_time_string(1_767_323_045_500_000_000) == "2026-01-02 03:04:05.5 +0000 UTC"


def test_tenant_rate_limit_above_burst_is_always_429() -> None:
    """A request whose lines exceed the tenant burst is refused with 429 every time."""
    receiver = LokiReceiver(Limits(ingestion_rate_bytes=100, ingestion_burst_bytes=150), now=lambda: NOW).start()
    try:
        for _ in range(2):
            response = _post(receiver, _body([[str(NOW_NS), "x" * 200]]))
            assert response.status_code == 429
            assert response.text.startswith("ingestion rate limit exceeded for user t1 (limit: 100 bytes/sec)")
        assert receiver.entries == []
    finally:
        receiver.stop()


def test_snappy_protobuf_push_is_decoded() -> None:
    """A snappy-block protobuf PushRequest is stored like JSON (labels parsed as PromQL)."""

    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2, len(payload)]) + payload

    seconds = int(NOW)
    timestamp = bytes([0x08]) + _varint(seconds) + bytes([0x10]) + _varint(5)
    entry = field(1, timestamp) + field(2, b"proto-line")
    stream = field(1, b'{job="argus", host="h2"}') + field(2, entry)
    body = bytes(cramjam.snappy.compress_raw(field(1, stream)))
    receiver = LokiReceiver(Limits(auth_enabled=False), now=lambda: NOW).start()
    try:
        headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
        assert _post(receiver, body, headers).status_code == 204
        [stored] = receiver.entries
        assert (stored.tenant, stored.ts_ns, stored.line) == ("fake", seconds * 10**9 + 5, "proto-line")
        assert stored.labels == {"host": "h2", "job": "argus", "service_name": "argus"}
    finally:
        receiver.stop()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def test_faults_status_reset_and_restart_on_same_port(receiver: LokiReceiver) -> None:
    """A status fault answers with Retry-After for its count; a reset drops the
    connection; after-store faults store but lose the ack; stopped means refused and a
    restart keeps the port."""
    receiver.inject(Fault("status", status=429, body="slow down", retry_after="3", count=1))
    response = _post(receiver, _body([[str(NOW_NS), "a"]]))
    assert (response.status_code, response.headers["Retry-After"], response.text) == (429, "3", "slow down\n")
    receiver.inject(Fault("reset", count=1))
    with pytest.raises(httpx.TransportError):
        _post(receiver, _body([[str(NOW_NS), "b"]]))
    receiver.inject(Fault("status", status=500, count=1, after_store=True))
    assert _post(receiver, _body([[str(NOW_NS), "c"]])).status_code == 500
    assert [e.line for e in receiver.entries] == ["c"]
    port = receiver.port
    receiver.stop()
    with pytest.raises(httpx.ConnectError):
        _post(receiver, _body([[str(NOW_NS), "d"]]))
    receiver.start()
    assert receiver.port == port
    assert _post(receiver, _body([[str(NOW_NS), "d"]])).status_code == 204
    assert receiver.statuses() == [429, None, 500, 204]
