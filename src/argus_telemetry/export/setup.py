"""Builds the enabled exporters from the Config (placeholder until the exporters land)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argus_telemetry.agent import Agent, Component


def build_exporters(agent: Agent) -> list[Component]:
    """The exporter components the config enables."""
    return []
