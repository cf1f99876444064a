"""Loki exporter: a batch of spooled snapshots → one gzip'ed JSON push request.

Every snapshot is one entry of one stream: timestamp = snapshot `time` in ns, line =
the snapshot JSON as stored. Stream labels = `[loki].labels` + `host` + `[agent].labels`.
The body is a pure function of the batch (sorted labels, gzip without a time stamp),
so a retransmission is byte-identical and Loki folds the duplicate.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

import msgspec

from argus_telemetry.export.base import ExportHost
from argus_telemetry.export.http import HTTP_ERRORS, ThreadedClient, client_for, error_for_exception, error_for_response
from argus_telemetry.snapshot.model import time_ns
from argus_telemetry.spool.base import SpoolRecord

PUSH_PATH = "/loki/api/v1/push"
GZIP_LEVEL = 6
_TIME_KEY = b'"time":"'
_TIME_LENGTH = len("2026-12-04T10:00:00.123456Z")
_encoder = msgspec.json.Encoder()


def push_url(url: str) -> str:
    """`url` with /loki/api/v1/push appended when its path is empty."""
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        return urlunsplit((parts.scheme, parts.netloc, PUSH_PATH, parts.query, parts.fragment))
    return url


def stream_labels(loki_labels: Mapping[str, str], hostname: str, agent_labels: Mapping[str, str]) -> dict[str, str]:
    """[loki].labels + host + [agent].labels (later ones win), sorted by name."""
    merged = {**loki_labels, "host": hostname, **agent_labels}
    return dict(sorted(merged.items()))


def entry_time_ns(record: SpoolRecord) -> int:
    """The snapshot's `time` in integer ns, read from its JSON without decoding it all."""
    line = record.snapshot_json
    start = line.find(_TIME_KEY)
    if start < 0:
        raise ValueError(f"snapshot seq {record.seq} has no time field")
    start += len(_TIME_KEY)
    return time_ns(line[start : start + _TIME_LENGTH].decode("ascii"))


def encode_body(records: Sequence[SpoolRecord], labels: Mapping[str, str]) -> bytes:
    """The uncompressed JSON push body for one stream."""
    values = [[str(entry_time_ns(r)), r.snapshot_json.decode("utf-8")] for r in records]
    return _encoder.encode({"streams": [{"stream": labels, "values": values}]})


def compress(body: bytes) -> bytes:
    """gzip with a zero mtime: the same body always compresses to the same bytes."""
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    return packer.compress(body) + packer.flush()


class LokiExporter:
    """Implements base.Exporter for Loki's push API."""

    name = "loki"

    def __init__(self, host: ExportHost) -> None:
        config = host.config.loki
        self._host = host
        self._config = config
        self.url = push_url(config.url)
        self.labels = stream_labels(config.labels, host.hostname, host.config.agent.labels)
        self.max_send_rate = int(config.max_send_rate)
        self.batch_max_bytes = int(config.batch_max_bytes)
        self._headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        if config.tenant:
            self._headers["X-Scope-OrgID"] = config.tenant
        self._client: ThreadedClient | None = None

    async def start(self) -> None:
        self._client = client_for(self._host, "loki", self._config)

    def cut(self, records: Sequence[SpoolRecord]) -> int:
        """As many records as fit in `batch_max_bytes` of lines (at least one)."""
        total = 0
        for count, record in enumerate(records):
            total += len(record.snapshot_json)
            if total > self.batch_max_bytes and count > 0:
                return count
        return len(records)

    async def export(self, batch: Sequence[SpoolRecord]) -> int:
        assert self._client is not None, "start() builds the client"
        body = encode_body(batch, self.labels)
        try:
            response = await self._client.post(self.url, content=compress(body), headers=self._headers)
        except HTTP_ERRORS as exc:
            raise error_for_exception(self.name, exc) from exc
        error = error_for_response(self.name, response, self._host.clock.wall())
        if error is not None:
            raise error
        return len(body)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
