"""Builds the enabled exporters and the /metrics endpoint from the Config.

Imports are lazy: with no exporter configured the agent never loads http.client or
prometheus_client (RSS target, perf notes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argus_telemetry.agent import Agent, Component
    from argus_telemetry.config.model import Config


def needs_ssl(config: Config) -> bool:
    """Whether this configuration can ever use TLS. Every exporter's HTTP client (http.client)
    imports `ssl`; with no exporter configured nothing does, and the agent can run
    without loading OpenSSL (~4 MiB RSS, see docs/decisions.md)."""
    # /metrics too: prometheus_client's exposition module imports ssl unconditionally.
    return bool(config.pushgateway.url or config.loki.url or config.remote_write.url or config.metrics.listen)


def build_exporters(agent: Agent) -> list[Component]:
    """The components the config enables: Pushgateway, Loki and remote_write (the last
    two through a delivery loop) and the /metrics endpoint when `[metrics] listen` is set."""
    config = agent.config
    components: list[Component] = []
    if config.pushgateway.url:
        from argus_telemetry.export.pushgateway import PushgatewayExporter

        components.append(PushgatewayExporter(agent))
    if config.loki.url:
        from argus_telemetry.export.delivery import Delivery
        from argus_telemetry.export.loki import LokiExporter

        components.append(Delivery(agent, LokiExporter(agent)))
    if config.remote_write.url:
        from argus_telemetry.export.delivery import Delivery
        from argus_telemetry.export.remote_write import RemoteWriteExporter

        components.append(Delivery(agent, RemoteWriteExporter(agent)))
    if config.metrics.listen:
        from argus_telemetry.export.metrics import MetricsEndpoint

        components.append(MetricsEndpoint(agent))
    return components
