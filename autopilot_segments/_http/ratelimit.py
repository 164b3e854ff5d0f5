"""`RateLimiter`: even pacing of request starts (GCRA), shared by everything that uses one client.

Autopilot counts request *starts* per second per account. The limiter spaces them evenly: one start
every `interval` seconds, where `interval` is `(1 + margin) / r` and `r` is the configured rate (its
whole part for rates of one per second or more, so that no one-second window ever holds more than the
configured number of starts, also for fractional rates). It keeps one number, the earliest start of the
next request (GCRA's "theoretical arrival time"), one interval after the previous start. Idle time is
never saved up, so there are no bursts: the first request starts at once, the others one interval
apart. Callers take turns, first come, first served; only the next in line sleeps. A caller that wakes
up late (threads wait for the interpreter lock) is made up for by the next start, by up to half an
interval, so lateness does not add up into lost throughput.

What the server counts is when requests arrive, and a thread may be held up between its granted start
and its bytes leaving. The transport reports each departure (`note_started`); the limiter keeps the
last `rate` of them and never grants a start less than one second (plus the margin) after the oldest,
less the shortest recent delay between a granted start and its departure (a delay every request pays
does not bring departures closer together), so no one-second window of real departures holds more
than `rate` requests.

429s (Autopilot says we were too fast, or just says so at random):

- `Retry-After` is honoured: no request starts until it has passed, whoever is waiting.
- The rate is halved, once per penalty window (the `Retry-After` period, at least one second), not
  once per 429: a wave of 429s from requests that were in flight together is one signal.
- It never drops below `floor` x the configured rate (half by default).
- It doubles back after each `recovery` seconds (5 by default) without a 429, counted from the later of
  the last 429 and the end of its `Retry-After`; from the default floor that is one step.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["RateLimiter"]

_WINDOW = 1.0
# Server and client clocks see a request at slightly different instants (thread wake-ups, the GIL,
# the network), so the limiter spaces starts a little wider than 1/rate: `margin` seconds more per
# one-second window. It costs margin / (1 + margin) of the throughput (0.1% at the default 1 ms).
_DEFAULT_MARGIN = 0.001
_DEFAULT_RECOVERY = 5.0
_DEFAULT_FLOOR = 0.5


def _positive(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


class RateLimiter:
    """One request start every `1/rate` seconds at most, evenly spaced, across all threads.

    `acquire()` blocks until the caller may start a request. `note_rate_limited(retry_after)` tells
    the limiter the server answered 429: every caller waits out `retry_after`, and the rate is lowered
    for a while (never below `floor` x `rate`). `clock` and `sleep` are injectable so the exact
    behaviour can be tested without real waiting.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = _DEFAULT_MARGIN,
        recovery: float = _DEFAULT_RECOVERY,
        floor: float = _DEFAULT_FLOOR,
    ) -> None:
        if not _positive(rate):
            raise ValueError(f"rate must be a positive number of requests per second, got {rate!r}")
        if not (margin >= 0 and _positive(recovery)):
            raise ValueError("margin must be >= 0 and recovery > 0")
        if not (_positive(floor) and floor <= 1):
            raise ValueError(f"floor must be a fraction of the rate in (0, 1], got {floor!r}")
        self._rate = float(rate)
        self._clock = clock
        self._sleep = sleep
        self._margin = float(margin)
        self._recovery = float(recovery)
        self._floor = float(floor) * self._rate
        # Whole starts per second for rates >= 1 (2.5 r/s is paced at 2: 3 starts at 0, 0.4 and 0.8 s
        # would put 3 in one second); rates below 1 are paced exactly.
        self._ceiling = float(math.floor(self._rate)) if self._rate >= 1 else self._rate
        self._lock = threading.Lock()
        # Callers take turns (tickets): only the next one in line waits for a start time, and the one
        # after it is only told its start once that one has really begun.
        self._turns = threading.Condition(threading.Lock())
        self._issued = 0
        self._serving = 0
        self._next = -math.inf  # the earliest instant the next request may start
        # The last departures (see note_started): at most `capacity` of them in any `window`.
        capacity = max(1, math.floor(self._rate))
        self._window = capacity / self._ceiling * (1.0 + self._margin)
        self._sent: deque[float] = deque(maxlen=capacity)
        # How long recent requests took from their granted start to their departure: the shortest of
        # them is a cost every request pays, not a compression to guard against.
        self._delays: deque[float] = deque(maxlen=32)
        self._granted = threading.local()
        self._effective_rate = self._rate
        self._paused_until = -math.inf
        self._penalty_until = -math.inf  # a 429 before this instant belongs to the last penalty
        self._quiet_since = -math.inf  # recovery counts from here

    @property
    def rate(self) -> float:
        """The configured rate (requests per second)."""
        return self._rate

    @property
    def floor(self) -> float:
        """The lowest rate 429s can push the limiter to (requests per second)."""
        return self._floor

    @property
    def effective_rate(self) -> float:
        """The rate currently enforced: lower than `rate` for a while after a 429."""
        with self._lock:
            self._recover(self._clock())
            return self._effective_rate

    @property
    def interval(self) -> float:
        """Seconds between two request starts at the current effective rate."""
        with self._lock:
            self._recover(self._clock())
            return self._interval()

    def _interval(self) -> float:
        return (1.0 + self._margin) / min(self._effective_rate, self._ceiling)

    def _recover(self, now: float) -> None:
        while self._effective_rate < self._rate and now - self._quiet_since >= self._recovery:
            self._effective_rate = min(self._rate, self._effective_rate * 2)
            self._quiet_since += self._recovery

    def acquire(self) -> None:
        """Block until the caller may start one request (first come, first served)."""
        with self._turns:
            ticket = self._issued
            self._issued += 1
            queued = ticket != self._serving
            while ticket != self._serving:
                self._turns.wait()
        try:
            while True:
                with self._lock:
                    now = self._clock()
                    self._recover(now)
                    scheduled = max(self._next, self._paused_until)
                    start = scheduled
                    if len(self._sent) == self._sent.maxlen:
                        least = min(self._delays) if self._delays else 0.0
                        start = max(start, self._sent[0] + self._window - least)
                    if start <= now:
                        # A caller that waited (its turn, its start, or the departures' window) and got
                        # its start late makes up for it: the next start stays on the schedule, by up to
                        # half an interval. One that found the limiter idle starts a fresh schedule: idle
                        # time is never saved up.
                        interval = self._interval()
                        base = max(scheduled, now - interval / 2) if queued else now
                        self._next = base + interval
                        self._granted.at = now
                        return
                    queued = True
                self._sleep(start - now)
        finally:
            with self._turns:
                self._serving += 1
                self._turns.notify_all()

    def note_started(self) -> None:
        """A request's bytes have just left (called by the transport once they are written).

        The start the limiter granted and the moment the request really leaves differ by however long
        the thread took to get there (the GIL, other threads). When those delays vary, starts granted
        a second apart can leave less than a second apart; the limiter remembers the last `rate` real
        departures and never grants a start less than a second (plus the margin) after the oldest,
        less the shortest recent grant-to-departure delay.
        """
        with self._lock:
            now = self._clock()
            self._sent.append(now)
            granted = getattr(self._granted, "at", None)
            if granted is not None:
                self._delays.append(now - granted)
                self._granted.at = None

    def note_rate_limited(self, retry_after: float | None = None) -> None:
        """The server answered 429: wait out `retry_after` (seconds, already capped) and slow down.

        The first 429 of a penalty window (its `retry_after`, at least one second) halves the effective
        rate, down to the floor; later ones in the same window only extend the pause they ask for.
        """
        with self._lock:
            now = self._clock()
            pause = retry_after if retry_after is not None and retry_after > 0 else 0.0
            if now >= self._penalty_until:
                self._recover(now)
                self._effective_rate = max(self._floor, self._effective_rate / 2)
                self._penalty_until = now + max(pause, _WINDOW)
            if pause > 0:
                self._paused_until = max(self._paused_until, now + pause)
            self._quiet_since = max(now, self._paused_until)

    def __repr__(self) -> str:
        return (
            f"RateLimiter(rate={self._rate!r}, effective_rate={self._effective_rate!r}, "
            f"floor={self._floor!r})"
        )
