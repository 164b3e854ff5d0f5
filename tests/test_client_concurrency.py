"""One client shared by 8 threads: the server never sees more than `requests_per_second` starts a second."""

from __future__ import annotations

import threading

from autopilot_segments import AutopilotClient
from autopilot_segments.sandbox import Sandbox

RATE = 60.0
THREADS = 8
CALLS_PER_THREAD = 9  # plus an add_to_list every third call: 96 requests, ~1.6 windows at 60 r/s
# The sandbox stamps a request when its handler thread gets the GIL, which can be a few tens of ms after
# the client started it when 8 client threads and the server share one interpreter. The limiter's exact
# guarantee (on its own clock) is proven with a fake clock in test_ratelimit.py; here the wire is checked
# over windows shortened by that scheduling jitter. Without a limiter, 96 requests land in ~0.1 s.
ARRIVAL_JITTER = 0.05


def _max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    best = 0
    j = 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_eight_threads_never_exceed_the_rate_on_the_wire() -> None:
    # The sandbox enforces the same limit: any excess would also come back as a 429.
    with (
        Sandbox(rate_limit=RATE) as sb,
        AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=RATE, max_retries=0) as client,
    ):
        list_id = sb.create_list("Concurrent")
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                for i in range(CALLS_PER_THREAD):
                    email = f"t{n}-{i}@example.com"
                    client.upsert_contact({"Email": email})
                    if i % 3 == 0:
                        client.add_to_list(list_id, email)
            except BaseException as exc:  # surfaced below, in the test thread
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert errors == []
        arrivals = [r.at for r in sb.requests]
        expected = THREADS * (CALLS_PER_THREAD + CALLS_PER_THREAD // 3)
        assert len(arrivals) == expected
        assert client.stats.requests == expected
        assert _max_in_window(arrivals, window=1.0 - ARRIVAL_JITTER) <= RATE
        assert all(r.status == 200 for r in sb.requests)
        assert client.stats.rate_limited == 0
        assert len(sb.list_members(list_id)) == THREADS * (CALLS_PER_THREAD // 3)
