"""Pacing and 429 adaptation seen from the server: request start times as the sandbox recorded them."""

from __future__ import annotations

import itertools
import statistics

import pytest
from _exporting import make_mapping
from _fakes import FakeTime

from autopilot_segments import AutopilotClient, Exporter
from autopilot_segments.sandbox import FaultPlan, Sandbox


def _gaps(times: list[float]) -> list[float]:
    ordered = sorted(times)
    return [b - a for a, b in itertools.pairwise(ordered)]


def test_the_server_sees_one_start_per_interval_retries_included() -> None:
    # Client and sandbox share one fake clock: the sandbox records each request at the instant the
    # client's limiter let it start, so the spacing the server sees is exact.
    fake = FakeTime()
    with Sandbox(clock=fake.clock, sleep=fake.sleep) as sb:
        sb.inject("503", times=3, path_prefix="/lists")
        with AutopilotClient(
            sb.api_key,
            base_url=sb.url,
            requests_per_second=5,
            backoff_factor=0.0,
            clock=fake.clock,
            sleep=fake.sleep,
        ) as client:
            for _ in range(10):
                client.lists()
        starts = [r.at for r in sb.requests]
    assert len(starts) == 13  # 3 of them retries
    assert _gaps(starts) == [pytest.approx(0.2 * 1.001)] * 12
    assert sb.busiest_second() == 5


def test_an_export_at_a_high_rate_is_paced_evenly_and_never_over_the_rate() -> None:
    # Real threads and the real clock: the exporter keeps many batches in flight, yet the starts the
    # sandbox sees are spread one per interval instead of arriving in waves. The window count forgives
    # 50 ms of scheduling jitter (two CPUs shared with other work); the old limiter sent each second's
    # starts as one burst (median gap ~0) and fails the spacing check by far.
    rate = 50.0
    with Sandbox(rate_limit=rate, latency=0.01, record_bodies=False) as sb:
        with AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=rate) as client:
            rows = [{"Email": f"user{i}@example.com", "first_name": "A", "tier": i} for i in range(4_000)]
            report = Exporter(client, make_mapping()).export(rows, segment="Paced")
        starts = [r.at for r in sb.requests]
        assert report.exported == 4_000
        assert sum(1 for r in sb.requests if r.status == 429) == 0
        assert sb.busiest_second(window=0.95) <= rate
    assert statistics.median(_gaps(starts)) >= 0.8 / rate


def test_random_429s_never_push_the_rate_below_the_floor_and_it_recovers_when_they_stop() -> None:
    fake = FakeTime()
    plan = FaultPlan(rate=0.3, kinds=("429",), seed=11)
    with (
        Sandbox(faults=plan, retry_after=1.0) as sb,
        AutopilotClient(
            sb.api_key,
            base_url=sb.url,
            requests_per_second=5,
            max_retries=20,
            clock=fake.clock,
            sleep=fake.sleep,
        ) as client,
    ):
        limiter = client.limiter
        last_429 = fake.now
        for _ in range(80):
            seen = client.stats.rate_limited
            client.lists()
            if client.stats.rate_limited > seen:
                last_429 = fake.now  # after the retry: the Retry-After is over by now
            assert limiter.effective_rate >= 2.5 == limiter.floor
        assert client.stats.rate_limited >= 20  # the test really met many 429s
        assert limiter.effective_rate == 2.5
        sb.configure(faults=None)
        while fake.now < last_429 + 5.0:  # the documented recovery time
            client.lists()
        assert limiter.effective_rate == 5.0


def test_the_preflight_and_the_list_look_up_run_side_by_side_before_the_first_write() -> None:
    # Two independent reads: the second starts one interval after the first, not a round trip later;
    # the list is created only once both have answered.
    with Sandbox(latency=0.3, record_bodies=False) as sb:
        with AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=20) as client:
            rows = [{"Email": f"user{i}@example.com", "first_name": "A", "tier": i} for i in range(3)]
            Exporter(client, make_mapping()).export(rows, segment="Side by side")
        first = {(r.method, r.path): r.at for r in reversed(sb.requests)}
    fields, lists, create = (
        first["GET", "/contacts/custom_fields"],
        first["GET", "/lists"],
        first["POST", "/list"],
    )
    assert abs(lists - fields) < 0.2  # well under the 0.3 s round trip
    assert create >= max(fields, lists) + 0.3
