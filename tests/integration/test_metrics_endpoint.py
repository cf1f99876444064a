"""The /metrics endpoint on a real loopback socket, parsed by prometheus_client."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tests.support.export_host import ExportHarness
from tests.support.fake_clock import FakeClock

from argus_telemetry.config.model import AgentConfig, Config, MetricsConfig
from argus_telemetry.export.metrics import MetricsEndpoint


async def test_metrics_parse_and_match_the_latest_snapshot(tmp_path: Path) -> None:
    """GET /metrics parses with prometheus_client's text parser and matches the latest
    snapshot and counters; other paths are 404, other methods 405."""
    config = Config(agent=AgentConfig(hostname="client-42"), metrics=MetricsConfig(listen="127.0.0.1:0"))
    host = await ExportHarness.open(config, FakeClock(), tmp_path)
    await host.append(3)
    endpoint = MetricsEndpoint(host)
    await endpoint.start()
    task = asyncio.create_task(endpoint.run())
    try:
        assert endpoint.address is not None
        base = f"http://127.0.0.1:{endpoint.address[1]}"
        async with httpx.AsyncClient() as client:
            response = await client.get(base + "/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
            assert (await client.get(base + "/other")).status_code == 404
            assert (await client.post(base + "/metrics")).status_code == 405
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
        }
        assert host.latest is not None
        snapshot, counters = host.latest
        assert samples[("argus_cpu_usage_ratio", ())] == snapshot.cpu.usage_percent / 100  # type: ignore[operator]
        assert samples[("argus_memory_total_bytes", ())] == snapshot.memory.total_bytes
        assert samples[("argus_disk_write_bytes_per_second", (("device", "vda"),))] == 40960.0
        assert samples[("argus_network_receive_bytes_total", (("interface", "eth0"),))] == counters.network["eth0"][0]
        assert samples[("argus_cpu_seconds_total", (("cpu", "0"), ("mode", "user")))] == counters.cpu[0]["user"]
        assert samples[("argus_spool_snapshots", ())] == 3.0
        assert samples[("argus_spool_dropped_total", (("reason", "rejected"),))] == 0.0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await host.spool.close()


async def _response(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status, *lines = head[:-4].split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines)}
    return status, headers, await reader.readexactly(int(headers[b"content-length"]))


async def test_connection_kept_alive_between_scrapes_until_close(tmp_path: Path) -> None:
    """Two GETs on one HTTP/1.1 connection both get the exposition of the snapshot
    latest at their time (a new snapshot shows in the second); `Connection: close` is
    answered and then the server closes the connection; a 404 closes it too."""
    config = Config(agent=AgentConfig(hostname="client-42"), metrics=MetricsConfig(listen="127.0.0.1:0"))
    host = await ExportHarness.open(config, FakeClock(), tmp_path)
    await host.append(1)
    endpoint = MetricsEndpoint(host)
    await endpoint.start()
    task = asyncio.create_task(endpoint.run())
    try:
        assert endpoint.address is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.address[1])
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, first = await _response(reader)
        assert (status, headers[b"connection"]) == (b"HTTP/1.1 200 OK", b"keep-alive")
        assert b"argus_spool_snapshots 1.0\n" in first
        await host.append(1)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, headers, second = await _response(reader)
        assert (status, headers[b"connection"]) == (b"HTTP/1.1 200 OK", b"close")
        assert b"argus_spool_snapshots 2.0\n" in second
        assert await reader.read() == b""
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.address[1])
        writer.write(b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = await _response(reader)
        assert (status, headers[b"connection"], body) == (
            b"HTTP/1.1 404 Not Found",
            b"close",
            b"not found: try /metrics\n",
        )
        assert await reader.read() == b""
        writer.close()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await host.spool.close()
