"""The sandbox's token bucket: Autopilot's per-key request rate, played locally."""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """`rate` tokens per second, holding at most `max(1, rate)`; each request takes one. Thread-safe."""

    def __init__(self, rate: float, *, clock: Callable[[], float]) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        self.rate = float(rate)
        self.capacity = max(1.0, self.rate)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = self.capacity
        self._last = clock()

    def try_acquire(self) -> bool:
        """Take a token if one is available; False means the request is over the rate."""
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._last)
            self._last = now
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False
