"""RateLimiter: even pacing under a fake clock, the window property, 429 slow-down, floor and recovery."""

from __future__ import annotations

import itertools
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


def _starts(limiter: RateLimiter, fake: FakeTime, n: int) -> list[float]:
    starts = []
    for _ in range(n):
        limiter.acquire()
        starts.append(fake.now)
    return starts


def test_starts_are_spaced_exactly_one_interval_apart() -> None:
    fake = FakeTime()
    starts = _starts(_limiter(5, fake), fake, 12)
    assert starts[0] == 1000.0  # the first request starts at once
    assert [b - a for a, b in itertools.pairwise(starts)] == [pytest.approx(0.2, abs=1e-9)] * 11
    assert _max_in_window(starts) == 5


def test_callers_arriving_together_get_one_start_each_interval_not_a_burst() -> None:
    # Eight workers asking at the same instant (the first wave of an export): only the first one
    # starts at once; the wave is spread over 8 intervals instead of sent as one burst. Only the
    # caller next in line ever sleeps, so one fake clock serves all the threads.
    fake = FakeTime()
    limiter = _limiter(20, fake)
    starts: list[float] = []
    lock = threading.Lock()
    gate = threading.Barrier(8)

    def worker() -> None:
        gate.wait()
        limiter.acquire()
        with lock:
            starts.append(fake.now)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(starts) == [pytest.approx(1000 + i * 0.05, abs=1e-9) for i in range(8)]


def test_a_late_wake_up_is_made_up_for_by_the_next_start_up_to_half_an_interval() -> None:
    fake = FakeTime()
    late = [0.03, 0.0, 0.0, 0.15]  # the second start wakes 30 ms late, the fifth 150 ms

    def oversleep(seconds: float) -> None:
        fake.sleep(seconds + (late.pop(0) if late else 0.0))

    limiter = RateLimiter(5, clock=fake.clock, sleep=oversleep, margin=0.0)
    starts = _starts(limiter, fake, 7)
    # back on the schedule at once after 30 ms; after 150 ms, only half an interval (100 ms) is made up
    expected = [1000.0, 1000.23, 1000.4, 1000.6, 1000.95, 1001.05, 1001.25]
    assert starts == [pytest.approx(t) for t in expected]


def test_starts_wait_a_full_second_after_the_departure_rate_starts_back() -> None:
    # The first request left 30 ms after its granted start (its thread was held up): the sixth start at
    # 5 r/s waits until a second after that departure, not after the grant, so no second of real
    # departures holds six.
    fake = FakeTime()
    limiter = _limiter(5, fake)
    limiter.acquire()
    fake.advance(0.03)
    limiter.note_started()
    for _ in range(4):
        limiter.acquire()
        limiter.note_started()
    limiter.acquire()
    assert fake.now == pytest.approx(1001.03)
    limiter.note_started()
    limiter.acquire()  # the schedule did not move: the next start is back on it
    assert fake.now == pytest.approx(1001.2)


def test_margin_widens_the_interval() -> None:
    fake = FakeTime()
    starts = _starts(_limiter(2, fake, margin=0.05), fake, 3)
    assert starts == [1000.0, pytest.approx(1000.525), pytest.approx(1001.05)]


def test_the_default_margin_is_small() -> None:
    limiter = RateLimiter(5)
    assert limiter.interval == pytest.approx(0.2 * 1.001)


@pytest.mark.parametrize(("rate", "interval"), [(0.5, 2.0), (1.0, 1.0), (2.5, 0.5), (7.5, 1 / 7)])
def test_fractional_rates_are_paced_so_that_no_second_holds_more_than_the_rate(
    rate: float, interval: float
) -> None:
    fake = FakeTime()
    starts = _starts(_limiter(rate, fake), fake, 10)
    assert [b - a for a, b in itertools.pairwise(starts)] == [pytest.approx(interval)] * 9


def test_idle_time_is_not_saved_up_for_a_burst() -> None:
    fake = FakeTime()
    limiter = _limiter(4, fake)
    _starts(limiter, fake, 3)
    fake.advance(10.0)
    before = fake.now
    starts = _starts(limiter, fake, 3)
    assert starts == [before, pytest.approx(before + 0.25), pytest.approx(before + 0.5)]


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
    spacing = 1 / rate if rate < 1 else 1 / math.floor(rate)
    assert all(b - a >= spacing - 1e-9 for a, b in itertools.pairwise(starts))


