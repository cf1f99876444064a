"""Prometheus remote write 1.0 exporter: spool records → snappy-compressed WriteRequest.

A consumer "remote_write" of the spool, driven by `delivery.Delivery` (cursor, retries,
backoff, 413 splitting, set-aside of refused batches, pacing by `max_send_rate`). This
module only plans requests of whole snapshots (`rw_series.py`), sends one and maps the
answer with `http.error_for_response`. A planned request is kept until it is delivered,
so a retransmission is byte-identical. Snapshots older than `max_sample_age` are left
out before sending (a plain Prometheus refuses a whole request holding one sample more
than ~1 h older than its newest) and counted as `too_old` once delivered past.
cramjam is imported only when remote_write is configured (RSS budget).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from argus_telemetry.config.model import Config
from argus_telemetry.errors import ConfigError
from argus_telemetry.export.base import ExportHost
from argus_telemetry.export.http import HTTP_ERRORS, ThreadedClient, client_for, error_for_exception, error_for_response
from argus_telemetry.export.rw_series import RESERVED_LABELS, EncodedRequest, SeriesEncoder, SeriesKey
from argus_telemetry.spool.base import SpoolRecord

PROTOCOL_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_OWNED_HEADERS = {name.lower() for name in (*PROTOCOL_HEADERS, "Content-Length", "Host", "Authorization")}


def check_config(config: Config, path: str = "<config>") -> None:
    """Raise ConfigError for a [remote_write] setup that would send bad series: an empty
    job, an `[agent].labels` name the series already carry (job, instance, cpu, device,
    interface, mode), or a header the protocol or [remote_write.auth] owns."""
    section = config.remote_write
    if not section.url:
        return
    if not section.job:
        raise ConfigError(path, "[remote_write] job", "must not be empty (it is the job label of every series)")
    for name in config.agent.labels:
        if name in RESERVED_LABELS:
            raise ConfigError(
                path,
                "[agent] labels",
                f'"{name}" clashes with a label remote_write series carry ({", ".join(RESERVED_LABELS)})',
            )
        if not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
            raise ConfigError(path, "[agent] labels", f'"{name}" is not a valid Prometheus label name')
    for name in section.headers:
        if not _HEADER_NAME.fullmatch(name):
            raise ConfigError(path, "[remote_write] headers", f'"{name}" is not a valid HTTP header name')
        if name.lower() in _OWNED_HEADERS:
            raise ConfigError(path, "[remote_write] headers", f'"{name}" is set by Argus and cannot be overridden')


def compress(body: bytes) -> bytes:
    """One snappy *block* (remote write 1.0), not the framed format."""
    import cramjam

    return bytes(cramjam.snappy.compress_raw(body))


@dataclass(slots=True)
class _Pending:
    """A planned request awaiting delivery: which records it covers, and its bytes."""

    first_seq: int
    last_seq: int
    records: int
    too_old: int
    oldest_wall: float | None  # of the snapshots it carries (for the age re-check)
    request: EncodedRequest | None  # None: every record was too old
    body: bytes  # compressed, sent as is on every try


class RemoteWriteExporter:
    """Implements base.Exporter for Prometheus remote write 1.0."""

    name = "remote_write"

    def __init__(self, host: ExportHost) -> None:
        config = host.config.remote_write
        check_config(host.config, host.config_path or "<config>")
        self._host = host
        self._config = config
        self.url = config.url
        self.max_send_rate = int(config.max_send_rate)
        self.max_sample_age_seconds = float(config.max_sample_age)
        self._encoder = SeriesEncoder(
            job=config.job,
            instance=host.hostname,
            labels=host.config.agent.labels,
            max_samples=config.batch_max_samples,
        )
        self._stale_before: frozenset[SeriesKey] = frozenset()
        self._pending: dict[tuple[int, int], _Pending] = {}
        self._client: ThreadedClient | None = None
        self.samples_sent = 0  # delivered samples (stale markers included), for benchmarks

    async def start(self) -> None:
        headers: Mapping[str, str] = {name: value.reveal() for name, value in self._config.headers.items()}
        self._client = client_for(self._host, "remote_write", self._config, headers={**headers, **PROTOCOL_HEADERS})

    def cut(self, records: Sequence[SpoolRecord]) -> int:
        """Whole snapshots up to `batch_max_samples` (at least one), plus any too-old
        snapshots before them; the request is planned here and kept for `export`."""
        pending = self._plan(records, first_only=True)
        return pending.records

    async def export(self, batch: Sequence[SpoolRecord]) -> int:
        """Send the request for `batch` (planned by `cut`, re-planned after a 413 split
        or when samples in it became too old); return the compressed bytes sent."""
        assert self._client is not None, "start() builds the client"
        pending = self._pending.get((batch[0].seq, batch[-1].seq))
        if pending is None or pending.records != len(batch) or self._aged(pending):
            pending = self._plan(batch, first_only=False)
        if pending.request is not None:
            try:
                response = await self._client.post(self.url, content=pending.body)
            except HTTP_ERRORS as exc:
                raise error_for_exception(self.name, exc) from exc
            error = error_for_response(self.name, response, self._host.clock.wall())
            if error is not None:
                raise error
            self._stale_before = pending.request.stale_after
            self.samples_sent += pending.request.samples
        if pending.too_old:
            await self._host.spool.count_drop("too_old", pending.too_old)
        self._pending = {key: p for key, p in self._pending.items() if p.first_seq > pending.last_seq}
        return len(pending.body)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _oldest_ms(self) -> int | None:
        if self.max_sample_age_seconds <= 0:
            return None
        return int((self._host.clock.wall() - self.max_sample_age_seconds) * 1000)

    def _aged(self, pending: _Pending) -> bool:
        """True when a snapshot in `pending` has become too old since it was planned."""
        if pending.oldest_wall is None or self.max_sample_age_seconds <= 0:
            return False
        return pending.oldest_wall < self._host.clock.wall() - self.max_sample_age_seconds

    def _plan(self, records: Sequence[SpoolRecord], *, first_only: bool) -> _Pending:
        plan = self._encoder.plan(records, self._stale_before, oldest_ms=self._oldest_ms(), first_only=first_only)
        request = plan.requests[0] if plan.requests else None
        if request is not None and not first_only and len(plan.requests) > 1:
            # export() got more than one request's worth (no cut before it): send it as
            # one request; delivery splits it on 413.
            request = _merge(plan.requests)
        consumed = records[: plan.consumed]
        oldest_wall = next((r.wall for r in consumed if request and r.seq >= request.first_seq), None)
        pending = _Pending(
            first_seq=consumed[0].seq,
            last_seq=consumed[-1].seq,
            records=len(consumed),
            too_old=plan.too_old,
            oldest_wall=oldest_wall,
            request=request,
            body=compress(request.body) if request is not None else b"",
        )
        self._pending[(pending.first_seq, pending.last_seq)] = pending
        return pending


def _merge(requests: list[EncodedRequest]) -> EncodedRequest:
    """Requests over consecutive records as one (a WriteRequest is a concatenation of
    its series fields, and a series may repeat across them in timestamp order)."""
    first, last = requests[0], requests[-1]
    return EncodedRequest(
        first_seq=first.first_seq,
        last_seq=last.last_seq,
        snapshots=sum(r.snapshots for r in requests),
        samples=sum(r.samples for r in requests),
        body=b"".join(r.body for r in requests),
        stale_after=last.stale_after,
    )
