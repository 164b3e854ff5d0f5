"""RateLimiter: exact behaviour under a fake clock, the window property, 429 slow-down and recovery."""

from __future__ import annotations

import math
import threading
import time

import pytest
from _fakes import FakeTime
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot_segments import RateLimiter


def _limiter(rate: float, fake: FakeTime, **kwargs: float) -> RateLimiter:
    return RateLimiter(rate, clock=fake.clock, sleep=fake.sleep, margin=kwargs.pop("margin", 0.0), **kwargs)


def _max_in_window(starts: list[float], window: float = 1.0) -> int:
    """The most starts that fall in any half-open window [t, t + window) (float noise forgiven)."""
    best = 0
    j = 0
    for i, start in enumerate(starts):
        while starts[j] <= start - window + 1e-9:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_first_rate_requests_start_immediately_then_the_next_waits_a_full_window() -> None:
    fake = FakeTime()
    limiter = _limiter(5, fake)
    starts = []
    for _ in range(6):
        limiter.acquire()
        starts.append(fake.now)
    assert starts[:5] == [1000.0] * 5
    assert starts[5] == pytest.approx(1001.0)
    assert fake.sleeps == [pytest.approx(1.0)]


def test_margin_is_added_to_the_window() -> None:
    fake = FakeTime()
    limiter = _limiter(2, fake, margin=0.05)
    for _ in range(3):
        limiter.acquire()
    assert fake.now == pytest.approx(1001.05)


def test_fractional_rate_below_one_spaces_requests_out() -> None:
    fake = FakeTime()
    limiter = _limiter(0.5, fake)
    starts = []
    for _ in range(3):
        limiter.acquire()
        starts.append(fake.now)
    assert starts == [pytest.approx(1000.0), pytest.approx(1002.0), pytest.approx(1004.0)]


def test_idle_time_frees_the_window() -> None:
    fake = FakeTime()
    limiter = _limiter(3, fake)
    for _ in range(3):
        limiter.acquire()
    fake.advance(1.5)
    for _ in range(3):
        limiter.acquire()
    assert fake.sleeps == []


@settings(max_examples=150, deadline=None)
@given(
    rate=st.sampled_from([0.5, 1.0, 2.0, 2.5, 5.0, 7.5, 20.0]),
    gaps=st.lists(st.floats(min_value=0.0, max_value=1.5), min_size=1, max_size=60),
)
def test_never_more_than_rate_starts_in_any_one_second_window(rate: float, gaps: list[float]) -> None:
    fake = FakeTime()
    limiter = _limiter(rate, fake)
    starts = []
    for gap in gaps:
        fake.advance(gap)
        limiter.acquire()
        starts.append(fake.now)
    assert starts == sorted(starts)
    assert _max_in_window(starts) <= max(1, math.floor(rate))
    if rate < 1:  # below one per second the requests are spaced 1/rate apart
        assert _max_in_window(starts, 1 / rate) <= 1


@settings(max_examples=100, deadline=None)
@given(gaps=st.lists(st.floats(min_value=0.0, max_value=0.3), min_size=1, max_size=40))
def test_a_request_never_waits_when_the_window_has_room(gaps: list[float]) -> None:
    # The limiter is not needlessly slow: a start is delayed only when `rate` starts are already
    # within the last window.
    fake = FakeTime()
    limiter = _limiter(4, fake)
    starts: list[float] = []
    for gap in gaps:
        fake.advance(gap)
        before = fake.now
        recent = [s for s in starts if s > before - 1.0]
        limiter.acquire()
        if len(recent) < 4:
            assert fake.now == before
        starts.append(fake.now)


def test_429_pauses_for_retry_after_and_halves_the_rate_then_recovers() -> None:
    fake = FakeTime()
    limiter = _limiter(8, fake, recovery=10.0)
    limiter.acquire()
    limiter.note_rate_limited(retry_after=3.0)
    assert limiter.effective_rate == 4
    limiter.acquire()
    assert fake.now == pytest.approx(1003.0)  # everyone waits out the Retry-After
    # at the halved rate only 4 starts fit in a window
    starts = [fake.now]
    for _ in range(4):
        limiter.acquire()
        starts.append(fake.now)
    assert _max_in_window(starts) == 4
    assert starts[-1] == pytest.approx(starts[0] + 1.0)
    fake.advance(10.0)
    assert limiter.effective_rate == 8
    limiter.note_rate_limited(None)
    limiter.note_rate_limited(None)  # same burst: counted once
    assert limiter.effective_rate == 4
    fake.advance(1.0)
    limiter.note_rate_limited(None)
    assert limiter.effective_rate == 2
    fake.advance(10.0)
    assert limiter.effective_rate == 4
    fake.advance(10.0)
    assert limiter.effective_rate == 8
    fake.advance(100.0)
    assert limiter.effective_rate == 8  # never above the configured rate


def test_429_without_retry_after_pauses_one_window() -> None:
    fake = FakeTime()
    limiter = _limiter(5, fake)
    limiter.note_rate_limited(None)
    limiter.acquire()
    assert fake.now == pytest.approx(1001.0)


def test_rate_never_drops_below_one_per_second_or_the_configured_rate() -> None:
    fake = FakeTime()
    fast = _limiter(5, fake)
    slow = _limiter(0.5, fake)
    for _ in range(10):
        fast.note_rate_limited(0)
        slow.note_rate_limited(0)
        fake.advance(3.0)
    assert fast.effective_rate == 1.0
    assert slow.effective_rate == 0.5


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf")])
def test_invalid_rate_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(rate)


def test_eight_real_threads_share_the_limit() -> None:
    rate = 50.0
    limiter = RateLimiter(rate)
    starts: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            limiter.acquire()
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    starts.sort()
    assert len(starts) == 80
    assert _max_in_window(starts) <= rate
    # 80 starts at 50 per window need at least one full window; not much more than that.
    assert 1.0 <= elapsed < 3.0
