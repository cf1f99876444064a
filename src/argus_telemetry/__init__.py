"""Argus Telemetry: a host-telemetry agent. Importing the package starts nothing."""

__version__ = "0.1.0"
