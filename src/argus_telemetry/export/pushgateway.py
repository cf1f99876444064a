"""Pushgateway exporter: at every flush, PUT the latest snapshot's families to
`<url>/metrics/job/<job>/instance/<hostname>`.

PUT replaces the whole group, so a vanished device vanishes there too. Never a backlog:
a failed push is not retried; the next flush pushes the newest values. The push runs
in its own task, so a slow or dead Pushgateway never delays collection.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import weakref
from urllib.parse import quote

from argus_telemetry.errors import ExportError
from argus_telemetry.export.base import ExportHost
from argus_telemetry.export.families import Exposition, MetricsInput
from argus_telemetry.export.http import (
    HTTP_ERRORS,
    ThreadedClient,
    build_client,
    error_for_exception,
    error_for_response,
)
from argus_telemetry.spool.base import SpoolStats

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def group_path(job: str, instance: str) -> str:
    """`/metrics/job/<job>/instance/<instance>`; a value holding `/` or empty is sent
    in the `@base64` form (a `%2F` would be decoded and split the path)."""
    return "/metrics" + _segment("job", job) + _segment("instance", instance)


def _segment(name: str, value: str) -> str:
    if value and "/" not in value:
        return f"/{name}/{quote(value, safe='')}"
    encoded = base64.urlsafe_b64encode(value.encode()).decode() or "="
    return f"/{name}@base64/{encoded}"


class _Shared:
    """What the push and /metrics of one agent share: the exposition renderer and the
    spool stats of the current spool state."""

    def __init__(self) -> None:
        self.exposition = Exposition()
        self.stats_key: tuple[int, int] | None = None
        self.stats: SpoolStats | None = None


_shared: weakref.WeakKeyDictionary[ExportHost, _Shared] = weakref.WeakKeyDictionary()


def _shared_for(host: ExportHost) -> _Shared:
    shared = _shared.get(host)
    if shared is None:
        shared = _shared[host] = _Shared()
    return shared


async def metrics_input(host: ExportHost) -> MetricsInput:
    """The latest snapshot, its counters, health and spool stats, as families' input.
    The stats are asked of the spool again only after an append or a flush (the seq to
    come or the flush generation changed)."""
    shared = _shared_for(host)
    key = (host.spool.next_seq(), host.flush_generation)
    stats = shared.stats
    if stats is None or key != shared.stats_key:
        stats = await host.spool.stats()
        shared.stats, shared.stats_key = stats, key
    snapshot, counters = host.latest if host.latest is not None else (None, None)
    return MetricsInput(version=host.version, snapshot=snapshot, counters=counters, health=host.health, stats=stats)


async def exposition(host: ExportHost) -> bytes:
    """The text exposition of `host`'s latest snapshot and self-metrics (cached per
    snapshot, shared by the Pushgateway push and /metrics)."""
    data = await metrics_input(host)
    return _shared_for(host).exposition.render(data)


class PushgatewayExporter:
    """The agent Component pushing to one Pushgateway group."""

    name = "pushgateway"

    def __init__(self, host: ExportHost) -> None:
        config = host.config.pushgateway
        self._host = host
        self._config = config
        self.url = config.url.rstrip("/") + group_path(config.job, host.hostname)
        self._client: ThreadedClient | None = None
        self._pushed_generation = -1
        self._pushed = asyncio.Condition()

    async def start(self) -> None:
        self._client = build_client(
            "pushgateway",
            tls=self._config.tls,
            auth=self._config.auth,
            timeout_seconds=float(self._config.timeout),
            version=self._host.version,
            config_path=self._host.config_path,
            url=self._config.url,
        )

    async def run(self) -> None:
        try:
            generation = -1
            while True:
                generation = await self._host.wait_for_flush(generation)
                await self.push()
                async with self._pushed:
                    self._pushed_generation = generation
                    self._pushed.notify_all()
        finally:
            await self.close()

    async def close(self) -> None:
        """Release the HTTP client (run() does it when cancelled)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def final_flush(self) -> None:
        """Wait for the push of the final flush (bounded by the agent)."""
        target = self._host.flush_generation
        async with self._pushed:
            await self._pushed.wait_for(lambda: self._pushed_generation >= target)

    async def push(self) -> bool:
        """PUT the latest snapshot once; True on success. Failures are counted in
        health (logged once per state change there), never raised."""
        host = self._host
        if host.latest is None or self._client is None:
            return False
        body = await exposition(host)
        try:
            try:
                response = await self._client.put(self.url, content=body, headers={"Content-Type": CONTENT_TYPE})
            except HTTP_ERRORS as exc:
                raise error_for_exception(self.name, exc) from exc
            error = error_for_response(self.name, response, host.clock.wall())
            if error is not None:
                raise error
        except ExportError as error:
            host.health.record_failure(self.name, str(error), host.clock.wall())
            return False
        host.health.record_success(self.name, host.clock.wall())
        return True
