"""The Pushgateway exporter against Debian's real `prometheus-pushgateway`."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme
from tests.support import factories
from tests.support.export_host import ExportHarness
from tests.support.fake_clock import FakeClock
from tests.support.servers import Pushgateway, bcrypt_hash

from argus_telemetry.config.model import AgentConfig, AuthConfig, Config, PushgatewayConfig, Secret, TlsConfig
from argus_telemetry.export.pushgateway import PushgatewayExporter

CONTRACT_TYPES = {
    "argus_cpu_usage_ratio": "GAUGE",
    "argus_memory_total_bytes": "GAUGE",
    "argus_memory_available_bytes": "GAUGE",
    "argus_memory_used_ratio": "GAUGE",
    "argus_disk_read_bytes_per_second": "GAUGE",
    "argus_disk_write_bytes_per_second": "GAUGE",
    "argus_network_receive_bytes_per_second": "GAUGE",
    "argus_network_transmit_bytes_per_second": "GAUGE",
    "argus_snapshot_timestamp_seconds": "GAUGE",
    "argus_cpu_seconds_total": "COUNTER",
    "argus_disk_read_bytes_total": "COUNTER",
    "argus_disk_written_bytes_total": "COUNTER",
    "argus_network_receive_bytes_total": "COUNTER",
    "argus_network_transmit_bytes_total": "COUNTER",
    "argus_agent_info": "GAUGE",
    "argus_spool_snapshots": "GAUGE",
    "argus_spool_bytes": "GAUGE",
    "argus_spool_dropped_total": "COUNTER",
    "argus_export_success_total": "COUNTER",
    "argus_export_failures_total": "COUNTER",
    "argus_export_last_success_timestamp_seconds": "GAUGE",
}


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[Pushgateway]:
    server = Pushgateway(tmp_path).start()
    yield server
    server.stop()


async def _harness(tmp_path: Path, config: PushgatewayConfig) -> ExportHarness:
    full = Config(agent=AgentConfig(hostname="client-42"), pushgateway=config)
    return await ExportHarness.open(full, FakeClock(), tmp_path / "data")


@pytest.fixture
async def harness(tmp_path: Path, pushgateway: Pushgateway) -> AsyncIterator[ExportHarness]:
    host = await _harness(tmp_path, PushgatewayConfig(url=pushgateway.url, job="argus"))
    yield host
    await host.spool.close()


def _series(group: dict[str, object], name: str) -> dict[tuple[tuple[str, str], ...], str]:
    family = group[name]
    assert isinstance(family, dict)
    return {
        tuple(sorted((k, v) for k, v in m["labels"].items() if k not in ("job", "instance"))): m["value"]
        for m in family["metrics"]
    }


async def test_group_holds_every_contract_metric(harness: ExportHarness, pushgateway: Pushgateway) -> None:
    """One push: group job=argus/instance=client-42 holds every contract metric with its
    type, labels and the snapshot's values."""
    await harness.append(1)
    exporter = PushgatewayExporter(harness)
    await exporter.start()
    assert await exporter.push() is True
    group = pushgateway.group("argus", "client-42")
    assert group is not None and group["last_push_successful"] is True
    for name, kind in CONTRACT_TYPES.items():
        assert group[name]["type"] == kind, name
    assert _series(group, "argus_disk_write_bytes_per_second") == {(("device", "vda"),): "40960"}
    assert _series(group, "argus_cpu_usage_ratio") == {(): "0.125"}
    assert _series(group, "argus_cpu_seconds_total")[(("cpu", "1"), ("mode", "user"))] == "20"
    assert _series(group, "argus_spool_dropped_total")[(("reason", "max_bytes"),)] == "0"
    assert _series(group, "argus_agent_info") == {(("version", harness.version),): "1"}
    assert _series(group, "argus_snapshot_timestamp_seconds") == {(): "1.7964e+09"}
    assert harness.health.exporters["pushgateway"].success_total == 1
    await exporter.close()


async def test_vanished_device_vanishes_and_outage_resumes_with_newest(
    harness: ExportHarness, pushgateway: Pushgateway
) -> None:
    """A device gone from the snapshot is gone from the group (PUT); while the gateway is
    down pushes fail and are counted; back up, the first push carries the newest values."""
    exporter = PushgatewayExporter(harness)
    await exporter.start()
    await harness.append(1)
    assert await exporter.push()
    snapshot = factories.snapshot(seq=2, disks={"vdb": (1.0, 2.0)}, cpu_percent=50.0)
    harness.latest = (snapshot, factories.counters(disks={"vdb": (5, 6)}))
    assert await exporter.push()
    group = pushgateway.group("argus", "client-42")
    assert group is not None
    assert _series(group, "argus_disk_write_bytes_per_second") == {(("device", "vdb"),): "2"}
    assert _series(group, "argus_disk_read_bytes_total") == {(("device", "vdb"),): "5"}
    pushgateway.stop()
    for cpu in (60.0, 70.0):
        harness.latest = (factories.snapshot(seq=3, cpu_percent=cpu), factories.counters())
        assert await exporter.push() is False
    assert harness.health.exporters["pushgateway"].failure_total == 2
    pushgateway.start()
    harness.latest = (factories.snapshot(seq=4, cpu_percent=80.0), factories.counters())
    assert await exporter.push() is True
    group = pushgateway.group("argus", "client-42")
    assert group is not None
    assert _series(group, "argus_cpu_usage_ratio") == {(): "0.8"}
    await exporter.close()


async def test_tls_and_basic_auth(tmp_path: Path) -> None:
    """Against a pushgateway with TLS and basic auth (--web.config.file): the right CA
    and password push; a wrong password is a 401 counted as failure."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {cert_file}\n  key_file: {key_file}\n"
        f"basic_auth_users:\n  argus: {bcrypt_hash('s3cret')}\n"
    )
    context = ssl.create_default_context()
    ca.configure_trust(context)
    server = Pushgateway(tmp_path, web_config=web, ssl_context=context, basic_auth=("argus", "s3cret")).start()
    try:
        password_file = tmp_path / "password"
        password_file.write_text("s3cret\n")
        good = PushgatewayConfig(
            url=server.url,
            tls=TlsConfig(ca_file=str(ca_file)),
            auth=AuthConfig(username="argus", password_file=str(password_file)),
        )
        host = await _harness(tmp_path, good)
        await host.append(1)
        exporter = PushgatewayExporter(host)
        await exporter.start()
        assert await exporter.push() is True
        assert server.group("argus", "client-42") is not None
        await exporter.close()
        bad = PushgatewayConfig(
            url=server.url, tls=TlsConfig(ca_file=str(ca_file)), auth=AuthConfig(username="argus", password=Secret("x"))
        )
        host_bad = ExportHarness(
            Config(agent=AgentConfig(hostname="client-42"), pushgateway=bad), host.clock, host.spool, tmp_path
        )
        host_bad.latest = host.latest
        rejected = PushgatewayExporter(host_bad)
        await rejected.start()
        assert await rejected.push() is False
        error = host_bad.health.exporters["pushgateway"].last_error
        assert error == "pushgateway: HTTP 401: Unauthorized (check the URL, tenant and credentials)"
        await rejected.close()
        untrusted = PushgatewayExporter(
            ExportHarness(
                Config(agent=AgentConfig(hostname="client-42"), pushgateway=PushgatewayConfig(url=server.url)),
                host.clock,
                host.spool,
                tmp_path,
            )
        )
        untrusted._host.latest = host.latest  # type: ignore[attr-defined]
        await untrusted.start()
        assert await untrusted.push() is False
        await untrusted.close()
        await host.spool.close()
    finally:
        server.stop()
