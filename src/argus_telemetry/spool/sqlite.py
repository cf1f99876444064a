"""The SQLite spool's async face: `SqliteSpool` hands every call to the one worker thread
that owns the connection (`store.py`).

The parts, by job: `store.py` (append, flush, read, ack on the worker thread),
`recovery.py` (open checked; quarantine and salvage), `database.py` (schema, pragmas,
failure kinds), `caps.py` (max_age / max_bytes inside the append), `counts.py`,
`state.py` (the sidecar seq reservation) and `stats.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

from argus_telemetry.clock import Clock
from argus_telemetry.config.model import SpoolConfig
from argus_telemetry.errors import SpoolError
from argus_telemetry.spool.base import DROP_REASONS, SpoolRecord, SpoolStats
from argus_telemetry.spool.stats import read_stats
from argus_telemetry.spool.store import FaultHook, Store

__all__ = ["FaultHook", "SqliteSpool", "read_stats"]

_T = TypeVar("_T")


class SqliteSpool:
    """The durable spool of the agent (the `Spool` protocol). Create with `open()`."""

    def __init__(self, store: Store, executor: ThreadPoolExecutor) -> None:
        self._store = store
        self._executor = executor
        self._next_seq = store.counts.high_water_seq + 1
        self._consumers: frozenset[str] = frozenset()
        self._closed = False

    @classmethod
    async def open(
        cls, directory: Path, config: SpoolConfig, clock: Clock, *, faults: FaultHook | None = None
    ) -> SqliteSpool:
        """Open (or create) `<directory>/spool.db`. A corrupt or unreadable file is moved
        to `quarantine/`, salvaged and counted; only an unusable directory raises SpoolError."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argus-spool")
        store = Store(directory, config, clock, faults)
        try:
            await asyncio.get_running_loop().run_in_executor(executor, store.open)
        except BaseException:
            executor.shutdown(wait=True)
            raise
        return cls(store, executor)

    async def _call(self, function: Callable[[], _T]) -> _T:
        if self._closed:
            raise SpoolError("the spool is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    def next_seq(self) -> int:
        return self._next_seq

    async def append(self, seq: int, wall: float, snapshot_json: bytes, counters: bytes) -> bool:
        # The seq is spent even if the row cannot be stored: listeners saw it.
        self._next_seq = max(self._next_seq, seq + 1)
        return await self._call(partial(self._store.append, (seq, wall, snapshot_json, counters), self._consumers))

    async def flush(self) -> None:
        await self._call(self._store.flush)

    def register(self, consumer: str) -> None:
        self._consumers = self._consumers | {consumer}

    async def read_after(self, consumer: str, limit: int) -> list[SpoolRecord]:
        return await self._call(partial(self._store.read_after, consumer, limit))

    async def ack(self, consumer: str, seq: int) -> None:
        await self._call(partial(self._store.ack, consumer, seq, self._consumers))

    async def count_drop(self, reason: str, count: int) -> None:
        if reason not in DROP_REASONS:
            raise ValueError(f"unknown drop reason {reason!r}; expected one of {', '.join(DROP_REASONS)}")
        await self._call(partial(self._store.count_drop, reason, count))

    async def latest(self) -> SpoolRecord | None:
        return await self._call(self._store.latest)

    async def stats(self) -> SpoolStats:
        return await self._call(partial(self._store.stats, self._consumers))

    async def close(self) -> None:
        if self._closed:
            return
        try:
            await self._call(self._store.close)
        finally:
            self._closed = True
            self._executor.shutdown(wait=True)
