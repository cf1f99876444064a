"""Remote write test support: the real protobuf classes of remote write 1.0, built at run
time from a descriptor made in code (no protoc, no generated third-party code), and a
strict in-process receiver for the answers no real server gives on demand (429 with
Retry-After, 500, 413, 401, hangs). The agent never imports `protobuf`."""

from __future__ import annotations

import asyncio
import re
import struct
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import cramjam
from aiohttp import web
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

_F = descriptor_pb2.FieldDescriptorProto


def _field(message: Any, name: str, number: int, kind: int, *, repeated: bool = False, type_name: str = "") -> None:
    field = message.field.add()
    field.name = name
    field.number = number
    field.type = kind
    field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if type_name:
        field.type_name = type_name


@cache
def classes() -> dict[str, Any]:
    """{"WriteRequest", "TimeSeries", "Label", "Sample"} → message classes (proto3)."""
    proto = descriptor_pb2.FileDescriptorProto(name="argus_test_remote.proto", package="prometheus", syntax="proto3")
    label = proto.message_type.add(name="Label")
    _field(label, "name", 1, _F.TYPE_STRING)
    _field(label, "value", 2, _F.TYPE_STRING)
    sample = proto.message_type.add(name="Sample")
    _field(sample, "value", 1, _F.TYPE_DOUBLE)
    _field(sample, "timestamp", 2, _F.TYPE_INT64)
    series = proto.message_type.add(name="TimeSeries")
    _field(series, "labels", 1, _F.TYPE_MESSAGE, repeated=True, type_name=".prometheus.Label")
    _field(series, "samples", 2, _F.TYPE_MESSAGE, repeated=True, type_name=".prometheus.Sample")
    request = proto.message_type.add(name="WriteRequest")
    _field(request, "timeseries", 1, _F.TYPE_MESSAGE, repeated=True, type_name=".prometheus.TimeSeries")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"prometheus.{name}"))
        for name in ("WriteRequest", "TimeSeries", "Label", "Sample")
    }


def reference_encode(series: list[tuple[list[tuple[str, str]], list[tuple[float, int]]]]) -> bytes:
    """What the protobuf runtime serialises for the same WriteRequest."""
    request = classes()["WriteRequest"]()
    for labels, samples in series:
        item = request.timeseries.add()
        for name, value in labels:
            item.labels.add(name=name, value=value)
        for value, timestamp in samples:
            item.samples.add(value=value, timestamp=timestamp)
    return bytes(request.SerializeToString(deterministic=True))


def decode(body: bytes) -> list[tuple[list[tuple[str, str]], list[tuple[float, int]]]]:
    """A WriteRequest (uncompressed protobuf) → [(labels, [(value, timestamp_ms)])]."""
    request = classes()["WriteRequest"]()
    request.ParseFromString(body)
    return [
        ([(lab.name, lab.value) for lab in item.labels], [(s.value, s.timestamp) for s in item.samples])
        for item in request.timeseries
    ]


# -- the strict in-process receiver -------------------------------------------------

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
Series = tuple[tuple[str, str], ...]


@dataclass
class Scripted:
    """One planned answer: `status` with `headers`; `hang` holds the request until
    `release` is set (the client times out first)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    hang: bool = False


@dataclass
class Received:
    """One request as it arrived: its raw body and headers, and the answer given."""

    body: bytes
    headers: dict[str, str]
    status: int


class FakeReceiver:
    """A remote write 1.0 receiver on a free loopback port that checks requests like
    Prometheus 2.42: headers, snappy block body, protobuf, label rules (sorted, unique,
    valid names, no empty values), per-series timestamp order against what it stored
    (400 "out of order sample"); a repeated label name is a 500 as in 2.42. Answers
    queued with `script()` go first, one per request."""

    def __init__(self) -> None:
        self.series: dict[Series, list[tuple[float, int]]] = {}
        self.requests: list[Received] = []
        self.plan: list[Scripted] = []
        self.release = asyncio.Event()
        self.arrived = asyncio.Condition()
        self.url = ""
        self._runner: web.AppRunner | None = None

    def script(self, *answers: Scripted) -> None:
        self.plan.extend(answers)

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/v1/write", self._write)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]  # aiohttp has no public accessor
        port = sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/api/v1/write"

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_requests(self, count: int) -> None:
        """Return once `count` requests have been answered (bound it with a timeout)."""
        async with self.arrived:
            await self.arrived.wait_for(lambda: len(self.requests) >= count)

    def samples(self) -> int:
        return sum(len(points) for points in self.series.values())

    async def _write(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        if self.plan:
            answer = self.plan.pop(0)
            if answer.hang:
                await self.release.wait()
            status, text, extra = answer.status, answer.body, answer.headers
        else:
            status, text = self._ingest(body, headers)
            extra = {}
        async with self.arrived:
            self.requests.append(Received(body, headers, status))
            self.arrived.notify_all()
        return web.Response(status=status, text=text, headers=extra)

    def _ingest(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        wanted = {
            "Content-Encoding": "snappy",
            "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
        }
        for name, value in wanted.items():
            if headers.get(name) != value:
                return 400, f"header {name} is {headers.get(name)!r}, want {value!r}"
        if not headers.get("User-Agent", "").startswith("argus-telemetry/"):
            return 400, "no User-Agent"
        try:
            raw = bytes(cramjam.snappy.decompress_raw(body))
        except cramjam.DecompressionError:
            return 400, "snappy: corrupt input"
        try:
            series = decode(raw)
        except DecodeError as exc:
            return 400, f"proto: {exc}"
        staged: dict[Series, list[tuple[float, int]]] = {}
        for labels, samples in series:
            names = [name for name, _ in labels]
            if len(set(names)) != len(names):
                return 500, "label name is not unique: invalid sample"
            if [n.encode() for n in names] != sorted(n.encode() for n in names):
                return 400, f"labels not sorted: {names}"
            metric = dict(labels).get("__name__", "")
            if not _METRIC_NAME.fullmatch(metric):
                return 400, f"invalid metric name {metric!r}"
            for name, value in labels:
                if not _LABEL_NAME.fullmatch(name) or (name.startswith("__") and name != "__name__") or not value:
                    return 400, f"invalid label {name}={value!r}"
            key = tuple(labels)
            known = staged.get(key, self.series.get(key, []))
            points = list(known)
            for value, stamp in samples:
                if points and stamp < points[-1][1]:
                    return 400, "out of order sample"
                if points and stamp == points[-1][1]:
                    if struct.pack("<d", value) != struct.pack("<d", points[-1][0]):
                        return 400, "duplicate sample for timestamp"
                    continue
                points.append((value, stamp))
            staged[key] = points
        self.series.update(staged)  # all or nothing, as Prometheus' v1 handler
        return 204, ""
