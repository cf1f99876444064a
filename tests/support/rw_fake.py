"""The real protobuf classes of remote write 1.0, built at run time from a descriptor made
in code (no protoc, no generated third-party code). Tests only: the agent never imports
`protobuf`; these check the hand-written encoder and decode what the fakes receive."""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

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
