"""The bounded dead-letter folder: batches a backend refused for good (HTTP 400, 409,
422...), kept with the backend's error text so an operator can see what was refused.

One JSON file per refused batch under `<data_dir>/Logs/dead-letter/`; the oldest
files go first once the folder passes `max_bytes` or `max_files`, the newest file always
stays (its entries were already counted as `rejected` when they were set aside).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from argus_telemetry.spool.base import SpoolRecord

log = logging.getLogger(__name__)

MAX_BYTES = 16 * 1024**2
MAX_FILES = 100


class DeadLetter:
    """Writes refused batches; bounded by size and count."""

    def __init__(self, directory: Path, *, max_bytes: int = MAX_BYTES, max_files: int = MAX_FILES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_files = max_files

    async def write(
        self, exporter: str, batch: Sequence[SpoolRecord], status: int | None, error: str, wall: float
    ) -> Path:
        """Store `batch` with the error; returns the file written."""
        return await asyncio.to_thread(self._write, exporter, list(batch), status, error, wall)

    def _write(self, exporter: str, batch: list[SpoolRecord], status: int | None, error: str, wall: float) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.directory / f"{exporter}-{batch[0].seq:012d}-{batch[-1].seq:012d}-{int(wall)}.json"
        document = {
            "exporter": exporter,
            "status": status,
            "error": error,
            "refused_at": wall,
            "first_seq": batch[0].seq,
            "last_seq": batch[-1].seq,
            "entries": [{"seq": r.seq, "wall": r.wall, "line": r.snapshot_json.decode()} for r in batch],
        }
        data = json.dumps(document, separators=(",", ":")).encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        self._trim()
        return path

    def _trim(self) -> None:
        files = sorted(self.directory.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        total = sum(p.stat().st_size for p in files)
        while len(files) > 1 and (total > self.max_bytes or len(files) > self.max_files):
            oldest = files.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)
            log.warning("dead-letter file removed", extra={"file": oldest.name, "reason": "dead-letter folder full"})

    def files(self) -> list[Path]:
        """The dead-letter files, oldest first."""
        if not self.directory.exists():
            return []
        return sorted(self.directory.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))
