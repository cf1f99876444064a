"""Logging setup: one line per event on stderr, `event key=value ...`, no secrets."""

from __future__ import annotations

import logging
import sys
import time

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class EventFormatter(logging.Formatter):
    """`2026-12-04T10:00:00Z WARNING argus.export event="export failed" exporter=loki`."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        fields = " ".join(
            f"{key}={_quote(value)}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD and not key.startswith("_")
        )
        line = f"{stamp} {record.levelname} {record.name} {record.getMessage()}"
        if fields:
            line = f"{line} {fields}"
        if record.exc_info and record.levelno >= logging.ERROR:
            line = f"{line} error={_quote(repr(record.exc_info[1]))}"
        return line.replace("\n", "\\n")


def _quote(value: object) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "._-/:@+" for c in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def setup_logging(level: int | str = logging.INFO) -> None:
    """Send `argus_telemetry` logs to stderr, one line per event. `level` may be a name
    ("DEBUG"); $ARGUS_LOG_LEVEL sets it for `argus run`."""
    if isinstance(level, str):
        level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EventFormatter())
    root = logging.getLogger("argus_telemetry")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
