"""Exporters: Pushgateway, Loki, remote_write, and the local /metrics endpoint."""