@settings(max_examples=100, deadline=None)
@given(gaps=st.lists(st.floats(min_value=0.0, max_value=0.6), min_size=1, max_size=40))
def test_a_request_waits_only_as_long_as_the_spacing_requires(gaps: list[float]) -> None:
    # The limiter is not needlessly slow: a start is delayed only until one interval after the
    # previous one.
    fake = FakeTime()
    limiter = _limiter(4, fake)
    starts: list[float] = []
    for gap in gaps:
        fake.advance(gap)
        before = fake.now
        limiter.acquire()
        expected = before if not starts else max(before, starts[-1] + 0.25)
        assert fake.now == pytest.approx(expected)
        starts.append(fake.now)


def test_a_429_halves_the_rate_once_per_retry_after_window_and_everyone_waits_it_out() -> None:
    fake = FakeTime()
    limiter = _limiter(8, fake, recovery=5.0)
    limiter.acquire()
    limiter.note_rate_limited(retry_after=3.0)
    assert limiter.effective_rate == 4
    fake.advance(1.0)
    limiter.note_rate_limited(retry_after=3.0)  # same window: no second penalty, the pause extends
    limiter.note_rate_limited(retry_after=3.0)
    assert limiter.effective_rate == 4
    limiter.acquire()
    assert fake.now == pytest.approx(1004.0)  # everyone waits out the latest Retry-After
    starts = [fake.now, *_starts(limiter, fake, 4)]
    assert [b - a for a, b in itertools.pairwise(starts)] == [pytest.approx(0.25)] * 4  # at the halved rate


def test_429s_without_retry_after_count_once_per_second_and_do_not_pause() -> None:
    fake = FakeTime()
    limiter = _limiter(8, fake)
    limiter.note_rate_limited(None)
    limiter.note_rate_limited(None)  # the same wave
    assert limiter.effective_rate == 4
    before = fake.now
    limiter.acquire()
    assert fake.now == before


def test_the_rate_never_drops_below_the_floor_however_many_429s() -> None:
    fake = FakeTime()
    default = _limiter(5, fake)
    lower = _limiter(5, fake, floor=0.2)
    for _ in range(20):
        default.note_rate_limited(0)
        lower.note_rate_limited(0)
        fake.advance(1.5)
        assert default.effective_rate >= 2.5
    assert default.floor == 2.5
    assert default.effective_rate == 2.5
    assert lower.effective_rate == 1.0
    assert default.interval == pytest.approx(0.4)


def test_the_full_rate_returns_recovery_seconds_after_the_429s_stop() -> None:
    fake = FakeTime()
    limiter = _limiter(5, fake, recovery=5.0)
    for _ in range(6):
        limiter.note_rate_limited(2.0)
        fake.advance(2.5)
    last_quiet = fake.now - 2.5 + 2.0  # the end of the last Retry-After
    fake.now = last_quiet + 4.99
    assert limiter.effective_rate == 2.5
    fake.now = last_quiet + 5.0
    assert limiter.effective_rate == 5.0
    fake.advance(100.0)
    assert limiter.effective_rate == 5.0  # never above the configured rate


def test_a_caller_already_waiting_when_a_429_arrives_waits_out_its_retry_after() -> None:
    # A worker already sleeping towards its start when another one meets a 429 with Retry-After
    # must not start inside the pause.
    fake = FakeTime()
    met_429: list[float] = []

    def sleep(seconds: float) -> None:
        fake.sleep(seconds)
        if not met_429:
            met_429.append(fake.now)
            limiter.note_rate_limited(3.0)

    limiter = RateLimiter(5, clock=fake.clock, sleep=sleep, margin=0.0)
    limiter.acquire()
    limiter.acquire()  # waits for 1000.2; the 429 arrives while it sleeps
    assert fake.now == pytest.approx(met_429[0] + 3.0)


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
            with lock:  # the request leaves (as the transport reports it)
                starts.append(time.monotonic())
                limiter.note_started()

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


def test_a_delay_every_request_pays_before_leaving_does_not_slow_the_pace() -> None:
    # Every request leaves 1 ms after its granted start: departures stay one interval apart, so the
    # departures' window must not push the schedule back by 1 ms every `rate` starts.
    fake = FakeTime()
    limiter = _limiter(5, fake)
    starts = []
    for _ in range(21):
        limiter.acquire()
        starts.append(fake.now)
        fake.advance(0.001)
        limiter.note_started()
    assert starts[-1] == pytest.approx(1000.0 + 20 * 0.2)
