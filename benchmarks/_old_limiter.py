"""The limiter of 0.x before even pacing, kept verbatim as the benchmark's baseline (not used by the library).

`RateLimiter`: a thread-safe sliding-window limiter shared by everything that uses one client.

Autopilot counts request *starts* per second per account, so the limiter does too: it keeps the start
times of the most recent requests and never lets more than `rate` of them fall in any one-second window.
Each caller reserves its own start time under a lock and then sleeps outside it, so waiting threads are
served first come, first served and never spin.

After a 429 the whole client backs off: every thread pauses until the server's `Retry-After` (or a
one-window cool-down) has passed, and the effective rate is halved (at most once per window, so a burst
of 429s counts once); it doubles back towards the configured rate after each quiet `recovery` period
without another 429.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["WindowedRateLimiter"]

_WINDOW = 1.0
# Server and client clocks see a request at slightly different instants; a small margin keeps a
# burst that is exactly on the limit from being counted as one request too many on the server side.
# It costs margin / (1 + margin) of the throughput (2% at 20 ms), so it is kept small: measured on
# loopback under load, 20 ms gave no 429s (benchmarks/bench_export.py).
_DEFAULT_MARGIN = 0.02
_DEFAULT_RECOVERY = 10.0


class WindowedRateLimiter:
    """Never more than `rate` request starts in any one-second sliding window, across all threads.

    `acquire()` blocks until the caller may start a request. `note_rate_limited(retry_after)` tells
    the limiter the server answered 429, which pauses every caller and lowers the rate for a while.
    `clock` and `sleep` are injectable so the exact behaviour can be tested without real waiting.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = _DEFAULT_MARGIN,
        recovery: float = _DEFAULT_RECOVERY,
    ) -> None:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number of requests per second, got {rate!r}")
        if margin < 0 or recovery <= 0:
            raise ValueError("margin must be >= 0 and recovery > 0")
        self._rate = float(rate)
        self._clock = clock
        self._sleep = sleep
        self._margin = float(margin)
        self._recovery = float(recovery)
        self._lock = threading.Lock()
        # Reserved start times, ascending. Only the last `capacity` ones can ever matter.
        self._starts: deque[float] = deque(maxlen=self._capacity_for(self._rate))
        self._effective_rate = self._rate
        self._paused_until = -math.inf
        self._last_change = -math.inf

    @property
    def rate(self) -> float:
        """The configured rate (requests per second)."""
        return self._rate

    @property
    def effective_rate(self) -> float:
        """The rate currently enforced: lower than `rate` for a while after a 429."""
        with self._lock:
            self._recover(self._clock())
            return self._effective_rate

    @staticmethod
    def _capacity_for(rate: float) -> int:
        return max(1, math.floor(rate))

    def _window_for(self, rate: float) -> float:
        # With n = floor(rate) starts per window of n/rate (at least one second), no one-second window
        # ever holds more than `rate` starts, also for fractional rates (0.5 r/s -> 1 per 2 s).
        return max(_WINDOW, self._capacity_for(rate) / rate) + self._margin

    def _recover(self, now: float) -> None:
        while self._effective_rate < self._rate and now - self._last_change >= self._recovery:
            self._effective_rate = min(self._rate, self._effective_rate * 2)
            self._last_change += self._recovery

    def reserve(self) -> float:
        """Reserve the next start time and return how long the caller must wait for it (seconds)."""
        with self._lock:
            now = self._clock()
            self._recover(now)
            capacity = self._capacity_for(self._effective_rate)
            window = self._window_for(self._effective_rate)
            start = max(now, self._paused_until)
            if self._starts:
                start = max(start, self._starts[-1])  # keep reservations ordered
            if len(self._starts) >= capacity:
                start = max(start, self._starts[-capacity] + window)
            self._starts.append(start)
            return start - now

    def acquire(self) -> None:
        """Block until the caller may start one request."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)

    def note_rate_limited(self, retry_after: float | None = None) -> None:
        """The server answered 429: pause every caller and halve the effective rate for a while.

        `retry_after` (seconds, already capped by the caller) is how long the server asked us to wait;
        without it the pause is one window.
        """
        with self._lock:
            now = self._clock()
            pause = retry_after if retry_after is not None and retry_after > 0 else _WINDOW
            self._paused_until = max(self._paused_until, now + pause)
            # A burst of 429s from requests that were all in flight together is one signal, not many:
            # halve at most once per window, or eight threads would take the rate to the floor at once.
            if now - self._last_change >= self._window_for(self._effective_rate):
                floor = min(self._rate, 1.0)
                self._effective_rate = max(floor, self._effective_rate / 2)
            self._last_change = now

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self._rate!r}, effective_rate={self._effective_rate!r})"

    def note_started(self) -> None:
        """Not in the old limiter (the transport now reports departures): ignored."""
