"""Pure retry schedule: exponential from 500 ms, capped at 60 s, jittered, honouring
`Retry-After`. No clock and no sleeping here: `delivery.py` asks for the next delay."""

from __future__ import annotations

import random
from collections.abc import Callable

INITIAL_SECONDS = 0.5
MAX_SECONDS = 60.0
JITTER = 0.2  # ±20 %: a fleet that failed together does not retry together


class Backoff:
    """The delay before each retry of one failing batch.

    `next_delay()` grows 0.5 s, 1 s, 2 s, ... up to `max_seconds`, each scaled by a
    random factor in [1 - jitter, 1 + jitter] (never above `max_seconds`), and never
    shorter than a `Retry-After` the server gave. `reset()` after a success.
    """

    def __init__(
        self,
        *,
        initial_seconds: float = INITIAL_SECONDS,
        max_seconds: float = MAX_SECONDS,
        jitter: float = JITTER,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if not 0 < initial_seconds <= max_seconds:
            raise ValueError(f"backoff needs 0 < initial ({initial_seconds}) <= max ({max_seconds})")
        if not 0 <= jitter < 1:
            raise ValueError(f"backoff jitter {jitter} is not in [0, 1)")
        self.initial_seconds = initial_seconds
        self.max_seconds = max_seconds
        self.jitter = jitter
        self._uniform = uniform
        self.attempts = 0

    def next_delay(self, retry_after_seconds: float | None = None, *, longest: bool = False) -> float:
        """Seconds to wait before the next try. `longest`: the capped delay at once
        (misconfiguration: retry slowly). A `Retry-After` longer than the cap wins."""
        if longest:
            base = self.max_seconds
        else:
            base = min(self.max_seconds, self.initial_seconds * 2.0 ** min(self.attempts, 64))
        self.attempts += 1
        delay = min(self.max_seconds, base * self._uniform(1.0 - self.jitter, 1.0 + self.jitter))
        if retry_after_seconds is not None and retry_after_seconds > delay:
            return retry_after_seconds
        return delay

    def reset(self) -> None:
        self.attempts = 0
