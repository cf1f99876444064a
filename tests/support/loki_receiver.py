"""A Loki push receiver for tests that enforces the real push API's MUSTs
(/work/shared/loki-push-api.md §6): tenant, encodings, content types, JSON and protobuf
decoding, label parsing and checks, old/future timestamps, line size, tenant and
per-stream rate limits, the 1 h out-of-order window, duplicate folding, answers and
messages as Loki v3.7 sends them. Faults can be injected (status + Retry-After, hang,
dropped connection, delay, proxy 413) for N requests or a time window, optionally after
storing (a lost ack). It keeps its port across stop()/start(); refused while stopped.

Runs in its own threads (http.server), so in-process asyncio agents and `argus run`
subprocesses can both push to it. Time comes from injectable callables, so tests with a
FakeClock control the windows and the old/new checks.
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import json
import re
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message

import cramjam

NS = 1_000_000_000
MIB = 1024**2
PUSH_PATHS = ("/loki/api/v1/push", "/api/prom/push")
TENANT_CHARS = re.compile(r"[A-Za-z0-9!\-_.*'()]")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TS_TEXT = re.compile(r"-?(0|[1-9][0-9]*)")
SERVICE_NAME_SOURCES = (
    "service",
    "app",
    "application",
    "app_name",
    "name",
    "app_kubernetes_io_name",
    "container",
    "container_name",
    "k8s_container_name",
    "component",
    "workload",
    "job",
    "k8s_job_name",
)


@dataclass
class Limits:
    """Per-tenant defaults of Loki v3.7 (None: no limit)."""

    auth_enabled: bool = True
    ingestion_rate_bytes: float | None = 4 * MIB
    ingestion_burst_bytes: float | None = 6 * MIB
    per_stream_rate_bytes: float | None = 3 * MIB
    per_stream_burst_bytes: float | None = 15 * MIB
    max_streams: int = 5000
    max_label_names: int = 15
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    reject_old_samples_max_age_seconds: float | None = 168 * 3600.0
    creation_grace_period_seconds: float = 600.0
    max_line_size: int = 262144
    allow_structured_metadata: bool = True
    max_structured_metadata_bytes: int = 64 * 1024
    max_structured_metadata_entries: int = 128
    window_seconds: float = 3600.0  # max_chunk_age / 2
    chunk_idle_seconds: float = 1800.0
    unordered_writes: bool = True
    discover_service_name: bool = True
    max_recv_msg_size: int = 100 * MIB
    proxy_max_body_bytes: int | None = None  # a proxy in front (nginx): 413 above this


@dataclass(frozen=True)
class StoredEntry:
    """One entry Loki would have stored."""

    tenant: str
    labels_sent: dict[str, str]
    labels: dict[str, str]
    stream: str
    ts_ns: int
    line: str
    metadata: dict[str, str]


@dataclass
class Fault:
    """An injected misbehaviour. kind: "status" (answer `status` with `body` and
    `retry_after`), "hang" (never answer until released or stopped), "reset" (drop the
    connection), "delay" (answer normally after `delay_seconds` of real time).
    Active for `count` requests (None: unlimited) and/or until monotonic `until`."""

    kind: str
    status: int = 500
    body: str = "internal server error"
    retry_after: str | None = None
    count: int | None = 1
    until: float | None = None
    after_store: bool = False
    delay_seconds: float = 0.0


@dataclass
class Request:
    """What the receiver saw of one request and what it answered."""

    monotonic: float
    method: str
    path: str
    headers: dict[str, str]
    body_bytes: int
    status: int | None  # None: no answer (hang, reset)
    answer: str
    body: bytes = b""


@dataclass
class _Stream:
    newest_ns: int | None = None
    last: tuple[int, str, tuple[tuple[str, str], ...]] | None = None
    seen: set[tuple[int, str, tuple[tuple[str, str], ...]]] = field(default_factory=set)
    last_activity: float = 0.0
    bucket: _Bucket | None = None


class _Bucket:
    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.at = now

    def take(self, amount: float, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if amount > self.burst or amount > self.tokens:
            return False
        self.tokens -= amount
        return True


class PushError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    receiver: LokiReceiver


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.receiver._connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.receiver._connections.discard(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is not None:
            return self.rfile.read(int(length))
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return b""

    def _any(self) -> None:
        body = self._body()
        self.server.receiver._handle(self, self.command, self.path, body)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _any

    def answer(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        data = (text + "\n").encode() if text else b""
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()


class LokiReceiver:
    """The test Loki. `start()` → `url`; `entries` holds what was stored."""

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        port: int = 0,
    ) -> None:
        self.limits = limits or Limits()
        self.now = now
        self.monotonic = monotonic
        self.port = port
        self.entries: list[StoredEntry] = []
        self.requests: list[Request] = []
        self.duplicates = 0  # identical entries folded (stored once)
        self.faults: list[Fault] = []
        self._lock = threading.RLock()
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._tenant_buckets: dict[str, _Bucket] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._release = threading.Event()
        self.changed = threading.Condition(self._lock)

    # -- lifecycle ---------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def push_url(self) -> str:
        return self.url + PUSH_PATHS[0]

    def start(self) -> LokiReceiver:
        """Listen (on the same port as before after a stop)."""
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.receiver = self
        self.port = server.server_address[1]
        self._release.clear()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="loki-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection (clients see refusals)."""
        if self._server is None:
            return
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        for connection in list(self._connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._server = None
        if self._thread is not None:
            self._thread.join(timeout=30)

    @property
    def running(self) -> bool:
        return self._server is not None

    def release_hung(self) -> None:
        """Let hung requests go (their connections are dropped)."""
        self._release.set()

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    # -- inspection --------------------------------------------------------------

    def seqs(self) -> list[int]:
        """The `seq` of every stored entry, in storage order."""
        with self._lock:
            return [json.loads(e.line)["seq"] for e in self.entries]

    def statuses(self) -> list[int | None]:
        with self._lock:
            return [r.status for r in self.requests]

    def wait_for(self, predicate: Callable[[LokiReceiver], bool], timeout: float = 30.0) -> None:
        """Block until `predicate(self)` holds (checked on every request), or fail."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver condition not met within {timeout} s; statuses {self.statuses()}")
                self.changed.wait(min(left, 0.5))

    # -- request handling --------------------------------------------------------

    def _active_fault(self) -> Fault | None:
        now = self.monotonic()
        for fault in list(self.faults):
            expired = (fault.until is not None and now >= fault.until) or (fault.count is not None and fault.count <= 0)
            if expired:
                self.faults.remove(fault)
                continue
            if fault.count is not None:
                fault.count -= 1
            return fault
        return None

    def _handle(self, handler: _Handler, method: str, path: str, body: bytes) -> None:
        headers = dict(handler.headers.items())
        with self._lock:
            fault = self._active_fault()
        record = Request(self.monotonic(), method, path, headers, len(body), None, "", body)
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.delay_seconds)
        if fault is not None and not fault.after_store and fault.kind in ("hang", "reset", "status"):
            self._misbehave(handler, fault, record)
            return
        status, text = self._process(method, path, handler.headers, body)
        if fault is not None and fault.after_store and fault.kind in ("hang", "reset", "status"):
            self._misbehave(handler, fault, record)
            return
        record.status, record.answer = status, text
        self._log(record)
        handler.answer(status, text)

    def _misbehave(self, handler: _Handler, fault: Fault, record: Request) -> None:
        if fault.kind == "status":
            record.status, record.answer = fault.status, fault.body
            self._log(record)
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            handler.answer(fault.status, fault.body, extra)
            return
        self._log(record)
        if fault.kind == "hang":
            self._release.wait()
        handler.reset()

    def _log(self, record: Request) -> None:
        with self.changed:
            self.requests.append(record)
            self.changed.notify_all()

    def _process(self, method: str, path: str, headers: Message, body: bytes) -> tuple[int, str]:
        route = path.split("?", 1)[0]
        if route not in PUSH_PATHS:
            if route in ("/ready", "/loki/api/v1/status/buildinfo"):
                return 200, "ready"
            return 404, "404 page not found"
        if method != "POST":
            return 405, ""
        limits = self.limits
        if limits.proxy_max_body_bytes is not None and len(body) > limits.proxy_max_body_bytes:
            return 413, "<html><head><title>413 Request Entity Too Large</title></head></html>"
        try:
            tenant = self._tenant(headers.get("X-Scope-OrgID"))
            streams = self._decode(headers, body)
            with self.changed:
                status, text = self._ingest(tenant, streams)
                self.changed.notify_all()
            return status, text
        except PushError as error:
            return error.status, error.message

    def _tenant(self, header: str | None) -> str:
        if not self.limits.auth_enabled:
            return "fake"
        if not header:
            raise PushError(401, "no org id")
        ids = header.split("|")
        for tenant in ids:
            for char in tenant:
                if not TENANT_CHARS.fullmatch(char):
                    raise PushError(400, f"tenant ID '{tenant}' contains unsupported character '{char}'")
            if len(tenant) > 150:
                raise PushError(400, "tenant ID is too long: max 150 characters")
            if tenant in (".", ".."):
                raise PushError(400, "tenant ID is '.' or '..'")
        if len(ids) > 1:
            raise PushError(400, "multiple org IDs present")
        return ids[0]

    def _decode(self, headers: Message, body: bytes) -> list[tuple[str, list[tuple[int, str, dict[str, str]]], bool]]:
        """→ [(label text, entries, is_protobuf)]; labels not yet parsed."""
        encoding = headers.get("Content-Encoding", "")
        if encoding == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error) as exc:
                raise PushError(400, f"gzip: invalid header ({exc})") from exc
        elif encoding == "deflate":
            try:
                inflater = zlib.decompressobj(-15)
                body = inflater.decompress(body) + inflater.flush()
                if not inflater.eof:
                    raise zlib.error("unexpected EOF")
            except zlib.error as exc:
                raise PushError(400, f"flate: corrupt input ({exc})") from exc
        elif encoding not in ("", "snappy"):
            raise PushError(400, f'Content-Encoding "{encoding}" not supported')
        content_type = headers.get("Content-Type")
        if not content_type:
            raise PushError(400, "mime: no media type")
        media = content_type.split(";", 1)[0].strip().lower()
        if (
            not media
            or "/" not in media
            or not re.fullmatch(r"[a-z0-9!#$%&'*+.^_`|~-]+/[a-z0-9!#$%&'*+.^_`|~-]+", media)
        ):
            raise PushError(400, "mime: expected token after slash" if "/" in media else "mime: no media type")
        if media == "application/json":
            if len(body) > self.limits.max_recv_msg_size:
                raise PushError(400, "request body too large")
            return _decode_json(body)
        if len(body) > self.limits.max_recv_msg_size:
            raise PushError(
                413,
                f"request body too large: message size too large than max "
                f"({len(body)} vs {self.limits.max_recv_msg_size})",
            )
        try:
            raw = cramjam.snappy.decompress_raw(body).read()
        except Exception as exc:
            raise PushError(400, "snappy: corrupt input") from exc
        return _decode_protobuf(bytes(raw))

    def _ingest(
        self, tenant: str, raw_streams: list[tuple[str, list[tuple[int, str, dict[str, str]]], bool]]
    ) -> tuple[int, str]:
        limits = self.limits
        parsed = []
        for text, entries, protobuf in raw_streams:  # step 2: every stream's labels parse, or nothing
            try:
                pairs = _parse_labels(text)
            except _LabelParseError as exc:
                raise PushError(400, f"couldn't parse labels: 1:{exc.column}: parse error: {exc.reason}") from exc
            parsed.append((pairs, entries, protobuf))
        if not parsed:
            raise PushError(422, "error at least one valid stream is required for ingestion")
        now_wall = self.now()
        now_ns = int(now_wall * NS)
        errors: list[str] = []
        accepted: list[tuple[dict[str, str], dict[str, str], str, list[tuple[int, str, dict[str, str]]]]] = []
        for pairs, entries, protobuf in parsed:  # step 4: distributor
            if not entries:
                continue
            sent = dict(pairs)
            labels = {k: v for k, v in pairs if v != ""}
            if limits.discover_service_name and "service_name" not in labels:
                source = next((labels[name] for name in SERVICE_NAME_SOURCES if name in labels), "unknown_service")
                labels["service_name"] = source
            stream = _stream_text(labels)
            problem = self._check_stream(pairs, labels, stream, protobuf)
            if problem:
                errors.append(problem)
                continue
            kept = []
            for ts, line, metadata in entries:
                problem = self._check_entry(ts, line, metadata, stream, now_ns)
                if problem:
                    errors.append(problem)
                else:
                    kept.append((ts, line, metadata))
            if kept:
                accepted.append((sent, labels, stream, kept))
        total = sum(len(line) + _metadata_bytes(meta) for *_, kept in accepted for _, line, meta in kept)
        lines = sum(len(kept) for *_, kept in accepted)
        monotonic = self.monotonic()
        if limits.ingestion_rate_bytes is not None and limits.ingestion_burst_bytes is not None and total:
            bucket = self._tenant_buckets.setdefault(
                tenant, _Bucket(limits.ingestion_rate_bytes, limits.ingestion_burst_bytes, monotonic)
            )
            if not bucket.take(total, monotonic):
                return 429, (
                    f"ingestion rate limit exceeded for user {tenant} (limit: {int(limits.ingestion_rate_bytes)} "
                    f"bytes/sec) while attempting to ingest '{lines}' lines totaling '{total}' bytes, reduce log "
                    "volume or contact your Loki administrator to see if the limit can be increased"
                )
        last_error: tuple[int, str] | None = None
        for sent, labels, stream_text, kept in accepted:  # step 6: ingester
            result = self._store(
                tenant=tenant,
                sent=sent,
                labels=labels,
                stream_text=stream_text,
                kept=kept,
                now_wall=now_wall,
                monotonic=monotonic,
            )
            if result is not None:
                last_error = result
        if last_error is not None:
            return last_error
        if errors:
            return 400, _group(errors)
        return 204, ""

    def _check_stream(self, pairs: list[tuple[str, str]], labels: dict[str, str], stream: str, protobuf: bool) -> str:
        limits = self.limits
        if not labels:
            return "error at least one label pair is required per stream"
        count = len([name for name in labels if name != "service_name"])
        if count > limits.max_label_names:
            return f"entry for stream '{stream}' has {count} label names; limit {limits.max_label_names}"
        for name, value in sorted(labels.items()):
            if len(name.encode()) > limits.max_label_name_length:
                return f"stream '{stream}' has label name too long: '{name}'"
            if len(value.encode()) > limits.max_label_value_length:
                return f"stream '{stream}' has label value too long: '{value}'"
        if protobuf:
            names = [name for name, _ in pairs]
            for name in sorted(names):
                if names.count(name) > 1:
                    return f"stream '{stream}' has duplicate label name: '{name}'"
        return ""

    def _check_entry(self, ts: int, line: str, metadata: dict[str, str], stream: str, now_ns: int) -> str:
        limits = self.limits
        if limits.reject_old_samples_max_age_seconds is not None:
            cutoff = now_ns - int(limits.reject_old_samples_max_age_seconds * NS)
            if ts < cutoff:
                return (
                    f"entry for stream '{stream}' has timestamp too old: {_rfc3339(ts)}, "
                    f"oldest acceptable timestamp is: {_rfc3339(cutoff)}"
                )
        if ts > now_ns + int(limits.creation_grace_period_seconds * NS):
            return f"entry for stream '{stream}' has timestamp too new: {_rfc3339(ts)}"
        size = len(line.encode())
        if limits.max_line_size and size > limits.max_line_size:
            return (
                f"max entry size '{limits.max_line_size}' bytes exceeded for stream '{stream}' "
                f"while adding an entry with length '{size}' bytes"
            )
        if metadata:
            if not limits.allow_structured_metadata:
                return f"stream '{stream}' includes structured metadata, but this feature is disallowed."
            meta_size = _metadata_bytes(metadata)
            if meta_size > limits.max_structured_metadata_bytes:
                return (
                    f"stream '{stream}' has structured metadata too large: '{meta_size}' bytes, "
                    f"limit: '{limits.max_structured_metadata_bytes}' bytes"
                )
            if len(metadata) > limits.max_structured_metadata_entries:
                return (
                    f"stream '{stream}' has too many structured metadata labels: '{len(metadata)}', "
                    f"limit: '{limits.max_structured_metadata_entries}'"
                )
        return ""

    def _store(
        self,
        *,
        tenant: str,
        sent: dict[str, str],
        labels: dict[str, str],
        stream_text: str,
        kept: list[tuple[int, str, dict[str, str]]],
        now_wall: float,
        monotonic: float,
    ) -> tuple[int, str] | None:
        limits = self.limits
        key = (tenant, stream_text)
        state = self._streams.get(key)
        if state is None:
            if sum(1 for t, _ in self._streams if t == tenant) >= limits.max_streams:
                return 429, (
                    f"maximum active stream limit exceeded when trying to create stream {stream_text}, reduce the "
                    "number of active streams (reduce labels or reduce label values), or contact your Loki "
                    f"administrator to see if the limit can be increased, user: '{tenant}'"
                )
            state = self._streams[key] = _Stream()
        if state.last_activity and now_wall - state.last_activity > limits.chunk_idle_seconds:
            state.newest_ns, state.last, state.seen = None, None, set()
        state.last_activity = now_wall
        refused: list[tuple[int, str]] = []
        size = sum(len(line) + _metadata_bytes(meta) for _, line, meta in kept)
        if limits.per_stream_rate_bytes is not None and limits.per_stream_burst_bytes is not None:
            if state.bucket is None:
                state.bucket = _Bucket(limits.per_stream_rate_bytes, limits.per_stream_burst_bytes, monotonic)
            if not state.bucket.take(size, monotonic):
                reason = (
                    f"Per stream rate limit exceeded (limit: {_mb(limits.per_stream_rate_bytes)}/sec) while "
                    f"attempting to ingest for stream '{stream_text}' totaling {size}B, consider splitting a stream "
                    "via additional labels or contact your Loki administrator to see if the limit can be increased"
                )
                return 429, _ingester_body(tenant, stream_text, [(ts, reason) for ts, _, _ in kept], len(kept))
        for ts, line, metadata in kept:
            ident = (ts, line, tuple(sorted(metadata.items())))
            if ident == state.last or ident in state.seen:
                self.duplicates += 1
                continue
            if state.newest_ns is not None:
                cutoff = state.newest_ns - int(limits.window_seconds * NS)
                if limits.unordered_writes and ts < cutoff:
                    refused.append(
                        (
                            ts,
                            f"entry too far behind, entry timestamp is: {_rfc3339(ts)}, "
                            f"oldest acceptable timestamp is: {_rfc3339(cutoff)}",
                        )
                    )
                    continue
                if not limits.unordered_writes and ts < state.newest_ns:
                    refused.append((ts, "entry out of order"))
                    continue
            state.newest_ns = ts if state.newest_ns is None else max(state.newest_ns, ts)
            state.last = ident
            state.seen.add(ident)
            self.entries.append(StoredEntry(tenant, sent, dict(labels), stream_text, ts, line, metadata))
        if refused:
            return 400, _ingester_body(tenant, stream_text, refused, len(kept))
        return None


# -- decoding ---------------------------------------------------------------------


def _decode_json(body: bytes) -> list[tuple[str, list[tuple[int, str, dict[str, str]]], bool]]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PushError(400, f"failed to parse JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise PushError(400, "failed to parse JSON: expected an object")
    result = []
    for stream in document.get("streams") or []:
        if not isinstance(stream, dict):
            raise PushError(400, "failed to parse JSON: a stream is not an object")
        labels = stream.get("stream") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise PushError(400, "failed to parse JSON: stream labels must be strings")
        text = "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
        entries = []
        for value in stream.get("values") or []:
            if value is None:
                continue
            if not isinstance(value, list) or not value:
                raise PushError(400, "failed to parse JSON: an entry is not an array")
            ts = value[0]
            if not isinstance(ts, str) or not TS_TEXT.fullmatch(ts) or not -(2**63) <= int(ts) < 2**63:
                raise PushError(400, f"failed to parse JSON: invalid timestamp {ts!r}")
            line = value[1] if len(value) > 1 else ""
            if not isinstance(line, str):
                raise PushError(400, "failed to parse JSON: a line must be a string")
            metadata = value[2] if len(value) > 2 else {}
            if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
                raise PushError(400, "failed to parse JSON: structured metadata must be an object of strings")
            entries.append((int(ts), line, metadata))
        result.append((text, entries, False))
    return result


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(data):
            raise PushError(400, "proto: unexpected EOF")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise PushError(400, "proto: integer overflow")


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise PushError(400, "proto: unexpected EOF")
            out.append((number, data[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise PushError(400, f"proto: illegal wireType {wire}")
    return out


def _decode_protobuf(data: bytes) -> list[tuple[str, list[tuple[int, str, dict[str, str]]], bool]]:
    result = []
    for number, stream in _fields(data):
        if number != 1 or not isinstance(stream, bytes):
            continue
        labels = ""
        entries = []
        for field_number, value in _fields(stream):
            if field_number == 1 and isinstance(value, bytes):
                labels = value.decode("utf-8", "replace")
            elif field_number == 2 and isinstance(value, bytes):
                seconds = nanos = 0
                line = ""
                metadata: dict[str, str] = {}
                for entry_field, entry_value in _fields(value):
                    if entry_field == 1 and isinstance(entry_value, bytes):
                        for ts_field, ts_value in _fields(entry_value):
                            if ts_field == 1 and isinstance(ts_value, int):
                                seconds = ts_value - (1 << 64) if ts_value >= 1 << 63 else ts_value
                            elif ts_field == 2 and isinstance(ts_value, int):
                                nanos = ts_value
                    elif entry_field == 2 and isinstance(entry_value, bytes):
                        line = entry_value.decode("utf-8", "replace")
                    elif entry_field == 3 and isinstance(entry_value, bytes):
                        pair = {n: v for n, v in _fields(entry_value) if isinstance(v, bytes)}
                        metadata[pair.get(1, b"").decode()] = pair.get(2, b"").decode()
                entries.append((seconds * NS + nanos, line, metadata))
        result.append((labels, entries, True))
    return result


class _LabelParseError(Exception):
    def __init__(self, column: int, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}


def _parse_labels(text: str) -> list[tuple[str, str]]:
    """A PromQL label set `{a="b", c="d"}` → pairs; _LabelParseError(column, reason)."""
    data = text.encode()
    pos = 0

    def column() -> int:
        return pos + 1

    def char() -> str:
        return chr(data[pos]) if pos < len(data) else ""

    def skip() -> None:
        nonlocal pos
        while pos < len(data) and data[pos] in b" \t\n\r":
            pos += 1

    skip()
    if char() != "{":
        raise _LabelParseError(column(), f"unexpected character: '{char()}'" if char() else "unexpected end of input")
    pos += 1
    pairs: list[tuple[str, str]] = []
    while True:
        skip()
        if char() == "}":
            pos += 1
            break
        if not char():
            raise _LabelParseError(column(), "unexpected end of input inside braces")
        match = LABEL_NAME.match(text, len(data[:pos].decode()))
        if match is None:
            raise _LabelParseError(column(), f"unexpected character inside braces: '{char()}'")
        name = match.group()
        pos += len(name.encode())
        skip()
        if char() != "=":
            raise _LabelParseError(column(), f"unexpected character inside braces: '{char()}'")
        pos += 1
        skip()
        if char() != '"':
            raise _LabelParseError(column(), f"unexpected character inside braces: '{char()}'")
        pos += 1
        value = bytearray()
        while True:
            if pos >= len(data) or data[pos] == 0x0A:
                raise _LabelParseError(column(), "unterminated quoted string")
            byte = data[pos]
            if byte == 0x22:
                pos += 1
                break
            if byte == 0x5C:
                escape = chr(data[pos + 1]) if pos + 1 < len(data) else ""
                if escape not in _ESCAPES:
                    raise _LabelParseError(column(), "unknown escape sequence")
                value += _ESCAPES[escape].encode()
                pos += 2
                continue
            value.append(byte)
            pos += 1
        pairs.append((name, value.decode()))
        skip()
        if char() == ",":
            pos += 1
        elif char() != "}":
            raise _LabelParseError(column(), f"unexpected character inside braces: '{char()}'")
    skip()
    if pos != len(data):
        raise _LabelParseError(column(), f"unexpected character: '{char()}'")
    return pairs


# -- formatting -------------------------------------------------------------------


def _stream_text(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items())) + "}"


def _metadata_bytes(metadata: dict[str, str]) -> int:
    return sum(len(k) + len(v) for k, v in metadata.items())


def _rfc3339(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // NS, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_time_string(ts_ns: int) -> str:
    """Go's time.Time.String() in UTC: `2026-01-02 03:04:05.5 +0000 UTC`."""
    seconds, nanos = divmod(ts_ns, NS)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + " +0000 UTC"


def _ingester_body(tenant: str, stream: str, refused: list[tuple[int, str]], total: int) -> str:
    lines = [f"entry with timestamp {go_time_string(ts)} ignored, reason: '{reason}'," for ts, reason in refused[:10]]
    lines.append(f"user '{tenant}', total ignored: {len(refused)} out of {total} for stream: {stream}")
    return "\n".join(lines)


def _group(messages: list[str]) -> str:
    counts = Counter(messages)
    return "; ".join(m if n == 1 else f"{n} errors like: {m}" for m, n in counts.items())


def _mb(value: float) -> str:
    return f"{value / MIB:g}MB"
